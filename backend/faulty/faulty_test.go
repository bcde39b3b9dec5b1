package faulty_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/backendtest"
	"github.com/voldfs/voldfs/backend/faulty"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/backend/txn"
)

var ctx = context.Background()

func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, func(*testing.T) backend.Store {
		return faulty.Wrap(memory.New(), nil)
	})
}

// coreOnly hides the optional interfaces of a store.
type coreOnly struct{ backend.Store }

func TestFallbacks(t *testing.T) {
	f := faulty.Wrap(coreOnly{memory.New()}, nil)
	if err := f.List(ctx, "", func(string) error { return nil }); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("List on a store without Lister: %v, want ErrUnsupported", err)
	}
	v, err := f.Put(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatalf("Put on a store without Putter: %v", err)
	}
	if _, err := f.Put(ctx, "k", []byte("w")); !errors.Is(err, backend.ErrConflict) {
		t.Errorf("second Put on a store without Putter: %v, want ErrConflict as backend.Put gives", err)
	}
	m, err := f.GetMulti(ctx, []string{"k", "missing"})
	if err != nil || len(m) != 1 || m["k"].Version != v || string(m["k"].Value) != "v" {
		t.Errorf("GetMulti on a store without BatchGetter = %v, %v", m, err)
	}
	if n := f.MaxValueSize(); n != 0 {
		t.Errorf("MaxValueSize on a store without a limit = %d, want 0", n)
	}
	if n := faulty.Wrap(memory.NewWithLimit(7), nil).MaxValueSize(); n != 7 {
		t.Errorf("MaxValueSize = %d, want the wrapped store's 7", n)
	}
}

// ops runs one operation of each kind on f, returning their errors in order.
func ops(f *faulty.Store, key string) []error {
	_, err0 := f.CAS(ctx, key, backend.NoVersion, []byte("v"))
	_, _, err1 := f.Get(ctx, key)
	_, err2 := f.GetMulti(ctx, []string{key})
	err3 := f.List(ctx, key, func(string) error { return nil })
	_, err4 := f.Put(ctx, key+"p", []byte("p"))
	err5 := f.Delete(ctx, key+"p", backend.AnyVersion)
	return []error{err0, err1, err2, err3, err4, err5}
}

func TestOnIndex(t *testing.T) {
	for i := range int64(6) {
		f := faulty.Wrap(memory.New(), faulty.OnIndex(i))
		errs := ops(f, "k")
		for j, err := range errs {
			if int64(j) == i {
				if !errors.Is(err, faulty.ErrInjected) {
					t.Errorf("OnIndex(%d): op %d: %v, want ErrInjected", i, j, err)
				}
			} else if i == 4 && j == 5 { // deletes what op 4 should have Put
				if !errors.Is(err, backend.ErrNotFound) {
					t.Errorf("OnIndex(4): Delete after a failed Put: %v, want ErrNotFound", err)
				}
			} else if err != nil && !(i == 0 && j < 3) { // op 0 is the create
				t.Errorf("OnIndex(%d): op %d: %v, want success", i, j, err)
			}
		}
		if got := f.Ops(); got != 6 {
			t.Errorf("Ops() = %d, want 6", got)
		}
	}
	// A failed CAS is not applied.
	m := memory.New()
	f := faulty.Wrap(m, faulty.OnIndex(0))
	if _, err := f.CAS(ctx, "k", backend.NoVersion, []byte("v")); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("CAS: %v", err)
	}
	if _, _, err := m.Get(ctx, "k"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("injected CAS was applied: Get = %v", err)
	}
}

func TestAfter(t *testing.T) {
	f := faulty.Wrap(memory.New(), faulty.After(2))
	for i := range 10 {
		_, err := f.CAS(ctx, fmt.Sprint("k", i), backend.NoVersion, nil)
		if (i >= 2) != errors.Is(err, faulty.ErrInjected) || (i < 2 && err != nil) {
			t.Errorf("op %d: %v", i, err)
		}
	}
	f.SetInjector(nil)
	if _, _, err := f.Get(ctx, "k1"); err != nil {
		t.Errorf("Get after SetInjector(nil): %v", err)
	}
	if _, _, err := f.Get(ctx, "k2"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("a CAS that failed by injection was applied: %v", err)
	}
	if f.Ops() != 12 {
		t.Errorf("Ops() = %d, want 12", f.Ops())
	}
}

