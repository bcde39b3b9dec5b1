// Package backendtest is the conformance suite for backend.Store
// implementations, in the manner of gocloud's drivertest: a store's test file
// is a harness that calls RunConformanceTests, and RunBenchmarks gives every
// store the same benchmarks.
//
// A custom store for voldfs should pass this suite before voldfs runs on it.
package backendtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/voldfs/voldfs/backend"
)

// RunConformanceTests runs the conformance suite, one subtest per property of
// the backend.Store contract. newStore is called at least once per subtest and
// may return stores that share one server or file: every subtest writes only
// keys under its own random prefix. The suite closes every store newStore
// returns (a second Close of a store it closed itself is ignored), so newStore
// should register with t.Cleanup only what outlives the store, such as the
// server.
//
// The optional interfaces (backend.BatchGetter, Lister, Putter, SizeLimiter,
// Committer) are tested when the store implements them; the subtests of the
// others are skipped (Commit's also when the store refuses every commit with
// errors.ErrUnsupported, as a wrapper of a store without one does; see
// RunCommitTests for such stores). Values are tested at the store's MaxValueSize (and one byte over)
// when it states a limit of at most 64 MiB, else at 1 MiB. After Close, every
// call must fail with backend.ErrClosed, even when other stores share the
// server.
func RunConformanceTests(t *testing.T, newStore func(t *testing.T) backend.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"GetMissing", testGetMissing},
		{"EmptyValue", testEmptyValue},
		{"CAS", testCAS},
		{"VersionsChange", testVersionsChange},
		{"ConditionalDelete", testConditionalDelete},
		{"NoABA", testNoABA},
		{"BinaryValues", testBinaryValues},
		{"LargeValues", testLargeValues},
		{"Keys", testKeys},
		{"InvalidKeys", testInvalidKeys},
		{"SliceOwnership", testSliceOwnership},
		{"ContextCanceled", testContextCanceled},
		{"CreateIfAbsentRace", testCreateIfAbsentRace},
		{"CASExclusivity", testCASExclusivity},
		{"GetMulti", testGetMulti},
		{"List", testList},
		{"Put", testPut},
		{"Commit", testCommit},
		{"Close", testClose},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newHarness(t, newStore))
		})
	}
}

// harness is one subtest's store and key namespace.
type harness struct {
	s        backend.Store
	prefix   string
	newStore func(t *testing.T) backend.Store
}

func newHarness(t *testing.T, newStore func(t *testing.T) backend.Store) *harness {
	h := &harness{newStore: newStore, prefix: randomPrefix()}
	h.s = h.open(t)
	return h
}

// open returns a new store that is closed when the test ends.
func (h *harness) open(t *testing.T) backend.Store {
	t.Helper()
	s := h.newStore(t)
	if s == nil {
		t.Fatal("newStore returned nil")
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// key returns name under the subtest's prefix.
func (h *harness) key(name string) string { return h.prefix + name }

func randomPrefix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "bt-" + hex.EncodeToString(b[:]) + "/"
}

// mustCreate stores value under a missing key and returns its version.
func mustCreate(t *testing.T, s backend.Store, key string, value []byte) backend.Version {
	t.Helper()
	v, err := s.CAS(context.Background(), key, backend.NoVersion, value)
	if err != nil {
		t.Fatalf("CAS(%q, NoVersion): %v", key, err)
	}
	if v == backend.NoVersion {
		t.Fatalf("CAS(%q, NoVersion) returned NoVersion", key)
	}
	return v
}

// wantValue checks that key holds value at version want (any non-zero
// version if want is NoVersion).
func wantValue(t *testing.T, s backend.Store, key string, want []byte, wantVer backend.Version) {
	t.Helper()
	got, ver, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %s, want %s", key, abbrev(got), abbrev(want))
	}
	if got == nil {
		t.Fatalf("Get(%q) returned a nil value", key)
	}
	if ver == backend.NoVersion || (wantVer != backend.NoVersion && ver != wantVer) {
		t.Fatalf("Get(%q) version = %d, want %d", key, ver, wantVer)
	}
}

