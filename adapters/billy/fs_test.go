package voldbilly_test

import (
	"context"
	"io"
	"io/fs"
	"os"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/helper/iofs"
	"github.com/go-git/go-billy/v5/util"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs"
	voldbilly "github.com/voldfs/voldfs/adapters/billy"
	"github.com/voldfs/voldfs/backend/memory"
)

func newTestFS(t *testing.T) (*voldbilly.Filesystem, *voldfs.FS, *memory.Store) {
	t.Helper()
	store := memory.New()
	f, err := voldfs.Format(context.Background(), store, nil)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return voldbilly.New(f), f, store
}

// Errors are *fs.PathError values naming the caller's path and wrapping an
// errno, so os.IsNotExist and errors.Is work; a path climbing out of the
// root is the bare billy.ErrCrossedBoundary, which billy callers compare.
func TestErrors(t *testing.T) {
	b, _, _ := newTestFS(t)
	sub, err := b.Chroot("a/b")
	require.NoError(t, err)
	require.NoError(t, util.WriteFile(sub, "f", []byte("x"), 0o644))

	for _, fsys := range []billy.Filesystem{b, sub} {
		_, err := fsys.Stat("/missing/x")
		var pe *fs.PathError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "/missing/x", pe.Path)
		assert.True(t, os.IsNotExist(err))
		assert.ErrorIs(t, err, syscall.ENOENT)

		_, err = fsys.Open("missing")
		assert.True(t, os.IsNotExist(err), "%v", err)

		err = fsys.Rename("missing", "other")
		var le *os.LinkError
		require.ErrorAs(t, err, &le)
		assert.Equal(t, "missing", le.Old)
		assert.Equal(t, "other", le.New)
		assert.True(t, os.IsNotExist(err))
		_, err = fsys.Stat("other")
		assert.True(t, os.IsNotExist(err), "a failed rename makes no parents or target")

		_, err = fsys.Open("../x")
		assert.Equal(t, billy.ErrCrossedBoundary, err)
	}
	err = sub.Remove("f/")
	assert.NoError(t, err)
	err = b.Remove("a")
	assert.ErrorIs(t, err, syscall.ENOTEMPTY)
}

// A chroot need not exist until a file is made in it; it is then the
// directory of that name, and its root stats under the directory's name.
func TestChrootLazy(t *testing.T) {
	b, f, _ := newTestFS(t)
	sub, err := b.Chroot("/x/y")
	require.NoError(t, err)
	assert.Equal(t, "/x/y", sub.Root())
	_, err = sub.Stat("/")
	assert.True(t, os.IsNotExist(err), "%v", err)
	_, err = sub.ReadDir("/")
	assert.True(t, os.IsNotExist(err), "%v", err)
	_, err = f.Stat("x")
	assert.True(t, os.IsNotExist(err), "reads create nothing: %v", err)

	require.NoError(t, util.WriteFile(sub, "z/file", []byte("hi"), 0o600))
	data, err := f.ReadFile("x/y/z/file")
	require.NoError(t, err)
	assert.Equal(t, "hi", string(data))
	fi, err := sub.Stat("/")
	require.NoError(t, err)
	assert.Equal(t, "y", fi.Name())
	assert.True(t, fi.IsDir())
	fi, err = f.Stat("x/y/z")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm(), "made parents have mode 0755")

	subsub, err := sub.Chroot("z")
	require.NoError(t, err)
	assert.Equal(t, "/x/y/z", subsub.Root())
	ents, err := subsub.ReadDir("")
	require.NoError(t, err)
	require.Len(t, ents, 1)
	assert.Equal(t, "file", ents[0].Name())
	_, err = sub.Chroot("../q")
	assert.Equal(t, billy.ErrCrossedBoundary, err)
}

// An absolute symlink target made in a chroot resolves from the chroot's
// root there.
func TestChrootAbsoluteSymlink(t *testing.T) {
	b, _, _ := newTestFS(t)
	require.NoError(t, util.WriteFile(b, "file", []byte("outside"), 0o644))
	sub, err := b.Chroot("c")
	require.NoError(t, err)
	require.NoError(t, util.WriteFile(sub, "file", []byte("inside"), 0o644))
	require.NoError(t, sub.Symlink("/file", "d/link"))
	got, err := util.ReadFile(sub, "d/link")
	require.NoError(t, err)
	assert.Equal(t, "inside", string(got))
	target, err := sub.Readlink("d/link")
	require.NoError(t, err)
	assert.Equal(t, "/file", target)
}

