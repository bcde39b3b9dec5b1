package voldfs

import (
	"context"
	"io/fs"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMknod(t *testing.T) {
	ctx := context.Background()
	f, _ := newMemFS(t)
	cases := []struct {
		name string
		mode fs.FileMode
		dev  uint64
		unix uint32
		typ  fs.FileMode
	}{
		{"fifo", fs.ModeNamedPipe | 0o640, 0, sIFIFO | 0o640, fs.ModeNamedPipe},
		{"sock", fs.ModeSocket | 0o600, 0, sIFSOCK | 0o600, fs.ModeSocket},
		{"chr", fs.ModeDevice | fs.ModeCharDevice | 0o666, 0x0501, sIFCHR | 0o666, fs.ModeDevice | fs.ModeCharDevice},
		{"blk", fs.ModeDevice | 0o660, 0x0801, sIFBLK | 0o660, fs.ModeDevice},
		{"reg", 0o644, 0, sIFREG | 0o644, 0},
	}
	for _, tc := range cases {
		require.NoError(t, f.Mknod(tc.name, tc.mode, tc.dev), tc.name)
	}
	isErrno(t, f.Mknod("fifo", fs.ModeNamedPipe, 0), syscall.EEXIST)
	isErrno(t, f.Mknod("d", fs.ModeDir|0o755, 0), syscall.EINVAL)
	isErrno(t, f.Mknod("x", fs.ModeIrregular, 0), syscall.EINVAL)

	check := func(g *FS, name string, tc int) {
		t.Helper()
		fi, err := g.Lstat(name)
		require.NoError(t, err)
		a := fi.Sys().(*Attr)
		assert.Equal(t, cases[tc].mode, fi.Mode(), name)
		assert.Equal(t, cases[tc].unix, a.Mode, name)
		assert.Equal(t, cases[tc].dev, a.Rdev, name)
		assert.Zero(t, a.Size, name)
	}
	for i, tc := range cases {
		check(f, tc.name, i)
	}
	ents, err := f.ReadDir(".")
	require.NoError(t, err)
	types := map[string]fs.FileMode{}
	for _, e := range ents {
		types[e.Name()] = e.Type()
	}
	for _, tc := range cases {
		assert.Equal(t, tc.typ, types[tc.name], tc.name)
	}

	// Not openable through the library.
	for _, tc := range cases[:4] {
		_, err := f.Open(tc.name)
		isErrno(t, err, syscall.ENXIO)
		_, err = f.OpenFile(tc.name, os.O_RDWR, 0)
		isErrno(t, err, syscall.ENXIO)
		_, err = f.Inodes().Open(ctx, attr(t, f, tc.name).Ino, os.O_RDONLY)
		isErrno(t, err, syscall.ENXIO)
		isErrno(t, f.Truncate(tc.name, 0), syscall.EINVAL)
	}
	w, err := f.OpenFile("reg", os.O_RDWR, 0)
	require.NoError(t, err)
	require.NoError(t, w.Close())

	// Rename, link, chmod, chown, xattrs keep type and device number.
	require.NoError(t, f.Mkdir("sub", 0o755))
	require.NoError(t, f.Rename("chr", "sub/chr2"))
	require.NoError(t, f.Link("sub/chr2", "chr"))
	require.NoError(t, f.Chmod("blk", 0o600))
	require.NoError(t, f.Chown("blk", 7, 8))
	isErrno(t, f.Setxattr("fifo", "user.a", nil, 0), syscall.EPERM)
	require.NoError(t, f.Setxattr("fifo", "trusted.a", []byte("v"), 0))
	check(f, "sub/chr2", 2)
	a := attr(t, f, "chr")
	assert.Equal(t, uint32(2), a.Nlink)
	a = attr(t, f, "blk")
	assert.Equal(t, uint32(sIFBLK|0o600), a.Mode)
	assert.Equal(t, uint32(7), a.Uid)
	assert.Equal(t, uint64(0x0801), a.Rdev)

	r, err := f.Fsck(ctx, FsckOptions{GC: true, Grace: -1})
	require.NoError(t, err)
	assert.True(t, r.OK(), "%v", r.Problems)

	// A fresh FS decodes them from the store.
	g, err := Open(ctx, f.c.inodes, nil)
	require.NoError(t, err)
	defer g.Close()
	check(g, "fifo", 0)
	check(g, "sock", 1)
	check(g, "chr", 2)

	for _, n := range []string{"fifo", "sock", "chr", "sub/chr2", "blk", "reg"} {
		require.NoError(t, f.Remove(n), n)
	}
	notExist(t, f, "fifo")
	r, err = f.Fsck(ctx, FsckOptions{GC: true, Grace: -1})
	require.NoError(t, err)
	assert.True(t, r.OK(), "%v", r.Problems)
	assert.Zero(t, r.GarbageInodes)
}

func TestInodesMknod(t *testing.T) {
	ctx := context.Background()
	f, _ := newMemFS(t)
	in := f.Inodes()
	a, err := in.Mknod(ctx, RootIno, "c", sIFCHR|0o620, 0x0103, &Owner{Uid: 5, Gid: 6})
	require.NoError(t, err)
	assert.Equal(t, uint32(sIFCHR|0o620), a.Mode)
	assert.Equal(t, uint64(0x0103), a.Rdev)
	assert.Equal(t, uint32(5), a.Uid)
	got, err := in.Lookup(ctx, RootIno, "c")
	require.NoError(t, err)
	assert.Equal(t, a.Rdev, got.Rdev)
	a, err = in.Mknod(ctx, RootIno, "p", sIFIFO|0o600, 99, nil)
	require.NoError(t, err)
	assert.Zero(t, a.Rdev, "a FIFO has no device number")
	a, err = in.Mknod(ctx, RootIno, "r", 0o600, 0, nil)
	require.NoError(t, err)
	assert.Equal(t, uint32(sIFREG|0o600), a.Mode)
	_, err = in.Mknod(ctx, RootIno, "d", sIFDIR|0o700, 0, nil)
	isErrno(t, err, syscall.EINVAL)
	ents, err := in.ReadDir(ctx, RootIno, 0, 0)
	require.NoError(t, err)
	types := map[string]fs.FileMode{}
	for _, e := range ents {
		types[e.Name] = e.Type
	}
	assert.Equal(t, map[string]fs.FileMode{"c": fs.ModeDevice | fs.ModeCharDevice, "p": fs.ModeNamedPipe, "r": 0}, types)
}

func TestDirSize(t *testing.T) {
	f, _ := newMemFS(t)
	require.NoError(t, f.Mkdir("d", 0o755))
	a := attr(t, f, "d")
	assert.Equal(t, uint64(4096), a.Size)
	assert.Equal(t, uint64(8), a.Blocks)
	for i := 0; i < 200; i++ {
		require.NoError(t, f.Mknod("d/"+strconv.Itoa(i), fs.ModeNamedPipe|0o600, 0))
	}
	a = attr(t, f, "d")
	assert.Equal(t, uint64(8192), a.Size, "202 entries of ~32 bytes")
	assert.Equal(t, uint64(16), a.Blocks)
}

// TestMknodOneCommit: a device is created with its number in the one commit
// that creates it (no second commit in which others see number 0).
func TestMknodOneCommit(t *testing.T) {
	f, _ := newMemFS(t)
	before := f.Stats()
	require.NoError(t, f.Mknod("null", fs.ModeDevice|fs.ModeCharDevice|0o666, 0x0103))
	after := f.Stats()
	assert.Equal(t, int64(1), after.InodeCAS-before.InodeCAS, "inode writes for one mknod")
	fi, err := f.Lstat("null")
	require.NoError(t, err)
	assert.Equal(t, uint64(0x0103), fi.Sys().(*Attr).Rdev)
}
