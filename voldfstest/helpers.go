package voldfstest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
)

// prefix is the key prefix of the suite's filesystems (the default name),
// under which voldfs documents its key layout.
const prefix = voldfs.DefaultName + "/"

// inodeKey is the key of inode ino, as voldfs's package documentation
// lays it out ("i/<ino hex>").
func inodeKey(ino uint64) string { return prefix + "i/" + strconv.FormatUint(ino, 16) }

// inlineMax is the largest file voldfs keeps inside its inode (4 KiB, as
// its package documentation states): the suite writes files on both sides.
const inlineMax = 4096

// wantErr checks that err matches target with errors.Is and, unless typ is
// "", that it is an *fs.PathError ("path") or an *os.LinkError ("link").
func wantErr(t *testing.T, what string, err, target error, typ string) {
	t.Helper()
	require.Error(t, err, "%s: want %v", what, target)
	require.ErrorIs(t, err, target, what)
	switch typ {
	case "path":
		var pe *fs.PathError
		require.ErrorAs(t, err, &pe, what)
	case "link":
		var le *os.LinkError
		require.ErrorAs(t, err, &le, what)
	}
}

func writeFile(t *testing.T, f *voldfs.FS, name string, data []byte) {
	t.Helper()
	require.NoError(t, f.WriteFile(name, data, 0o644), "WriteFile %s", name)
}

func readFile(t *testing.T, f *voldfs.FS, name string) []byte {
	t.Helper()
	b, err := f.ReadFile(name)
	require.NoError(t, err, "ReadFile %s", name)
	return b
}

// wantContent checks the content of file name. It does not use
// require.Equal, whose diff of megabytes of data helps nobody.
func wantContent(t *testing.T, f *voldfs.FS, name string, want []byte) {
	t.Helper()
	got := readFile(t, f, name)
	if string(got) != string(want) {
		t.Fatalf("%s: got %d bytes %q..., want %d bytes %q...", name, len(got), trunc(got), len(want), trunc(want))
	}
}

func trunc(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// attr returns the Attr of name (not following a final symlink).
func attr(t *testing.T, f *voldfs.FS, name string) *voldfs.Attr {
	t.Helper()
	fi, err := f.Lstat(name)
	require.NoError(t, err, "Lstat %s", name)
	a, ok := fi.Sys().(*voldfs.Attr)
	require.True(t, ok, "Lstat %s: Sys is %T, want *voldfs.Attr", name, fi.Sys())
	return a
}

func notExist(t *testing.T, f *voldfs.FS, name string) {
	t.Helper()
	_, err := f.Lstat(name)
	wantErr(t, "Lstat "+name, err, fs.ErrNotExist, "path")
}

// pattern returns n bytes that differ at every offset modulo a large prime,
// so misplaced blocks show.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i/4093) ^ seed
	}
	return b
}

func names(ents []fs.DirEntry) []string {
	out := make([]string, len(ents))
	for i, e := range ents {
		out[i] = e.Name()
	}
	return out
}

// checkTree walks the tree from dir and checks, for every directory, that
// nlink is 2 + subdirectories and that no directory is reached twice (no
// cycle, no double link). Then Fsck, which reads every directory's ".." as
// its inode records it (io/fs paths have no ".."), must find no problem.
func checkTree(t *testing.T, f *voldfs.FS, dir string) {
	t.Helper()
	seen := map[uint64]string{}
	var walk func(p string, depth int)
	walk = func(p string, depth int) {
		if depth > 64 {
			t.Fatalf("%s: tree deeper than 64: a cycle?", p)
		}
		a := attr(t, f, p)
		if prev, ok := seen[a.Ino]; ok {
			t.Fatalf("directory ino %d reached as %s and %s", a.Ino, prev, p)
		}
		seen[a.Ino] = p
		ents, err := f.ReadDir(p)
		require.NoError(t, err, "ReadDir %s", p)
		subdirs := 0
		for _, de := range ents {
			if de.IsDir() {
				subdirs++
				walk(path.Join(p, de.Name()), depth+1)
			}
		}
		require.Equal(t, uint32(2+subdirs), a.Nlink, "%s: nlink", p)
	}
	walk(dir, 0)
	r, err := f.Fsck(context.Background(), voldfs.FsckOptions{})
	require.NoError(t, err, "Fsck")
	require.True(t, r.OK(), "Fsck: %v", r.Problems)
}

// parentIno returns the ".." of directory p as its inode records it, read
// fresh through strict (io/fs paths have no "..", but symlink targets
// resolve ".." through the directory's parent): it adds a symlink to ".."
// in p through f, stats it through strict and removes it.
func parentIno(t *testing.T, f, strict *voldfs.FS, p string) uint64 {
	t.Helper()
	up := path.Join(p, ".voldfstest-up")
	require.NoError(t, f.Symlink("..", up))
	fi, err := strict.Stat(up)
	require.NoError(t, err)
	require.NoError(t, f.Remove(up))
	return fi.Sys().(*voldfs.Attr).Ino
}

// blockKeys counts the block keys of the filesystem, when its blocks store
// can list.
func blockKeys(t *testing.T, e *env) (int, bool) {
	t.Helper()
	e.fs.WaitFrees() // replaced blocks are deleted in the background
	n := 0
	err := backend.List(context.Background(), e.blockStore(), prefix+"b/", func(string) error { n++; return nil })
	if errors.Is(err, errors.ErrUnsupported) {
		return 0, false
	}
	require.NoError(t, err)
	return n, true
}

// errgroupLite is a minimal errgroup (first error wins).
type errgroupLite struct {
	wg   sync.WaitGroup
	once sync.Once
	err  error
}

func (g *errgroupLite) Go(fn func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := fn(); err != nil {
			g.once.Do(func() { g.err = err })
		}
	}()
}

func (g *errgroupLite) Wait() error { g.wg.Wait(); return g.err }
