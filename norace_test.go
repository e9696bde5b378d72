//go:build !race

package wsgate_test

const raceEnabled = false
