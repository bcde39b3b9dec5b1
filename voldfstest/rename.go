package voldfstest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs"
)

func testRename(t *testing.T, e *env) {
	f := e.fs
	setup := func(t *testing.T) {
		require.NoError(t, f.RemoveAll("r"))
		require.NoError(t, f.MkdirAll("r/d1/sub/deep", 0o755))
		require.NoError(t, f.MkdirAll("r/d2", 0o755))
		require.NoError(t, f.MkdirAll("r/full/x", 0o755))
		require.NoError(t, f.Mkdir("r/empty", 0o755))
		writeFile(t, f, "r/f1", []byte("one"))
		writeFile(t, f, "r/f2", []byte("two"))
		writeFile(t, f, "r/d1/inner", []byte("inner"))
	}
	tests := []struct {
		old, new string
		flags    uint32
		target   error // nil: success
		check    func(t *testing.T)
	}{
		{"r/f1", "r/g", 0, nil, func(t *testing.T) {
			wantContent(t, f, "r/g", []byte("one"))
			notExist(t, f, "r/f1")
		}},
		{"r/f1", "r/f2", 0, nil, func(t *testing.T) { // file over file
			wantContent(t, f, "r/f2", []byte("one"))
			notExist(t, f, "r/f1")
		}},
		{"r/f1", "r/d2/f1", 0, nil, func(t *testing.T) { // across directories
			wantContent(t, f, "r/d2/f1", []byte("one"))
			notExist(t, f, "r/f1")
		}},
		{"r/f1", "r/d1/inner", 0, nil, func(t *testing.T) { // across, replacing
			wantContent(t, f, "r/d1/inner", []byte("one"))
			notExist(t, f, "r/f1")
		}},
		{"r/d1", "r/empty", 0, nil, func(t *testing.T) { // dir over empty dir
			wantContent(t, f, "r/empty/inner", []byte("inner"))
			notExist(t, f, "r/d1")
		}},
		{"r/d1", "r/d2/moved", 0, nil, func(t *testing.T) { // dir across
			wantContent(t, f, "r/d2/moved/inner", []byte("inner"))
			if fi, err := f.Stat("r/d2/moved/sub/deep"); err != nil || !fi.IsDir() {
				t.Fatalf("deep: %v", err)
			}
			notExist(t, f, "r/d1")
			// ".." follows the move.
			strict := e.open(t, &voldfs.Options{AttrTimeout: -1})
			defer strict.Close()
			assert.Equal(t, attr(t, f, "r/d2").Ino, parentIno(t, f, strict, "r/d2/moved"), "moved/..")
			require.NoError(t, f.Symlink("../inner", "r/d2/moved/sub/up"))
			wantContent(t, f, "r/d2/moved/sub/up", []byte("inner"))
		}},
		{"r/d1", "r/d2/empty2", 0, nil, nil},
		{"r/f1", "r/f1", 0, nil, func(t *testing.T) { wantContent(t, f, "r/f1", []byte("one")) }},
		{"r/d1", "r/d1", 0, nil, nil},
		{"r/f1", "r/d2", 0, syscall.EISDIR, nil},
		{"r/d1", "r/f2", 0, syscall.ENOTDIR, nil},
		{"r/d1", "r/full", 0, syscall.ENOTEMPTY, nil},
		{"r/empty", "r/full", 0, syscall.ENOTEMPTY, nil},
		{"r/d1", "r/d1/sub", 0, syscall.EINVAL, nil},
		{"r/d1", "r/d1/x", 0, syscall.EINVAL, nil},
		{"r/d1", "r/d1/sub/deep/x", 0, syscall.EINVAL, nil},
		{"r/d1", "r/d1/sub/deep", 0, nil, nil}, // EINVAL or ENOTEMPTY: checked below
		{"r/f1", "r/f2", voldfs.RenameNoReplace, syscall.EEXIST, nil},
		{"r/d1", "r/empty", voldfs.RenameNoReplace, fs.ErrExist, nil},
		{"r/f1", "r/new", voldfs.RenameNoReplace, nil, func(t *testing.T) { wantContent(t, f, "r/new", []byte("one")) }},
		{"r/missing", "r/x", 0, fs.ErrNotExist, nil},
		{"r/f1", "r/missing/x", 0, fs.ErrNotExist, nil},
		{"r/f1", "r/f2/x", 0, syscall.ENOTDIR, nil},
		{"r/f1", "r/f1/x", 0, syscall.ENOTDIR, nil},
		{".", "r/x", 0, nil, nil},                                   // some error: checked below
		{"r/f1", "r/x", voldfs.RenameExchange, syscall.ENOENT, nil}, // exchange needs both names
		{"r/f1", "r/f2", voldfs.RenameExchange | voldfs.RenameNoReplace, syscall.EINVAL, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s->%s/%d", tc.old, tc.new, tc.flags), func(t *testing.T) {
			setup(t)
			var before *voldfs.Attr
			if tc.old != "r/missing" {
				before = attr(t, f, tc.old)
			}
			err := f.RenameFlags(tc.old, tc.new, tc.flags)
			switch {
			case tc.old == "." || tc.new == "r/d1/sub/deep":
				if err == nil {
					t.Fatalf("rename succeeded")
				}
				var le *os.LinkError
				if !errors.As(err, &le) {
					t.Fatalf("got %T, want *os.LinkError", err)
				}
				if tc.new == "r/d1/sub/deep" && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTEMPTY) {
					t.Fatalf("got %v, want EINVAL or ENOTEMPTY", err)
				}
			case tc.target != nil:
				wantErr(t, "Rename", err, tc.target, "link")
				// Nothing changed.
				if before == nil {
					break
				}
				if a := attr(t, f, tc.old); a.Ino != before.Ino {
					t.Fatalf("source changed")
				}
			default:
				require.NoError(t, err)
				if tc.old != tc.new {
					if a := attr(t, f, tc.new); a.Ino != before.Ino {
						t.Fatalf("target ino %d, want %d", a.Ino, before.Ino)
					}
				}
			}
			if tc.check != nil {
				tc.check(t)
			}
			checkTree(t, f, ".")
		})
	}
}

