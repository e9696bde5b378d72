// Package hostile is the hostile-input suite: its test starts the real
// "wsgate serve" binary as a child process and attacks it the way an
// unauthenticated peer on the internet could (huge headers, idle and slow
// connections, /echo abuse, the descriptor limit, bad tokens, invalid
// frames, floods). Every case asserts the answer (HTTP status or close
// code and reason), that the gateway stays healthy afterwards (a new
// client still gets a push through the HTTP API) and that its resident
// memory, read from /proc, stays under the case's bound. It also records
// the slowest /healthz answer during the case, and prints a table of all
// of it.
//
// Run it alone with
//
//	go test -v -run TestHostile ./internal/hostile
//
// WSGATE_HOSTILE_REPORT=file also writes the table to file.
package hostile
