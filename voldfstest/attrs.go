package voldfstest

import (
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs"
)

func testChmod(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "f", []byte("x"))
	require.NoError(t, f.Mkdir("d", 0o755))
	require.NoError(t, f.Symlink("f", "l"))
	for _, tc := range []struct {
		name string
		mode fs.FileMode
	}{
		{"f", 0o600},
		{"f", 0o7777 & fs.ModePerm},
		{"f", 0o644 | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky},
		{"d", 0o700},
		{"d", 0o755 | fs.ModeSticky},
	} {
		require.NoError(t, f.Chmod(tc.name, tc.mode))
		want := tc.mode
		if tc.name == "d" {
			want |= fs.ModeDir
		}
		if m := attr(t, f, tc.name).FileMode(); m != want {
			t.Fatalf("Chmod %s %v: got %v", tc.name, tc.mode, m)
		}
	}
	// Chmod follows a symlink.
	require.NoError(t, f.Chmod("l", 0o640))
	if m := attr(t, f, "f").FileMode(); m != 0o640 {
		t.Fatalf("Chmod via link: %v", m)
	}
	if m := attr(t, f, "l").FileMode(); m != fs.ModeSymlink|0o777 {
		t.Fatalf("link mode changed: %v", m)
	}
	wantErr(t, "Chmod missing", f.Chmod("missing", 0o644), fs.ErrNotExist, "path")
	// Chmod changes ctime only.
	before := attr(t, f, "f")
	time.Sleep(2 * time.Millisecond)
	require.NoError(t, f.Chmod("f", 0o600))
	after := attr(t, f, "f")
	if !after.Ctime.After(before.Ctime) || !after.Mtime.Equal(before.Mtime) {
		t.Fatalf("chmod: ctime %v -> %v, mtime %v -> %v", before.Ctime, after.Ctime, before.Mtime, after.Mtime)
	}
	// File.Chmod.
	file, err := f.Open("f")
	require.NoError(t, err)
	require.NoError(t, file.(*voldfs.File).Chmod(0o444))
	require.NoError(t, file.Close())
	if m := attr(t, f, "f").FileMode(); m != 0o444 {
		t.Fatalf("File.Chmod: %v", m)
	}
}

func testChown(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "f", []byte("x"))
	require.NoError(t, f.Symlink("f", "l"))
	a0 := attr(t, f, "f")
	require.NoError(t, f.Chown("f", 1234, 5678))
	if a := attr(t, f, "f"); a.Uid != 1234 || a.Gid != 5678 {
		t.Fatalf("uid %d gid %d", a.Uid, a.Gid)
	}
	require.NoError(t, f.Chown("f", -1, 42))
	if a := attr(t, f, "f"); a.Uid != 1234 || a.Gid != 42 {
		t.Fatalf("after -1: uid %d gid %d", a.Uid, a.Gid)
	}
	require.NoError(t, f.Chown("f", 7, -1))
	if a := attr(t, f, "f"); a.Uid != 7 || a.Gid != 42 {
		t.Fatalf("after -1 gid: uid %d gid %d", a.Uid, a.Gid)
	}
	require.NoError(t, f.Lchown("l", 99, 98))
	if a := attr(t, f, "l"); a.Uid != 99 || a.Gid != 98 {
		t.Fatalf("Lchown: uid %d gid %d", a.Uid, a.Gid)
	}
	if a := attr(t, f, "f"); a.Uid != 7 {
		t.Fatalf("Lchown followed the link")
	}
	require.NoError(t, f.Chown("l", 1, 2))
	if a := attr(t, f, "f"); a.Uid != 1 || a.Gid != 2 {
		t.Fatalf("Chown did not follow the link")
	}
	if a := attr(t, f, "f"); !a.Mtime.Equal(a0.Mtime) {
		t.Fatalf("chown changed mtime")
	}
	wantErr(t, "Chown missing", f.Chown("missing", 1, 1), fs.ErrNotExist, "path")
}

