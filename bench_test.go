package voldfs_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/bench"
	"github.com/voldfs/voldfs/internal/testserver"
)

// The workloads of examples/voldfs-bench as go test benchmarks, on the
// memory store and on a real memcached. Each reports the library's rate
// beside the raw store doing the fewest round trips for the same bytes (the
// "x-raw" ratio) and the store round trips per operation. Sizes are small by
// default; VOLDFS_BENCH_SEQ (MiB), VOLDFS_BENCH_FILES and VOLDFS_BENCH_DIRENTS
// raise them to the figures (256, 10000, 100000):
//
//	go test -run xxx -bench Workload -benchmem -benchtime 1x .

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type benchStore struct {
	name string
	open func(b *testing.B) backend.Store
}

var benchStores = []benchStore{
	{"mem", func(b *testing.B) backend.Store { return memory.New() }},
	{"memcached", func(b *testing.B) backend.Store {
		s, err := memcache.New(testserver.Memcached(b))
		if err != nil {
			b.Fatal(err)
		}
		return s
	}},
}

func BenchmarkWorkload(b *testing.B) {
	seq := int64(envInt("VOLDFS_BENCH_SEQ", 32)) << 20
	files := envInt("VOLDFS_BENCH_FILES", 1000)
	dirents := envInt("VOLDFS_BENCH_DIRENTS", 10000)
	ctx := context.Background()
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			s := st.open(b)
			defer s.Close()
			for i := 0; i < b.N; i++ {
				opts := &voldfs.Options{Name: fmt.Sprintf("bench%d", i)}
				f, err := voldfs.Format(ctx, s, opts)
				if err != nil {
					b.Fatal(err)
				}
				e := bench.Env{Store: s, Open: func() (*voldfs.FS, error) { return voldfs.Open(ctx, s, opts) }}
				report := func(r bench.Row, err error) {
					if err != nil {
						b.Fatalf("%s: %v", r.Name, err)
					}
					b.Log(r)
				}
				for _, call := range []int{4 << 10, 128 << 10, 1 << 20} {
					report(bench.SeqWrite(ctx, e, f, seq, call))
				}
				for _, call := range []int{4 << 10, 128 << 10, 1 << 20} {
					report(bench.SeqRead(ctx, e, seq, call))
				}
				report(bench.RandRead(ctx, e, seq, 2000))
				report(bench.CreateSmall(ctx, e, f, files))
				report(bench.Stat(ctx, e, f, files, true))
				report(bench.Stat(ctx, e, f, files, false))
				report(bench.Readdir(ctx, e, f, dirents))
			}
		})
	}
}
