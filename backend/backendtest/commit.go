package backendtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/txn"
)

// SeedEnv names the environment variable that replays the seeded random
// tests of the suite (their seed is logged).
const SeedEnv = "BACKENDTEST_SEED"

// RunCommitTests runs the multi-key commit part of the suite (also run by
// RunConformanceTests on stores that implement backend.Committer). A store
// without a Committer of its own is tested through the fallback, txn.Wrap,
// and then also with the fallback's crash and lost-reply sweep
// (FallbackSweep), which stops or disturbs a committing client at each of
// its store calls in turn and checks what another client sees.
func RunCommitTests(t *testing.T, newStore func(t *testing.T) backend.Store) {
	t.Helper()
	probe := newStore(t)
	native := canCommit(probe)
	_ = probe.Close()
	if native {
		runCommitTests(t, newStore)
		return
	}
	runCommitTests(t, func(t *testing.T) backend.Store { return txn.Wrap(newStore(t)) })
	t.Run("FallbackSweep", func(t *testing.T) { testFallbackSweep(t, newStore) })
}

// canCommit reports whether s has a Commit that does not refuse every
// commit with errors.ErrUnsupported (as a wrapper of a store without one
// does).
func canCommit(s backend.Store) bool {
	c, ok := s.(backend.Committer)
	if !ok {
		return false
	}
	_, err := c.Commit(context.Background(), nil)
	return !errors.Is(err, errors.ErrUnsupported)
}

var commitTests = []struct {
	name string
	fn   func(t *testing.T, h *harness, c backend.Committer)
}{
	{"Apply", testCommitApply},
	{"Conflicts", testCommitConflicts},
	{"Check", testCommitCheck},
	{"AnyVersion", testCommitAnyVersion},
	{"Values", testCommitValues},
	{"Refused", testCommitRefused},
	{"Transfers", testCommitTransfers},
}

func runCommitTests(t *testing.T, newStore func(t *testing.T) backend.Store) {
	for _, tc := range commitTests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, newStore)
			c, ok := h.s.(backend.Committer)
			if !ok {
				t.Fatal("store does not implement backend.Committer")
			}
			tc.fn(t, h, c)
		})
	}
}

// ckey returns name under the subtest's prefix and the hash tag {c}: the
// keys of one commit share a Redis Cluster hash slot, so that stores that
// can commit only within a slot (and refuse other commits with
// errors.ErrUnsupported) pass. Such a store's own tests check what it does
// across slots.
func (h *harness) ckey(name string) string { return h.prefix + "{c}" + name }

// testCommit is the "Commit" subtest of RunConformanceTests.
func testCommit(t *testing.T, h *harness) {
	if !canCommit(h.s) {
		t.Skip("store does not implement backend.Committer (or its Commit is unsupported)")
	}
	runCommitTests(t, h.newStore)
}

// snapshot records keys' values and versions, to check that nothing changed.
func snapshot(t *testing.T, s backend.Store, keys ...string) map[string]backend.Item {
	t.Helper()
	out := map[string]backend.Item{}
	for _, k := range keys {
		v, ver, err := s.Get(context.Background(), k)
		if errors.Is(err, backend.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		out[k] = backend.Item{Value: v, Version: ver}
	}
	return out
}

func wantSnapshot(t *testing.T, s backend.Store, want map[string]backend.Item, keys ...string) {
	t.Helper()
	got := snapshot(t, s, keys...)
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		if gok != wok || !bytes.Equal(g.Value, w.Value) || g.Version != w.Version {
			t.Errorf("%q changed: now %s@%d (present %v), was %s@%d (present %v)",
				k, abbrev(g.Value), g.Version, gok, abbrev(w.Value), w.Version, wok)
		}
	}
}

