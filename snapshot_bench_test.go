package voldfs

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/faulty"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/testserver"
)

// Snapshot benchmarks (BENCHMARKS.md, "Snapshots (#15)"):
//
//	go test -run xxx -bench 'Snapshot' -benchtime 200x .
//	VOLDFS_BENCH_SNAPFILES=1000,100000,1000000 go test -run xxx -bench 'BenchmarkSnapshot$' -benchtime 100x -timeout 2h .

func snapBenchStores() []struct {
	name string
	open func(b *testing.B) backend.Store
} {
	return []struct {
		name string
		open func(b *testing.B) backend.Store
	}{
		{"mem", func(b *testing.B) backend.Store { return memory.New() }},
		{"memcached", func(b *testing.B) backend.Store {
			s, err := memcache.New(testserver.Memcached(b))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
}

// BenchmarkSnapshot times taking a snapshot of a tree of n small files and
// counts its store round trips.
func BenchmarkSnapshot(b *testing.B) {
	sizes := []int{1000}
	if v := os.Getenv("VOLDFS_BENCH_SNAPFILES"); v != "" {
		sizes = nil
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(s)
			if err != nil {
				b.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	ctx := context.Background()
	for _, n := range sizes {
		b.Run("files="+strconv.Itoa(n), func(b *testing.B) {
			fst := faulty.Wrap(memory.New(), nil)
			f, err := Format(ctx, fst, &Options{Snapshots: true})
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			makeFiles(b, f, n)
			b.ResetTimer()
			var ops int64
			for i := 0; i < b.N; i++ {
				before := fst.Ops()
				if err := f.Snapshot(ctx, "s"+strconv.Itoa(i)); err != nil {
					b.Fatal(err)
				}
				ops += fst.Ops() - before
				if i%100 == 99 {
					// Keep the table small: its size, not the tree's,
					// is what a snapshot's cost grows with.
					b.StopTimer()
					for j := i - 99; j <= i; j++ {
						if err := f.DeleteSnapshot(ctx, "s"+strconv.Itoa(j)); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(ops)/float64(b.N), "rt/op")
		})
	}
}

// BenchmarkWriteAfterSnapshot times one 4 KiB overwrite and commit of a
// 1 MiB file: with no snapshot ever taken ("none"; on memcached formatted
// without Options.Snapshots, so unfenced), formatted with Options.Snapshots
// but with no snapshot yet ("fenced"), with a snapshot taken
// once before ("steady": fenced, nothing to preserve), and with a snapshot
// taken before every write ("first": the first change after a snapshot,
// which preserves the old record).
func BenchmarkWriteAfterSnapshot(b *testing.B) {
	ctx := context.Background()
	for _, st := range snapBenchStores() {
		for _, mode := range []string{"none", "fenced", "steady", "first"} {
			b.Run(st.name+"/"+mode, func(b *testing.B) {
				raw := st.open(b)
				defer raw.Close()
				s := faulty.Wrap(raw, nil) // counts the store's own operations
				f, err := Format(ctx, s, &Options{BlockSize: 64 << 10, Snapshots: mode != "none"})
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				if err := f.WriteFile("f", make([]byte, 1<<20), 0o644); err != nil {
					b.Fatal(err)
				}
				if mode == "steady" || mode == "first" {
					if err := f.Snapshot(ctx, "base"); err != nil {
						b.Fatal(err)
					}
				}
				w, err := f.OpenFile("f", os.O_RDWR, 0)
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				buf := make([]byte, 4096)
				var rt int64
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if mode == "first" {
						b.StopTimer()
						if i%500 == 499 {
							for j := i - 499; j < i; j++ {
								// Not timed; frees nothing (deadlists are not built).
								f.DeleteSnapshot(ctx, "s"+strconv.Itoa(j))
							}
						}
						if err := f.Snapshot(ctx, "s"+strconv.Itoa(i)); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					before := s.Ops()
					buf[0] = byte(i)
					if _, err := w.WriteAt(buf, int64(i%256)*4096); err != nil {
						b.Fatal(err)
					}
					if err := w.Sync(); err != nil {
						b.Fatal(err)
					}
					f.WaitFrees()
					rt += s.Ops() - before
				}
				b.StopTimer()
				b.ReportMetric(float64(rt)/float64(b.N), "store-ops/op")
			})
		}
	}
}

// BenchmarkDeleteSnapshot times deleting a snapshot of a tree of 1000 small
// files after 10 of them changed, and
// counts its store requests: the walk reads the snapshot's inodes (mostly
// shared with the live tree's caches) and deletes what only it held.
func BenchmarkDeleteSnapshot(b *testing.B) {
	ctx := context.Background()
	fst := faulty.Wrap(memory.New(), nil)
	f, err := Format(ctx, fst, &Options{Snapshots: true})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	makeFiles(b, f, 1000)
	b.ResetTimer()
	var ops int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := f.Snapshot(ctx, "s"); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < 10; j++ {
			if err := f.WriteFile("d0/f"+strconv.Itoa(j), []byte(strconv.Itoa(i)), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		before := fst.Ops()
		b.StartTimer()
		if err := f.DeleteSnapshot(ctx, "s"); err != nil {
			b.Fatal(err)
		}
		ops += fst.Ops() - before
	}
	b.StopTimer()
	b.ReportMetric(float64(ops)/float64(b.N), "rt/op")
}
