package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/internal/testserver"
)

// newStoreFunc returns a constructor of stores on the servers at addrs, each
// under its own prefix. Whoever calls it closes the store (the conformance
// suite does).
func newStoreFunc(addrs []string, cluster bool) func(t *testing.T) backend.Store {
	var n atomic.Int64
	return func(t *testing.T) backend.Store {
		return New(newClient(addrs, cluster), WithPrefix(fmt.Sprintf("voldfs-test/%d/", n.Add(1))))
	}
}

// checkSpread writes 100 keys through a cluster store and checks that every
// master holds some of them: neither the key layout nor the version counters
// may funnel a store into one slot.
func checkSpread(t *testing.T, addrs []string) {
	t.Helper()
	ctx := context.Background()
	s := New(newClient(addrs, true), WithPrefix("voldfs-spread/"))
	defer s.Close()
	for i := range 100 {
		if _, err := s.CAS(ctx, fmt.Sprintf("inode/%d", i), backend.NoVersion, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for _, addr := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		var n int
		iter := c.Scan(ctx, 0, "voldfs-spread/*", 1000).Iterator()
		for iter.Next(ctx) {
			n++
		}
		dbsize, err := c.DBSize(ctx).Result()
		c.Close()
		if err == nil {
			err = iter.Err()
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("master %s: %d of the 100 keys, DBSIZE %d", addr, n, dbsize)
		if n == 0 {
			t.Errorf("master %s holds none of the 100 keys", addr)
		}
	}
}

// TestSlots checks the store's hash slot function and counter names against
// the server's CLUSTER KEYSLOT.
func TestSlots(t *testing.T) {
	addrs := startCluster(t, 3)
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: addrs[0]})
	defer c.Close()
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	keys := []string{"", "a", "{", "}", "{}", "{}a", "a{}b", "a{b}c", "{a}{b}", "a{b", "a}b{c}", "{{x}}", "voldfs-test/1/bt-00/k"}
	for range 200 {
		b := make([]byte, 1+rng.IntN(40))
		for i := range b {
			b[i] = "ab{}/-xyz0"[rng.IntN(10)]
		}
		keys = append(keys, string(b))
	}
	for _, k := range keys {
		want, err := c.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := keySlot(k); int64(got) != want {
			t.Errorf("keySlot(%q) = %d, server says %d", k, got, want)
		}
	}
	for slot := range numSlots {
		if got := keySlot(counterKey(slot)); got != slot {
			t.Fatalf("counter %q of slot %d is in slot %d", counterKey(slot), slot, got)
		}
	}
	for _, slot := range []int{0, 1, 5000, numSlots - 1} {
		want, err := c.ClusterKeySlot(ctx, counterKey(slot)).Result()
		if err != nil || want != int64(slot) {
			t.Errorf("server puts counter %q of slot %d in slot %d (%v)", counterKey(slot), slot, want, err)
		}
	}
}

