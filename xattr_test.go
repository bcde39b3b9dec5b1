package voldfs

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend/memory"
)

func newMemFS(t *testing.T) (*FS, *memory.Store) {
	t.Helper()
	s := memory.New()
	f, err := Format(context.Background(), s, &Options{BlockSize: 4096})
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f, s
}

// isErrno checks that err is an *fs.PathError wrapping want.
func isErrno(t *testing.T, err error, want syscall.Errno) {
	t.Helper()
	var pe *fs.PathError
	if assert.ErrorAs(t, err, &pe) {
		assert.ErrorIs(t, err, want)
	}
}

func TestXattrBasics(t *testing.T) {
	f, _ := newMemFS(t)
	writeFile(t, f, "a", []byte("x"))
	require.NoError(t, f.Symlink("a", "l"))

	_, err := f.Getxattr("a", "user.k")
	isErrno(t, err, syscall.ENODATA)
	isErrno(t, f.Setxattr("a", "user.k", []byte("v"), XattrReplace), syscall.ENODATA)
	require.NoError(t, f.Setxattr("a", "user.k", []byte("v"), XattrCreate))
	isErrno(t, f.Setxattr("a", "user.k", []byte("w"), XattrCreate), syscall.EEXIST)
	require.NoError(t, f.Setxattr("a", "user.k", []byte("w"), XattrReplace))
	require.NoError(t, f.Setxattr("a", "trusted.t", nil, 0))
	require.NoError(t, f.Setxattr("l", "security.s", []byte("s"), 0)) // follows to a

	v, err := f.Getxattr("a", "user.k")
	require.NoError(t, err)
	assert.Equal(t, []byte("w"), v)
	v, err = f.Getxattr("a", "trusted.t")
	require.NoError(t, err)
	assert.Empty(t, v)
	names, err := f.Listxattr("a")
	require.NoError(t, err)
	assert.Equal(t, []string{"security.s", "trusted.t", "user.k"}, names)
	names, err = f.Llistxattr("l")
	require.NoError(t, err)
	assert.Empty(t, names)
	isErrno(t, f.Lsetxattr("l", "user.k", []byte("v"), 0), syscall.EPERM)
	require.NoError(t, f.Lsetxattr("l", "trusted.k", []byte("v"), 0))
	v, err = f.Lgetxattr("l", "trusted.k")
	require.NoError(t, err)
	assert.Equal(t, []byte("v"), v)

	require.NoError(t, f.Removexattr("a", "user.k"))
	isErrno(t, f.Removexattr("a", "user.k"), syscall.ENODATA)
	_, err = f.Getxattr("a", "user.k")
	isErrno(t, err, syscall.ENODATA)

	// Limits and namespaces.
	isErrno(t, f.Setxattr("a", "", nil, 0), syscall.EINVAL)
	isErrno(t, f.Setxattr("a", "user."+strings.Repeat("n", 251), nil, 0), syscall.ERANGE)
	require.NoError(t, f.Setxattr("a", "user."+strings.Repeat("n", 250), nil, 0))
	isErrno(t, f.Setxattr("a", "user.big", make([]byte, 64<<10+1), 0), syscall.E2BIG)
	for _, n := range []string{"system.posix_acl_access", "system.posix_acl_default", "os2.x", "user.", "nons"} {
		isErrno(t, f.Setxattr("a", n, nil, 0), syscall.ENOTSUP)
	}
	isErrno(t, f.Setxattr("a", "user.k", nil, 3), syscall.EINVAL)
	_, err = f.Getxattr("missing", "user.k")
	assert.ErrorIs(t, err, fs.ErrNotExist)

	// Directories take them too, and they survive a reopen of the FS.
	require.NoError(t, f.Mkdir("d", 0o755))
	require.NoError(t, f.Setxattr("d", "user.d", []byte("dir"), 0))
	g, err := Open(context.Background(), f.c.inodes, nil)
	require.NoError(t, err)
	defer g.Close()
	v, err = g.Getxattr("d", "user.d")
	require.NoError(t, err)
	assert.Equal(t, []byte("dir"), v)
	v, err = g.Getxattr("a", "security.s")
	require.NoError(t, err)
	assert.Equal(t, []byte("s"), v)
}

