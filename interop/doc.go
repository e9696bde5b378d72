// Package interop holds no library code: its tests run WebSocket clients that
// nobody on this project wrote — headless Chromium's WebSocket, Node's ws
// package and Python's websockets — against the echo example
// (examples/echo) in both engine modes, reactor and blocking.
//
// Each client is a script in this directory (chromium.mjs, node_ws_test.mjs,
// python_websockets.py) that prints one JSON result per case and exits
// non-zero on any mismatch; interop_test.go builds the echo server, starts it
// on a free loopback port, runs the scripts and checks their exit status and
// that every required case was run and passed.
//
// go test's result cache does not see the echo server's sources or the
// scripts (they are built and run as separate processes): after changing the
// engine, run with -count=1, as scripts/test.sh always does.
//
// deflatewindow_test.go checks every permessage-deflate window size (8-15)
// both ways with the same two libraries: our Go client against their echo
// servers (window_peer.mjs, window_peer.py: they set our compressor's
// client_max_window_bits), and their clients asking our server for
// server_max_window_bits.
//
// The clients' dependencies are installed by scripts/install-deps.sh (Debian
// chromium and python3-websockets, `npm ci` here for ws and playwright-core).
// When one is missing the test skips with a loud message, except under CI=true,
// where it fails.
package interop
