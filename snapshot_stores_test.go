package voldfs_test

import (
	"testing"

	"github.com/voldfs/voldfs/internal/snaptest"
)

// TestSnapshotsBolt runs the store modules' snapshot scenario on bolt.
func TestSnapshotsBolt(t *testing.T) { snaptest.Run(t, newBoltStore) }
