//go:build race

package voldfs

// raceEnabled reports whether the tests run under the race detector, which
// makes the biggest cases scale down.
const raceEnabled = true
