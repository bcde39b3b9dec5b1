package etcd

import (
	"context"
	"fmt"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/internal/bench"
	"github.com/voldfs/voldfs/internal/testserver"
	"github.com/voldfs/voldfs/voldfstest"
)

// TestFilesystem runs the filesystem suite (package voldfstest) on the etcd
// cluster, alone and split (inodes in etcd, blocks in memcached). Every
// subtest gets a fresh key prefix of the one cluster.
func TestFilesystem(t *testing.T) {
	c := startCluster(t, 3)
	newEtcd := newStoreFunc(c)
	newStore := func(t *testing.T) backend.Store {
		s := newEtcd(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	// Each create is a few Raft commits: a small big directory.
	t.Run("etcd", func(t *testing.T) {
		voldfstest.Run(t, voldfstest.Config{NewStore: newStore, BigDir: 500})
	})
	t.Run("split-etcd-memcached", func(t *testing.T) {
		newBlocks := func(t *testing.T) backend.Store {
			s, err := memcache.New(testserver.Memcached(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		voldfstest.Run(t, voldfstest.Config{NewStore: newStore, NewBlocks: newBlocks, BigDir: 500})
	})
}

// BenchmarkFilesystem measures small-file creates and stats through voldfs
// on the three-member cluster, beside raw etcd requests (see BENCHMARKS.md).
func BenchmarkFilesystem(b *testing.B) {
	c := startCluster(b, 3)
	ctx := context.Background()
	s, err := New(c.config(), WithPrefix("voldfs-fsbench/"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	benchFilesystem(b, ctx, s)
}

func benchFilesystem(b *testing.B, ctx context.Context, s backend.Store) {
	const files = 300
	for i := 0; i < b.N; i++ {
		rows, err := bench.Metadata(ctx, s, fmt.Sprintf("fs%d-%d", b.N, i), files)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rows {
			b.Log(r)
		}
	}
}
