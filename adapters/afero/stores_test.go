package voldafero_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs"
	voldafero "github.com/voldfs/voldfs/adapters/afero"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/internal/testserver"
)

// TestStores runs a workload through afero's helpers on a bolt file and on a
// real memcached server (no multi-key commits: namespace changes go through
// backend/txn): goroutines write files in a shared directory tree and rename
// them, a second client walks the result, and testing/fstest checks it
// through afero.NewIOFS.
func TestStores(t *testing.T) {
	t.Run("bolt", func(t *testing.T) {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "fs.db"), nil)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		testStore(t, s)
	})
	t.Run("memcached", func(t *testing.T) {
		s, err := memcache.New(testserver.Memcached(t))
		require.NoError(t, err)
		testStore(t, s)
	})
}

func testStore(t *testing.T, store backend.Store) {
	ctx := context.Background()
	f, err := voldfs.Format(ctx, store, nil)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	a := voldafero.New(f)

	const workers, files = 4, 10
	var wg sync.WaitGroup
	var want []string
	for w := range workers {
		for i := range files {
			want = append(want, fmt.Sprintf("/tree/d%d/final-%d-%d", i%3, w, i))
		}
		wg.Go(func() {
			for i := range files {
				dir := fmt.Sprintf("/tree/d%d", i%3)
				assert.NoError(t, a.MkdirAll(dir, 0o755))
				tmp, err := afero.TempFile(a, dir, "tmp-*")
				if !assert.NoError(t, err) {
					return
				}
				_, err = tmp.WriteString(fmt.Sprintf("worker %d file %d\n", w, i))
				assert.NoError(t, err)
				assert.NoError(t, tmp.Close())
				assert.NoError(t, a.Rename(tmp.Name(), fmt.Sprintf("%s/final-%d-%d", dir, w, i)))
			}
		})
	}
	wg.Wait()

	other, err := voldfs.Open(ctx, store, nil)
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	b := voldafero.New(other)
	var got []string
	require.NoError(t, afero.Walk(b, "/tree", func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			got = append(got, p)
		}
		return err
	}))
	sort.Strings(want)
	assert.Equal(t, want, got)
	data, err := afero.ReadFile(b, "/tree/d1/final-2-4")
	require.NoError(t, err)
	assert.Equal(t, "worker 2 file 4\n", string(data))
	require.NoError(t, fstest.TestFS(afero.NewIOFS(b), "tree/d0/final-0-0", "tree/d2/final-3-8"))
}
