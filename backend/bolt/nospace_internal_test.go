package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// TestDiskFullRefusesWrites: once a batch failed because the disk is full
// (ENOSPC from the file), every later write is refused with
// backend.ErrNoSpace, a definite refusal; reads still answer.
func TestDiskFullRefusesWrites(t *testing.T) {
	ctx := context.Background()
	s, _ := openT(t, &Options{Interval: -1, NoSync: true})
	v, err := s.CAS(ctx, "k", backend.NoVersion, []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.err = fmt.Errorf("bolt: writing a batch of 1 keys: %w", &os.PathError{Op: "write", Path: "voldfs.db", Err: syscall.ENOSPC})
	s.mu.Unlock()
	if _, err := s.CAS(ctx, "k", v, []byte("more")); !errors.Is(err, backend.ErrNoSpace) {
		t.Errorf("CAS: %v, want ErrNoSpace", err)
	}
	if _, err := s.Put(ctx, "p", []byte("x")); !errors.Is(err, backend.ErrNoSpace) {
		t.Errorf("Put: %v, want ErrNoSpace", err)
	}
	if _, err := s.Commit(ctx, []backend.Op{{Key: "c", Value: []byte("x")}}); !errors.Is(err, backend.ErrNoSpace) {
		t.Errorf("Commit: %v, want ErrNoSpace", err)
	}
	if got, _, err := s.Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Errorf("Get: %q, %v; want v", got, err)
	}
	s.mu.Lock()
	s.err = nil // Close would report it
	s.mu.Unlock()
	if err := s.Close(); err != nil {
		t.Error(err)
	}
}

// TestDiskFullTmpfs fills a real 2 MiB tmpfs (root only): the batch that
// meets the full disk fails its Sync with ENOSPC, and the writes after it
// get ErrNoSpace.
func TestDiskFullTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	s, err := Open(filepath.Join(dir, "voldfs.db"), &Options{Interval: -1, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	val := make([]byte, 64<<10)
	var serr error
	for i := 0; i < 100 && serr == nil; i++ {
		if _, err := s.Put(ctx, fmt.Sprintf("k%d", i), val); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		serr = s.Sync(ctx)
	}
	if !errors.Is(serr, syscall.ENOSPC) {
		t.Fatalf("filling 2 MiB with 6.4 MiB: Sync says %v, want ENOSPC", serr)
	}
	if _, err := s.Put(ctx, "after", val); !errors.Is(err, backend.ErrNoSpace) {
		t.Errorf("put after the disk filled: %v, want ErrNoSpace", err)
	}
	s.Close()
}

// TestDiskFullRecovers: on a full 4 MiB tmpfs (root only), deletes are
// still taken, and once space is freed on the disk (a ballast file
// removed) the Store takes writes again without a reopen, and keeps every
// write it acknowledged, the batch that met the full disk included.
func TestDiskFullRecovers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "voldfs.db")
	s, err := Open(path, &Options{Interval: -1, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	val := make([]byte, 64<<10)
	var serr error
	n := 0
	for ; n < 100 && serr == nil; n++ {
		if _, err := s.Put(ctx, fmt.Sprintf("k%d", n), val); err != nil {
			t.Fatalf("put %d: %v", n, err)
		}
		serr = s.Sync(ctx)
	}
	if !errors.Is(serr, syscall.ENOSPC) {
		t.Fatalf("Sync says %v, want ENOSPC", serr)
	}
	if _, err := s.Put(ctx, "refused", val); !errors.Is(err, backend.ErrNoSpace) {
		t.Fatalf("put on a full disk: %v, want ErrNoSpace", err)
	}
	if err := s.Delete(ctx, "k0", backend.AnyVersion); err != nil {
		t.Errorf("delete on a full disk: %v", err)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	var perr error
	for i := 0; i < 50; i++ {
		if _, perr = s.Put(ctx, "after", []byte("room again")); perr == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if perr != nil {
		t.Fatalf("put after space was freed: %v", perr)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatalf("sync after space was freed: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Get(ctx, "k0"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("k0 after its delete: %v", err)
	}
	for i := 1; i < n; i++ {
		if got, _, err := s.Get(ctx, fmt.Sprintf("k%d", i)); err != nil || len(got) != len(val) {
			t.Errorf("k%d: %d bytes, %v", i, len(got), err)
		}
	}
	if got, _, err := s.Get(ctx, "after"); err != nil || string(got) != "room again" {
		t.Errorf("after: %q, %v", got, err)
	}
	if _, _, err := s.Get(ctx, "refused"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("refused write: %v", err)
	}
}
