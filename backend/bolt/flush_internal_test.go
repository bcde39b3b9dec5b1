package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/voldfs/voldfs/backend"
)

func openT(t *testing.T, opts *Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "voldfs.db")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

// TestFlushErrorRefusesWrites: once a batch fails to reach the file, Sync
// returns the error and every later write is refused, so nothing is
// acknowledged on top of the lost batch. Reads still see what was
// acknowledged.
func TestFlushErrorRefusesWrites(t *testing.T) {
	ctx := context.Background()
	s, _ := openT(t, &Options{Interval: -1, NoSync: true})
	v, err := s.CAS(ctx, "k", backend.NoVersion, []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	s.db.Close() // the next transaction fails
	err = s.Sync(ctx)
	if err == nil {
		t.Fatal("Sync succeeded with a closed file")
	}
	if err2 := s.Sync(ctx); err2 == nil {
		t.Errorf("a second Sync forgot the failure")
	}
	if _, err := s.CAS(ctx, "k", v, []byte("more")); err == nil || errors.Is(err, backend.ErrConflict) {
		t.Errorf("CAS after a failed flush: %v, want the flush's error", err)
	}
	if _, err := s.Put(ctx, "p", nil); err == nil {
		t.Errorf("Put after a failed flush succeeded")
	}
	if err := s.Delete(ctx, "k", v); err == nil {
		t.Errorf("Delete after a failed flush succeeded")
	}
	if _, err := s.Commit(ctx, []backend.Op{{Key: "c", Value: nil}}); err == nil {
		t.Errorf("Commit after a failed flush succeeded")
	}
	if got, ver, err := s.Get(ctx, "k"); err != nil || string(got) != "v" || ver != v {
		t.Errorf("Get after a failed flush = %q@%d, %v; want the acknowledged v@%d", got, ver, err, v)
	}
	if err := s.Close(); err == nil {
		t.Errorf("Close after a failed flush returned nil")
	}
}

// TestFlushErrorAlways: under SyncAlways the writer whose batch failed
// gets the error.
func TestFlushErrorAlways(t *testing.T) {
	ctx := context.Background()
	s, _ := openT(t, &Options{Durability: SyncAlways, NoSync: true})
	s.db.Close()
	if _, err := s.CAS(ctx, "k", backend.NoVersion, []byte("v")); err == nil {
		t.Fatal("CAS acknowledged a write that did not reach the file")
	}
	s.Close()
}

// TestPendingBound: writers wait for the flusher rather than let the
// pending batch pass MaxPending, even when nothing else asks for flushes.
func TestPendingBound(t *testing.T) {
	ctx := context.Background()
	const limit = 8 << 10
	s, _ := openT(t, &Options{Interval: -1, NoSync: true, MaxPending: limit})
	defer s.Close()
	val := make([]byte, 300)
	rec := len("w0/000") + versionLen + len(val) + recordOverhead
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := 0
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				if _, err := s.Put(ctx, fmt.Sprintf("w%d/%03d", w, i), val); err != nil {
					t.Error(err)
					return
				}
				s.mu.RLock()
				n := s.pendingBytes
				s.mu.RUnlock()
				mu.Lock()
				peak = max(peak, n)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if peak > limit {
		t.Errorf("pending batch reached %d bytes, bound %d", peak, limit)
	}
	if peak < limit-2*rec {
		t.Errorf("pending batch peaked at %d bytes: the test did not reach the bound %d", peak, limit)
	}
	// A value bigger than the bound is still taken (alone in its batch).
	if _, err := s.Put(ctx, "big", make([]byte, 3*limit)); err != nil {
		t.Errorf("a value over the pending bound: %v", err)
	}
}

// TestReservations: with a tiny reservation block, writers outrun the
// reservation many times; every version stays below the ceiling in the
// file, and after a crash new versions start above every one handed out.
func TestReservations(t *testing.T) {
	ctx := context.Background()
	defer func(old backend.Version) { reserveBlock = old }(reserveBlock)
	reserveBlock = 8
	s, path := openT(t, &Options{Interval: -1, NoSync: true})
	var highest backend.Version
	for i := range 100 {
		v, err := s.Put(ctx, fmt.Sprintf("k%d", i%10), []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		s.mu.RLock()
		reserved := s.reserved
		s.mu.RUnlock()
		if v > reserved {
			t.Fatalf("version %d handed out above the ceiling %d in the file", v, reserved)
		}
		if v <= highest {
			t.Fatalf("version %d after %d", v, highest)
		}
		highest = v
	}
	if err := s.Crash(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, err := s.Put(ctx, "k0", []byte("y"))
	if err != nil {
		t.Fatal(err)
	}
	if v <= highest {
		t.Errorf("version %d after the crash, not above %d handed out before it", v, highest)
	}
}
