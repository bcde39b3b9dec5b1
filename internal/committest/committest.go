// Package committest tests a store's native backend.Committer: conditions,
// puts, deletes, checks, AnyVersion, that a failed condition changes
// nothing, and that concurrent transfers between overlapping keys keep their
// sum. The memory and bolt stores run it until the conformance suite covers
// Commit.
package committest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"sync"
	"testing"

	"github.com/voldfs/voldfs/backend"
)

// Run runs the Commit tests on stores from newStore, which must implement
// backend.Committer.
func Run(t *testing.T, newStore func(t *testing.T) backend.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s backend.Store)
	}{
		{"PutsAndConditions", testPutsAndConditions},
		{"Deletes", testDeletes},
		{"ConflictChangesNothing", testConflictChangesNothing},
		{"Invalid", testInvalid},
		{"Transfers", testTransfers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if _, ok := s.(backend.Committer); !ok {
				t.Fatalf("%T is no backend.Committer", s)
			}
			tc.fn(t, s)
		})
	}
}

func get(t *testing.T, s backend.Store, key string) (string, backend.Version) {
	t.Helper()
	v, ver, err := s.Get(context.Background(), key)
	if errors.Is(err, backend.ErrNotFound) {
		return "<absent>", backend.NoVersion
	}
	noError(t, err)
	return string(v), ver
}

func testPutsAndConditions(t *testing.T, s backend.Store) {
	ctx := context.Background()
	vers, err := backend.Commit(ctx, s, []backend.Op{
		{Key: "a", Old: backend.NoVersion, Value: []byte("a1")},
		{Key: "b", Old: backend.AnyVersion, Value: []byte("b1")},
		{Key: "c", Old: backend.NoVersion, Check: true},
	})
	noError(t, err)
	equal(t, 3, len(vers))
	notEqual(t, backend.NoVersion, vers[0])
	notEqual(t, backend.NoVersion, vers[1])
	notEqual(t, vers[0], vers[1], "two puts got one version")
	equal(t, backend.NoVersion, vers[2], "a check's version")
	va, a := get(t, s, "a")
	vb, b := get(t, s, "b")
	equal(t, "a1", va)
	equal(t, vers[0], a)
	equal(t, "b1", vb)
	equal(t, vers[1], b)
	vc, _ := get(t, s, "c")
	equal(t, "<absent>", vc, "a check wrote")

	// The versions Commit returned are the keys' versions: CAS takes them.
	a2, err := s.CAS(ctx, "a", vers[0], []byte("a2"))
	noError(t, err)
	// A check on the right version passes and writes nothing; AnyVersion
	// overwrites whatever is there.
	vers, err = backend.Commit(ctx, s, []backend.Op{
		{Key: "a", Old: a2, Check: true},
		{Key: "b", Old: backend.AnyVersion, Value: []byte("b2")},
	})
	noError(t, err)
	_, ver := get(t, s, "a")
	equal(t, a2, ver, "a check changed the version")
	vb, ver = get(t, s, "b")
	equal(t, "b2", vb)
	equal(t, vers[1], ver)
	notEqual(t, b, ver)

	// An empty commit is fine.
	vers, err = backend.Commit(ctx, s, nil)
	noError(t, err)
	equal(t, 0, len(vers))
}

func testDeletes(t *testing.T, s backend.Store) {
	ctx := context.Background()
	va, err := s.CAS(ctx, "a", backend.NoVersion, []byte("a"))
	noError(t, err)
	_, err = s.CAS(ctx, "b", backend.NoVersion, []byte("b"))
	noError(t, err)
	vers, err := backend.Commit(ctx, s, []backend.Op{
		{Key: "a", Old: va, Delete: true},
		{Key: "b", Old: backend.AnyVersion, Delete: true},
		{Key: "c", Old: backend.NoVersion, Delete: true}, // absent: nothing to do
		{Key: "d", Old: backend.NoVersion, Value: []byte("d")},
	})
	noError(t, err)
	equal(t, []backend.Version{0, 0, 0, vers[3]}, vers)
	for _, k := range []string{"a", "b", "c"} {
		v, _ := get(t, s, k)
		equal(t, "<absent>", v, k)
	}
	// No ABA: the deleted key re-created gets a new version.
	va2, err := s.CAS(ctx, "a", backend.NoVersion, []byte("a"))
	noError(t, err)
	notEqual(t, va, va2)
	_, err = backend.Commit(ctx, s, []backend.Op{{Key: "a", Old: va, Delete: true}})
	errorIs(t, err, backend.ErrConflict)
}

// snapshot reads keys.
func snapshot(t *testing.T, s backend.Store, keys ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range keys {
		v, ver := get(t, s, k)
		out[k] = fmt.Sprintf("%s@%d", v, ver)
	}
	return out
}

