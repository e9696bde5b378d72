//go:build !race

package interop

// raceEnabled: see race_test.go.
const raceEnabled = false