// TestXattrBlock moves a file's set past the inline bound into a block and
// back, checking that fsck counts the block and that replaced and removed
// blocks are freed; a directory's set stays inline.
func TestXattrBlock(t *testing.T) {
	ctx := context.Background()
	f, s := newMemFS(t)
	writeFile(t, f, "a", []byte("x"))
	require.NoError(t, f.Mkdir("d", 0o755))
	blocks := func() int {
		f.WaitFrees()
		return countKinds(storeKeys(t, s, DefaultName+"/"))["b"]
	}
	base := blocks()
	big := bytes.Repeat([]byte("v"), 40<<10)
	require.NoError(t, f.Setxattr("a", "user.big", big, 0))
	require.NoError(t, f.Setxattr("a", "user.small", []byte("s"), 0))
	assert.Equal(t, base+1, blocks(), "one xattr block")
	// A directory's set stays inline (4 KiB).
	isErrno(t, f.Setxattr("d", "user.big", big, 0), syscall.ENOSPC)
	require.NoError(t, f.Setxattr("d", "user.mid", big[:3000], 0))
	isErrno(t, f.Setxattr("d", "user.mid2", big[:3000], 0), syscall.ENOSPC)
	require.NoError(t, f.Setxattr("d", "user.small", []byte("s"), 0))
	r, err := f.Fsck(ctx, FsckOptions{GC: true, Grace: -1})
	require.NoError(t, err)
	assert.True(t, r.OK(), "%v", r.Problems)
	assert.Zero(t, r.GarbageBlocks)
	for _, name := range []string{"a"} {
		v, err := f.Getxattr(name, "user.big")
		require.NoError(t, err)
		assert.Equal(t, big, v)
		// Too big for one value, too big for the set.
		for i := 0; i < 5; i++ {
			err = f.Setxattr(name, "user.m"+string(rune('a'+i)), make([]byte, 60<<10), 0)
			if err != nil {
				break
			}
		}
		isErrno(t, err, syscall.ENOSPC)
		for i := 0; i < 5; i++ {
			_ = f.Removexattr(name, "user.m"+string(rune('a'+i)))
		}
		require.NoError(t, f.Removexattr(name, "user.big"))
		v, err = f.Getxattr(name, "user.small")
		require.NoError(t, err)
		assert.Equal(t, []byte("s"), v)
	}
	assert.Equal(t, base, blocks(), "back inline: the block is freed")
	require.NoError(t, f.Remove("d"))

	// Removing the file frees its block.
	require.NoError(t, f.Setxattr("a", "user.big", big, 0))
	assert.Equal(t, base+1, blocks())
	require.NoError(t, f.Remove("a"))
	assert.Equal(t, base, blocks(), "remove frees the xattr block")
	r, err = f.Fsck(ctx, FsckOptions{GC: true, Grace: -1})
	require.NoError(t, err)
	assert.True(t, r.OK(), "%v", r.Problems)
	assert.Zero(t, r.GarbageBlocks)
}

// TestXattrOpenFile sets attributes on a file with buffered writes: neither
// the writes nor the attributes are lost, through the path and inode APIs.
func TestXattrOpenFile(t *testing.T) {
	ctx := context.Background()
	f, _ := newMemFS(t)
	w, err := f.Create("a")
	require.NoError(t, err)
	data := pattern(3*4096+100, 1)
	_, err = w.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Setxattr("a", "user.k", []byte("v"), 0))
	ino := attr(t, f, "a").Ino
	require.NoError(t, f.Inodes().Setxattr(ctx, ino, "user.j", []byte("w"), 0))
	_, err = w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	wantContent(t, f, "a", append(slicesClone(data), data...))
	names, err := f.Inodes().Listxattr(ctx, ino)
	require.NoError(t, err)
	assert.Equal(t, []string{"user.j", "user.k"}, names)
	v, err := f.Inodes().Getxattr(ctx, ino, "user.j")
	require.NoError(t, err)
	assert.Equal(t, []byte("w"), v)
	require.NoError(t, f.Inodes().Removexattr(ctx, ino, "user.j"))
	err = f.Inodes().Removexattr(ctx, ino, "user.j")
	isErrno(t, err, syscall.ENODATA)
	var pe *fs.PathError
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, inoPath(ino), pe.Path)
}

// TestXattrRebase has two clients set different attributes of one file
// concurrently: both survive (the commit loop re-applies each change).
func TestXattrRebase(t *testing.T) {
	ctx := context.Background()
	f, _ := newMemFS(t)
	writeFile(t, f, "a", nil)
	g, err := Open(ctx, f.c.inodes, nil)
	require.NoError(t, err)
	defer g.Close()
	// Warm g's cache so its first CAS starts from a stale copy.
	_, err = g.Listxattr("a")
	require.NoError(t, err)
	done := make(chan error, 2)
	for i, c := range []*FS{f, g} {
		go func() {
			var err error
			for j := 0; j < 20 && err == nil; j++ {
				err = c.Setxattr("a", "user."+string(rune('a'+i))+string(rune('a'+j)), []byte{byte(j)}, 0)
			}
			done <- err
		}()
	}
	require.NoError(t, <-done)
	require.NoError(t, <-done)
	h, err := Open(ctx, f.c.inodes, nil)
	require.NoError(t, err)
	defer h.Close()
	names, err := h.Listxattr("a")
	require.NoError(t, err)
	assert.Len(t, names, 40)
}

// TestInodeTrailerCompat checks that an inode without optional fields
// encodes as before (no trailer byte), and that one with them round-trips.
func TestInodeTrailerCompat(t *testing.T) {
	n := &inode{ino: 7, mode: sIFREG | 0o644, nlink: 1}
	plain := encodeInode(n)
	m := *n
	m.xattrs = encodeXattrs([]xattr{{"user.a", []byte("b")}})
	m.rdev = 0x0801
	m.xattrRef = newBlockRef()
	ext := encodeInode(&m)
	assert.Greater(t, len(ext), len(plain))
	got, err := decodeInode("k", plain)
	require.NoError(t, err)
	assert.Nil(t, got.xattrs)
	assert.Zero(t, got.rdev)
	got, err = decodeInode("k", ext)
	require.NoError(t, err)
	assert.Equal(t, m.xattrs, got.xattrs)
	assert.Equal(t, m.xattrRef, got.xattrRef)
	assert.Equal(t, m.rdev, got.rdev)
	// An unknown trailer bit is refused.
	bad := append([]byte{}, plain[:len(plain)-4]...)
	bad = append(bad, 0x80)
	_, err = decodeInode("k", sealInPlace(recInode, bad))
	assert.ErrorIs(t, err, ErrCorrupt)
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }
