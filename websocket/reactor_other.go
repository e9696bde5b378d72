//go:build !linux

package websocket

import "net"

// Without epoll there is no reactor: ModeAuto and ModeReactor fall back to
// blocking mode. These stubs keep the shared code compiling; none of them
// is reached because no Conn ever gets a poller.

const reactorSupported = false

type reactor struct{}

type poller struct{}

type pollTask struct {
	c  *Conn
	op taskOp
}

type taskOp uint8

const taskAbort taskOp = 1

func startReactor(*engine) (*reactor, error) { return nil, nil }

func (r *reactor) stop() {}

func (r *reactor) bind(*Conn, int) {}

func (p *poller) register(*Conn, []byte) {}

func (p *poller) post(pollTask) {}

func (p *poller) release(*Conn) {}

func (c *Conn) updateEventsLocked() {}

func (c *Conn) kickReactorLocked() {}

func (c *Conn) flushLocked() {}

func (c *Conn) shutdownFDLocked() {}

func (c *Conn) writeDirect(hdr, body []byte) (int, error) { return 0, nil }

func takeFD(net.Conn) (int, bool, error) { return -1, false, nil }

func refuseFD(int, []byte) {}
