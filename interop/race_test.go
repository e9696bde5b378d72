//go:build race

package interop

// raceEnabled: the test binary was built with -race, so the echo server is
// built with it too and the clients' traffic is checked for data races.
const raceEnabled = true
