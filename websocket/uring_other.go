//go:build !linux

package websocket

// Without io_uring a Batch writes each message as Conn.WritePrepared does.

type uring struct{ pending []batchEntry }

func getRing() *uring { return nil }

func putRing(*uring) {}

func (r *uring) send([]batchEntry) []sendResult { return nil }

func uringUsable() bool { return false }