// TestVersions checks the version scheme: versions grow within a slot,
// survive the deletion of a key, and stay fresh even if the slot's counter
// is lost or set back.
func TestVersions(t *testing.T) {
	addr := startStandalone(t)
	ctx := context.Background()
	s := New(newClient([]string{addr}, false), WithPrefix("voldfs-versions/"))
	defer s.Close()
	raw := goredis.NewClient(&goredis.Options{Addr: addr})
	defer raw.Close()

	v1, err := s.CAS(ctx, "k", backend.NoVersion, []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	// Many quick writes: each version above the last, though they come
	// faster than the clock's microseconds at times.
	last := v1
	for i := range 200 {
		v, err := s.CAS(ctx, "k", last, []byte("x"))
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if v <= last {
			t.Fatalf("write %d: version %d after %d", i, v, last)
		}
		last = v
	}
	if err := s.Delete(ctx, "k", last); err != nil {
		t.Fatal(err)
	}
	// Lose the counter, and set it back in time: the clock still keeps the
	// re-created key's version above the deleted one's.
	counter := counterKey(keySlot(s.prefix + "k"))
	if err := raw.Set(ctx, counter, "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	v2, err := s.CAS(ctx, "k", backend.NoVersion, []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	if v2 <= last {
		t.Fatalf("re-created key got version %d, deleted one had %d", v2, last)
	}
	if err := raw.Del(ctx, counter).Err(); err != nil {
		t.Fatal(err)
	}
	v3, err := s.CAS(ctx, "k", v2, []byte("3"))
	if err != nil {
		t.Fatal(err)
	}
	if v3 <= v2 {
		t.Fatalf("version %d after %d with the counter deleted", v3, v2)
	}
	// A counter far ahead of the clock (as after a clock step back) still
	// rules.
	if err := raw.Set(ctx, counter, "8000000000000000", 0).Err(); err != nil {
		t.Fatal(err)
	}
	v4, err := s.CAS(ctx, "k", v3, []byte("4"))
	if err != nil {
		t.Fatal(err)
	}
	if v4 != 8000000000000001 {
		t.Fatalf("version %d with the counter at 8000000000000000, want 8000000000000001", v4)
	}
	if _, err := s.CAS(ctx, "k", v3, []byte("5")); !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("CAS with a stale version: %v, want ErrConflict", err)
	}
}

// TestPaging lists and batch-reads more keys than one SCAN or one pipeline
// holds, on a cluster, with keys that contain glob characters.
func TestPaging(t *testing.T) {
	addrs := startCluster(t, 3)
	ctx := context.Background()
	s := New(newClient(addrs, true), WithPrefix("voldfs-paging/[*?\\]/"))
	defer s.Close()
	other := New(newClient(addrs, true), WithPrefix("voldfs-paging/x/"))
	defer other.Close()
	const n = 3*batchSize + 5
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("p*%04d?", i)
	}
	for start := 0; start < n; start += 100 {
		p := s.client.Pipeline()
		for _, k := range keys[start:min(start+100, n)] {
			writeScript.Eval(ctx, p, []string{s.prefix + k, counterKey(keySlot(s.prefix + k))}, "0", k)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := other.CAS(ctx, "p*0000?", backend.NoVersion, nil); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	if err := s.List(ctx, "p*", func(k string) error { seen[k]++; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("List saw %d keys, want %d", len(seen), n)
	}
	for k := range seen {
		if !strings.HasPrefix(k, "p*") {
			t.Fatalf("List reported %q", k)
		}
	}
	items, err := s.GetMulti(ctx, append(keys[:n:n], "missing"))
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != n {
		t.Fatalf("GetMulti returned %d items, want %d", len(items), n)
	}
	for _, k := range keys {
		if string(items[k].Value) != k || items[k].Version == backend.NoVersion {
			t.Fatalf("GetMulti[%q] = %q version %d", k, items[k].Value, items[k].Version)
		}
	}
}

// TestDeadline checks that, with ContextTimeoutEnabled, a call to a server
// that never answers returns the context's error once its deadline passes.
func TestDeadline(t *testing.T) {
	addr := testserver.Silent(t)
	s := New(newClient([]string{addr}, false))
	defer s.Close()
	for name, call := range map[string]func(ctx context.Context) error{
		"Get": func(ctx context.Context) error { _, _, err := s.Get(ctx, "k"); return err },
		"CAS": func(ctx context.Context) error { _, err := s.CAS(ctx, "k", backend.NoVersion, []byte("v")); return err },
		"Delete": func(ctx context.Context) error {
			return s.Delete(ctx, "k", backend.AnyVersion)
		},
		"List": func(ctx context.Context) error { return s.List(ctx, "", func(string) error { return nil }) },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		err := call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s against a silent server: %v, want context.DeadlineExceeded", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s returned %v after a 200ms deadline", name, d)
		}
	}
}
