package voldfs

// Helpers shared by the internal tests (twoclient_test.go and others). The
// filesystem suite itself is the exported package voldfstest.

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"
)

// wantErr checks that err matches target with errors.Is and, unless typ is
// "", that it is an *fs.PathError ("path") or an *os.LinkError ("link").
func wantErr(t *testing.T, what string, err, target error, typ string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got nil error, want %v", what, target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("%s: got %v, want errors.Is %v", what, err, target)
	}
	switch typ {
	case "path":
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			t.Fatalf("%s: got %T (%v), want *fs.PathError", what, err, err)
		}
	case "link":
		var le *os.LinkError
		if !errors.As(err, &le) {
			t.Fatalf("%s: got %T (%v), want *os.LinkError", what, err, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, f *FS, name string, data []byte) {
	t.Helper()
	if err := f.WriteFile(name, data, 0o644); err != nil {
		t.Fatalf("WriteFile %s: %v", name, err)
	}
}

func readFile(t *testing.T, f *FS, name string) []byte {
	t.Helper()
	b, err := f.ReadFile(name)
	if err != nil {
		t.Fatalf("ReadFile %s: %v", name, err)
	}
	return b
}

func wantContent(t *testing.T, f *FS, name string, want []byte) {
	t.Helper()
	got := readFile(t, f, name)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes %q..., want %d bytes %q...", name, len(got), trunc(got), len(want), trunc(want))
	}
}

func trunc(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

func attr(t *testing.T, f *FS, name string) *Attr {
	t.Helper()
	fi, err := f.Lstat(name)
	if err != nil {
		t.Fatalf("Lstat %s: %v", name, err)
	}
	a, ok := fi.Sys().(*Attr)
	if !ok {
		t.Fatalf("Lstat %s: Sys is %T, want *Attr", name, fi.Sys())
	}
	return a
}

func notExist(t *testing.T, f *FS, name string) {
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

// Subtests.

// checkTree walks the tree from dir and checks, for every directory, that
// nlink is 2 + subdirectories, that ".." leads back to it, and that no
// directory is reached twice (no cycle, no double link).
func checkTree(t *testing.T, f *FS, dir string) {
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
		if err != nil {
			t.Fatalf("ReadDir %s: %v", p, err)
		}
		subdirs := 0
		for _, e := range ents {
			cp := joinPath(p, e.Name())
			if e.IsDir() {
				subdirs++
				walk(cp, depth+1)
				if pa := parentIno(t, f, cp); pa != a.Ino {
					t.Fatalf("%s/..: ino %d, want %d (%s)", cp, pa, a.Ino, p)
				}
			}
		}
		if a.Nlink != uint32(2+subdirs) {
			t.Fatalf("%s: nlink %d, want %d", p, a.Nlink, 2+subdirs)
		}
	}
	walk(dir, 0)
}

// parentIno returns the ".." of directory p as the inode records it (io/fs
// paths have no "..").
func parentIno(t *testing.T, f *FS, p string) uint64 {
	t.Helper()
	ci, err := f.c.getInode(context.Background(), attr(t, f, p).Ino, 0)
	must(t, err)
	return ci.n.parent
}
