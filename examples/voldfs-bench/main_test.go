package main

import (
	"testing"

	"github.com/voldfs/voldfs/internal/bench"
)

// TestRunSmall runs every row of the benchmark program at a tiny size, so
// the program cannot rot: each row checks what it read back.
func TestRunSmall(t *testing.T) {
	cfg := bench.Config{SeqBytes: 2 << 20, Files: 50, DirEnts: 200, RandReads: 50}
	if err := run("mem:", cfg, 4<<20); err != nil {
		t.Fatal(err)
	}
	if err := run("bogus:", cfg, 0); err == nil {
		t.Fatal("an unknown store URL was accepted")
	}
}
