package backendtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// watchWake bounds how long a Watcher may take to report a change. It is
// generous: the tests check that a change wakes the waiter at all, and
// that no change does not.
const watchWake = 5 * time.Second

// RunWatchTests checks a store's backend.Watcher: WaitChange wakes on a
// CAS, on a Delete and, from NoVersion, on a create; returns at once when
// the version already changed before the call; and returns ctx's error
// when nothing changes. newStore is as for RunConformanceTests and must
// return a store that implements backend.Watcher.
func RunWatchTests(t *testing.T, newStore func(t *testing.T) backend.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, h *harness, w backend.Watcher)
	}{
		{"WakesOnCAS", testWatchCAS},
		{"WakesOnDelete", testWatchDelete},
		{"WakesOnCreate", testWatchCreate},
		{"AlreadyChanged", testWatchAlreadyChanged},
		{"Context", testWatchContext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, newStore)
			w, ok := h.s.(backend.Watcher)
			if !ok {
				t.Fatalf("%T is not a backend.Watcher", h.s)
			}
			tc.fn(t, h, w)
		})
	}
}

// waitAsync starts w.WaitChange(key, ver) and returns its result channel.
func waitAsync(w backend.Watcher, key string, ver backend.Version) <-chan error {
	ch := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*watchWake)
		defer cancel()
		ch <- w.WaitChange(ctx, key, ver)
	}()
	return ch
}

// wantPending checks that the wait has not returned after a short while:
// nothing changed yet.
func wantPending(t *testing.T, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("WaitChange returned %v before any change", err)
	case <-time.After(200 * time.Millisecond):
	}
}

// wantWoken checks that the wait returns nil, and says how long it took.
func wantWoken(t *testing.T, ch <-chan error, what string) {
	t.Helper()
	start := time.Now()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("WaitChange after %s: %v", what, err)
		}
		t.Logf("woken %v after %s", time.Since(start), what)
	case <-time.After(watchWake):
		t.Fatalf("WaitChange not woken %v after %s", watchWake, what)
	}
}

func testWatchCAS(t *testing.T, h *harness, w backend.Watcher) {
	ctx := context.Background()
	k := h.key("w")
	v := mustCreate(t, h.s, k, []byte("a"))
	ch := waitAsync(w, k, v)
	wantPending(t, ch)
	if _, err := h.s.CAS(ctx, k, v, []byte("b")); err != nil {
		t.Fatalf("CAS: %v", err)
	}
	wantWoken(t, ch, "CAS")
}

func testWatchDelete(t *testing.T, h *harness, w backend.Watcher) {
	k := h.key("w")
	v := mustCreate(t, h.s, k, []byte("a"))
	ch := waitAsync(w, k, v)
	wantPending(t, ch)
	if err := h.s.Delete(context.Background(), k, v); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantWoken(t, ch, "Delete")
}

func testWatchCreate(t *testing.T, h *harness, w backend.Watcher) {
	k := h.key("w")
	ch := waitAsync(w, k, backend.NoVersion)
	wantPending(t, ch)
	mustCreate(t, h.s, k, []byte("a"))
	wantWoken(t, ch, "create")
}

// testWatchAlreadyChanged: a change between the caller's read and its call
// must not be missed.
func testWatchAlreadyChanged(t *testing.T, h *harness, w backend.Watcher) {
	ctx := context.Background()
	k := h.key("w")
	v := mustCreate(t, h.s, k, []byte("a"))
	v2, err := h.s.CAS(ctx, k, v, []byte("b"))
	if err != nil {
		t.Fatalf("CAS: %v", err)
	}
	wantWoken(t, waitAsync(w, k, v), "a CAS before the call")
	if err := h.s.Delete(ctx, k, v2); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantWoken(t, waitAsync(w, k, v2), "a Delete before the call")
	mustCreate(t, h.s, k, []byte("c"))
	wantWoken(t, waitAsync(w, k, backend.NoVersion), "a create before the call")
}

func testWatchContext(t *testing.T, h *harness, w backend.Watcher) {
	k := h.key("w")
	v := mustCreate(t, h.s, k, []byte("a"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := w.WaitChange(ctx, k, v)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitChange with nothing changing = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > watchWake {
		t.Fatalf("WaitChange returned %v after its deadline", d)
	}
	// A cancelled context returns at once, even on a missing key.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	if err := w.WaitChange(ctx, h.key("missing"), backend.NoVersion); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitChange with a cancelled context = %v, want context.Canceled", err)
	}
	// The helper without a Watcher sleeps its fallback.
	start = time.Now()
	if err := backend.WaitChange(context.Background(), noWatch{h.s}, k, v, 50*time.Millisecond); err != nil {
		t.Fatalf("backend.WaitChange without a Watcher: %v", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("backend.WaitChange without a Watcher returned after %v, want its 50ms fallback", d)
	}
}

// noWatch hides a store's extensions.
type noWatch struct{ backend.Store }
