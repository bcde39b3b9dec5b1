package memcache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	mc "github.com/bradfitz/gomemcache/memcache"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/backendtest"
	"github.com/voldfs/voldfs/backend/faulty"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/txn"
	"github.com/voldfs/voldfs/internal/testserver"
)

var ctx = context.Background()

func newStore(t testing.TB, opts memcache.Options, servers ...string) *memcache.Store {
	t.Helper()
	s, err := memcache.NewWithOptions(opts, servers...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	addr := testserver.Memcached(t)
	backendtest.RunConformanceTests(t, func(t *testing.T) backend.Store {
		return newStore(t, memcache.Options{}, addr)
	})
}

func TestConformanceTwoServers(t *testing.T) {
	addrs := []string{testserver.Memcached(t), testserver.Memcached(t)}
	backendtest.RunConformanceTests(t, func(t *testing.T) backend.Store {
		return newStore(t, memcache.Options{}, addrs...)
	})

	// Keys are spread over both servers.
	s := newStore(t, memcache.Options{}, addrs...)
	defer s.Close()
	const n = 100
	for i := range n {
		if _, err := s.CAS(ctx, fmt.Sprint("spread/", i), backend.NoVersion, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for _, addr := range addrs {
		c := mc.New(addr)
		held := 0
		for i := range n {
			_, err := c.Get(fmt.Sprint("spread/", i))
			if err == nil {
				held++
			} else if !errors.Is(err, mc.ErrCacheMiss) {
				t.Fatal(err)
			}
		}
		if held == 0 || held == n {
			t.Errorf("server %s holds %d of %d keys, want some but not all", addr, held, n)
		}
		total += held
	}
	if total != n {
		t.Errorf("the servers hold %d keys in all, want %d", total, n)
	}
}

// TestServerTooLarge configures a client limit above the server's item size:
// the server's refusal must be ErrTooLarge, and nothing stored.
func TestServerTooLarge(t *testing.T) {
	addr := testserver.Memcached(t)
	s := newStore(t, memcache.Options{MaxValueSize: 4 << 20}, addr)
	defer s.Close()
	big := bytes.Repeat([]byte("x"), 2<<20)
	if _, err := s.CAS(ctx, "big", backend.NoVersion, big); !errors.Is(err, backend.ErrTooLarge) {
		t.Fatalf("CAS of 2 MiB on a 1 MiB server: %v, want ErrTooLarge", err)
	}
	if _, err := s.Put(ctx, "big", big); !errors.Is(err, backend.ErrTooLarge) {
		t.Fatalf("Put of 2 MiB on a 1 MiB server: %v, want ErrTooLarge", err)
	}
	if _, _, err := s.Get(ctx, "big"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Get after a refused write: %v, want ErrNotFound", err)
	}
	// The connection is still usable.
	if _, err := s.CAS(ctx, "small", backend.NoVersion, []byte("v")); err != nil {
		t.Fatal(err)
	}
}

// TestDefaultLimitFits stores a value at the default limit under the longest
// key: the default must fit memcached's default item size.
func TestDefaultLimitFits(t *testing.T) {
	s := newStore(t, memcache.Options{}, testserver.Memcached(t))
	defer s.Close()
	k := strings.Repeat("k", backend.MaxKeyLen)
	val := bytes.Repeat([]byte{0xab}, memcache.DefaultMaxValueSize)
	v, err := s.CAS(ctx, k, backend.NoVersion, val)
	if err != nil {
		t.Fatal(err)
	}
	got, gv, err := s.Get(ctx, k)
	if err != nil || !bytes.Equal(got, val) || gv != v {
		t.Fatalf("Get = %d bytes @%d, %v", len(got), gv, err)
	}
}

// TestTombstones checks delete and re-create at the protocol level: the
// deleted key holds a tombstone, which Get hides and CAS(NoVersion) replaces.
func TestTombstones(t *testing.T) {
	addr := testserver.Memcached(t)
	s := newStore(t, memcache.Options{}, addr)
	defer s.Close()
	v, err := s.CAS(ctx, "k", backend.NoVersion, []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "k", v); err != nil {
		t.Fatal(err)
	}
	raw, err := mc.New(addr).Get("k")
	if err != nil || len(raw.Value) != 0 || raw.Flags != 0 {
		t.Fatalf("raw item after Delete = %+v, %v; want a tombstone", raw, err)
	}
	v2, err := s.CAS(ctx, "k", backend.NoVersion, []byte("two"))
	if err != nil {
		t.Fatalf("CAS(NoVersion) over a tombstone: %v", err)
	}
	if v2 == v || v2 == backend.Version(raw.CasID) {
		t.Fatalf("re-created key has version %d (old %d, tombstone %d)", v2, v, raw.CasID)
	}
	if err := s.Delete(ctx, "k", v2); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "k", v2); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Delete of a tombstone: %v, want ErrNotFound", err)
	}
	// A plain delete removes the tombstone: success or ErrNotFound are both
	// documented outcomes; the key stays absent either way.
	if err := s.Delete(ctx, "k", backend.AnyVersion); err != nil && !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Delete(AnyVersion) of a tombstone: %v", err)
	}
	if _, _, err := s.Get(ctx, "k"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Get after Delete(AnyVersion) of a tombstone: %v, want ErrNotFound", err)
	}
	if _, err := s.CAS(ctx, "k", backend.Version(raw.CasID), []byte("x")); !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("CAS with an old tombstone's CAS unique: %v, want ErrConflict", err)
	}
}

