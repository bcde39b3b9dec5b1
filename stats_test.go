package voldfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

// watchStore adds a Watcher to a store, syncStore a Syncer.
type watchStore struct{ backend.Store }

func (watchStore) WaitChange(ctx context.Context, key string, ver backend.Version) error {
	<-ctx.Done()
	return ctx.Err()
}

type syncStore struct{ backend.Store }

func (syncStore) Sync(context.Context) error { return nil }

// TestCountStoreInterfaces: the counting wrapper has BatchGetter, Watcher
// and Lister exactly when the store has them, and the other extensions
// behave as the backend helpers' fallbacks do.
func TestCountStoreInterfaces(t *testing.T) {
	mem := memory.New()
	for _, tc := range []struct {
		name string
		s    backend.Store
	}{
		{"memory", mem},
		{"casOnly", casOnly{mem}},
		{"watch", watchStore{mem}},
		{"watchCasOnly", watchStore{casOnly{mem}}},
		{"sync", syncStore{casOnly{mem}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n storeCounters
			w := countStore(tc.s, &n)
			_, b1 := tc.s.(backend.BatchGetter)
			_, b2 := w.(backend.BatchGetter)
			assert.Equal(t, b1, b2, "BatchGetter")
			_, w1 := tc.s.(backend.Watcher)
			_, w2 := w.(backend.Watcher)
			assert.Equal(t, w1, w2, "Watcher")
			_, l1 := tc.s.(backend.Lister)
			_, l2 := w.(backend.Lister)
			assert.Equal(t, l1, l2, "Lister")
			assert.Equal(t, tc.s, uncounted(w))
			assert.Equal(t, backend.MaxValueSize(tc.s), backend.MaxValueSize(w))

			ctx := context.Background()
			_, c1 := tc.s.(backend.Committer)
			_, err := backend.Commit(ctx, w, nil)
			if c1 {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, errors.ErrUnsupported)
			}
			_, y1 := tc.s.(backend.Syncer)
			require.NoError(t, backend.Sync(ctx, w))

			key := "count-" + tc.name
			_, err = backend.Put(ctx, w, key, []byte("abc"))
			require.NoError(t, err)
			v, ver, err := w.Get(ctx, key)
			require.NoError(t, err)
			assert.Equal(t, "abc", string(v))
			_, err = w.CAS(ctx, key, ver+1000, []byte("x"))
			assert.ErrorIs(t, err, backend.ErrConflict)
			_, _, err = w.Get(ctx, key+"-missing")
			assert.ErrorIs(t, err, backend.ErrNotFound)
			if l2 {
				stop := errors.New("stop")
				err := backend.List(ctx, w, key, func(string) error { return stop })
				assert.ErrorIs(t, err, stop)
			}
			require.NoError(t, w.Delete(ctx, key, backend.AnyVersion))

			st := n.load()
			_, p1 := tc.s.(backend.Putter)
			if p1 {
				assert.Equal(t, int64(1), st.Puts)
				assert.Equal(t, int64(1), st.CASes)
			} else {
				assert.Equal(t, int64(0), st.Puts)
				assert.Equal(t, int64(2), st.CASes, "a Put without Putter is a CAS")
			}
			assert.Equal(t, int64(2), st.Gets)
			assert.Equal(t, int64(1), st.Deletes)
			assert.Equal(t, int64(1), st.Conflicts)
			assert.Zero(t, st.Errors, "a missing key, a listing its callback stopped: no errors")
			assert.Equal(t, map[bool]int64{true: 1}[l1], st.Lists)
			assert.Equal(t, int64(3), st.BytesIn)
			assert.Equal(t, int64(4), st.BytesOut)
			assert.Equal(t, map[bool]int64{true: 1}[c1], st.Commits)
			assert.Equal(t, map[bool]int64{true: 1}[y1], st.Syncs)
			if w1 {
				wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
				defer cancel()
				_ = w.(backend.Watcher).WaitChange(wctx, key, ver)
				assert.Equal(t, int64(1), n.load().Watches)
				assert.Zero(t, n.load().Errors, "a watch ended by its context is no error")
			}
		})
	}
}

