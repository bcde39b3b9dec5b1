package voldfs

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend/memory"
)

// TestCreateInBusyDirectory (issue #12, item 6): clients create files in
// one large shared directory (its trie spans many blocks) while the others
// do too, each commit freeing trie nodes the others have cached. A create
// that meets a freed node reads the directory again: none fails.
func TestCreateInBusyDirectory(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	f0, err := Format(ctx, s, &Options{BlockSize: 4096})
	require.NoError(t, err)
	require.NoError(t, f0.Mkdir("big", 0o755))
	for i := range 400 {
		require.NoError(t, f0.WriteFile(fmt.Sprintf("big/pre-%03d-%s", i, strings.Repeat("x", 40)), nil, 0o644))
	}
	clients := make([]*FS, 4)
	for i := range clients {
		clients[i], err = Open(ctx, s, nil) // default attribute window: cached directories
		require.NoError(t, err)
		_, err := clients[i].ReadDir("big")
		require.NoError(t, err)
	}
	n := 50
	if testing.Short() {
		n = 20
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(clients)*n)
	for i, f := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range n {
				if err := f.WriteFile(fmt.Sprintf("big/c%d-%03d", i, k), []byte("x"), 0o644); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ents, err := f0.ReadDir("big")
	require.NoError(t, err)
	assert.Len(t, ents, 400+len(clients)*n)
	for _, f := range clients {
		f.WaitFrees()
	}
	wantFsckClean(t, f0)
}

// TestRewriteLeavesNoGarbage (issue #12, item 6): rewriting one block of a
// file ten times through one open file (write-behind uploads each full
// block) leaves no block the file does not reference.
func TestRewriteLeavesNoGarbage(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	const bs = 4096
	f, err := Format(ctx, s, &Options{BlockSize: bs})
	require.NoError(t, err)
	w, err := f.Create("f")
	require.NoError(t, err)
	for i := range 10 {
		_, err := w.WriteAt(bytes.Repeat([]byte{byte('a' + i)}, bs), 0)
		require.NoError(t, err)
		_, err = w.WriteAt(bytes.Repeat([]byte{byte('a' + i)}, bs), bs)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	f.WaitFrees()
	blocks := 0
	require.NoError(t, s.List(ctx, "voldfs/b/", func(string) error { blocks++; return nil }))
	r, err := f.Fsck(ctx, FsckOptions{Grace: -1})
	require.NoError(t, err)
	assert.Equal(t, r.Blocks, blocks, "blocks in the store against blocks referenced")
	assert.Zero(t, r.GarbageBlocks)
	got, err := f.ReadFile("f")
	require.NoError(t, err)
	assert.Equal(t, bytes.Repeat([]byte{'j'}, 2*bs), got)
}
