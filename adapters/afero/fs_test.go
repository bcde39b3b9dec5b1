package voldafero_test

import (
	"context"
	"io"
	"io/fs"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs"
	voldafero "github.com/voldfs/voldfs/adapters/afero"
	"github.com/voldfs/voldfs/backend/memory"
)

func newTestFs(t *testing.T) (*voldafero.Fs, *voldfs.FS) {
	t.Helper()
	f, err := voldfs.Format(context.Background(), memory.New(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return voldafero.New(f), f
}

// Errors are *fs.PathError (*os.LinkError for two paths) values naming the
// path the caller gave, not the cleaned one voldfs saw.
func TestErrorPaths(t *testing.T) {
	a, _ := newTestFs(t)
	for _, name := range []string{"/no/such", "no/such", "./no/../no/such", ""} {
		_, err := a.Stat(name)
		var pe *fs.PathError
		require.ErrorAs(t, err, &pe, "%q", name)
		assert.Equal(t, name, pe.Path)
		assert.True(t, os.IsNotExist(err), "%q: %v", name, err)
		_, err = a.Open(name)
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, name, pe.Path)
	}
	require.NoError(t, afero.WriteFile(a, "/f", []byte("x"), 0o644))
	err := a.Mkdir("/f", 0o755)
	assert.True(t, os.IsExist(err), "%v", err)
	_, err = a.Open("/f/x")
	assert.ErrorIs(t, err, syscall.ENOTDIR)
	err = a.Rename("/f", "/missing/g")
	var le *os.LinkError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "/f", le.Old)
	assert.Equal(t, "/missing/g", le.New)
	assert.True(t, os.IsNotExist(err))

	f, err := a.Open("/f")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	err = f.Close()
	require.ErrorAs(t, err, new(*fs.PathError))
	assert.ErrorIs(t, err, fs.ErrClosed)
	assert.Equal(t, "/f", err.(*fs.PathError).Path)
}

// Stat names a file by the base of the caller's path, the root "/", as
// os.Stat does; Sys is the voldfs Attr.
func TestStatNames(t *testing.T) {
	a, _ := newTestFs(t)
	require.NoError(t, a.MkdirAll("/a/b", 0o700))
	for name, want := range map[string]string{"/": "/", ".": ".", "/a/b": "b", "a/b/": "b", "/a/../a": "a"} {
		fi, err := a.Stat(name)
		require.NoError(t, err, name)
		assert.Equal(t, want, fi.Name(), name)
		assert.True(t, fi.IsDir())
		_, ok := fi.Sys().(*voldfs.Attr)
		assert.True(t, ok, "Sys of %q is %T", name, fi.Sys())
	}
	fi, err := a.Stat("/a/b")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}

// Readdir describes symlinks as links (Lstat), as os.File.Readdir does;
// Symlink, Readlink, Link, Lchown and Chtimes reach voldfs.
func TestLinks(t *testing.T) {
	a, f := newTestFs(t)
	require.NoError(t, a.Mkdir("/d", 0o755))
	require.NoError(t, afero.WriteFile(a, "/d/file", []byte("data"), 0o644))
	require.NoError(t, a.Symlink("file", "/d/sym"))
	require.NoError(t, a.Link("/d/file", "/d/hard"))

	d, err := a.Open("/d")
	require.NoError(t, err)
	infos, err := d.Readdir(-1)
	require.NoError(t, err)
	require.NoError(t, d.Close())
	modes := map[string]os.FileMode{}
	for _, fi := range infos {
		modes[fi.Name()] = fi.Mode().Type()
	}
	assert.Equal(t, map[string]os.FileMode{"file": 0, "sym": os.ModeSymlink, "hard": 0}, modes)

	target, err := a.Readlink("/d/sym")
	require.NoError(t, err)
	assert.Equal(t, "file", target)
	b, err := afero.ReadFile(a, "/d/sym")
	require.NoError(t, err)
	assert.Equal(t, "data", string(b))
	fi, err := a.Stat("/d/hard")
	require.NoError(t, err)
	assert.Equal(t, uint32(2), fi.Sys().(*voldfs.Attr).Nlink)

	require.NoError(t, a.Lchown("/d/sym", 7, 8))
	li, err := f.Lstat("d/sym")
	require.NoError(t, err)
	assert.Equal(t, uint32(7), li.Sys().(*voldfs.Attr).Uid)
	mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, a.Chtimes("/d/file", time.Time{}, mt))
	fi, err = a.Stat("/d/file")
	require.NoError(t, err)
	assert.True(t, fi.ModTime().Equal(mt))

	err = a.Symlink("x", "/nodir/sym")
	assert.True(t, os.IsNotExist(err), "no parents are made: %v", err)
}

// Read returns bytes without an error and io.EOF on the next call, as
// os.File does; ReadAt keeps io.ReaderAt's contract.
func TestReadEOF(t *testing.T) {
	a, _ := newTestFs(t)
	require.NoError(t, afero.WriteFile(a, "/f", []byte("abc"), 0o644))
	f, err := a.Open("/f")
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, 8)
	n, err := f.Read(buf)
	assert.Equal(t, 3, n)
	assert.NoError(t, err)
	n, err = f.Read(buf)
	assert.Equal(t, 0, n)
	assert.Equal(t, io.EOF, err)
	n, err = f.ReadAt(buf, 1)
	assert.Equal(t, 2, n)
	assert.Equal(t, io.EOF, err)
}

// The root cannot be removed whole; RemoveAll of a missing name succeeds.
func TestRemoveAll(t *testing.T) {
	a, _ := newTestFs(t)
	require.NoError(t, a.MkdirAll("/x/y/z", 0o755))
	assert.NoError(t, a.RemoveAll("/nope"))
	assert.NoError(t, a.RemoveAll(""))
	assert.ErrorIs(t, a.RemoveAll("/"), syscall.EINVAL)
	require.NoError(t, a.RemoveAll("/x/"))
	_, err := a.Stat("/x")
	assert.True(t, os.IsNotExist(err))
}
