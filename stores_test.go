package voldfs

import (
	"path/filepath"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/testserver"
)

// The filesystem suite on every store in this module. Stores whose every
// write is an fsync or a network round trip get a smaller big directory.

func TestFSMemory(t *testing.T) {
	runFSSuite(t, newMemoryStore)
}

func newMemoryStore(t *testing.T) backend.Store {
	s := memory.New()
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFSBolt(t *testing.T) {
	// About 5 ms per create in one directory (each commit is a bbolt
	// write transaction, and block puts wait for a batch): keep it small.
	runFSSuiteWith(t, newBoltStore, suiteConfig{bigDir: 5_000})
}

func newBoltStore(t *testing.T) backend.Store {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "fs.db"), &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFSMemcached(t *testing.T) {
	runFSSuiteWith(t, newMemcachedStore, suiteConfig{bigDir: 20_000})
}

// newMemcachedStore starts a fresh memcached for each subtest, so that every
// subtest begins with an empty store. Without a memcached binary the test is
// skipped locally and fails in CI (see internal/testserver).
func newMemcachedStore(t *testing.T) backend.Store {
	s, err := memcache.New(testserver.Memcached(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestFSSplit runs the suite on a split filesystem: inodes in the memory
// store, write-once blocks in a real memcached (Options.Blocks).
func TestFSSplit(t *testing.T) {
	runFSSuiteWith(t, newMemoryStore, suiteConfig{bigDir: 20_000, blocks: newMemcachedStore})
}
