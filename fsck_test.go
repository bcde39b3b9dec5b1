package voldfs

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

// storeKeys lists every key of the store under prefix.
func storeKeys(t *testing.T, s backend.Store, prefix string) []string {
	t.Helper()
	var keys []string
	if err := backend.List(context.Background(), s, prefix, func(k string) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

func countKinds(keys []string) map[string]int {
	m := map[string]int{}
	for _, k := range keys {
		rest := strings.TrimPrefix(k, DefaultName+"/")
		kind, _, _ := strings.Cut(rest, "/")
		m[kind]++
	}
	return m
}

func TestFsckCleanAfterCreateDelete(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	f, err := Format(ctx, s, &Options{BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	n := 1000
	if testing.Short() {
		n = 200
	}
	if err := f.MkdirAll("d/e", 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		data := []byte(strings.Repeat(fmt.Sprint(i), 1+i%5000))
		if err := f.WriteFile(fmt.Sprintf("d/e/f%d", i), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.WriteFile("keep", []byte(strings.Repeat("k", 10000)), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := f.Remove(fmt.Sprintf("d/e/f%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.RemoveAll("d"); err != nil {
		t.Fatal(err)
	}
	r, err := f.Fsck(ctx, FsckOptions{GC: true, Repair: true, Grace: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.GarbageBlocks != 0 || r.GarbageInodes != 0 {
		t.Fatalf("fsck after deletes: %+v", r)
	}
	// Eager freeing must leave exactly: superblock, rename lease (maybe),
	// the root and "keep" inodes, and keep's 3 data blocks + 1 index node.
	kinds := countKinds(storeKeys(t, s, DefaultName+"/"))
	if kinds["i"] != 2 || kinds["b"] != 4 || kinds["super"] != 1 {
		t.Fatalf("store holds %v, want 2 inodes, 4 blocks, 1 superblock", kinds)
	}
	got, err := f.ReadFile("keep")
	if err != nil || len(got) != 10000 {
		t.Fatalf("keep: %v %d", err, len(got))
	}
}

func TestFsckRepairs(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	f, err := Format(ctx, s, &Options{BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile("a", []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Mkdir("dir", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile("dir/b", make([]byte, 9000), 0o644); err != nil {
		t.Fatal(err)
	}
	c := f.c
	// Damage: a dangling entry (inode deleted under it), an orphaned inode
	// (created but never linked), a wrong nlink, and a garbage block.
	a, _ := f.Lstat("a")
	ino := a.Sys().(*Attr).Ino
	if err := s.Delete(ctx, c.inodeKey(ino), backend.AnyVersion); err != nil {
		t.Fatal(err)
	}
	orphan, _, err := c.newInode(ctx, sIFREG|0o644, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := f.Lstat("dir/b")
	bino := b.Sys().(*Attr).Ino
	if _, err := c.update(ctx, bino, func(t *tx, n *inode) error { n.nlink = 5; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.putBlock(ctx, recData, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	c.inodeCache = map[uint64]*cachedInode{}

	r, err := f.Fsck(ctx, FsckOptions{Grace: -1})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, p := range r.Problems {
		kinds[p.Kind]++
	}
	if kinds["dangling-entry"] != 1 || kinds["orphan"] != 1 || kinds["nlink"] != 1 || r.GarbageBlocks != 1 {
		t.Fatalf("check found %v garbage=%d: %v", kinds, r.GarbageBlocks, r.Problems)
	}
	if r, err = f.Fsck(ctx, FsckOptions{Repair: true, GC: true, Grace: -1}); err != nil || r.Repaired != 3 {
		t.Fatalf("repair: %v, %+v", err, r)
	}
	if r, err = f.Fsck(ctx, FsckOptions{GC: true, Grace: -1}); err != nil || !r.OK() || r.GarbageBlocks != 0 {
		t.Fatalf("after repair: %v, %+v", err, r)
	}
	if _, err := f.Lstat(fmt.Sprintf("lost+found/#%d", orphan.ino)); err != nil {
		t.Fatalf("orphan not in lost+found: %v", err)
	}
	if fi, err := f.Stat("dir/b"); err != nil || fi.Sys().(*Attr).Nlink != 1 {
		t.Fatalf("nlink not repaired: %v", err)
	}
}