// TestEncodedKeys checks that keys memcached would reject are stored apart.
func TestEncodedKeys(t *testing.T) {
	s := newStore(t, memcache.Options{}, testserver.Memcached(t))
	defer s.Close()
	long := strings.Repeat("x", 300)
	keys := []string{"with space", "with space ", "ctl\x01", "", long, long + "y", "\xfe", "ünï"}
	vers := map[string]backend.Version{}
	for _, k := range keys {
		v, err := s.CAS(ctx, k, backend.NoVersion, []byte(k))
		if err != nil {
			t.Fatalf("CAS(%q): %v", k, err)
		}
		vers[k] = v
	}
	m, err := s.GetMulti(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if it := m[k]; string(it.Value) != k || it.Version != vers[k] {
			t.Errorf("GetMulti[%q] = %q@%d, want %q@%d", k, it.Value, it.Version, k, vers[k])
		}
	}
}

func TestServerDown(t *testing.T) {
	s := newStore(t, memcache.Options{}, "127.0.0.1:1")
	defer s.Close()
	_, _, err := s.Get(ctx, "k")
	if err == nil || errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("Get from a dead server: %v, want a failure", err)
	}
}

func BenchmarkStore(b *testing.B) {
	s := newStore(b, memcache.Options{}, testserver.Memcached(b))
	defer s.Close()
	backendtest.RunBenchmarks(b, s)
}

// TestContextHungServer: a server that never replies must not hold a call
// past its context.
func TestContextHungServer(t *testing.T) {
	addr := testserver.Silent(t)
	s := newStore(t, memcache.Options{Timeout: time.Minute}, addr)
	defer s.Close()
	for name, op := range map[string]func(context.Context) error{
		"Get":    func(ctx context.Context) error { _, _, err := s.Get(ctx, "k"); return err },
		"CAS":    func(ctx context.Context) error { _, err := s.CAS(ctx, "k", backend.NoVersion, []byte("v")); return err },
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, "k", 7) },
	} {
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		start := time.Now()
		err := op(cctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s on a hung server: %v, want DeadlineExceeded", name, err)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("%s returned after %v", name, el)
		}
	}
}

// TestConformanceTxn runs the whole suite, multi-key commits included,
// through the fallback on per-key CAS.
func TestConformanceTxn(t *testing.T) {
	addr := testserver.Memcached(t)
	backendtest.RunConformanceTests(t, func(t *testing.T) backend.Store {
		return txn.Wrap(newStore(t, memcache.Options{}, addr))
	})
}

// TestCommitTests: RunCommitTests wraps a store without a Committer.
func TestCommitTests(t *testing.T) {
	addr := testserver.Memcached(t)
	backendtest.RunCommitTests(t, func(t *testing.T) backend.Store {
		return newStore(t, memcache.Options{}, addr)
	})
}

func BenchmarkCommitTxn(b *testing.B) {
	addr := testserver.Memcached(b)
	for _, n := range []int{2, 3} {
		b.Run(fmt.Sprintf("%dkeys", n), func(b *testing.B) {
			f := faulty.Wrap(newStore(b, memcache.Options{}, addr), nil)
			defer f.Close()
			backendtest.BenchmarkCommit(b, txn.Wrap(f), n, f.Ops)
		})
	}
}
