package redis

import (
	"context"
	"fmt"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/internal/bench"
	"github.com/voldfs/voldfs/voldfstest"
)

// TestFilesystem runs the filesystem suite (package voldfstest) on a
// standalone Redis and on a three-master Redis Cluster (keys of one
// filesystem spread over all slots). Every subtest gets a fresh key prefix of
// the one server or cluster.
func TestFilesystem(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster bool
		start   func(t testing.TB) []string
	}{
		{"standalone", false, func(t testing.TB) []string { return []string{startStandalone(t)} }},
		{"cluster", true, func(t testing.TB) []string { return startCluster(t, 3) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newRedis := newStoreFunc(tc.start(t), tc.cluster)
			newStore := func(t *testing.T) backend.Store {
				s := newRedis(t)
				t.Cleanup(func() { s.Close() })
				return s
			}
			voldfstest.Run(t, voldfstest.Config{NewStore: newStore, BigDir: 500})
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