func testConflictChangesNothing(t *testing.T, s backend.Store) {
	ctx := context.Background()
	va, err := s.CAS(ctx, "a", backend.NoVersion, []byte("a"))
	noError(t, err)
	vb, err := s.CAS(ctx, "b", backend.NoVersion, []byte("b"))
	noError(t, err)
	keys := []string{"a", "b", "c", "d"}
	before := snapshot(t, s, keys...)
	for _, tc := range []struct {
		name string
		bad  string
		ops  []backend.Op
	}{
		{"stale put", "b", []backend.Op{
			{Key: "a", Old: va, Value: []byte("x")},
			{Key: "b", Old: vb + 1000, Value: []byte("x")},
		}},
		{"create over a present key", "b", []backend.Op{
			{Key: "c", Old: backend.NoVersion, Value: []byte("x")},
			{Key: "b", Old: backend.NoVersion, Value: []byte("x")},
		}},
		{"failed check", "d", []backend.Op{
			{Key: "a", Old: va, Delete: true},
			{Key: "c", Old: backend.AnyVersion, Value: []byte("x")},
			{Key: "d", Old: va, Check: true},
		}},
		{"delete of a changed key", "a", []backend.Op{
			{Key: "b", Old: vb, Delete: true},
			{Key: "a", Old: vb, Delete: true},
		}},
	} {
		vers, err := backend.Commit(ctx, s, tc.ops)
		isError(t, err, tc.name)
		isNil(t, vers, tc.name)
		errorIs(t, err, backend.ErrConflict, tc.name)
		var ce *backend.ConflictError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v is no *backend.ConflictError", tc.name, err)
		} else {
			equal(t, tc.bad, ce.Key, tc.name)
		}
		equal(t, before, snapshot(t, s, keys...), "%s changed the store", tc.name)
	}
}

func testInvalid(t *testing.T, s backend.Store) {
	ctx := context.Background()
	for name, ops := range map[string][]backend.Op{
		"duplicate key": {{Key: "a", Value: []byte("1")}, {Key: "a", Old: backend.AnyVersion, Delete: true}},
		"invalid key":   {{Key: "a", Value: []byte("1")}, {Key: "has space", Value: []byte("1")}},
	} {
		_, err := backend.Commit(ctx, s, ops)
		errorIs(t, err, backend.ErrInvalidKey, name)
		v, _ := get(t, s, "a")
		equal(t, "<absent>", v, "%s: a was written", name)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := backend.Commit(cctx, s, []backend.Op{{Key: "a", Value: []byte("1")}})
	errorIs(t, err, context.Canceled)
}

// testTransfers moves amounts between overlapping accounts from many
// goroutines, each transfer one commit conditioned on both balances read
// (and sometimes on a third account, checked); the total never changes.
func testTransfers(t *testing.T, s backend.Store) {
	ctx := context.Background()
	const accounts, start = 6, 1000
	workers, transfers := 8, 200
	if testing.Short() {
		transfers = 50
	}
	key := func(i int) string { return "acct/" + strconv.Itoa(i) }
	for i := range accounts {
		_, err := s.CAS(ctx, key(i), backend.NoVersion, []byte(strconv.Itoa(start)))
		noError(t, err)
	}
	read := func(k string) (int, backend.Version, error) {
		v, ver, err := s.Get(ctx, k)
		if err != nil {
			return 0, 0, err
		}
		n, err := strconv.Atoi(string(v))
		return n, ver, err
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	var mu sync.Mutex
	conflicts := 0
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for done := 0; done < transfers; {
				a, b, c := r.IntN(accounts), r.IntN(accounts), r.IntN(accounts)
				if a == b {
					continue
				}
				na, va, err := read(key(a))
				if err != nil {
					errs <- err
					return
				}
				nb, vb, err := read(key(b))
				if err != nil {
					errs <- err
					return
				}
				amt := r.IntN(50)
				ops := []backend.Op{
					{Key: key(a), Old: va, Value: []byte(strconv.Itoa(na - amt))},
					{Key: key(b), Old: vb, Value: []byte(strconv.Itoa(nb + amt))},
				}
				if c != a && c != b {
					_, vc, err := read(key(c))
					if err != nil {
						errs <- err
						return
					}
					ops = append(ops, backend.Op{Key: key(c), Old: vc, Check: true})
				}
				_, err = backend.Commit(ctx, s, ops)
				if errors.Is(err, backend.ErrConflict) {
					mu.Lock()
					conflicts++
					mu.Unlock()
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				done++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		noError(t, err)
	}
	sum := 0
	for i := range accounts {
		n, _, err := read(key(i))
		noError(t, err)
		sum += n
	}
	equal(t, accounts*start, sum, "transfers changed the total")
	t.Logf("%d transfers, %d conflicts", workers*transfers, conflicts)
}

// msg formats the optional message arguments of the checks below.
func msg(args []any) string {
	if len(args) == 0 {
		return ""
	}
	if f, ok := args[0].(string); ok {
		return fmt.Sprintf(f, args[1:]...) + ": "
	}
	return fmt.Sprint(args...) + ": "
}

func noError(t *testing.T, err error, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%sunexpected error: %v", msg(args), err)
	}
}

func isError(t *testing.T, err error, args ...any) {
	t.Helper()
	if err == nil {
		t.Fatalf("%sno error", msg(args))
	}
}

func errorIs(t *testing.T, err, target error, args ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%serror %v, want %v", msg(args), err, target)
	}
}

func equal(t *testing.T, want, got any, args ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Errorf("%sgot %v, want %v", msg(args), got, want)
	}
}

func notEqual(t *testing.T, a, b any, args ...any) {
	t.Helper()
	if reflect.DeepEqual(a, b) {
		t.Errorf("%sboth are %v", msg(args), a)
	}
}

func isNil(t *testing.T, v []backend.Version, args ...any) {
	t.Helper()
	if v != nil {
		t.Errorf("%sgot %v, want nil", msg(args), v)
	}
}
