//go:build race

package voldfstest

// raceEnabled reports whether the suite runs under the race detector, which
// makes the biggest cases scale down.
const raceEnabled = true
