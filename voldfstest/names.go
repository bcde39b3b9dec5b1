package voldfstest

import (
	"fmt"
	"io"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func testMkdir(t *testing.T, e *env) {
	f := e.fs
	require.NoError(t, f.Mkdir("d", 0o750))
	fi, err := f.Stat("d")
	require.NoError(t, err)
	if !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Fatalf("d: mode %v", fi.Mode())
	}
	writeFile(t, f, "file", nil)
	tests := []struct {
		name   string
		target error
	}{
		{"d", fs.ErrExist},
		{"file", fs.ErrExist},
		{".", fs.ErrExist},
		{"missing/x", fs.ErrNotExist},
		{"file/x", syscall.ENOTDIR},
	}
	for _, tc := range tests {
		wantErr(t, "Mkdir "+tc.name, f.Mkdir(tc.name, 0o755), tc.target, "path")
	}
	notExist(t, f, "missing")
	require.NoError(t, f.Mkdir("d/e", 0o755))
	if fi, err := f.Stat("d/e"); err != nil || !fi.IsDir() {
		t.Fatalf("d/e: %v %v", fi, err)
	}
}

func testMkdirAll(t *testing.T, e *env) {
	f := e.fs
	require.NoError(t, f.MkdirAll("a/b/c/d", 0o755))
	require.NoError(t, f.MkdirAll("a/b/c/d", 0o755))
	require.NoError(t, f.MkdirAll("a/b/x", 0o755))
	require.NoError(t, f.MkdirAll(".", 0o755))
	for _, p := range []string{"a", "a/b", "a/b/c", "a/b/c/d", "a/b/x"} {
		if fi, err := f.Stat(p); err != nil || !fi.IsDir() {
			t.Fatalf("%s: %v %v", p, fi, err)
		}
	}
	writeFile(t, f, "a/file", nil)
	wantErr(t, "MkdirAll through a file", f.MkdirAll("a/file/x", 0o755), syscall.ENOTDIR, "path")
	wantErr(t, "MkdirAll of a file", f.MkdirAll("a/file", 0o755), syscall.ENOTDIR, "path")
	// Through a symlink to a directory.
	require.NoError(t, f.Symlink("a/b", "lb"))
	require.NoError(t, f.MkdirAll("lb/y/z", 0o755))
	if fi, err := f.Stat("a/b/y/z"); err != nil || !fi.IsDir() {
		t.Fatalf("a/b/y/z: %v %v", fi, err)
	}
}

func testRemove(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "file", []byte("x"))
	require.NoError(t, f.MkdirAll("full/sub", 0o755))
	require.NoError(t, f.Mkdir("empty", 0o755))
	require.NoError(t, f.Symlink("full", "link"))

	tests := []struct {
		name   string
		target error
	}{
		{"missing", fs.ErrNotExist},
		{"missing/x", fs.ErrNotExist},
		{"full", syscall.ENOTEMPTY},
		{"file/x", syscall.ENOTDIR},
		{".", nil},
	}
	for _, tc := range tests {
		err := f.Remove(tc.name)
		if tc.target == nil {
			if err == nil {
				t.Fatalf("Remove %s succeeded", tc.name)
			}
			continue
		}
		wantErr(t, "Remove "+tc.name, err, tc.target, "path")
	}
	require.NoError(t, f.Remove("file"))
	notExist(t, f, "file")
	require.NoError(t, f.Remove("empty"))
	notExist(t, f, "empty")
	// Removing a symlink removes the link, not its target.
	require.NoError(t, f.Remove("link"))
	notExist(t, f, "link")
	_, err := f.Stat("full/sub")
	require.NoError(t, err)
	require.NoError(t, f.Remove("full/sub"))
	require.NoError(t, f.Remove("full"))
	ents, err := f.ReadDir(".")
	require.NoError(t, err)
	require.Len(t, ents, 0, "root not empty: %v", names(ents))
	// A removed name can be reused, as the other type.
	require.NoError(t, f.Mkdir("file", 0o755))
	writeFile(t, f, "full", []byte("now a file"))
	wantContent(t, f, "full", []byte("now a file"))
	if a := attr(t, f, "."); a.Nlink != 3 {
		t.Fatalf("root nlink %d, want 3", a.Nlink)
	}
}

func testRemoveAll(t *testing.T, e *env) {
	f := e.fs
	require.NoError(t, f.MkdirAll("t/a/b/c", 0o755))
	for i := range 20 {
		writeFile(t, f, fmt.Sprintf("t/a/f%d", i), pattern(i*1000, byte(i)))
	}
	writeFile(t, f, "t/a/b/c/big", pattern(10*4096, 3))
	require.NoError(t, f.Symlink("../..", "t/a/b/up"))
	writeFile(t, f, "keep", []byte("keep"))
	require.NoError(t, f.RemoveAll("t"))
	notExist(t, f, "t")
	require.NoError(t, f.RemoveAll("t"))
	require.NoError(t, f.RemoveAll("missing/x"))
	wantContent(t, f, "keep", []byte("keep"))
	require.NoError(t, f.RemoveAll("keep"))
	notExist(t, f, "keep")
	if err := f.RemoveAll("."); err == nil {
		t.Fatal("RemoveAll(.) succeeded")
	}
	if a := attr(t, f, "."); a.Nlink != 2 {
		t.Fatalf("root nlink %d, want 2", a.Nlink)
	}
}