func TestAmbiguous(t *testing.T) {
	m := memory.New()
	f := faulty.Wrap(m, faulty.Ambiguous(1))
	v, err := f.CAS(ctx, "k", backend.NoVersion, []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.CAS(ctx, "k", v, []byte("two"))
	if !errors.Is(err, faulty.ErrReplyLost) || !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("CAS #1: %v, want ErrReplyLost wrapping ErrInjected", err)
	}
	got, _, err := m.Get(ctx, "k")
	if err != nil || string(got) != "two" {
		t.Fatalf("the lost-reply CAS was not applied: %q, %v", got, err)
	}
	// Delete and Put are applied too.
	for _, tc := range []struct {
		op    func(f *faulty.Store) error
		check func() bool
	}{
		{func(f *faulty.Store) error { return f.Delete(ctx, "k", backend.AnyVersion) },
			func() bool { _, _, err := m.Get(ctx, "k"); return errors.Is(err, backend.ErrNotFound) }},
		{func(f *faulty.Store) error { _, err := f.Put(ctx, "p", []byte("x")); return err },
			func() bool { _, _, err := m.Get(ctx, "p"); return err == nil }},
	} {
		f := faulty.Wrap(m, faulty.Ambiguous(0))
		if err := tc.op(f); !errors.Is(err, faulty.ErrReplyLost) {
			t.Errorf("got %v, want ErrReplyLost", err)
		}
		if !tc.check() {
			t.Errorf("operation with a lost reply was not applied")
		}
	}
}

func TestRandomly(t *testing.T) {
	run := func(p float64, seed int64) []bool {
		f := faulty.Wrap(memory.New(), faulty.Randomly(p, seed))
		out := make([]bool, 2000)
		for i := range out {
			_, _, err := f.Get(ctx, "k")
			out[i] = errors.Is(err, faulty.ErrInjected)
		}
		return out
	}
	count := func(b []bool) (n int) {
		for _, x := range b {
			if x {
				n++
			}
		}
		return n
	}
	a, b := run(0.3, 42), run(0.3, 42)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different decision at op %d", i)
		}
	}
	if n := count(a); n < 450 || n > 750 {
		t.Errorf("p=0.3: %d of 2000 failed", n)
	}
	if c := run(0.3, 43); fmt.Sprint(c) == fmt.Sprint(a) {
		t.Errorf("different seeds gave the same decisions")
	}
	if n := count(run(0, 1)); n != 0 {
		t.Errorf("p=0: %d failed", n)
	}
	if n := count(run(1, 1)); n != 2000 {
		t.Errorf("p=1: %d of 2000 failed", n)
	}
}

func TestLatency(t *testing.T) {
	const d = 50 * time.Millisecond
	f := faulty.Wrap(memory.New(), faulty.Latency(d, faulty.OnIndex(1)))
	start := time.Now()
	if _, err := f.CAS(ctx, "k", backend.NoVersion, nil); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < d {
		t.Errorf("op took %v, want at least %v", el, d)
	}
	if _, _, err := f.Get(ctx, "k"); !errors.Is(err, faulty.ErrInjected) {
		t.Errorf("inner injector not consulted: %v", err)
	}
	f.SetInjector(faulty.Latency(time.Hour, nil))
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := f.Get(cctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get with an expiring context under an hour of latency: %v", err)
	}
}

func TestHang(t *testing.T) {
	m := memory.New()
	f := faulty.Wrap(m, faulty.Hang(1))
	if _, err := f.CAS(ctx, "a", backend.NoVersion, nil); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		time.Sleep(30 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	_, err := f.CAS(cctx, "b", backend.NoVersion, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("hung CAS: %v, want context.Canceled", err)
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Errorf("hung CAS returned after %v, before its context was cancelled", el)
	}
	if _, _, err := m.Get(ctx, "b"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("hung CAS was applied: %v", err)
	}
	if _, err := f.CAS(ctx, "c", backend.NoVersion, nil); err != nil {
		t.Errorf("op after the hang: %v", err)
	}
}

func TestConcurrentSetInjector(t *testing.T) {
	f := faulty.Wrap(memory.New(), nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				_, err := f.Put(ctx, fmt.Sprint("k", g, "-", i), nil)
				if err != nil && !errors.Is(err, faulty.ErrInjected) {
					t.Errorf("Put: %v", err)
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			if i%2 == 0 {
				f.SetInjector(faulty.Randomly(0.5, int64(i)))
			} else {
				f.SetInjector(nil)
			}
		}
	})
	wg.Wait()
	if f.Ops() != 8*200 {
		t.Errorf("Ops() = %d, want %d", f.Ops(), 8*200)
	}
}

func TestOpString(t *testing.T) {
	for op, want := range map[faulty.Op]string{faulty.OpGet: "Get", faulty.OpPut: "Put", faulty.Op(99): "Op(99)"} {
		if op.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(op), op.String(), want)
		}
	}
	if faulty.OpGet.IsWrite() || !faulty.OpDelete.IsWrite() {
		t.Error("IsWrite wrong")
	}
}

