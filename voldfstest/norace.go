//go:build !race

package voldfstest

const raceEnabled = false