func testChtimes(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "f", []byte("x"))
	require.NoError(t, f.Mkdir("d", 0o755))
	at := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	mt := time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	for _, name := range []string{"f", "d"} {
		require.NoError(t, f.Chtimes(name, at, mt))
		a := attr(t, f, name)
		if !a.Atime.Equal(at) || !a.Mtime.Equal(mt) {
			t.Fatalf("%s: atime %v mtime %v", name, a.Atime, a.Mtime)
		}
		fi, err := f.Stat(name)
		require.NoError(t, err)
		if !fi.ModTime().Equal(mt) {
			t.Fatalf("%s: ModTime %v", name, fi.ModTime())
		}
	}
	// A zero time leaves that time alone.
	mt2 := mt.Add(time.Hour)
	require.NoError(t, f.Chtimes("f", time.Time{}, mt2))
	if a := attr(t, f, "f"); !a.Atime.Equal(at) || !a.Mtime.Equal(mt2) {
		t.Fatalf("zero atime: atime %v mtime %v", a.Atime, a.Mtime)
	}
	at2 := at.Add(time.Hour)
	require.NoError(t, f.Chtimes("f", at2, time.Time{}))
	if a := attr(t, f, "f"); !a.Atime.Equal(at2) || !a.Mtime.Equal(mt2) {
		t.Fatalf("zero mtime: atime %v mtime %v", a.Atime, a.Mtime)
	}
	wantErr(t, "Chtimes missing", f.Chtimes("missing", at, mt), fs.ErrNotExist, "path")
	// Times survive a reopen.
	g := e.reopen(t)
	if a := attr(t, g, "f"); !a.Atime.Equal(at2) || !a.Mtime.Equal(mt2) {
		t.Fatalf("reopened: atime %v mtime %v", a.Atime, a.Mtime)
	}
}