// TestStatsWriteFile: a WriteFile of three blocks on memory counts the
// calls, one commit creating the file, the four block puts and the one
// inode CAS of the close, and the bytes.
func TestStatsWriteFile(t *testing.T) {
	f, _ := newMemFS(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 3*4096/16)
	before := f.Stats()
	require.NoError(t, f.WriteFile("f", data, 0o644))
	d := f.Stats().Sub(before)
	assert.Equal(t, int64(1), d.Ops["open"])
	assert.Equal(t, int64(1), d.Ops["write"])
	assert.Equal(t, int64(1), d.Ops["close"])
	assert.Zero(t, d.Ops["read"])
	assert.Equal(t, int64(len(data)), d.BytesWritten)
	assert.Equal(t, int64(1), d.Inodes.Commits, "the create: new inode and entry in one commit")
	assert.Equal(t, int64(1), d.Inodes.CASes, "the close's commit")
	assert.Equal(t, int64(4), d.Blocks.Puts, "one put per data block and the index node")
	assert.Zero(t, d.Blocks.Gets)
	assert.GreaterOrEqual(t, d.Blocks.BytesOut, int64(len(data)))
	assert.Less(t, d.Blocks.BytesOut, int64(len(data))+4*64, "three blocks and a small index node")
	assert.Zero(t, d.Conflicts)
	assert.Zero(t, d.Inodes.Errors+d.Blocks.Errors)
	assert.Equal(t, d.Inodes.CASes+d.Inodes.Commits+d.Inodes.Puts, d.InodeCAS, "legacy InodeCAS")
	assert.Equal(t, d.Blocks.Puts, d.BlockPuts, "legacy BlockPuts")
	assert.Equal(t, d.Inodes.RoundTrips()+d.Blocks.RoundTrips(), d.RoundTrips())
	assert.Zero(t, d.DirtyBytes, "nothing buffered after the close")
	assert.Zero(t, d.OpenInodes)
}

// TestStatsConflict: a setattr from an inode version another client
// replaced loses its CAS once, is counted as a conflict and a retry, and
// succeeds on the retry.
func TestStatsConflict(t *testing.T) {
	a, s := newMemFS(t)
	writeFile(t, a, "f", []byte("x"))
	_, err := a.Stat("f") // a caches the inode
	require.NoError(t, err)
	b, err := Open(context.Background(), s, &Options{AttrTimeout: -1})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.Chmod("f", 0o600))
	before := a.Stats()
	require.NoError(t, a.Chmod("f", 0o640))
	d := a.Stats().Sub(before)
	assert.Equal(t, int64(1), d.Ops["setattr"])
	assert.Equal(t, int64(1), d.Conflicts)
	assert.GreaterOrEqual(t, d.Retries, int64(1))
	assert.Equal(t, int64(1), d.Inodes.Conflicts, "the store refused one CAS")
	assert.Equal(t, int64(2), d.Inodes.CASes, "the lost CAS and the retry")
	fi, err := b.Stat("f")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
}

// TestStatsCache: a second read of a file in a fresh FS hits the block
// cache and makes no block request; a second Stat hits the attribute cache.
func TestStatsCache(t *testing.T) {
	f, s := newMemFS(t)
	data := bytes.Repeat([]byte{7}, 2*4096)
	writeFile(t, f, "f", data)
	g, err := Open(context.Background(), s, nil)
	require.NoError(t, err)
	defer g.Close()
	read := func() Stats {
		before := g.Stats()
		file, err := g.Open("f")
		require.NoError(t, err)
		got, err := io.ReadAll(file)
		require.NoError(t, err)
		require.NoError(t, file.Close())
		require.Equal(t, data, got)
		return g.Stats().Sub(before)
	}
	cold := read()
	assert.Equal(t, int64(1), cold.Ops["open"])
	assert.GreaterOrEqual(t, cold.Ops["read"], int64(1))
	assert.Equal(t, int64(len(data)), cold.BytesRead)
	assert.Equal(t, int64(3), cold.BlockGets, "two data blocks and the index node")
	assert.GreaterOrEqual(t, cold.Blocks.BytesIn, int64(len(data)))
	hot := read()
	assert.Zero(t, hot.BlockGets, "cached blocks")
	assert.Zero(t, hot.Blocks.BytesIn)
	assert.GreaterOrEqual(t, hot.CacheHits, int64(3))
	assert.Zero(t, hot.CacheMisses)

	_, err = g.Stat("f")
	require.NoError(t, err)
	before := g.Stats()
	_, err = g.Stat("f")
	require.NoError(t, err)
	d := g.Stats().Sub(before)
	assert.Equal(t, int64(1), d.Ops["stat"])
	assert.Zero(t, d.Inodes.Gets, "a Stat within the attribute window")
	assert.GreaterOrEqual(t, d.AttrCacheHits, int64(2), "the root and f")
	assert.Zero(t, d.AttrCacheMisses)
}

// TestStatsGauges: buffered bytes and open inodes show while a file is
// open and written, and go back to zero when it is closed.
func TestStatsGauges(t *testing.T) {
	f, _ := newMemFS(t)
	file, err := f.Create("f")
	require.NoError(t, err)
	_, err = file.Write([]byte("hello"))
	require.NoError(t, err)
	st := f.Stats()
	assert.Equal(t, int64(1), st.OpenInodes)
	assert.GreaterOrEqual(t, st.DirtyBytes, int64(5))
	require.NoError(t, file.Close())
	st = f.Stats()
	assert.Zero(t, st.OpenInodes)
	assert.Zero(t, st.DirtyBytes)
	writeFile(t, f, "f", []byte("replaced")) // frees the old block
	f.WaitFrees()
	assert.Zero(t, f.Stats().Frees)
	assert.Zero(t, f.Stats().Uploads)
}

