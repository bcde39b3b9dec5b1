package voldfs_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/bench"
)

// BenchmarkCreateBolt creates, writes (4 KiB) and closes small files on the
// memory store and on bolt files on the disk with group commit (the
// default) and with an fsync per commit, in one run (VOLDFS_BENCH_FILES
// files, 1000 by default):
//
//	go test -run xxx -bench CreateBolt -benchtime 1x .
func BenchmarkCreateBolt(b *testing.B) {
	files := envInt("VOLDFS_BENCH_FILES", 1000)
	ctx := context.Background()
	boltStore := func(opts *bolt.Options) func(b *testing.B) backend.Store {
		return func(b *testing.B) backend.Store {
			s, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), opts)
			if err != nil {
				b.Fatal(err)
			}
			return s
		}
	}
	for _, st := range []benchStore{
		{"mem", func(b *testing.B) backend.Store { return memory.New() }},
		{"bolt-group-commit", boltStore(nil)},
		{"bolt-sync-always", boltStore(&bolt.Options{Durability: bolt.SyncAlways})},
	} {
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
				r, err := bench.CreateSmall(ctx, e, f, files)
				if err != nil {
					b.Fatalf("%s: %v", r.Name, err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				b.Log(r)
				b.ReportMetric(float64(files)/r.Lib.Seconds(), "files/s")
			}
		})
	}
}