func testCommitApply(t *testing.T, h *harness, c backend.Committer) {
	ctx := context.Background()
	a, b, n, d := h.ckey("a"), h.ckey("b"), h.ckey("new"), h.ckey("gone")
	va := mustCreate(t, h.s, a, []byte("a0"))
	vb := mustCreate(t, h.s, b, []byte("b0"))
	vd := mustCreate(t, h.s, d, []byte("d0"))
	vers, err := c.Commit(ctx, []backend.Op{
		{Key: a, Old: va, Value: []byte("a1")},
		{Key: n, Old: backend.NoVersion, Value: []byte("n1")},
		{Key: d, Old: vd, Delete: true},
		{Key: b, Old: vb, Check: true},
	})
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if len(vers) != 4 {
		t.Fatalf("Commit returned %d versions for 4 ops", len(vers))
	}
	if vers[0] == backend.NoVersion || vers[1] == backend.NoVersion || vers[2] != backend.NoVersion || vers[3] != backend.NoVersion {
		t.Fatalf("Commit versions = %v, want [set set NoVersion NoVersion]", vers)
	}
	if vers[0] == va {
		t.Errorf("the version of %q did not change", a)
	}
	wantValue(t, h.s, a, []byte("a1"), vers[0])
	wantValue(t, h.s, n, []byte("n1"), vers[1])
	wantMissing(t, h.s, d)
	wantValue(t, h.s, b, []byte("b0"), vb)

	// The returned versions are the keys' versions: CAS and Commit take them.
	va2, err := h.s.CAS(ctx, a, vers[0], []byte("a2"))
	if err != nil {
		t.Fatalf("CAS with the version Commit returned: %v", err)
	}
	if _, err := c.Commit(ctx, []backend.Op{{Key: n, Old: vers[1], Delete: true}, {Key: a, Old: va2, Value: []byte("a3")}}); err != nil {
		t.Fatalf("second Commit: %v", err)
	}
	wantMissing(t, h.s, n)
	wantValue(t, h.s, a, []byte("a3"), backend.NoVersion)

	// Deleting a missing key that must be missing is a no-op, not an error.
	if _, err := c.Commit(ctx, []backend.Op{{Key: n, Old: backend.NoVersion, Delete: true}, {Key: d, Old: backend.NoVersion, Check: true}}); err != nil {
		t.Fatalf("Commit deleting and checking missing keys: %v", err)
	}
	wantMissing(t, h.s, n)
	wantMissing(t, h.s, d)

	// No ops: nothing to do.
	vers, err = c.Commit(ctx, nil)
	if err != nil || len(vers) != 0 {
		t.Fatalf("Commit(no ops) = %v, %v; want no versions, nil", vers, err)
	}
}

func testCommitConflicts(t *testing.T, h *harness, c backend.Committer) {
	ctx := context.Background()
	a, b, m := h.ckey("a"), h.ckey("b"), h.ckey("missing")
	va := mustCreate(t, h.s, a, []byte("a0"))
	stale := va
	va, err := h.s.CAS(ctx, a, va, []byte("a1"))
	if err != nil {
		t.Fatal(err)
	}
	vb := mustCreate(t, h.s, b, []byte("b0"))
	for _, tc := range []struct {
		name string
		bad  backend.Op // the op whose condition fails
	}{
		{"StalePut", backend.Op{Key: a, Old: stale, Value: []byte("x")}},
		{"CreateExisting", backend.Op{Key: a, Old: backend.NoVersion, Value: []byte("x")}},
		{"PutMissing", backend.Op{Key: m, Old: va, Value: []byte("x")}},
		{"StaleDelete", backend.Op{Key: a, Old: stale, Delete: true}},
		{"DeleteMissing", backend.Op{Key: m, Old: vb, Delete: true}},
		{"DeleteMustBeAbsent", backend.Op{Key: a, Old: backend.NoVersion, Delete: true}},
		{"StaleCheck", backend.Op{Key: a, Old: stale, Check: true}},
		{"CheckAbsent", backend.Op{Key: a, Old: backend.NoVersion, Check: true}},
	} {
		for _, first := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/first=%v", tc.name, first), func(t *testing.T) {
				before := snapshot(t, h.s, a, b, m)
				good := backend.Op{Key: b, Old: vb, Value: []byte("changed")}
				ops := []backend.Op{good, tc.bad}
				if first {
					ops = []backend.Op{tc.bad, good}
				}
				_, err := c.Commit(ctx, ops)
				var ce *backend.ConflictError
				if !errors.As(err, &ce) || !errors.Is(err, backend.ErrConflict) {
					t.Fatalf("Commit = %v, want a *backend.ConflictError wrapping ErrConflict", err)
				}
				if ce.Key != tc.bad.Key {
					t.Errorf("ConflictError names %q, want %q", ce.Key, tc.bad.Key)
				}
				wantSnapshot(t, h.s, before, a, b, m)
				// Alone, the op conflicts too.
				if _, err := c.Commit(ctx, []backend.Op{tc.bad}); !errors.As(err, &ce) || ce.Key != tc.bad.Key {
					t.Errorf("Commit of the failing op alone = %v, want a ConflictError on %q", err, tc.bad.Key)
				}
				wantSnapshot(t, h.s, before, a, b, m)
			})
		}
	}
	// The versions read before the failed commits still work.
	if _, err := c.Commit(ctx, []backend.Op{{Key: a, Old: va, Value: []byte("a2")}, {Key: b, Old: vb, Value: []byte("b2")}}); err != nil {
		t.Fatalf("Commit after the conflicts: %v", err)
	}
	wantValue(t, h.s, a, []byte("a2"), backend.NoVersion)
	wantValue(t, h.s, b, []byte("b2"), backend.NoVersion)
}

