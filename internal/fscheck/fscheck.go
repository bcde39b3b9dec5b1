// Package fscheck is a compact functional workload for a voldfs filesystem,
// for store modules (etcd, Redis, split stores) that cannot reach the root
// package's full test suite: it creates, writes (inline, one-block and
// multi-block files), renames within and across directories, links,
// truncates and removes, then checks every byte through a second client and
// runs Fsck.
package fscheck

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"slices"
	"testing"

	"github.com/voldfs/voldfs"
)

// Run exercises f and checks the result through reopen, which must open a
// second client on the same store(s).
func Run(t testing.TB, f *voldfs.FS, reopen func() (*voldfs.FS, error)) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	bs := f.BlockSize()
	want := map[string][]byte{}
	pattern := func(n, seed int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + seed)
		}
		return b
	}
	must(f.MkdirAll("a/b/c", 0o755))
	must(f.Mkdir("d", 0o700))
	for i, size := range []int{0, 100, 5000, bs, 3*bs + 17} {
		name := fmt.Sprintf("a/b/f%d", i)
		want[name] = pattern(size, i)
		must(f.WriteFile(name, want[name], 0o644))
	}
	// Overwrite the middle of the multi-block file.
	w, err := f.OpenFile("a/b/f4", 2 /* O_RDWR */, 0)
	must(err)
	patch := pattern(bs, 99)
	_, err = w.WriteAt(patch, int64(bs/2))
	must(err)
	must(w.Close())
	copy(want["a/b/f4"][bs/2:], patch)
	// Renames within and across directories, a link, a truncate, a remove.
	must(f.Rename("a/b/f1", "a/b/g1"))
	want["a/b/g1"] = want["a/b/f1"]
	delete(want, "a/b/f1")
	must(f.Rename("a/b/f2", "d/f2"))
	want["d/f2"] = want["a/b/f2"]
	delete(want, "a/b/f2")
	must(f.Rename("a/b/c", "d/c"))
	must(f.Link("a/b/f3", "d/f3-link"))
	want["d/f3-link"] = want["a/b/f3"]
	must(f.Truncate("a/b/f4", int64(bs+5)))
	want["a/b/f4"] = want["a/b/f4"][:bs+5]
	must(f.Remove("a/b/f0"))
	delete(want, "a/b/f0")
	must(f.Symlink("../a/b/g1", "d/sym"))

	g, err := reopen()
	must(err)
	for name, data := range want {
		got, err := g.ReadFile(name)
		if err != nil {
			t.Fatalf("second client: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("second client: %s: %d bytes differ from the %d written", name, len(got), len(data))
		}
	}
	if got, err := g.ReadFile("d/sym"); err != nil || !bytes.Equal(got, want["a/b/g1"]) {
		t.Fatalf("second client: through the symlink: %v", err)
	}
	var names []string
	must(fs.WalkDir(g, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			names = append(names, p)
		}
		return err
	}))
	var wantNames []string
	for n := range want {
		wantNames = append(wantNames, n)
	}
	slices.Sort(names)
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Fatalf("second client sees files %v, want %v", names, wantNames)
	}
	fi, err := g.Stat("d/f3-link")
	must(err)
	if n := fi.Sys().(*voldfs.Attr).Nlink; n != 2 {
		t.Fatalf("hard-linked file has nlink %d", n)
	}
	r, err := g.Fsck(context.Background(), voldfs.FsckOptions{})
	must(err)
	if !r.OK() {
		t.Fatalf("fsck: %v", r.Problems)
	}
}
