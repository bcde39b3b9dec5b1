package voldfs

// The two checks of the filesystem suite that need the library's internals,
// run on the stores of stores_test.go. The rest of the suite is the exported
// package voldfstest, which uses the exported API only.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/testserver"
)

// internalStores are the stores of stores_test.go: each entry returns a
// fresh main store and, for the split one, a blocks store.
var internalStores = []struct {
	name string
	new  func(t *testing.T) (s, blocks backend.Store)
}{
	{"Memory", func(t *testing.T) (backend.Store, backend.Store) { return internalMemory(t), nil }},
	{"Bolt", func(t *testing.T) (backend.Store, backend.Store) {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "fs.db"), &bolt.Options{NoSync: true})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s, nil
	}},
	{"Memcached", func(t *testing.T) (backend.Store, backend.Store) { return internalMemcached(t), nil }},
	{"Split", func(t *testing.T) (backend.Store, backend.Store) { return internalMemory(t), internalMemcached(t) }},
}

func internalMemory(t *testing.T) backend.Store {
	s := memory.New()
	t.Cleanup(func() { s.Close() })
	return s
}

func internalMemcached(t *testing.T) backend.Store {
	s, err := memcache.New(testserver.Memcached(t))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestFormatVersion checks that a superblock of an unknown format version
// (written by hand with the encoder) is refused by Open.
func TestFormatVersion(t *testing.T) {
	ctx := context.Background()
	for _, st := range internalStores {
		t.Run(st.name, func(t *testing.T) {
			s, blocks := st.new(t)
			o := &Options{BlockSize: 4096, Blocks: blocks}
			f, err := Format(ctx, s, o)
			require.NoError(t, err)
			sb := f.c.sb
			sb.version = formatVersion + 1
			rewrite(t, s, f.c.superKey(), func([]byte) []byte { return encodeSuperblock(&sb) })
			_, err = Open(ctx, s, &Options{Blocks: blocks})
			require.ErrorIs(t, err, ErrFormatVersion, "Open of format version %d", sb.version)
		})
	}
}

// TestSparseHugeCost bounds what a huge sparse file costs: each written
// block costs its data block and at most one index node per level of the
// index tree, in block puts and in block keys (where the store can list),
// whatever the size of the holes. (The voldfstest SparseHuge subtests check
// its content, holes and freeing; the tree height is not API.)
func TestSparseHugeCost(t *testing.T) {
	ctx := context.Background()
	for _, st := range internalStores {
		for _, bs := range []int{4096, 0} {
			t.Run(fmt.Sprintf("%s/%d", st.name, bs), func(t *testing.T) {
				s, blocks := st.new(t)
				f, err := Format(ctx, s, &Options{BlockSize: bs, Blocks: blocks})
				require.NoError(t, err)
				bsz := int64(f.BlockSize())
				before := f.Stats()
				file, err := f.Create("huge")
				require.NoError(t, err)
				offs := []int64{0, 1 << 40, 1<<40 + bsz + 3, 1<<41 - 5}
				for i, off := range offs {
					_, err := file.WriteAt([]byte(fmt.Sprintf("rec%d", i)), off)
					require.NoError(t, err)
				}
				require.NoError(t, file.Close())
				size := offs[len(offs)-1] + 4
				height := int64(f.c.heightFor(uint64((size + bsz - 1) / bsz)))
				limit := int64(len(offs)) * (1 + height)
				puts := f.Stats().BlockPuts - before.BlockPuts
				assert.LessOrEqual(t, puts, limit, "block puts for %d written blocks", len(offs))
				if blocks == nil {
					blocks = s
				}
				f.Flush() // replaced blocks are deleted in the background
				n := int64(0)
				err = backend.List(ctx, blocks, f.c.prefix+"b/", func(string) error { n++; return nil })
				if !errors.Is(err, errors.ErrUnsupported) {
					require.NoError(t, err)
					assert.LessOrEqual(t, n, limit, "block keys in the store")
				}
			})
		}
	}
}

// rewrite replaces the value of key with fn(value).
func rewrite(t *testing.T, s backend.Store, key string, fn func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	v, ver, err := s.Get(ctx, key)
	require.NoError(t, err)
	_, err = s.CAS(ctx, key, ver, fn(v))
	require.NoError(t, err, "rewrite %s", key)
}