// wantMissing checks that key is absent.
func wantMissing(t *testing.T, s backend.Store, key string) {
	t.Helper()
	got, ver, err := s.Get(context.Background(), key)
	if !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Get(%q) = %s, %d, %v; want ErrNotFound", key, abbrev(got), ver, err)
	}
	if got != nil || ver != backend.NoVersion {
		t.Fatalf("Get(%q) of a missing key = %s, %d; want nil, NoVersion", key, abbrev(got), ver)
	}
}

// wantErr checks that err is target.
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func abbrev(b []byte) string {
	if b == nil {
		return "nil"
	}
	if len(b) > 32 {
		return fmt.Sprintf("%q...(%d bytes)", b[:32], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func testGetMissing(t *testing.T, h *harness) {
	wantMissing(t, h.s, h.key("missing"))
}

func testEmptyValue(t *testing.T, h *harness) {
	k := h.key("empty")
	v := mustCreate(t, h.s, k, []byte{})
	wantValue(t, h.s, k, []byte{}, v)
	// nil is an empty value too.
	k2 := h.key("nil")
	v2 := mustCreate(t, h.s, k2, nil)
	wantValue(t, h.s, k2, []byte{}, v2)
}

func testCAS(t *testing.T, h *harness) {
	ctx := context.Background()
	k := h.key("k")
	if _, err := h.s.CAS(ctx, k, 12345, []byte("x")); !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("CAS of a missing key with a non-zero version: %v, want ErrConflict", err)
	}
	wantMissing(t, h.s, k)
	v1 := mustCreate(t, h.s, k, []byte("one"))
	_, err := h.s.CAS(ctx, k, backend.NoVersion, []byte("again"))
	wantErr(t, "CAS(NoVersion) of an existing key", err, backend.ErrConflict)
	wantValue(t, h.s, k, []byte("one"), v1)

	v2, err := h.s.CAS(ctx, k, v1, []byte("two"))
	if err != nil {
		t.Fatalf("CAS with the current version: %v", err)
	}
	wantValue(t, h.s, k, []byte("two"), v2)

	_, err = h.s.CAS(ctx, k, v1, []byte("stale"))
	wantErr(t, "CAS with a stale version", err, backend.ErrConflict)
	wantValue(t, h.s, k, []byte("two"), v2)
}

func testVersionsChange(t *testing.T, h *harness) {
	ctx := context.Background()
	k := h.key("k")
	seen := map[backend.Version]bool{}
	v := mustCreate(t, h.s, k, []byte("same"))
	seen[v] = true
	for i := range 10 {
		nv, err := h.s.CAS(ctx, k, v, []byte("same")) // same bytes, new version
		if err != nil {
			t.Fatalf("CAS #%d: %v", i, err)
		}
		if seen[nv] {
			t.Fatalf("CAS #%d returned version %d, already used for this key", i, nv)
		}
		seen[nv] = true
		wantValue(t, h.s, k, []byte("same"), nv)
		v = nv
	}
	if p, ok := h.s.(backend.Putter); ok {
		nv, err := p.Put(ctx, k, []byte("same"))
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		if seen[nv] {
			t.Fatalf("Put returned version %d, already used for this key", nv)
		}
		wantValue(t, h.s, k, []byte("same"), nv)
	}
}

func testConditionalDelete(t *testing.T, h *harness) {
	ctx := context.Background()
	k := h.key("k")
	wantErr(t, "Delete(NoVersion) of a missing key", h.s.Delete(ctx, k, backend.NoVersion), backend.ErrNotFound)
	wantErr(t, "Delete(v) of a missing key", h.s.Delete(ctx, k, 12345), backend.ErrNotFound)
	wantErr(t, "Delete(AnyVersion) of a missing key", h.s.Delete(ctx, k, backend.AnyVersion), backend.ErrNotFound)

	v1 := mustCreate(t, h.s, k, []byte("one"))
	v2, err := h.s.CAS(ctx, k, v1, []byte("two"))
	if err != nil {
		t.Fatalf("CAS: %v", err)
	}
	wantErr(t, "Delete with a stale version", h.s.Delete(ctx, k, v1), backend.ErrConflict)
	wantErr(t, "Delete(NoVersion) of an existing key", h.s.Delete(ctx, k, backend.NoVersion), backend.ErrConflict)
	wantValue(t, h.s, k, []byte("two"), v2)
	if err := h.s.Delete(ctx, k, v2); err != nil {
		t.Fatalf("Delete with the current version: %v", err)
	}
	wantMissing(t, h.s, k)
	wantErr(t, "second Delete", h.s.Delete(ctx, k, v2), backend.ErrNotFound)

	mustCreate(t, h.s, k, []byte("three"))
	if err := h.s.Delete(ctx, k, backend.AnyVersion); err != nil {
		t.Fatalf("Delete(AnyVersion) of an existing key: %v", err)
	}
	wantMissing(t, h.s, k)
	mustCreate(t, h.s, k, []byte("four")) // a deleted key can be created again
	wantValue(t, h.s, k, []byte("four"), backend.NoVersion)
}

func testNoABA(t *testing.T, h *harness) {
	ctx := context.Background()
	k := h.key("k")
	old := mustCreate(t, h.s, k, []byte("v"))
	if err := h.s.Delete(ctx, k, old); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	v := mustCreate(t, h.s, k, []byte("v")) // same bytes
	if v == old {
		t.Fatalf("re-created key got the version %d it had before the delete", v)
	}
	_, err := h.s.CAS(ctx, k, old, []byte("w"))
	wantErr(t, "CAS with a version from before delete and re-create", err, backend.ErrConflict)
	wantErr(t, "Delete with a version from before delete and re-create", h.s.Delete(ctx, k, old), backend.ErrConflict)
	wantValue(t, h.s, k, []byte("v"), v)
}

func testBinaryValues(t *testing.T, h *harness) {
	all := make([]byte, 0, 512)
	for i := range 512 {
		all = append(all, byte(i))
	}
	for i, val := range [][]byte{
		all,
		[]byte("\r\nEND\r\n"),
		[]byte("VALUE x 0 1\r\nEND\r\n"),
		{0},
		bytes.Repeat([]byte{0xff}, 300),
	} {
		k := h.key(fmt.Sprint("bin", i))
		v := mustCreate(t, h.s, k, val)
		wantValue(t, h.s, k, val, v)
	}
}

// maxTestedLimit is the largest MaxValueSize that LargeValues tests values
// at; a store with a higher limit gets a 1 MiB value.
const maxTestedLimit = 64 << 20

func testLargeValues(t *testing.T, h *harness) {
	ctx := context.Background()
	limit := backend.MaxValueSize(h.s)
	if limit > maxTestedLimit {
		t.Logf("MaxValueSize %d is over %d: testing a 1 MiB value and no limit", limit, maxTestedLimit)
		limit = 0
	}
	size := limit
	if limit <= 0 {
		size = 1 << 20
	}
	big := make([]byte, size)
	_, _ = rand.Read(big)
	k := h.key("big")
	v := mustCreate(t, h.s, k, big)
	wantValue(t, h.s, k, big, v)
	if limit <= 0 {
		return
	}
	over := append(big, 'x')
	_, err := h.s.CAS(ctx, k, v, over)
	wantErr(t, "CAS of a value one byte over MaxValueSize", err, backend.ErrTooLarge)
	wantValue(t, h.s, k, big, v)
	k2 := h.key("over")
	_, err = h.s.CAS(ctx, k2, backend.NoVersion, over)
	wantErr(t, "CAS(NoVersion) of a value one byte over MaxValueSize", err, backend.ErrTooLarge)
	wantMissing(t, h.s, k2)
	if p, ok := h.s.(backend.Putter); ok {
		_, err = p.Put(ctx, k2, over)
		wantErr(t, "Put of a value one byte over MaxValueSize", err, backend.ErrTooLarge)
		wantMissing(t, h.s, k2)
	}
}

// printable is every byte a key may hold.
var printable = func() string {
	var b strings.Builder
	for c := byte(0x21); c <= 0x7e; c++ {
		b.WriteByte(c)
	}
	return b.String()
}()

func testKeys(t *testing.T, h *harness) {
	long := h.prefix + strings.Repeat(printable, 3)
	keys := []string{
		h.key("a"),
		h.key("a/"),
		h.key("a/b"),
		h.key(printable),
		long[:backend.MaxKeyLen-1],
		long[:backend.MaxKeyLen],
	}
	// The longest keys differ only in their last byte.
	keys = append(keys, long[:backend.MaxKeyLen-1]+"~")
	vers := make([]backend.Version, len(keys))
	for i, k := range keys {
		vers[i] = mustCreate(t, h.s, k, []byte(k))
	}
	for i, k := range keys {
		wantValue(t, h.s, k, []byte(k), vers[i])
	}
	for _, c := range printable {
		k := h.key("c" + string(c))
		v := mustCreate(t, h.s, k, []byte{byte(c)})
		wantValue(t, h.s, k, []byte{byte(c)}, v)
	}
}

// testInvalidKeys checks that a key outside the rules is either rejected with
// ErrInvalidKey or stored faithfully, never mangled into another key.
func testInvalidKeys(t *testing.T, h *harness) {
	ctx := context.Background()
	long := h.prefix + strings.Repeat("k", backend.MaxKeyLen)
	for _, k := range []string{
		h.key("with space"),
		h.key("tab\t"),
		h.key("nl\r\n"),
		h.key("del\x7f"),
		h.key("high\xff"),
		long,
		long[:len(long)-1] + "j", // differs from long only past byte 250
	} {
		v, err := h.s.CAS(ctx, k, backend.NoVersion, []byte(k))
		if errors.Is(err, backend.ErrInvalidKey) {
			continue
		}
		if err != nil {
			t.Fatalf("CAS(%q): %v; want nil or ErrInvalidKey", k, err)
		}
		wantValue(t, h.s, k, []byte(k), v)
	}
}

func testSliceOwnership(t *testing.T, h *harness) {
	ctx := context.Background()
	k := h.key("k")
	in := []byte("original")
	v := mustCreate(t, h.s, k, in)
	copy(in, "XXXXXXXX") // the store must not have kept in
	wantValue(t, h.s, k, []byte("original"), v)

	got, _, err := h.s.Get(ctx, k)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	copy(got, "YYYYYYYY") // the caller owns got
	wantValue(t, h.s, k, []byte("original"), v)

	if b, ok := h.s.(backend.BatchGetter); ok {
		m, err := b.GetMulti(ctx, []string{k})
		if err != nil {
			t.Fatalf("GetMulti: %v", err)
		}
		copy(m[k].Value, "ZZZZZZZZ")
		wantValue(t, h.s, k, []byte("original"), v)
	}
	if p, ok := h.s.(backend.Putter); ok {
		k2 := h.key("put")
		in := []byte("original")
		v, err := p.Put(ctx, k2, in)
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		copy(in, "XXXXXXXX")
		wantValue(t, h.s, k2, []byte("original"), v)
	}
}

func testContextCanceled(t *testing.T, h *harness) {
	k := h.key("k")
	v := mustCreate(t, h.s, k, []byte("v"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", what, err)
		}
	}
	_, _, err := h.s.Get(ctx, k)
	check("Get", err)
	_, err = h.s.CAS(ctx, k, v, []byte("w"))
	check("CAS", err)
	_, err = h.s.CAS(ctx, h.key("new"), backend.NoVersion, []byte("w"))
	check("CAS(NoVersion)", err)
	check("Delete", h.s.Delete(ctx, k, v))
	if b, ok := h.s.(backend.BatchGetter); ok {
		_, err := b.GetMulti(ctx, []string{k})
		check("GetMulti", err)
	}
	if l, ok := h.s.(backend.Lister); ok {
		check("List", l.List(ctx, h.prefix, func(string) error { return nil }))
	}
	if p, ok := h.s.(backend.Putter); ok {
		_, err := p.Put(ctx, h.key("put"), []byte("w"))
		check("Put", err)
	}
}

func testCreateIfAbsentRace(t *testing.T, h *harness) {
	const rounds, writers = 20, 16
	ctx := context.Background()
	for r := range rounds {
		k := h.key(fmt.Sprint("race", r))
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			vers  [writers]backend.Version
			errs  [writers]error
		)
		for w := range writers {
			wg.Go(func() {
				<-start
				vers[w], errs[w] = h.s.CAS(ctx, k, backend.NoVersion, []byte(fmt.Sprint("writer", w)))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for w, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both created %q", r, winner, w, k)
			case err == nil:
				winner = w
			case !errors.Is(err, backend.ErrConflict):
				t.Fatalf("round %d: writer %d: %v, want nil or ErrConflict", r, w, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer created %q", r, k)
		}
		wantValue(t, h.s, k, []byte(fmt.Sprint("writer", winner)), vers[winner])
	}
}

// CASExclusivity parameters: writers goroutines each add increments to one
// counter with Get+CAS, retrying on conflict.
const (
	writers    = 16
	increments = 200
)

func testCASExclusivity(t *testing.T, h *harness) {
	ctx := context.Background()
	k := h.key("counter")
	mustCreate(t, h.s, k, binary.BigEndian.AppendUint64(nil, 0))
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		conflicts int
		versions  = map[backend.Version]bool{}
	)
	for range writers {
		wg.Go(func() {
			for range increments {
				for {
					b, v, err := h.s.Get(ctx, k)
					if err != nil {
						t.Errorf("Get: %v", err)
						return
					}
					if len(b) != 8 {
						t.Errorf("counter is %d bytes, want 8", len(b))
						return
					}
					n := binary.BigEndian.Uint64(b)
					nv, err := h.s.CAS(ctx, k, v, binary.BigEndian.AppendUint64(nil, n+1))
					if errors.Is(err, backend.ErrConflict) {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if err != nil {
						t.Errorf("CAS: %v", err)
						return
					}
					mu.Lock()
					dup := versions[nv]
					versions[nv] = true
					mu.Unlock()
					if dup {
						t.Errorf("two successful CAS returned version %d", nv)
					}
					break
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	b, _, err := h.s.Get(ctx, k)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got, want := binary.BigEndian.Uint64(b), uint64(writers*increments); got != want {
		t.Fatalf("counter = %d after %d CAS increments, want %d (lost updates)", got, want, want)
	}
	t.Logf("%d increments, %d conflicts", writers*increments, conflicts)
}

func testGetMulti(t *testing.T, h *harness) {
	b, ok := h.s.(backend.BatchGetter)
	if !ok {
		t.Skip("store does not implement backend.BatchGetter")
	}
	ctx := context.Background()
	m, err := b.GetMulti(ctx, nil)
	if err != nil || len(m) != 0 {
		t.Fatalf("GetMulti(nil) = %v, %v; want an empty map", m, err)
	}
	want := map[string]backend.Item{}
	var keys []string
	for i := range 5 {
		k := h.key(fmt.Sprint("k", i))
		val := []byte(fmt.Sprint("value", i))
		if i == 4 {
			val = []byte{}
		}
		want[k] = backend.Item{Value: val, Version: mustCreate(t, h.s, k, val)}
		keys = append(keys, k, h.key(fmt.Sprint("missing", i)))
	}
	deleted := h.key("deleted")
	if err := h.s.Delete(ctx, deleted, mustCreate(t, h.s, deleted, []byte("x"))); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	keys = append(keys, deleted)
	got, err := b.GetMulti(ctx, keys)
	if err != nil {
		t.Fatalf("GetMulti: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("GetMulti returned %d items, want %d", len(got), len(want))
	}
	for k, it := range got {
		w, ok := want[k]
		if !ok {
			t.Errorf("GetMulti returned %q, which is missing", k)
			continue
		}
		if !bytes.Equal(it.Value, w.Value) || it.Value == nil || it.Version != w.Version {
			t.Errorf("GetMulti[%q] = %s@%d, want %s@%d", k, abbrev(it.Value), it.Version, abbrev(w.Value), w.Version)
		}
	}
}

func testList(t *testing.T, h *harness) {
	l, ok := h.s.(backend.Lister)
	if !ok {
		t.Skip("store does not implement backend.Lister")
	}
	ctx := context.Background()
	want := []string{h.key("x/1"), h.key("x/2"), h.key("x/3/deep")}
	for _, k := range append(slices.Clone(want), h.key("x"), h.key("y/1"), h.key("w")) {
		mustCreate(t, h.s, k, []byte("v"))
	}
	gone := h.key("x/gone")
	if err := h.s.Delete(ctx, gone, mustCreate(t, h.s, gone, nil)); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	var got []string
	if err := l.List(ctx, h.key("x/"), func(k string) error {
		got = append(got, k)
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("List(%q) = %q, want %q", h.key("x/"), got, want)
	}

	stop := errors.New("stop")
	calls := 0
	err := l.List(ctx, h.key("x/"), func(string) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("List with fn failing: %v after %d calls, want fn's error after 1 call", err, calls)
	}
	if err := l.List(ctx, h.key("none/"), func(k string) error {
		return fmt.Errorf("fn called for %q", k)
	}); err != nil {
		t.Fatalf("List of an empty prefix: %v", err)
	}
}

func testPut(t *testing.T, h *harness) {
	p, ok := h.s.(backend.Putter)
	if !ok {
		t.Skip("store does not implement backend.Putter")
	}
	ctx := context.Background()
	k := h.key("k")
	v, err := p.Put(ctx, k, []byte("block"))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	wantValue(t, h.s, k, []byte("block"), v)
	if v == backend.NoVersion {
		// Allowed (see backend.Putter): the version is then Get's.
		if _, v, err = h.s.Get(ctx, k); err != nil {
			t.Fatalf("Get after Put: %v", err)
		}
	}
	if err := h.s.Delete(ctx, k, v); err != nil {
		t.Fatalf("Delete with Put's version: %v", err)
	}
	wantMissing(t, h.s, k)
}

func testClose(t *testing.T, h *harness) {
	ctx := context.Background()
	s := h.open(t)
	k := h.key("k")
	v := mustCreate(t, s, k, []byte("v"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, backend.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", what, err)
		}
	}
	_, _, err := s.Get(ctx, k)
	check("Get", err)
	_, err = s.CAS(ctx, k, v, []byte("w"))
	check("CAS", err)
	check("Delete", s.Delete(ctx, k, v))
	if b, ok := s.(backend.BatchGetter); ok {
		_, err := b.GetMulti(ctx, []string{k})
		check("GetMulti", err)
	}
	if l, ok := s.(backend.Lister); ok {
		check("List", l.List(ctx, h.prefix, func(string) error { return nil }))
	}
	if p, ok := s.(backend.Putter); ok {
		_, err := p.Put(ctx, k, []byte("w"))
		check("Put", err)
	}
}