func testCommitCheck(t *testing.T, h *harness, c backend.Committer) {
	ctx := context.Background()
	a, b, m := h.ckey("a"), h.ckey("b"), h.ckey("missing")
	va := mustCreate(t, h.s, a, []byte("a0"))
	vb := mustCreate(t, h.s, b, []byte("b0"))
	for i := range 3 {
		vers, err := c.Commit(ctx, []backend.Op{
			{Key: a, Old: va, Check: true},
			{Key: m, Old: backend.NoVersion, Check: true},
			{Key: b, Old: vb, Value: fmt.Appendf(nil, "b%d", i+1)},
		})
		if err != nil {
			t.Fatalf("Commit %d: %v", i, err)
		}
		vb = vers[2]
		// A check writes nothing: the value and its version stay.
		wantValue(t, h.s, a, []byte("a0"), va)
		wantMissing(t, h.s, m)
	}
	// And the checked key's version still works for CAS.
	if _, err := h.s.CAS(ctx, a, va, []byte("a1")); err != nil {
		t.Fatalf("CAS of a checked key with its version: %v", err)
	}
	// A check-only commit.
	if _, err := c.Commit(ctx, []backend.Op{{Key: a, Old: va, Check: true}, {Key: b, Old: vb, Check: true}}); !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("check-only Commit with a stale version = %v, want ErrConflict", err)
	}
}

func testCommitAnyVersion(t *testing.T, h *harness, c backend.Committer) {
	ctx := context.Background()
	a, b, m, m2 := h.ckey("a"), h.ckey("b"), h.ckey("missing"), h.ckey("missing2")
	mustCreate(t, h.s, a, []byte("a0"))
	mustCreate(t, h.s, b, []byte("b0"))
	vers, err := c.Commit(ctx, []backend.Op{
		{Key: a, Old: backend.AnyVersion, Value: []byte("a1")},
		{Key: m, Old: backend.AnyVersion, Value: []byte("m1")},
		{Key: b, Old: backend.AnyVersion, Delete: true},
		{Key: m2, Old: backend.AnyVersion, Delete: true},
		{Key: h.ckey("unchecked"), Old: backend.AnyVersion, Check: true},
	})
	if err != nil {
		t.Fatalf("Commit with AnyVersion: %v", err)
	}
	wantValue(t, h.s, a, []byte("a1"), vers[0])
	wantValue(t, h.s, m, []byte("m1"), vers[1])
	wantMissing(t, h.s, b)
	wantMissing(t, h.s, m2)
	if _, err := c.Commit(ctx, []backend.Op{{Key: a, Old: backend.AnyVersion, Value: []byte("a2")}}); err != nil {
		t.Fatalf("single-op Commit with AnyVersion: %v", err)
	}
	wantValue(t, h.s, a, []byte("a2"), backend.NoVersion)
}