func testRenameAttr(t *testing.T, e *env) {
	f := e.fs
	require.NoError(t, f.MkdirAll("a/b", 0o755))
	require.NoError(t, f.Mkdir("c", 0o755))
	writeFile(t, f, "a/b/f", pattern(3*4096, 9))
	ino := attr(t, f, "a/b/f").Ino
	dino := attr(t, f, "a/b").Ino
	require.NoError(t, f.Rename("a/b/f", "c/g"))
	require.NoError(t, f.Rename("a/b", "c/b"))
	require.NoError(t, f.Rename("c/g", "c/b/h"))
	if a := attr(t, f, "c/b/h"); a.Ino != ino || a.Nlink != 1 {
		t.Fatalf("moved file: ino %d nlink %d, want %d 1", a.Ino, a.Nlink, ino)
	}
	if a := attr(t, f, "c/b"); a.Ino != dino {
		t.Fatalf("moved dir: ino %d, want %d", a.Ino, dino)
	}
	if a, c := attr(t, f, "a"), attr(t, f, "c"); a.Nlink != 2 || c.Nlink != 3 {
		t.Fatalf("nlink a %d c %d, want 2 3", a.Nlink, c.Nlink)
	}
	wantContent(t, f, "c/b/h", pattern(3*4096, 9))
	// A replaced file is gone for good (its inode freed).
	writeFile(t, f, "victim", []byte("v"))
	vino := attr(t, f, "victim").Ino
	require.NoError(t, f.Rename("c/b/h", "victim"))
	if a := attr(t, f, "victim"); a.Ino != ino {
		t.Fatalf("victim ino %d, want %d", a.Ino, ino)
	}
	if _, err := f.Inodes().GetAttr(t.Context(), vino); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("replaced inode still there: %v", err)
	}
	checkTree(t, f, ".")
}
