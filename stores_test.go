package voldfs_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/testserver"
	"github.com/voldfs/voldfs/voldfstest"
)

// The filesystem suite (package voldfstest) on every store in this module.
// Stores whose every write is an fsync or a network round trip get a smaller
// big directory.

func TestFSMemory(t *testing.T) {
	voldfstest.Run(t, voldfstest.Config{NewStore: newMemoryStore})
}

func TestFSBolt(t *testing.T) {
	// About 5 ms per create in one directory (each commit is a bbolt
	// write transaction, and block puts wait for a batch): keep it small.
	voldfstest.Run(t, voldfstest.Config{NewStore: newBoltStore, BigDir: 5_000})
}

func TestFSMemcached(t *testing.T) {
	voldfstest.Run(t, voldfstest.Config{NewStore: newMemcachedStore, BigDir: 20_000})
}

// TestFSSplit runs the suite on a split filesystem: inodes in the memory
// store, write-once blocks in a real memcached (Options.Blocks).
func TestFSSplit(t *testing.T) {
	voldfstest.Run(t, voldfstest.Config{NewStore: newMemoryStore, NewBlocks: newMemcachedStore, BigDir: 20_000})
}

func newMemoryStore(t *testing.T) backend.Store {
	s := memory.New()
	t.Cleanup(func() { s.Close() })
	return s
}

func newBoltStore(t *testing.T) backend.Store {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "fs.db"), &bolt.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// newMemcachedStore starts a fresh memcached for each call, so that every
// subtest begins with an empty store. Without a memcached binary the test is
// skipped locally and fails in CI (see internal/testserver).
func newMemcachedStore(t *testing.T) backend.Store {
	s, err := memcache.New(testserver.Memcached(t))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}
