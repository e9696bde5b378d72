// Package faulttest holds the fault test of sequenced delivery (issue 8):
// real gateway nodes (the wsgate binary, built once) on one real
// redis-server, real Go SDK clients, sequenced user pushes at a steady rate
// through the HTTP push API, while nodes are killed, Redis is restarted,
// restored from a stale snapshot or brought back empty, and clients lose
// their network for a while. Every push the API accepted must reach every
// client of its user exactly once and in order, or the client must have
// been told (OnPushesLost) in the gap where it is missing.
//
// The package has no code outside its tests; run it with
//
//	go test -race ./internal/faulttest -v
//
// It skips loudly when redis-server is missing, and fails in CI (CI=true).
package faulttest