// billy.Change: Chmod, Chown, Lchown and Chtimes reach the inode.
func TestChange(t *testing.T) {
	b, f, _ := newTestFS(t)
	require.NoError(t, util.WriteFile(b, "f", nil, 0o644))
	require.NoError(t, b.Symlink("f", "l"))
	require.NoError(t, b.Chmod("l", 0o600))
	require.NoError(t, b.Chown("f", 1234, 5678))
	require.NoError(t, b.Lchown("l", 42, 43))
	mt := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	require.NoError(t, b.Chtimes("f", mt, mt))

	fi, err := f.Stat("f")
	require.NoError(t, err)
	a := fi.Sys().(*voldfs.Attr)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.Equal(t, uint32(1234), a.Uid)
	assert.Equal(t, uint32(5678), a.Gid)
	assert.True(t, fi.ModTime().Equal(mt), "%v", fi.ModTime())
	li, err := b.Lstat("l")
	require.NoError(t, err)
	assert.Equal(t, uint32(42), li.Sys().(*voldfs.Attr).Uid)
}

// File.Lock is an exclusive flock held in the store: a second client's
// Lock waits until the first unlocks.
func TestLock(t *testing.T) {
	b, _, store := newTestFS(t)
	other, err := voldfs.Open(context.Background(), store, nil)
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	b2 := voldbilly.New(other)

	f1, err := b.Create("lock")
	require.NoError(t, err)
	defer f1.Close()
	f2, err := b2.OpenFile("lock", os.O_RDWR, 0)
	require.NoError(t, err)
	defer f2.Close()

	require.NoError(t, f1.Lock())
	got := make(chan error, 1)
	go func() { got <- f2.Lock() }()
	select {
	case err := <-got:
		t.Fatalf("second Lock returned while the first is held: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, f1.Unlock())
	select {
	case err := <-got:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("second Lock still waiting after Unlock")
	}
	require.NoError(t, f2.Unlock())
}

// A File reads like an os.File: bytes without an error, then io.EOF; it
// also offers WriteAt, Stat and Sync.
func TestFile(t *testing.T) {
	b, _, _ := newTestFS(t)
	f, err := b.Create("/d/f")
	require.NoError(t, err)
	assert.Equal(t, "d/f", f.Name())
	_, err = f.Write([]byte("hello world"))
	require.NoError(t, err)
	wa, ok := f.(interface {
		WriteAt([]byte, int64) (int, error)
	})
	require.True(t, ok)
	_, err = wa.WriteAt([]byte("W"), 6)
	require.NoError(t, err)
	st, ok := f.(interface{ Stat() (os.FileInfo, error) })
	require.True(t, ok)
	fi, err := st.Stat()
	require.NoError(t, err)
	assert.Equal(t, int64(11), fi.Size())
	require.NoError(t, f.(interface{ Sync() error }).Sync())
	_, err = f.Seek(0, 0)
	require.NoError(t, err)
	buf := make([]byte, 64)
	n, err := f.Read(buf)
	assert.NoError(t, err)
	assert.Equal(t, "hello World", string(buf[:n]))
	_, err = f.Read(buf)
	assert.Equal(t, io.EOF, err)
	require.NoError(t, f.Close())
	assert.ErrorIs(t, f.Close(), fs.ErrClosed)
}

// The Filesystem, and a chroot of it, seen through billy's io/fs adapter
// (helper/iofs) pass testing/fstest.
func TestIOFS(t *testing.T) {
	b, _, _ := newTestFS(t)
	for _, name := range []string{"a.txt", "d/b.txt", "d/e/c.txt", "sub/x/y.txt"} {
		require.NoError(t, util.WriteFile(b, name, []byte("content of "+name), 0o644))
	}
	require.NoError(t, b.MkdirAll("empty", 0o755))
	require.NoError(t, fstest.TestFS(iofs.New(b), "a.txt", "d/b.txt", "d/e/c.txt", "sub/x/y.txt", "empty"))
	sub, err := b.Chroot("sub")
	require.NoError(t, err)
	require.NoError(t, fstest.TestFS(iofs.New(sub), "x/y.txt"))
}
