package txn_test

import (
	"bytes"
	"testing"
	"testing/fstest"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/backend/txn"
)

// TestExistingFilesystem: a filesystem written without the wrapper opens and
// reads unchanged through it, and stays a valid filesystem after writes
// through it.
func TestExistingFilesystem(t *testing.T) {
	m := memory.New()
	f, err := voldfs.Format(ctx, m, &voldfs.Options{BlockSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1500) // several blocks
	files := map[string][]byte{"a.txt": []byte("hello"), "dir/big": big, "dir/empty": {}}
	if err := f.MkdirAll("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := f.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	g, err := voldfs.Open(ctx, txn.Wrap(m), nil)
	if err != nil {
		t.Fatalf("Open through the wrapper: %v", err)
	}
	defer g.Close()
	for name, data := range files {
		got, err := g.ReadFile(name)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadFile(%q) through the wrapper: %d bytes, %v; want %d bytes", name, len(got), err, len(data))
		}
	}
	if err := g.WriteFile("dir/new", []byte("through the wrapper"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.WriteFile("a.txt", []byte("rewritten"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(g, "a.txt", "dir/big", "dir/empty", "dir/new"); err != nil {
		t.Fatal(err)
	}
}
