package redis

import (
	"context"
	"fmt"
	"testing"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/internal/bench"
	"github.com/voldfs/voldfs/internal/fscheck"
)

// TestFilesystem runs a voldfs filesystem on a standalone Redis and on a
// three-master Redis Cluster (keys of one filesystem spread over all
// slots), with a second client checking every byte.
func TestFilesystem(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		cluster bool
		start   func(t testing.TB) []string
	}{
		{"standalone", false, func(t testing.TB) []string { return []string{startStandalone(t)} }},
		{"cluster", true, func(t testing.TB) []string { return startCluster(t, 3) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addrs := tc.start(t)
			s := New(newClient(addrs, tc.cluster), WithPrefix("fs/"))
			defer s.Close()
			f, err := voldfs.Format(ctx, s, &voldfs.Options{BlockSize: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			fscheck.Run(t, f, func() (*voldfs.FS, error) { return voldfs.Open(ctx, s, nil) })
		})
	}
}

// BenchmarkFilesystem measures small-file creates and stats through voldfs
// on Redis, standalone and Cluster, beside raw Redis requests (see
// BENCHMARKS.md).
func BenchmarkFilesystem(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		cluster bool
	}{{"standalone", false}, {"cluster", true}} {
		b.Run(tc.name, func(b *testing.B) {
			var addrs []string
			if tc.cluster {
				addrs = startCluster(b, 3)
			} else {
				addrs = []string{startStandalone(b)}
			}
			s := New(newClient(addrs, tc.cluster), WithPrefix("fsbench/"))
			defer s.Close()
			const files = 2000
			for i := 0; i < b.N; i++ {
				rows, err := bench.Metadata(ctx, s, fmt.Sprintf("fs%d-%d", b.N, i), files)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range rows {
					b.Log(r)
				}
			}
		})
	}
}
