package voldfs

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

const cloneBS = 4096 // 128 entries per index node: 300 blocks make a tree of height 2

func cloneFS(t *testing.T) (*FS, *memory.Store) {
	t.Helper()
	s := memory.New()
	f, err := Format(context.Background(), s, &Options{BlockSize: cloneBS})
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f, s
}

// storeKeys returns the keys of f's store under a kind prefix ("b/", "r/").
func fsKeys(t *testing.T, f *FS, kind string) []string {
	t.Helper()
	f.c.waitFrees()
	var keys []string
	require.NoError(t, backend.List(context.Background(), f.c.inodes, f.c.prefix+kind, func(k string) error {
		keys = append(keys, strings.TrimPrefix(k, f.c.prefix))
		return nil
	}))
	return keys
}

// fileBlocks returns the refs of every block of a file's tree.
func fileBlocks(t *testing.T, f *FS, name string) map[blockRef]bool {
	t.Helper()
	ci, err := f.c.getInode(context.Background(), attr(t, f, name).Ino, 0)
	require.NoError(t, err)
	refs := map[blockRef]bool{}
	require.NoError(t, f.c.treeRefs(context.Background(), ci.n, func(r blockRef, _ byte) error { refs[r] = true; return nil }))
	return refs
}

func cloneFsck(t *testing.T, f *FS) *FsckReport {
	t.Helper()
	r, err := f.Fsck(context.Background(), FsckOptions{Grace: -1})
	require.NoError(t, err)
	assert.Empty(t, r.Problems)
	assert.Zero(t, r.GarbageBlocks, "garbage blocks")
	return r
}

func TestCloneSharesBlocks(t *testing.T) {
	f, _ := cloneFS(t)
	data := pattern(300*cloneBS+123, 1)
	writeFile(t, f, "a", data)
	before := len(fsKeys(t, f, "b/"))
	require.NoError(t, f.Clone("a", "b"))
	wantContent(t, f, "b", data)
	assert.Equal(t, before, len(fsKeys(t, f, "b/")), "a clone writes no block")
	assert.Equal(t, []string{"r/" + rootOf(t, f, "a").String()}, fsKeys(t, f, "r/"), "one count: the shared root")
	assert.Equal(t, fileBlocks(t, f, "a"), fileBlocks(t, f, "b"))
	cloneFsck(t, f)

	// Writing the copy changes the copy only and copies only its path.
	h, err := f.OpenFile("b", os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = h.WriteAt([]byte("changed"), 200*cloneBS+5)
	require.NoError(t, err)
	require.NoError(t, h.Close())
	want := bytes.Clone(data)
	copy(want[200*cloneBS+5:], "changed")
	wantContent(t, f, "a", data)
	wantContent(t, f, "b", want)
	a, b := fileBlocks(t, f, "a"), fileBlocks(t, f, "b")
	common := 0
	for r := range a {
		if b[r] {
			common++
		}
	}
	assert.Equal(t, len(a)-3, common, "every block but the written path (root, index node, data block) is shared")
	assert.Equal(t, before+3, len(fsKeys(t, f, "b/")), "the write stored a data block and two index nodes")
	cloneFsck(t, f)

	// Deleting either side keeps the other whole; deleting both leaves nothing.
	require.NoError(t, f.Remove("a"))
	wantContent(t, f, "b", want)
	cloneFsck(t, f)
	assert.Empty(t, fsKeys(t, f, "r/"), "no block is shared any more")
	require.NoError(t, f.Remove("b"))
	r := cloneFsck(t, f)
	assert.Zero(t, r.Blocks)
	assert.Empty(t, fsKeys(t, f, "b/"))
	assert.Empty(t, fsKeys(t, f, "r/"))
}

// rootOf returns the root of a file's tree.
func rootOf(t *testing.T, f *FS, name string) blockRef {
	t.Helper()
	ci, err := f.c.getInode(context.Background(), attr(t, f, name).Ino, 0)
	require.NoError(t, err)
	return ci.n.root
}
