package voldfstest

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs"
)

// testWorkload is a compact mixed workload:
// inline, one-block and multi-block files, an overwrite in the middle,
// renames within and across directories, a directory move, a hard link,
// a truncate, a remove and a symlink. A second client then checks every
// byte and the file list, and Fsck finds no problem.
func testWorkload(t *testing.T, e *env) {
	f := e.fs
	bs := f.BlockSize()
	want := map[string][]byte{}
	wpattern := func(n, seed int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + seed)
		}
		return b
	}
	require.NoError(t, f.MkdirAll("a/b/c", 0o755))
	require.NoError(t, f.Mkdir("d", 0o700))
	for i, size := range []int{0, 100, 5000, bs, 3*bs + 17} {
		name := fmt.Sprintf("a/b/f%d", i)
		want[name] = wpattern(size, i)
		require.NoError(t, f.WriteFile(name, want[name], 0o644))
	}
	// Overwrite the middle of the multi-block file.
	w, err := f.OpenFile("a/b/f4", os.O_RDWR, 0)
	require.NoError(t, err)
	patch := wpattern(bs, 99)
	_, err = w.WriteAt(patch, int64(bs/2))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	copy(want["a/b/f4"][bs/2:], patch)
	// Renames within and across directories, a link, a truncate, a remove.
	require.NoError(t, f.Rename("a/b/f1", "a/b/g1"))
	want["a/b/g1"] = want["a/b/f1"]
	delete(want, "a/b/f1")
	require.NoError(t, f.Rename("a/b/f2", "d/f2"))
	want["d/f2"] = want["a/b/f2"]
	delete(want, "a/b/f2")
	require.NoError(t, f.Rename("a/b/c", "d/c"))
	require.NoError(t, f.Link("a/b/f3", "d/f3-link"))
	want["d/f3-link"] = want["a/b/f3"]
	require.NoError(t, f.Truncate("a/b/f4", int64(bs+5)))
	want["a/b/f4"] = want["a/b/f4"][:bs+5]
	require.NoError(t, f.Remove("a/b/f0"))
	delete(want, "a/b/f0")
	require.NoError(t, f.Symlink("../a/b/g1", "d/sym"))

	g := e.reopen(t)
	for name, data := range want {
		wantContent(t, g, name, data)
	}
	wantContent(t, g, "d/sym", want["a/b/g1"])
	var files []string
	require.NoError(t, fs.WalkDir(g, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return err
	}))
	wantFiles := slices.Sorted(maps.Keys(want))
	assert.Equal(t, wantFiles, files, "second client's files")
	assert.Equal(t, uint32(2), attr(t, g, "d/f3-link").Nlink, "hard-linked file's nlink")
	r, err := g.Fsck(context.Background(), voldfs.FsckOptions{})
	require.NoError(t, err)
	assert.True(t, r.OK(), "fsck: %v", r.Problems)
}
