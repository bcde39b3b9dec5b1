package voldfs

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/testserver"
)

// Namespace benchmarks (issue #12, item 8). Each reports the store calls
// one operation costs: trips/op counts what the FS issued (FS.Stats, a
// multi-key commit counted once), raw/op what reached the store (through
// the txn fallback a commit is several raw calls).

// nsCountStore counts the calls that reach a store.
type nsCountStore struct {
	backend.Store
	n atomic.Int64
}

func (c *nsCountStore) Get(ctx context.Context, k string) ([]byte, backend.Version, error) {
	c.n.Add(1)
	return c.Store.Get(ctx, k)
}

func (c *nsCountStore) CAS(ctx context.Context, k string, old backend.Version, v []byte) (backend.Version, error) {
	c.n.Add(1)
	return c.Store.CAS(ctx, k, old, v)
}

func (c *nsCountStore) Delete(ctx context.Context, k string, old backend.Version) error {
	c.n.Add(1)
	return c.Store.Delete(ctx, k, old)
}

func (c *nsCountStore) Put(ctx context.Context, k string, v []byte) (backend.Version, error) {
	c.n.Add(1)
	return backend.Put(ctx, c.Store, k, v)
}

func (c *nsCountStore) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	c.n.Add(1)
	return backend.GetMulti(ctx, c.Store, keys)
}

func (c *nsCountStore) List(ctx context.Context, p string, fn func(string) error) error {
	c.n.Add(1)
	return backend.List(ctx, c.Store, p, fn)
}

// nsCountCommitStore is a nsCountStore over a store with native commits.
type nsCountCommitStore struct{ *nsCountStore }

func (c nsCountCommitStore) Commit(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	c.n.Add(1)
	return backend.Commit(ctx, c.Store, ops)
}

// nsStores are the stores the namespace benchmarks run on: native commits
// (memory, bolt) and the txn fallback (memory without its Committer,
// memcached).
func nsStores(b *testing.B) []struct {
	name string
	new  func(b *testing.B) (backend.Store, *nsCountStore)
} {
	counted := func(s backend.Store) (backend.Store, *nsCountStore) {
		c := &nsCountStore{Store: s}
		if _, ok := s.(backend.Committer); ok {
			return nsCountCommitStore{c}, c
		}
		return c, c
	}
	return []struct {
		name string
		new  func(b *testing.B) (backend.Store, *nsCountStore)
	}{
		{"memory", func(b *testing.B) (backend.Store, *nsCountStore) { return counted(memory.New()) }},
		{"bolt", func(b *testing.B) (backend.Store, *nsCountStore) {
			s, err := bolt.Open(filepath.Join(b.TempDir(), "ns.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return counted(s)
		}},
		{"memory-fallback", func(b *testing.B) (backend.Store, *nsCountStore) { return counted(casOnly{memory.New()}) }},
		{"memcached-fallback", func(b *testing.B) (backend.Store, *nsCountStore) {
			s, err := memcache.New(testserver.Memcached(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return counted(s)
		}},
	}
}

func reportTrips(b *testing.B, fss []*FS, before []Stats, raw *nsCountStore, raw0 int64, ops int) {
	var trips, conflicts int64
	for i, f := range fss {
		st := f.Stats()
		trips += st.RoundTrips() - before[i].RoundTrips()
		conflicts += st.Conflicts - before[i].Conflicts
	}
	b.ReportMetric(float64(trips)/float64(ops), "trips/op")
	b.ReportMetric(float64(raw.n.Load()-raw0)/float64(ops), "raw/op")
	b.ReportMetric(float64(conflicts)/float64(ops), "conflicts/op")
}

// BenchmarkNamespaceCreate creates empty files in one directory (open
// O_CREATE|O_EXCL, close).
func BenchmarkNamespaceCreate(b *testing.B) {
	for _, st := range nsStores(b) {
		b.Run(st.name, func(b *testing.B) {
			s, raw := st.new(b)
			ctx := context.Background()
			f, err := Format(ctx, s, &Options{Name: fmt.Sprintf("c%d", b.N)})
			if err != nil {
				b.Fatal(err)
			}
			if err := f.Mkdir("d", 0o755); err != nil {
				b.Fatal(err)
			}
			before, raw0 := []Stats{f.Stats()}, raw.n.Load()
			b.ResetTimer()
			for i := range b.N {
				w, err := f.Create(fmt.Sprintf("d/f%d", i))
				if err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportTrips(b, []*FS{f}, before, raw, raw0, b.N)
		})
	}
}

// BenchmarkNamespaceRenameAcross moves files between two shared
// directories from 1 and 4 clients at once (each client its own files, all
// in the same two directories, so the clients' commits conflict on them).
func BenchmarkNamespaceRenameAcross(b *testing.B) {
	for _, st := range nsStores(b) {
		for _, clients := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/clients=%d", st.name, clients), func(b *testing.B) {
				s, raw := st.new(b)
				ctx := context.Background()
				o := &Options{Name: fmt.Sprintf("r%d-%d", clients, b.N)}
				f0, err := Format(ctx, s, o)
				if err != nil {
					b.Fatal(err)
				}
				for _, d := range []string{"x", "y"} {
					if err := f0.Mkdir(d, 0o755); err != nil {
						b.Fatal(err)
					}
				}
				fss := make([]*FS, clients)
				before := make([]Stats, clients)
				for i := range fss {
					if fss[i], err = Open(ctx, s, o); err != nil {
						b.Fatal(err)
					}
					for k := range 4 {
						if err := fss[i].WriteFile(fmt.Sprintf("x/c%d-%d", i, k), nil, 0o644); err != nil {
							b.Fatal(err)
						}
					}
					before[i] = fss[i].Stats()
				}
				raw0 := raw.n.Load()
				per := (b.N + clients - 1) / clients
				b.ResetTimer()
				var wg sync.WaitGroup
				for i, f := range fss {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for n := range per {
							k := n % 4
							from, to := "x", "y"
							if (n/4)%2 == 1 {
								from, to = "y", "x"
							}
							if err := f.Rename(fmt.Sprintf("%s/c%d-%d", from, i, k), fmt.Sprintf("%s/c%d-%d", to, i, k)); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				reportTrips(b, fss, before, raw, raw0, per*clients)
			})
		}
	}
}