// TestOpKinds: every kind has a name, and the op names of the API map to
// their kinds.
func TestOpKinds(t *testing.T) {
	kinds := OpKinds()
	require.Len(t, kinds, int(numOps))
	seen := map[string]bool{}
	for _, k := range kinds {
		assert.NotEmpty(t, k)
		assert.False(t, seen[k], "duplicate %q", k)
		seen[k] = true
	}
	for op, want := range map[string]string{"lstat": "stat", "getattr": "stat", "unlink": "remove", "rmdir": "remove",
		"chmod": "setattr", "truncate": "setattr", "commit": "sync", "getxattr": "xattr", "lremovexattr": "xattr", "sub": "other"} {
		assert.Equal(t, want, opNames[opKindOf(op)], op)
	}
	for _, k := range kinds {
		if k != "other" && k != "xattr" {
			assert.Equal(t, k, opNames[opKindOf(k)])
		}
	}
}

// TestFsckProgress: Fsck calls Progress at most a few times a second and
// last with Phase "done" and the report's figures.
func TestFsckProgress(t *testing.T) {
	f, _ := newMemFS(t)
	mkdirs(t, f, "a", "a/b")
	for _, n := range []string{"x", "a/y", "a/b/z"} {
		writeFile(t, f, n, bytes.Repeat([]byte{1}, 5000))
	}
	// Garbage: a block no inode references, old enough for GC.
	ref, err := f.c.putBlock(context.Background(), recData, []byte("orphan"))
	require.NoError(t, err)
	var calls []FsckProgress
	start := time.Now()
	r, err := f.Fsck(context.Background(), FsckOptions{GC: true, Grace: -1, Progress: func(p FsckProgress) { calls = append(calls, p) }})
	require.NoError(t, err)
	elapsed := time.Since(start)
	require.NotEmpty(t, calls)
	assert.LessOrEqual(t, len(calls), 2+int(elapsed/fsckProgressEvery))
	last := calls[len(calls)-1]
	assert.Equal(t, "done", last.Phase)
	assert.Equal(t, r.Dirs+r.Files+r.Symlinks, last.Inodes)
	assert.Equal(t, r.Blocks, last.Blocks)
	assert.Equal(t, 1, r.GarbageBlocks)
	assert.Equal(t, 1, last.Garbage)
	assert.Equal(t, 1, last.Deleted)
	_, _, err = f.c.blocks.Get(context.Background(), f.c.blockKey(ref))
	assert.ErrorIs(t, err, backend.ErrNotFound, "deleted before the last call")
}

// BenchmarkCountStore measures what the counting wrapper adds to a store
// request: go test -run x -bench CountStore -benchmem.
func BenchmarkCountStore(b *testing.B) {
	ctx := context.Background()
	mem := memory.New()
	_, err := mem.CAS(ctx, "k", backend.NoVersion, make([]byte, 80)) // an inode's size
	require.NoError(b, err)
	var n storeCounters
	for _, s := range []struct {
		name string
		s    backend.Store
	}{{"raw", mem}, {"counted", countStore(mem, &n)}} {
		b.Run(s.name, func(b *testing.B) {
			for range b.N {
				if _, _, err := s.s.Get(ctx, "k"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// heldPuts holds every block Put until gate is closed.
type heldPuts struct {
	*memory.Store
	gate chan struct{}
}

func (g heldPuts) Put(ctx context.Context, key string, value []byte) (backend.Version, error) {
	if strings.Contains(key, "/b/") {
		<-g.gate
	}
	return g.Store.Put(ctx, key, value)
}

// TestStatsUploads: full blocks written to an open file upload in the
// background, and show in Uploads until the uploads finish.
func TestStatsUploads(t *testing.T) {
	g := heldPuts{memory.New(), make(chan struct{})}
	f, err := Format(context.Background(), g, &Options{BlockSize: 4096})
	require.NoError(t, err)
	defer f.Close()
	file, err := f.Create("f")
	require.NoError(t, err)
	_, err = file.Write(bytes.Repeat([]byte("u"), 3*4096))
	require.NoError(t, err)
	assert.GreaterOrEqual(t, f.Stats().Uploads, int64(2), "full blocks past the first (which may end inline) upload behind")
	close(g.gate)
	require.NoError(t, file.Close())
	assert.Zero(t, f.Stats().Uploads)
	assert.GreaterOrEqual(t, f.Stats().Blocks.Puts, int64(3))
}