func testLink(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "f", []byte("data"))
	require.NoError(t, f.Mkdir("d", 0o755))
	require.NoError(t, f.Link("f", "d/g"))
	require.NoError(t, f.Link("f", "h"))
	a := attr(t, f, "f")
	if a.Nlink != 3 {
		t.Fatalf("nlink %d, want 3", a.Nlink)
	}
	if b := attr(t, f, "d/g"); b.Ino != a.Ino || b.Nlink != 3 {
		t.Fatalf("d/g: ino %d nlink %d", b.Ino, b.Nlink)
	}
	// Writing through one name shows through the others.
	writeFile(t, f, "d/g", []byte("changed"))
	wantContent(t, f, "h", []byte("changed"))

	tests := []struct {
		old, new string
		target   error
	}{
		{"d", "d2", syscall.EPERM},
		{".", "d3", syscall.EPERM},
		{"f", "h", fs.ErrExist},
		{"f", "d", fs.ErrExist},
		{"missing", "x", fs.ErrNotExist},
		{"f", "missing/x", fs.ErrNotExist},
		{"f", "f/x", syscall.ENOTDIR},
	}
	for _, tc := range tests {
		wantErr(t, "Link "+tc.old+" "+tc.new, f.Link(tc.old, tc.new), tc.target, "link")
	}
	if a := attr(t, f, "f"); a.Nlink != 3 {
		t.Fatalf("nlink after failed links %d, want 3", a.Nlink)
	}
	if a := attr(t, f, "d"); a.Nlink != 2 {
		t.Fatalf("d nlink %d", a.Nlink)
	}
	require.NoError(t, f.Remove("f"))
	require.NoError(t, f.Remove("h"))
	if a := attr(t, f, "d/g"); a.Nlink != 1 {
		t.Fatalf("nlink after removes %d, want 1", a.Nlink)
	}
	wantContent(t, f, "d/g", []byte("changed"))
	// A symlink is linked as itself.
	require.NoError(t, f.Symlink("d/g", "sl"))
	require.NoError(t, f.Link("sl", "sl2"))
	if a := attr(t, f, "sl2"); a.FileMode()&fs.ModeSymlink == 0 || a.Nlink != 2 {
		t.Fatalf("sl2: %v nlink %d", a.FileMode(), a.Nlink)
	}
	// An open unlinked file stays readable until closed.
	file, err := f.Open("d/g")
	require.NoError(t, err)
	require.NoError(t, f.Remove("d/g"))
	buf := make([]byte, 7)
	if _, err := io.ReadFull(file, buf); err != nil || string(buf) != "changed" {
		t.Fatalf("read of open unlinked file: %q %v", buf, err)
	}
	require.NoError(t, file.Close())
}

func testSymlink(t *testing.T, e *env) {
	f := e.fs
	require.NoError(t, f.MkdirAll("a/b", 0o755))
	writeFile(t, f, "a/b/f", []byte("target"))
	links := []struct{ target, name string }{
		{"b/f", "a/rel"},
		{"/a/b/f", "abs"},
		{"a/b", "dirlink"},
		{"../../a/b/f", "a/b/up"},
		{"nowhere", "dangling"},
		{"loop2", "loop1"},
		{"loop1", "loop2"},
	}
	for _, l := range links {
		require.NoError(t, f.Symlink(l.target, l.name))
		got, err := f.Readlink(l.name)
		if err != nil || got != l.target {
			t.Fatalf("Readlink %s: %q %v", l.name, got, err)
		}
		if a := attr(t, f, l.name); a.FileMode().Type() != fs.ModeSymlink || a.Size != uint64(len(l.target)) {
			t.Fatalf("Lstat %s: %v size %d", l.name, a.FileMode(), a.Size)
		}
	}
	wantContent(t, f, "a/rel", []byte("target"))
	wantContent(t, f, "abs", []byte("target"))
	wantContent(t, f, "dirlink/f", []byte("target"))
	wantContent(t, f, "a/b/up", []byte("target"))
	if fi, err := f.Stat("dirlink"); err != nil || !fi.IsDir() {
		t.Fatalf("Stat dirlink: %v %v", fi, err)
	}
	_, err := f.Stat("dangling")
	wantErr(t, "Stat dangling", err, fs.ErrNotExist, "path")
	_, err = f.Stat("loop1")
	wantErr(t, "Stat loop", err, syscall.ELOOP, "path")
	_, err = f.Open("loop1")
	wantErr(t, "Open loop", err, syscall.ELOOP, "path")
	_, err = f.ReadLink("a/b/f")
	wantErr(t, "ReadLink of a file", err, syscall.EINVAL, "path")
	_, err = f.ReadLink("missing")
	wantErr(t, "ReadLink missing", err, fs.ErrNotExist, "path")
	wantErr(t, "Symlink over existing", f.Symlink("x", "a/rel"), fs.ErrExist, "path")
	wantErr(t, "Symlink empty target", f.Symlink("", "e"), syscall.EINVAL, "path")
	wantErr(t, "Symlink in missing dir", f.Symlink("x", "missing/e"), fs.ErrNotExist, "path")
	wantErr(t, "Symlink long target", f.Symlink(strings.Repeat("x", 5000), "e"), syscall.ENAMETOOLONG, "path")
	notExist(t, f, "e")
	// Lstat does not follow; Stat does; a symlink in the middle is followed.
	if a := attr(t, f, "dirlink/f"); a.FileMode().Type() != 0 {
		t.Fatalf("dirlink/f: %v", a.FileMode())
	}
}

