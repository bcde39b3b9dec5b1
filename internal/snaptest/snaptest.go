// Package snaptest checks snapshots and writable clones on a store: the
// same short scenario for every store module (the root module's tests go
// further on memory and memcached).
package snaptest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
)

// Run formats a filesystem in a store from newStore, takes a snapshot,
// changes the live tree, and checks the snapshot and a clone of it: each
// keeps its own content, writes to either never show in the other, and
// snapshots refuse writes with EROFS.
func Run(t *testing.T, newStore func(t *testing.T) backend.Store) {
	ctx := context.Background()
	s := newStore(t)
	f, err := voldfs.Format(ctx, s, &voldfs.Options{BlockSize: 4096, Snapshots: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	big := bytes.Repeat([]byte("0123456789abcdef"), 1000) // four blocks
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	want := func(fsys fs.FS, name string, data []byte) {
		t.Helper()
		got, err := fs.ReadFile(fsys, name)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", name, len(got), err, len(data))
		}
	}
	gone := func(fsys fs.FS, name string) {
		t.Helper()
		if _, err := fs.Stat(fsys, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %v, want ErrNotExist", name, err)
		}
	}
	must("mkdir", f.MkdirAll("d/e", 0o755))
	must("write", f.WriteFile("d/e/big", big, 0o644))
	must("write", f.WriteFile("small", []byte("one"), 0o644))
	must("snapshot", f.Snapshot(ctx, "s1"))
	must("overwrite", f.WriteFile("d/e/big", big[:5000], 0o644))
	must("remove", f.Remove("small"))
	must("write", f.WriteFile("new", []byte("new"), 0o644))
	must("rename", f.Rename("d/e", "d/f"))

	v, err := f.OpenSnapshot(ctx, "s1")
	must("open snapshot", err)
	want(v, "d/e/big", big)
	want(v, "small", []byte("one"))
	gone(v, "new")
	if err := fstest.TestFS(v, "d/e/big", "small"); err != nil {
		t.Error(err)
	}
	if err := v.WriteFile("x", nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write to a snapshot: %v, want EROFS", err)
	}

	must("clone", f.CloneSnapshot(ctx, "s1", "clone"))
	g, err := voldfs.Open(ctx, s, &voldfs.Options{Name: "clone"})
	must("open clone", err)
	defer g.Close()
	want(g, "d/e/big", big)
	gone(g, "new")
	must("clone write", g.WriteFile("small", []byte("clone"), 0o644))
	must("clone remove", g.Remove("d/e/big"))
	want(g, "small", []byte("clone"))
	gone(g, "d/e/big")
	gone(f, "small")
	want(f, "d/f/big", big[:5000])
	want(v, "d/e/big", big)
	f.WaitFrees()
	g.WaitFrees()
	for _, x := range []*voldfs.FS{f, g} {
		r, err := x.Fsck(ctx, voldfs.FsckOptions{})
		must("fsck", err)
		for _, p := range r.Problems {
			t.Errorf("fsck: %v", p)
		}
	}
}
