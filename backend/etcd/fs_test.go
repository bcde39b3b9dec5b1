package etcd

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/bench"
	"github.com/voldfs/voldfs/internal/fscheck"
	"github.com/voldfs/voldfs/internal/testserver"
)

// TestFilesystem runs a voldfs filesystem on the etcd cluster, alone and
// split (inodes in etcd, blocks in memcached), and checks that a mount with
// the wrong blocks store is refused.
func TestFilesystem(t *testing.T) {
	c := startCluster(t, 3)
	ctx := context.Background()
	newStore := newStoreFunc(c)

	t.Run("etcd", func(t *testing.T) {
		s := newStore(t)
		defer s.Close()
		f, err := voldfs.Format(ctx, s, &voldfs.Options{BlockSize: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		fscheck.Run(t, f, func() (*voldfs.FS, error) { return voldfs.Open(ctx, s, nil) })
	})

	t.Run("split-etcd-memcached", func(t *testing.T) {
		inodes := newStore(t)
		defer inodes.Close()
		blocks, err := memcache.New(testserver.Memcached(t))
		if err != nil {
			t.Fatal(err)
		}
		defer blocks.Close()
		opts := &voldfs.Options{Blocks: blocks}
		f, err := voldfs.Format(ctx, inodes, opts)
		if err != nil {
			t.Fatal(err)
		}
		fscheck.Run(t, f, func() (*voldfs.FS, error) { return voldfs.Open(ctx, inodes, opts) })

		// The pairing is recorded: no blocks store, or another one, is refused.
		if _, err := voldfs.Open(ctx, inodes, nil); !errors.Is(err, voldfs.ErrWrongStore) {
			t.Fatalf("Open without the blocks store: %v, want ErrWrongStore", err)
		}
		if _, err := voldfs.Open(ctx, inodes, &voldfs.Options{Blocks: memory.New()}); !errors.Is(err, voldfs.ErrWrongStore) {
			t.Fatalf("Open with another blocks store: %v, want ErrWrongStore", err)
		}
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
