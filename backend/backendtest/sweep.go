package backendtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/faulty"
	"github.com/voldfs/voldfs/backend/txn"
)

// testFallbackSweep commits through txn.Wrap over one store of newStore,
// stopping the committing client (every store call fails from then on) or
// losing one reply, at every store call of the protocol in turn, with and
// without a conflict on the last key (so that the sweep covers the rollback
// too). Another client of the same store must see all or nothing at once
// and, after resolving what it meets, leave no lock; versions read before an
// aborted commit must still work.
func testFallbackSweep(t *testing.T, newStore func(t *testing.T) backend.Store) {
	for _, conflict := range []bool{false, true} {
		for _, mode := range []struct {
			name string
			inj  func(i int64) faulty.Injector
		}{
			{"Crash", faulty.After},
			{"CrashConnReset", func(i int64) faulty.Injector { return faulty.FailWith(faulty.After(i), faulty.ErrConnReset) }},
			{"LostReply", faulty.Ambiguous},
			{"LostReplyTimedOut", func(i int64) faulty.Injector { return faulty.LostReply(i, faulty.ErrTimedOut) }},
		} {
			t.Run(fmt.Sprintf("%s/conflict=%v", mode.name, conflict), func(t *testing.T) {
				h := newHarness(t, newStore)
				for i := int64(0); ; i++ {
					if !sweepStep(t, h, i, mode.inj(i), conflict) {
						return
					}
				}
			})
		}
	}
}

// sweepWorld is one step's keys: a and b are updated, c checked, d
// deleted, e created (or, with conflict, created by someone else just after
// the commit read it).
type sweepWorld struct {
	keys     []string // a..e
	vers     []backend.Version
	conflict bool
}

func (w *sweepWorld) ops() []backend.Op {
	return []backend.Op{
		{Key: w.keys[0], Old: w.vers[0], Value: []byte("new a")},
		{Key: w.keys[1], Old: w.vers[1], Value: []byte("new b")},
		{Key: w.keys[2], Old: w.vers[2], Check: true},
		{Key: w.keys[3], Old: w.vers[3], Delete: true},
		{Key: w.keys[4], Old: backend.NoVersion, Value: []byte("new e")},
	}
}

// state reads the keys through s: "old", "new", or a description of a mix.
func (w *sweepWorld) state(t *testing.T, s backend.Store) string {
	t.Helper()
	got := make([]string, len(w.keys))
	for i, k := range w.keys {
		v, ver, err := s.Get(context.Background(), k)
		switch {
		case errors.Is(err, backend.ErrNotFound):
			got[i] = "-"
		case err != nil:
			t.Fatalf("Get(%q): %v", k, err)
		default:
			got[i] = string(v)
			if i == 2 && ver != w.vers[2] {
				t.Errorf("the checked key's version changed from %d to %d", w.vers[2], ver)
			}
		}
	}
	old := []string{"old a", "old b", "old c", "old d", "-"}
	if w.conflict {
		old[4] = "other e"
	}
	switch fmt.Sprint(got) {
	case fmt.Sprint(old):
		return "old"
	case fmt.Sprint([]string{"new a", "new b", "old c", "-", "new e"}):
		return "new"
	}
	return fmt.Sprint(got)
}

// sweepInjector defers to inner and, with conflict, creates key e just
// before the second store call (after the commit read it).
type sweepInjector struct {
	inner faulty.Injector
	mu    sync.Mutex
	n     int
	do    func()
}

func (x *sweepInjector) MaybeError(op faulty.Op, key string) error {
	x.mu.Lock()
	if x.n++; x.n == 2 {
		x.runLocked()
	}
	x.mu.Unlock()
	return x.inner.MaybeError(op, key)
}

// run runs do if it has not run yet.
func (x *sweepInjector) run() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.runLocked()
}

func (x *sweepInjector) runLocked() {
	if x.do != nil {
		x.do()
		x.do = nil
	}
}

// sweepStep runs step i and reports whether the injector was reached (so
// that there is a next step).
func sweepStep(t *testing.T, h *harness, i int64, inj faulty.Injector, conflict bool) bool {
	ctx := context.Background()
	w := &sweepWorld{conflict: conflict}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		w.keys = append(w.keys, h.ckey(fmt.Sprintf("%d/%s", i, n)))
	}
	for _, k := range w.keys[:4] {
		w.vers = append(w.vers, mustCreate(t, h.s, k, []byte("old "+k[len(k)-1:])))
	}
	w.vers = append(w.vers, backend.NoVersion)
	si := &sweepInjector{inner: inj}
	if conflict {
		si.do = func() { mustCreate(t, h.s, w.keys[4], []byte("other e")) }
	}
	f := faulty.Wrap(h.s, si)
	_, err := backend.Commit(ctx, txn.Wrap(f), w.ops())
	si.run() // if the commit stopped before the other client came
	calls := f.Ops()
	reached := calls > i

	// Another client of the store, that aborts whatever is pending.
	other := txn.Wrap(h.s, txn.WithTimeout(0))
	st := w.state(t, other)
	var ce *backend.ConflictError
	switch {
	case st != "old" && st != "new":
		t.Fatalf("step %d: a mix of old and new: %s (Commit: %v)", i, st, err)
	case err == nil && st != "new":
		t.Fatalf("step %d: Commit succeeded but another client sees %s", i, st)
	case conflict && (err == nil || st != "old"):
		t.Fatalf("step %d: a commit that conflicts applied (Commit: %v, state %s)", i, err, st)
	case errors.Is(err, backend.ErrConflict):
		if !conflict || !errors.As(err, &ce) || ce.Key != w.keys[4] {
			t.Fatalf("step %d: Commit = %v", i, err)
		}
	case err != nil && !errors.Is(err, faulty.ErrInjected):
		t.Fatalf("step %d: Commit = %v, want the injected error", i, err)
	}
	if st2 := w.state(t, other); st2 != st {
		t.Fatalf("step %d: the outcome changed from %s to %s on a second look", i, st, st2)
	}
	for _, k := range w.keys {
		if raw, _, err := h.s.Get(ctx, k); err == nil && txn.IsLock(raw) {
			t.Fatalf("step %d: %q still locked after another client resolved it", i, k)
		}
	}
	// An aborted commit changed no version: the versions read before it
	// still work (and after a commit, fail).
	for j, k := range w.keys[:2] {
		_, err := other.CAS(ctx, k, w.vers[j], []byte("after"))
		if st == "old" && err != nil {
			t.Fatalf("step %d: CAS(%q) with the version from before the aborted commit: %v", i, k, err)
		}
		if st == "new" && !errors.Is(err, backend.ErrConflict) {
			t.Fatalf("step %d: CAS(%q) with the version from before the commit: %v, want ErrConflict", i, k, err)
		}
	}
	if !reached {
		t.Logf("%d store calls for a commit of 5 ops; swept them all", calls)
		if conflict && (!errors.As(err, &ce) || ce.Key != w.keys[4]) || !conflict && err != nil {
			t.Fatalf("Commit without injection: %v", err)
		}
	}
	return reached
}
