package voldfs

import (
	"bytes"
	"context"
	"testing"
	"testing/fstest"

	"github.com/voldfs/voldfs/backend/memory"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	f, err := Format(ctx, memory.New(), &Options{BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.MkdirAll("a/b/c", 0o755); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096*3)
	if err := f.WriteFile("a/b/big", big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile("a/small", []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile("empty", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Symlink("b/big", "a/link"); err != nil {
		t.Fatal(err)
	}
	got, err := f.ReadFile("a/link")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read big: %v %d", err, len(got))
	}
	if err := fstest.TestFS(f, "a/b/big", "a/small", "empty", "a/link", "a/b/c"); err != nil {
		t.Fatal(err)
	}
}