func testNames(t *testing.T, e *env) {
	f := e.fs
	long := strings.Repeat("n", 255)
	writeFile(t, f, long, []byte("ok"))
	wantContent(t, f, long, []byte("ok"))
	require.NoError(t, f.Mkdir("d"+long[1:], 0o755))
	ents, err := f.ReadDir(".")
	require.NoError(t, err)
	require.Len(t, ents, 2, "entries %v", names(ents))
	tooLong := strings.Repeat("x", 256)
	ops := []struct {
		name string
		fn   func(p string) error
		typ  string
	}{
		{"Create", func(p string) error { _, err := f.Create(p); return err }, "path"},
		{"Open", func(p string) error { _, err := f.Open(p); return err }, "path"},
		{"Stat", func(p string) error { _, err := f.Stat(p); return err }, "path"},
		{"Lstat", func(p string) error { _, err := f.Lstat(p); return err }, "path"},
		{"Mkdir", func(p string) error { return f.Mkdir(p, 0o755) }, "path"},
		{"MkdirAll", func(p string) error { return f.MkdirAll(p, 0o755) }, "path"},
		{"Remove", func(p string) error { return f.Remove(p) }, "path"},
		{"RemoveAll", func(p string) error { return f.RemoveAll(p) }, "path"},
		{"ReadFile", func(p string) error { _, err := f.ReadFile(p); return err }, "path"},
		{"WriteFile", func(p string) error { return f.WriteFile(p, nil, 0o644) }, "path"},
		{"ReadDir", func(p string) error { _, err := f.ReadDir(p); return err }, "path"},
		{"Symlink", func(p string) error { return f.Symlink("x", p) }, "path"},
		{"ReadLink", func(p string) error { _, err := f.ReadLink(p); return err }, "path"},
		{"Chmod", func(p string) error { return f.Chmod(p, 0o644) }, "path"},
		{"Chown", func(p string) error { return f.Chown(p, 1, 1) }, "path"},
		{"Chtimes", func(p string) error { return f.Chtimes(p, time.Now(), time.Now()) }, "path"},
		{"Truncate", func(p string) error { return f.Truncate(p, 0) }, "path"},
		{"Sub", func(p string) error { _, err := f.Sub(p); return err }, "path"},
		{"RenameFrom", func(p string) error { return f.Rename(p, "y") }, "link"},
		{"RenameTo", func(p string) error { return f.Rename(long, p) }, "link"},
		{"LinkFrom", func(p string) error { return f.Link(p, "y") }, "link"},
		{"LinkTo", func(p string) error { return f.Link(long, p) }, "link"},
	}
	invalid := []string{"", "/a", "a/", "a//b", "./a", "a/.", "../a", "a/../b", "..", "a\x00b", "\xff"}
	for _, op := range ops {
		for _, p := range []string{tooLong, "d" + long[1:] + "/" + tooLong} {
			wantErr(t, op.name+" long name", op.fn(p), syscall.ENAMETOOLONG, op.typ)
		}
		for _, p := range invalid {
			if op.name == "RemoveAll" && p == "" {
				continue
			}
			wantErr(t, fmt.Sprintf("%s(%q)", op.name, p), op.fn(p), fs.ErrInvalid, op.typ)
		}
	}
	// Names with odd but legal bytes.
	for _, n := range []string{"sp ace", "ü", "tab\t", "new\nline", "-dash", "#hash", "%", "a:b", strings.Repeat("é", 127)} {
		writeFile(t, f, n, []byte(n))
		wantContent(t, f, n, []byte(n))
	}
	ents, err = f.ReadDir(".")
	require.NoError(t, err)
	require.Len(t, ents, 11, "entries: %q", names(ents))
}
