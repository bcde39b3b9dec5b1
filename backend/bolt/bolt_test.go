package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/backendtest"
	"github.com/voldfs/voldfs/backend/bolt"
	"github.com/voldfs/voldfs/internal/committest"
)

func open(t testing.TB, path string, opts *bolt.Options) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, func(t *testing.T) backend.Store {
		return open(t, filepath.Join(t.TempDir(), "voldfs.db"), &bolt.Options{NoSync: true})
	})
}

// TestConformanceDefault runs the suite with real fsyncs and group commit.
func TestConformanceDefault(t *testing.T) {
	backendtest.RunConformanceTests(t, func(t *testing.T) backend.Store {
		return open(t, filepath.Join(t.TempDir(), "voldfs.db"), nil)
	})
}

// TestConformanceManual writes batches only when the pending bound is
// reached (a tiny one), so most reads are answered from the overlay and
// most writes wait for the flusher.
func TestConformanceManual(t *testing.T) {
	backendtest.RunConformanceTests(t, func(t *testing.T) backend.Store {
		return open(t, filepath.Join(t.TempDir(), "voldfs.db"), &bolt.Options{NoSync: true, Interval: -1, MaxPending: 4096})
	})
}

func TestConformanceSyncAlways(t *testing.T) {
	if testing.Short() {
		t.Skip("fsync per commit is slow; the other runs cover the logic")
	}
	backendtest.RunConformanceTests(t, func(t *testing.T) backend.Store {
		return open(t, filepath.Join(t.TempDir(), "voldfs.db"), &bolt.Options{Durability: bolt.SyncAlways})
	})
}

func TestCommit(t *testing.T) {
	for name, opts := range map[string]*bolt.Options{
		"default": nil,
		"manual":  {NoSync: true, Interval: -1, MaxPending: 4096},
		"always":  {Durability: bolt.SyncAlways, NoSync: true},
	} {
		t.Run(name, func(t *testing.T) {
			committest.Run(t, func(t *testing.T) backend.Store {
				s := open(t, filepath.Join(t.TempDir(), "voldfs.db"), opts)
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "voldfs.db")
	s := open(t, path, nil)
	v1, err := s.CAS(ctx, "k", backend.NoVersion, []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.CAS(ctx, "k", v1, []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	gone, err := s.CAS(ctx, "gone", backend.NoVersion, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "gone", gone); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, nil)
	defer s.Close()
	got, v, err := s.Get(ctx, "k")
	if err != nil || string(got) != "two" || v != v2 {
		t.Fatalf("after reopen Get = %q@%d, %v; want two@%d", got, v, err, v2)
	}
	if _, err := s.CAS(ctx, "k", v1, []byte("stale")); !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("CAS with a version from before reopen: %v, want ErrConflict", err)
	}
	// Versions keep growing: a key re-created after reopen gets a new one.
	v3, err := s.CAS(ctx, "gone", backend.NoVersion, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if v3 <= max(v2, gone) {
		t.Fatalf("version after reopen %d not above earlier ones %d, %d", v3, v2, gone)
	}
	if err := s.Delete(ctx, "gone", gone); !errors.Is(err, backend.ErrConflict) {
		t.Fatalf("Delete with a version from before reopen: %v, want ErrConflict", err)
	}
}

// TestListBatches lists more keys than one read transaction holds.
func TestListBatches(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "voldfs.db"), &bolt.Options{NoSync: true})
	defer s.Close()
	var want []string
	for i := range 2500 {
		k := fmt.Sprintf("p/%05d", i)
		want = append(want, k)
		if _, err := s.Put(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"p", "o/1", "q/1"} {
		if _, err := s.Put(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	err := s.List(ctx, "p/", func(k string) error {
		got = append(got, k)
		// fn may write to the store: List holds no transaction.
		_, err := s.Put(ctx, "q/"+k, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List returned %d keys, want %d", len(got), len(want))
	}
}

func BenchmarkStore(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "voldfs.db"), nil)
	defer s.Close()
	backendtest.RunBenchmarks(b, s)
}

func BenchmarkStoreSyncAlways(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "voldfs.db"), &bolt.Options{Durability: bolt.SyncAlways})
	defer s.Close()
	backendtest.RunBenchmarks(b, s)
}

func BenchmarkStoreNoSync(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "voldfs.db"), &bolt.Options{NoSync: true})
	defer s.Close()
	backendtest.RunBenchmarks(b, s)
}
