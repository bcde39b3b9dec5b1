//go:build !race

package voldfs

const raceEnabled = false
