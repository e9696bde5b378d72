//go:build race

package faulttest

// raceEnabled: the test runs under -race, so the nodes are built with it too.
const raceEnabled = true