func testCommitValues(t *testing.T, h *harness, c backend.Committer) {
	ctx := context.Background()
	values := [][]byte{{}, {0}, {0xc1}, {0xc1, 'L', 0, 0}, {0xc1, 'E'}, {0xc1, 'V', 1}, {0xff, 0xfe}, []byte("I\x01inode-like")}
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(255 - i)
	}
	values = append(values, bin)
	ops := make([]backend.Op, len(values))
	keys := make([]string, len(values))
	for i, v := range values {
		keys[i] = h.ckey(fmt.Sprint("v", i))
		ops[i] = backend.Op{Key: keys[i], Value: v}
	}
	vers, err := c.Commit(ctx, ops)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	for i, v := range values {
		wantValue(t, h.s, keys[i], v, vers[i])
	}
	// Again over the existing values (and so through whatever form a store
	// keeps them in), then once more with plain CAS.
	for i := range ops {
		ops[i].Old, ops[i].Value = vers[i], values[len(values)-1-i]
	}
	if vers, err = c.Commit(ctx, ops); err != nil {
		t.Fatalf("second Commit: %v", err)
	}
	for i := range ops {
		wantValue(t, h.s, keys[i], ops[i].Value, vers[i])
		if _, err := h.s.CAS(ctx, keys[i], vers[i], values[i]); err != nil {
			t.Fatalf("CAS(%q) after Commit: %v", keys[i], err)
		}
		wantValue(t, h.s, keys[i], values[i], backend.NoVersion)
	}
	// The slices passed to Commit are not retained.
	buf := []byte("original")
	k := h.ckey("owned")
	if _, err := c.Commit(ctx, []backend.Op{{Key: k, Value: buf}, {Key: h.ckey("owned2"), Value: buf}}); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXXX")
	wantValue(t, h.s, k, []byte("original"), backend.NoVersion)
}

func testCommitRefused(t *testing.T, h *harness, c backend.Committer) {
	ctx := context.Background()
	a, b := h.ckey("a"), h.ckey("b")
	va := mustCreate(t, h.s, a, []byte("a0"))
	before := snapshot(t, h.s, a, b)
	for _, tc := range []struct {
		name string
		ops  []backend.Op
		want error
	}{
		{"DuplicateKey", []backend.Op{{Key: a, Old: va, Value: []byte("x")}, {Key: b, Value: []byte("y")}, {Key: a, Old: va, Check: true}}, backend.ErrInvalidKey},
		{"InvalidKey", []backend.Op{{Key: b, Value: []byte("y")}, {Key: "bad key", Value: []byte("x")}}, backend.ErrInvalidKey},
		{"EmptyKey", []backend.Op{{Key: a, Old: va, Value: []byte("x")}, {Key: ""}}, backend.ErrInvalidKey},
	} {
		if _, err := c.Commit(ctx, tc.ops); !errors.Is(err, tc.want) {
			t.Errorf("%s: Commit = %v, want %v", tc.name, err, tc.want)
		}
	}
	if limit := backend.MaxValueSize(h.s); limit > 0 && limit <= 64<<20 {
		big := make([]byte, limit+1)
		if _, err := c.Commit(ctx, []backend.Op{{Key: a, Old: va, Value: []byte("x")}, {Key: b, Value: big}}); !errors.Is(err, backend.ErrTooLarge) {
			t.Errorf("Commit of a %d-byte value (limit %d) = %v, want ErrTooLarge", len(big), limit, err)
		}
	}
	wantSnapshot(t, h.s, before, a, b)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Commit(cctx, []backend.Op{{Key: a, Old: va, Value: []byte("x")}, {Key: b, Value: []byte("y")}}); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a canceled context = %v, want context.Canceled", err)
	}
	wantSnapshot(t, h.s, before, a, b)
}

// Seed returns the seed for a seeded test: $BACKENDTEST_SEED if set, else a
// random one. It logs the seed.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := rand.Uint64()
	if s := os.Getenv(SeedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("$%s: %v", SeedEnv, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with %s=%d)", seed, SeedEnv, seed)
	return seed
}

