package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
)

// TestFsckMode checks -fsck, -repair and -gc without mounting: a clean
// filesystem passes, a dangling entry (its inode deleted behind the
// filesystem's back) fails the check and is repaired.
func TestFsckMode(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fs.db")
	s, err := bolt.Open(path, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := voldfs.Format(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile("a", []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile("b", bytes.Repeat([]byte("x"), 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat("a")
	if err != nil {
		t.Fatal(err)
	}
	ino := fi.Sys().(*voldfs.Attr).Ino
	f.Close()
	s.Close()

	fsck := func(want int, wantOut string, args ...string) {
		t.Helper()
		var out bytes.Buffer
		code := run(append([]string{"-store", "bolt:" + path, "-fsck"}, args...), &out)
		if code != want || !strings.Contains(out.String(), wantOut) {
			t.Fatalf("fsck %v: exit %d, want %d; output %q, want it to contain %q", args, code, want, out.String(), wantOut)
		}
	}
	fsck(0, "0 problems")

	// Delete a's inode behind the filesystem's back.
	s, err = bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var victim string
	err = s.List(ctx, voldfs.DefaultName+"/i/", func(k string) error {
		if strings.HasSuffix(k, "/"+strconv.FormatUint(ino, 16)) {
			victim = k
		}
		return nil
	})
	if err != nil || victim == "" {
		t.Fatalf("inode key of a not found: %v", err)
	}
	if err := s.Delete(ctx, victim, backend.AnyVersion); err != nil {
		t.Fatal(err)
	}
	s.Close()

	fsck(1, "dangling-entry")
	fsck(0, "1 repaired", "-repair", "-gc", "-grace", "0s")
	fsck(0, "0 problems")
}
