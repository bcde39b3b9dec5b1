package voldfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

// fallbackStores are stores without native multi-key commits: voldfs
// wraps them with backend/txn, where the snapshot fence is a lock.
var fallbackStores = []struct {
	name string
	new  func(t *testing.T) backend.Store
}{
	{"memory-txn", func(t *testing.T) backend.Store {
		s := memory.New()
		t.Cleanup(func() { s.Close() })
		return struct{ backend.Store }{s} // hides memory's Committer
	}},
	{"memcached", internalMemcached},
}

// fenceSeed returns the test's seed, printed for replay: VOLDFS_SEED=n.
func fenceSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("VOLDFS_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (replay with VOLDFS_SEED=%d)", seed, seed)
	return seed
}

// TestSnapshotFenceFirst: on a store without native commits, a client B
// that opened (and committed) before the filesystem's FIRST snapshot, and
// has read nothing since, writes, truncates, removes, renames and creates
// files after client A took it. The snapshot stays byte-identical (read
// through a fresh client, so no cache hides a lost record or block) and
// fsck is clean: B cannot commit into the past, nor free the snapshot's
// blocks.
func TestSnapshotFenceFirst(t *testing.T) {
	seed := fenceSeed(t)
	for _, st := range fallbackStores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(seed, 0))
			s := st.new(t)
			opts := &Options{BlockSize: 4096, Snapshots: true, AttrTimeout: time.Hour}
			a, err := Format(ctx, s, opts)
			require.NoError(t, err)
			defer a.Close()
			const files = 8
			name := func(i int) string { return "f" + strconv.Itoa(i) }
			for i := 0; i < files; i++ {
				writeFile(t, a, name(i), pattern(1+rng.IntN(20000), byte(i)))
			}
			b, err := Open(ctx, s, opts)
			require.NoError(t, err)
			defer b.Close()
			writeFile(t, b, "mine", []byte("before")) // b has committed: its fence state is loaded
			for i := 0; i < files; i++ {
				_, err := b.Stat(name(i)) // b caches every inode
				require.NoError(t, err)
			}

			require.NoError(t, a.Snapshot(ctx, "first"))
			fresh, err := Open(ctx, s, opts)
			require.NoError(t, err)
			sv, err := fresh.OpenSnapshot(ctx, "first")
			require.NoError(t, err)
			want := treeSums(t, sv)
			fresh.Close()

			for step := 0; step < 12; step++ {
				f := name(rng.IntN(files))
				op := rng.IntN(5)
				if step < 5 {
					op = step // every kind at least once
				}
				switch op {
				case 0: // overwrite a block in place
					w, err := b.OpenFile(f, os.O_RDWR, 0)
					if errors.Is(err, fs.ErrNotExist) {
						continue
					}
					require.NoError(t, err)
					_, err = w.WriteAt(pattern(100+rng.IntN(5000), byte(step+100)), int64(rng.IntN(16000)))
					require.NoError(t, err)
					require.NoError(t, w.Close())
				case 1:
					err = b.Truncate(f, int64(rng.IntN(6000)))
				case 2:
					err = b.Remove(f)
				case 3:
					err = b.Rename(f, name(rng.IntN(files)))
				case 4:
					writeFile(t, b, f, pattern(rng.IntN(9000), byte(step)))
				}
				if err != nil && !errors.Is(err, fs.ErrNotExist) {
					require.NoError(t, err, "step %d", step)
				}
				err = nil
			}
			writeFile(t, b, "mine", []byte("after"))
			b.WaitFrees()

			g, err := Open(ctx, s, opts) // empty caches: everything from the store
			require.NoError(t, err)
			defer g.Close()
			sv, err = g.OpenSnapshot(ctx, "first")
			require.NoError(t, err)
			assert.Equal(t, want, treeSums(t, sv), "the snapshot changed")
			wantContent(t, sv, "mine", []byte("before"))
			wantContent(t, g, "mine", []byte("after"))
			fsckSnap(t, g)
		})
	}
}

// TestSnapshotNeedsOption: on a store without native commits, a
// filesystem formatted without Options.Snapshots refuses its first
// snapshot (ENOTSUP, naming the option) and keeps plain CASes; one
// formatted with it, and stores with native commits, take snapshots. The
// option survives in the superblock (Open needs no option).
func TestSnapshotNeedsOption(t *testing.T) {
	ctx := context.Background()
	for _, st := range fallbackStores {
		t.Run(st.name, func(t *testing.T) {
			s := st.new(t)
			f, err := Format(ctx, s, nil)
			require.NoError(t, err)
			defer f.Close()
			err = f.Snapshot(ctx, "s")
			var pe *fs.PathError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "s", pe.Path)
			assert.ErrorIs(t, err, syscall.ENOTSUP)
			assert.Contains(t, err.Error(), "Options.Snapshots")
			list, err := f.Snapshots(ctx)
			require.NoError(t, err)
			assert.Empty(t, list)

			g, err := Format(ctx, s, &Options{Name: "snappy", Snapshots: true})
			require.NoError(t, err)
			defer g.Close()
			h, err := Open(ctx, s, &Options{Name: "snappy"})
			require.NoError(t, err)
			defer h.Close()
			assert.True(t, h.c.snap.fenced, "the superblock keeps the option")
			writeFile(t, h, "x", []byte("1"))
			require.NoError(t, g.Snapshot(ctx, "s"))
			writeFile(t, h, "x", []byte("2")) // h never read the table since
			sv, err := g.OpenSnapshot(ctx, "s")
			require.NoError(t, err)
			wantContent(t, sv, "x", []byte("1"))
		})
	}
	t.Run("native", func(t *testing.T) {
		f, err := Format(ctx, internalMemory(t), nil)
		require.NoError(t, err)
		defer f.Close()
		require.NoError(t, f.Snapshot(ctx, "s"))
	})
}

// TestSuperblockSnapshotsFlag: the flag round-trips, and a superblock
// without it (earlier versions') still decodes.
func TestSuperblockSnapshotsFlag(t *testing.T) {
	for _, on := range []bool{false, true} {
		sb := superblock{version: formatVersion, blockSize: 4096, root: RootIno, created: 1, snapshots: on}
		got, err := decodeSuperblock("k", encodeSuperblock(&sb))
		require.NoError(t, err, fmt.Sprint(on))
		assert.Equal(t, on, got.snapshots)
	}
}