// testCommitTransfers moves amounts between overlapping accounts from many
// goroutines, two and three accounts per commit, while auditors check that
// every consistent snapshot (one whose versions a check-only commit
// confirms) sums to the total.
func testCommitTransfers(t *testing.T, h *harness, c backend.Committer) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const (
		accounts = 6
		start    = 1000
		movers   = 8
		auditors = 2
	)
	moves := 25
	if testing.Short() {
		moves = 8
	}
	seed := Seed(t)
	keys := make([]string, accounts)
	for i := range keys {
		keys[i] = h.ckey(fmt.Sprint("acct", i))
		mustCreate(t, h.s, keys[i], binary.BigEndian.AppendUint64(nil, start))
	}
	readAll := func() ([]uint64, []backend.Version, error) {
		vals := make([]uint64, accounts)
		vers := make([]backend.Version, accounts)
		items, err := backend.GetMulti(ctx, h.s, keys)
		if err != nil {
			return nil, nil, err
		}
		for i, k := range keys {
			it, ok := items[k]
			if !ok || len(it.Value) != 8 {
				return nil, nil, fmt.Errorf("account %q: present %v, %d bytes", k, ok, len(it.Value))
			}
			vals[i], vers[i] = binary.BigEndian.Uint64(it.Value), it.Version
		}
		return vals, vers, nil
	}
	var (
		wg        sync.WaitGroup
		conflicts atomic.Int64
		audits    atomic.Int64
		done      = make(chan struct{})
	)
	for g := range movers {
		rng := rand.New(rand.NewPCG(seed, uint64(g)))
		wg.Go(func() {
			for range moves {
				n := 2 + rng.IntN(2)
				perm := rng.Perm(accounts)[:n]
				amount := uint64(1 + rng.IntN(50))
				for {
					vals, vers, err := readAll()
					if err != nil {
						t.Errorf("read: %v", err)
						return
					}
					from, to := perm[0], perm[1]
					if vals[from] < vals[to] {
						from, to = to, from
					}
					amount := min(amount, vals[from])
					ops := []backend.Op{
						{Key: keys[from], Old: vers[from], Value: binary.BigEndian.AppendUint64(nil, vals[from]-amount)},
						{Key: keys[to], Old: vers[to], Value: binary.BigEndian.AppendUint64(nil, vals[to]+amount)},
					}
					if n == 3 { // the third account must not change meanwhile
						ops = append(ops, backend.Op{Key: keys[perm[2]], Old: vers[perm[2]], Check: true})
					}
					_, err = c.Commit(ctx, ops)
					if errors.Is(err, backend.ErrConflict) {
						conflicts.Add(1)
						continue
					}
					if err != nil {
						t.Errorf("Commit: %v", err)
						return
					}
					break
				}
			}
		})
	}
	var audit sync.WaitGroup
	for range auditors {
		audit.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				vals, vers, err := readAll()
				if err != nil {
					t.Errorf("audit read: %v", err)
					return
				}
				ops := make([]backend.Op, accounts)
				var sum uint64
				for i := range keys {
					ops[i] = backend.Op{Key: keys[i], Old: vers[i], Check: true}
					sum += vals[i]
				}
				if _, err := c.Commit(ctx, ops); err != nil {
					if !errors.Is(err, backend.ErrConflict) {
						t.Errorf("audit Commit: %v", err)
						return
					}
					continue
				}
				audits.Add(1)
				if sum != accounts*start {
					t.Errorf("a consistent snapshot sums to %d, want %d: %v", sum, accounts*start, vals)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	audit.Wait()
	vals, _, err := readAll()
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, v := range vals {
		sum += v
	}
	if sum != accounts*start {
		t.Fatalf("accounts sum to %d after the transfers, want %d: %v", sum, accounts*start, vals)
	}
	t.Logf("%d transfers, %d conflicts, %d consistent audits", movers*moves, conflicts.Load(), audits.Load())
}