// TestSweep is the crash-sweep pattern: fail operation i of a workload for
// every i until the workload runs clean; every failure must be the injected
// one.
func TestSweep(t *testing.T) {
	workload := func(s backend.Store) error {
		v, err := s.CAS(ctx, "counter", backend.NoVersion, []byte("0"))
		if err != nil {
			return err
		}
		if _, err := backend.Put(ctx, s, "block", []byte("data")); err != nil {
			return err
		}
		if _, err := s.CAS(ctx, "counter", v, []byte("1")); err != nil {
			return err
		}
		return s.Delete(ctx, "block", backend.AnyVersion)
	}
	for i := int64(0); ; i++ {
		f := faulty.Wrap(memory.New(), faulty.After(i))
		err := workload(f)
		if err == nil {
			if i != 4 {
				t.Errorf("workload succeeded at i=%d, want 4 (it has 4 operations)", i)
			}
			return
		}
		if !errors.Is(err, faulty.ErrInjected) {
			t.Fatalf("i=%d: %v, want ErrInjected", i, err)
		}
		if f.Ops() != i+1 {
			t.Fatalf("i=%d: workload went on after the failure: %d ops", i, f.Ops())
		}
	}
}

func TestNetErrors(t *testing.T) {
	for _, tc := range []struct {
		err   error
		errno syscall.Errno
	}{
		{faulty.ErrConnReset, syscall.ECONNRESET},
		{faulty.ErrBrokenPipe, syscall.EPIPE},
		{faulty.ErrTimedOut, syscall.ETIMEDOUT},
	} {
		m := memory.New()
		f := faulty.Wrap(m, faulty.FailWith(faulty.OnIndex(1), tc.err))
		if _, err := f.CAS(ctx, "a", backend.NoVersion, []byte("1")); err != nil {
			t.Fatalf("operation 0 failed: %v", err)
		}
		_, err := f.CAS(ctx, "b", backend.NoVersion, []byte("2"))
		var op *net.OpError
		if !errors.Is(err, tc.errno) || !errors.Is(err, faulty.ErrInjected) || errors.Is(err, faulty.ErrReplyLost) || !errors.As(err, &op) {
			t.Errorf("injected %v: got %v, want a *net.OpError wrapping %v and ErrInjected, not ErrReplyLost", tc.err, err, tc.errno)
		}
		if _, _, err := m.Get(ctx, "b"); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("a failed operation was applied: Get = %v", err)
		}

		// A lost reply: applied, and the caller gets the network error.
		f.SetInjector(faulty.LostReply(0, tc.err))
		_, err = f.CAS(ctx, "c", backend.NoVersion, []byte("3"))
		if !errors.Is(err, tc.errno) || !errors.Is(err, faulty.ErrReplyLost) || !errors.Is(err, faulty.ErrInjected) || !errors.As(err, &op) {
			t.Errorf("lost reply with %v: got %v, want a *net.OpError wrapping %v and ErrReplyLost", tc.err, err, tc.errno)
		}
		if v, _, err := m.Get(ctx, "c"); err != nil || string(v) != "3" {
			t.Errorf("the lost-reply CAS was not applied: Get = %q, %v", v, err)
		}
		if _, err := f.CAS(ctx, "d", backend.NoVersion, []byte("4")); err != nil {
			t.Errorf("the operation after the lost reply: %v", err)
		}
	}
}

func TestCommit(t *testing.T) {
	// A store without a Committer: unsupported, and the suite skips it.
	f := faulty.Wrap(coreOnly{memory.New()}, nil)
	if _, err := f.Commit(ctx, []backend.Op{{Key: "a", Value: []byte("1")}}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Commit on a store without one: %v, want ErrUnsupported", err)
	}

	// Over a Committer, the suite passes through the wrapper.
	backendtest.RunCommitTests(t, func(*testing.T) backend.Store {
		return faulty.Wrap(txn.Wrap(memory.New()), nil)
	})

	m := memory.New()
	f = faulty.Wrap(txn.Wrap(m), faulty.OnIndex(0))
	ops := []backend.Op{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}}
	if _, err := f.Commit(ctx, ops); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("injected Commit: %v", err)
	}
	if _, _, err := m.Get(ctx, "a"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("a failed Commit was applied: %v", err)
	}
	f.SetInjector(faulty.LostReply(0, faulty.ErrTimedOut))
	if _, err := f.Commit(ctx, ops); !errors.Is(err, syscall.ETIMEDOUT) || !errors.Is(err, faulty.ErrReplyLost) {
		t.Fatalf("Commit with a lost reply: %v", err)
	}
	for _, op := range ops {
		if v, _, err := f.Get(ctx, op.Key); err != nil || string(v) != string(op.Value) {
			t.Fatalf("after a lost-reply Commit, %q = %q, %v", op.Key, v, err)
		}
	}
	if !faulty.OpCommit.IsWrite() || faulty.OpCommit.String() != "Commit" {
		t.Error("OpCommit: wrong IsWrite or String")
	}
}