func testTimes(t *testing.T, e *env) {
	f := e.fs
	t0 := time.Now()
	writeFile(t, f, "f", []byte("x"))
	a0 := attr(t, f, "f")
	if a0.Mtime.Before(t0.Add(-time.Second)) || a0.Btime.IsZero() || a0.Mtime.After(time.Now().Add(time.Second)) {
		t.Fatalf("new file times: %+v", a0)
	}
	d0 := attr(t, f, ".")
	step := func() { time.Sleep(2 * time.Millisecond) }

	step()
	file, err := f.OpenFile("f", os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = file.Write([]byte("y"))
	require.NoError(t, err)
	require.NoError(t, file.Close())
	a1 := attr(t, f, "f")
	if !a1.Mtime.After(a0.Mtime) || !a1.Ctime.After(a0.Ctime) || !a1.Btime.Equal(a0.Btime) {
		t.Fatalf("write: mtime %v -> %v, ctime %v -> %v", a0.Mtime, a1.Mtime, a0.Ctime, a1.Ctime)
	}
	step()
	require.NoError(t, f.Chmod("f", 0o600))
	a2 := attr(t, f, "f")
	if !a2.Mtime.Equal(a1.Mtime) || !a2.Ctime.After(a1.Ctime) {
		t.Fatalf("chmod: mtime %v -> %v, ctime %v -> %v", a1.Mtime, a2.Mtime, a1.Ctime, a2.Ctime)
	}
	step()
	require.NoError(t, f.Truncate("f", 100))
	a3 := attr(t, f, "f")
	if !a3.Mtime.After(a2.Mtime) || !a3.Ctime.After(a2.Ctime) {
		t.Fatalf("truncate: mtime %v -> %v", a2.Mtime, a3.Mtime)
	}
	// Creating and removing entries changes the directory's mtime.
	d1 := attr(t, f, ".")
	if !d1.Mtime.After(d0.Mtime) && !d1.Mtime.Equal(d0.Mtime) {
		t.Fatalf("root mtime went back")
	}
	step()
	writeFile(t, f, "g", nil)
	d2 := attr(t, f, ".")
	if !d2.Mtime.After(d1.Mtime) || !d2.Ctime.After(d1.Ctime) {
		t.Fatalf("create: dir mtime %v -> %v", d1.Mtime, d2.Mtime)
	}
	step()
	require.NoError(t, f.Remove("g"))
	if d3 := attr(t, f, "."); !d3.Mtime.After(d2.Mtime) {
		t.Fatalf("remove: dir mtime %v -> %v", d2.Mtime, d3.Mtime)
	}
	// Link changes the file's ctime, not its mtime.
	step()
	require.NoError(t, f.Link("f", "f2"))
	a4 := attr(t, f, "f")
	if !a4.Mtime.Equal(a3.Mtime) || !a4.Ctime.After(a3.Ctime) {
		t.Fatalf("link: mtime %v -> %v, ctime %v -> %v", a3.Mtime, a4.Mtime, a3.Ctime, a4.Ctime)
	}
	// Chtimes sets exactly.
	at := time.Unix(1e9, 123)
	require.NoError(t, f.Chtimes("f", at, at))
	if a := attr(t, f, "f"); !a.Atime.Equal(at) || !a.Mtime.Equal(at) {
		t.Fatalf("chtimes: %v %v", a.Atime, a.Mtime)
	}
}

func testAttr(t *testing.T, e *env) {
	f := e.fs
	require.NoError(t, f.MkdirAll("a/b", 0o755))
	require.NoError(t, f.Mkdir("a/c", 0o755))
	writeFile(t, f, "a/f", []byte("x"))
	require.NoError(t, f.Symlink("f", "a/l"))
	inos := map[uint64]string{}
	for _, p := range []string{".", "a", "a/b", "a/c", "a/f", "a/l"} {
		a := attr(t, f, p)
		if prev, dup := inos[a.Ino]; dup {
			t.Fatalf("ino %d shared by %s and %s", a.Ino, prev, p)
		}
		inos[a.Ino] = p
		if a.Blksize != uint32(f.BlockSize()) {
			t.Fatalf("%s: blksize %d", p, a.Blksize)
		}
		if a.FileMode() != (a.FileMode().Type() | a.FileMode().Perm()) {
			t.Fatalf("%s: odd mode %v", p, a.FileMode())
		}
	}
	if a := attr(t, f, "."); a.Ino != voldfs.RootIno || a.Nlink != 3 {
		t.Fatalf("root: ino %d nlink %d", a.Ino, a.Nlink)
	}
	for p, want := range map[string]uint32{"a": 4, "a/b": 2, "a/f": 1, "a/l": 1} {
		if a := attr(t, f, p); a.Nlink != want {
			t.Fatalf("%s: nlink %d, want %d", p, a.Nlink, want)
		}
	}
	// GetAttr and Lookup agree with Lstat.
	fa := attr(t, f, "a/f")
	ga, err := f.Inodes().GetAttr(t.Context(), fa.Ino)
	require.NoError(t, err)
	la, err := f.Inodes().Lookup(t.Context(), attr(t, f, "a").Ino, "f")
	require.NoError(t, err)
	if ga.Ino != fa.Ino || la.Ino != fa.Ino || ga.Size != 1 {
		t.Fatalf("GetAttr %+v Lookup %+v", ga, la)
	}
	// FileInfo and Attr agree.
	fi, err := f.Stat("a/f")
	require.NoError(t, err)
	if fi.Mode() != fa.FileMode() || fi.Size() != int64(fa.Size) || !fi.ModTime().Equal(fa.Mtime) || fi.Name() != "f" {
		t.Fatalf("FileInfo %v vs Attr %+v", fi, fa)
	}
	// Ino stable across renames, within and across directories.
	require.NoError(t, f.Rename("a/f", "a/g"))
	require.NoError(t, f.Rename("a/g", "a/b/h"))
	require.NoError(t, f.Rename("a/b", "b2"))
	if a := attr(t, f, "b2/h"); a.Ino != fa.Ino {
		t.Fatalf("ino after rename %d, want %d", a.Ino, fa.Ino)
	}
	if a := attr(t, f, "a"); a.Nlink != 3 {
		t.Fatalf("a nlink %d after moving b out", a.Nlink)
	}
	// Open files report the same ino.
	file, err := f.Open("b2/h")
	require.NoError(t, err)
	fi, err = file.Stat()
	require.NoError(t, err)
	if fi.Sys().(*voldfs.Attr).Ino != fa.Ino {
		t.Fatalf("File.Stat ino")
	}
	require.NoError(t, file.Close())
	// A removed and re-created name gets a new ino.
	require.NoError(t, f.Remove("b2/h"))
	writeFile(t, f, "b2/h", nil)
	if a := attr(t, f, "b2/h"); a.Ino == fa.Ino {
		t.Fatalf("re-created file reused ino %d", a.Ino)
	}
	// Blocks reflects allocation.
	writeFile(t, f, "big", pattern(10*f.BlockSize(), 1))
	if a := attr(t, f, "big"); a.Blocks < uint64(10*f.BlockSize()/512) {
		t.Fatalf("blocks %d", a.Blocks)
	}
	checkTree(t, f, ".")
}
