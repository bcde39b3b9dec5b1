package voldfs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCtimeNamespace: rename (of a file, a directory, a symlink, within a
// directory and across), exchange (both inodes), link and unlink of one of
// two links advance the inode's ctime, as Linux filesystems do, and leave
// its mtime alone.
func TestCtimeNamespace(t *testing.T) {
	f, _ := newMemFS(t)
	require.NoError(t, f.Mkdir("a", 0o755))
	require.NoError(t, f.Mkdir("b", 0o755))
	writeFile(t, f, "a/file", []byte("data"))
	writeFile(t, f, "a/other", []byte("other"))
	require.NoError(t, f.Mkdir("a/dir", 0o755))
	require.NoError(t, f.Symlink("file", "a/link"))

	times := func(name string) (ctime, mtime time.Time) {
		t.Helper()
		fi, err := f.Lstat(name)
		require.NoError(t, err)
		a := fi.Sys().(*Attr)
		return a.Ctime, a.Mtime
	}
	// check runs op and checks the ctime of each name (after op) advanced
	// past what it was (before op, under the name's old name) and the
	// mtime did not change.
	check := func(what string, op func() error, names ...[2]string) {
		t.Helper()
		type tm struct{ c, m time.Time }
		before := make([]tm, len(names))
		for i, n := range names {
			before[i].c, before[i].m = times(n[0])
		}
		time.Sleep(2 * time.Millisecond) // a clock that ticks coarsely still moves
		require.NoError(t, op(), what)
		for i, n := range names {
			c, m := times(n[1])
			assert.True(t, c.After(before[i].c), "%s: ctime of %s: %v, was %v", what, n[1], c, before[i].c)
			assert.Equal(t, before[i].m, m, "%s: mtime of %s", what, n[1])
		}
	}
	check("rename a file within a directory", func() error { return f.Rename("a/file", "a/file2") }, [2]string{"a/file", "a/file2"})
	check("rename a file across directories", func() error { return f.Rename("a/file2", "b/file") }, [2]string{"a/file2", "b/file"})
	check("rename a directory within a directory", func() error { return f.Rename("a/dir", "a/dir2") }, [2]string{"a/dir", "a/dir2"})
	check("rename a directory across", func() error { return f.Rename("a/dir2", "b/dir") }, [2]string{"a/dir2", "b/dir"})
	check("rename a symlink", func() error { return f.Rename("a/link", "b/link") }, [2]string{"a/link", "b/link"})
	check("rename over a file", func() error { return f.Rename("b/file", "a/other") }, [2]string{"b/file", "a/other"})
	writeFile(t, f, "b/x", []byte("x"))
	check("exchange in one directory", func() error { return f.RenameFlags("b/x", "b/link", RenameExchange) },
		[2]string{"b/x", "b/link"}, [2]string{"b/link", "b/x"})
	check("exchange across, a file and a directory", func() error { return f.RenameFlags("a/other", "b/dir", RenameExchange) },
		[2]string{"a/other", "b/dir"}, [2]string{"b/dir", "a/other"})
	check("link", func() error { return f.Link("b/dir", "b/hard") }, [2]string{"b/dir", "b/dir"})
	check("unlink one of two links", func() error { return f.Remove("b/hard") }, [2]string{"b/dir", "b/dir"})

}
