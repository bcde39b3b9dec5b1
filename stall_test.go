package voldfs

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

// stallStore stops answering at its call number at (counted from 0): that
// call and every later one waits until its context ends (then returns the
// context's error, as a store client does) or until resume is closed.
type stallStore struct {
	*memory.Store
	at     atomic.Int64
	n      atomic.Int64
	resume chan struct{}
}

// newStallStore returns a stallStore over s that answers until at is set.
func newStallStore(s *memory.Store) *stallStore {
	h := &stallStore{Store: s, resume: make(chan struct{})}
	h.at.Store(1 << 62)
	return h
}

func (h *stallStore) wait(ctx context.Context) error {
	if h.n.Add(1)-1 < h.at.Load() {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-h.resume:
		return nil
	}
}

func (h *stallStore) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	if err := h.wait(ctx); err != nil {
		return nil, 0, err
	}
	return h.Store.Get(ctx, key)
}

func (h *stallStore) CAS(ctx context.Context, key string, old backend.Version, v []byte) (backend.Version, error) {
	if err := h.wait(ctx); err != nil {
		return 0, err
	}
	return h.Store.CAS(ctx, key, old, v)
}

func (h *stallStore) Delete(ctx context.Context, key string, old backend.Version) error {
	if err := h.wait(ctx); err != nil {
		return err
	}
	return h.Store.Delete(ctx, key, old)
}

func (h *stallStore) Put(ctx context.Context, key string, v []byte) (backend.Version, error) {
	if err := h.wait(ctx); err != nil {
		return 0, err
	}
	return h.Store.Put(ctx, key, v)
}

func (h *stallStore) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	if err := h.wait(ctx); err != nil {
		return nil, err
	}
	return h.Store.GetMulti(ctx, keys)
}

func (h *stallStore) List(ctx context.Context, prefix string, fn func(string) error) error {
	if err := h.wait(ctx); err != nil {
		return err
	}
	return h.Store.List(ctx, prefix, fn)
}

func (h *stallStore) Commit(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	if err := h.wait(ctx); err != nil {
		return nil, err
	}
	return h.Store.Commit(ctx, ops)
}

func (h *stallStore) Close() error { return nil }

// hangWorkload is a sequence of calls that covers the waits of issue #12
// (item 5): write-behind uploads (WriteFile, Write of full blocks), the
// deletion of a file whose last link goes (Remove), RemoveAll, a rename,
// File.Sync and Close, a lock, FS.Sync and FS.Close (which releases the
// lock). Each step is timed by the
// caller; errors are expected once the store stops answering.
func hangWorkload(f *FS, step func(name string, fn func() error)) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096*5/16) // 5 blocks
	step("WriteFile big", func() error { return f.WriteFile("d/big", big, 0o644) })
	step("WriteFile small", func() error { return f.WriteFile("d/small", []byte("small"), 0o644) })
	var w *File
	step("Create", func() (err error) { w, err = f.Create("d/w"); return err })
	if w != nil {
		step("Write", func() error { _, err := w.Write(big[:4096*3]); return err })
		step("File.Sync", w.Sync)
		step("Write more", func() error { _, err := w.Write(big[:4096*2]); return err })
		step("File.Close", w.Close)
	}
	// A lock held until FS.Close, which releases it (and the session).
	var l *File
	step("Create locked", func() (err error) { l, err = f.Create("e/locked"); return err })
	if l != nil {
		step("Flock", func() error { return l.Flock(context.Background(), syscall.LOCK_EX|syscall.LOCK_NB) })
	}
	step("Rename", func() error { return f.Rename("d/small", "e/small") })
	step("Remove", func() error { return f.Remove("d/big") })
	step("RemoveAll", func() error { return f.RemoveAll("d") })
	step("FS.Sync", f.Sync)
	step("FS.Close", f.Close)
}

// TestStoreStopsAnswering: the store stops answering at call i, for every
// i of hangWorkload: every call returns within OpTimeout plus a slack, and
// once the store answers again a fresh client finds the filesystem
// consistent (fsck clean, after collecting the garbage of the failed
// calls). Under -short every fifth i.
func TestStoreStopsAnswering(t *testing.T) {
	const opTimeout = 30 * time.Millisecond
	const slack = 400 * time.Millisecond
	ctx := context.Background()
	setup := func() (*memory.Store, *stallStore, *FS) {
		s := memory.New()
		f0, err := Format(ctx, s, &Options{BlockSize: 4096})
		require.NoError(t, err)
		require.NoError(t, f0.Mkdir("d", 0o755))
		require.NoError(t, f0.Mkdir("e", 0o755))
		h := newStallStore(s)
		f, err := Open(ctx, h, &Options{OpTimeout: opTimeout, AttrTimeout: -1})
		require.NoError(t, err)
		h.n.Store(0)
		return s, h, f
	}
	// Count the workload's store calls when the store answers.
	_, h, f := setup()
	hangWorkload(f, func(name string, fn func() error) { require.NoError(t, fn(), name) })
	total := int(h.n.Load())
	require.Greater(t, total, 20)
	stride := 1
	if testing.Short() {
		stride = 5
	}
	var worst time.Duration
	failures := 0
	var worstAt string
	for i := 0; i <= total; i += stride {
		s, h, f := setup()
		h.at.Store(int64(i))
		hangWorkload(f, func(name string, fn func() error) {
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- fn() }()
			select {
			case err := <-done:
				if err != nil {
					failures++
				}
			case <-time.After(opTimeout + 5*time.Second):
				t.Fatalf("store stopped at call %d: %s still waiting after %v", i, name, time.Since(start))
			}
			if d := time.Since(start); d > worst {
				worst, worstAt = d, fmt.Sprintf("%s (store stopped at call %d)", name, i)
			}
			assert.Less(t, time.Since(start), opTimeout+slack, "store stopped at call %d: %s", i, name)
		})
		close(h.resume)
		time.Sleep(2 * opTimeout) // background work started before the stop ends
		g, err := Open(ctx, s, &Options{AttrTimeout: -1})
		require.NoError(t, err)
		r, err := g.Fsck(ctx, FsckOptions{})
		require.NoError(t, err)
		require.True(t, r.OK(), "store stopped at call %d: fsck: %v", i, r.Problems)
		_, err = g.Fsck(ctx, FsckOptions{Repair: true, GC: true, Grace: -1})
		require.NoError(t, err)
		g.WaitFrees()
		wantFsckClean(t, g)
		if t.Failed() {
			t.Fatalf("store stopped at call %d of %d", i, total)
		}
	}
	t.Logf("%d store calls in the workload, stopped at every %d: %d calls failed; slowest call %v, %s (OpTimeout %v)", total, stride, failures, worst, worstAt, opTimeout)
}

// slowGets delays every Get by d.
type slowGets struct {
	*memory.Store
	d time.Duration
}

func (s slowGets) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	select {
	case <-time.After(s.d):
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	return s.Store.Get(ctx, key)
}

// TestSharedFetchOwnDeadline: two callers share one fetch of an inode and
// of a block (singleflight); the first has a 20 ms deadline, the second
// none. The first fails at its deadline; the second gets the value, not
// the first one's error.
func TestSharedFetchOwnDeadline(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	f0, err := Format(ctx, s, &Options{BlockSize: 4096})
	require.NoError(t, err)
	require.NoError(t, f0.WriteFile("f", bytes.Repeat([]byte("x"), 8192), 0o644))
	ino := inoOf(t, f0, "f")
	f, err := Open(ctx, slowGets{s, 80 * time.Millisecond}, &Options{CacheSize: -1})
	require.NoError(t, err)
	ci, err := f.c.getInode(ctx, ino, 0)
	require.NoError(t, err)
	ref, err := f.c.treeLookup(ctx, ci.n, 0)
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		fetch func(ctx context.Context) error
	}{
		{"inode", func(ctx context.Context) error { _, err := f.c.getInode(ctx, ino, -1); return err }},
		{"block", func(ctx context.Context) error { _, err := f.c.getBlock(ctx, recData, ref); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.c.dropInode(ino)
			short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
			first := make(chan error, 1)
			go func() { first <- tc.fetch(short) }()
			time.Sleep(5 * time.Millisecond) // the first caller's fetch is under way
			start := time.Now()
			assert.NoError(t, tc.fetch(ctx), "the second caller fails with the first one's deadline")
			assert.ErrorIs(t, <-first, context.DeadlineExceeded)
			assert.Less(t, time.Since(start), time.Second)
		})
	}
}

// TestBlockingLockStoreStops: a blocking lock waits for another client's
// holder as long as its context allows, but when the store stops
// answering while it waits, it returns within OpTimeout (plus a slack) of
// the stop rather than waiting on.
func TestBlockingLockStoreStops(t *testing.T) {
	const opTimeout = 30 * time.Millisecond
	ctx := context.Background()
	s := memory.New()
	g, err := Format(ctx, s, nil)
	require.NoError(t, err)
	require.NoError(t, g.WriteFile("l", nil, 0o644))
	held, err := g.OpenFile("l", os.O_RDWR, 0)
	require.NoError(t, err)
	require.NoError(t, held.Flock(ctx, syscall.LOCK_EX))
	h := newStallStore(s)
	f, err := Open(ctx, h, &Options{OpTimeout: opTimeout})
	require.NoError(t, err)
	w, err := f.OpenFile("l", os.O_RDWR, 0)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- w.Flock(ctx, syscall.LOCK_EX) }()
	select {
	case err := <-done:
		t.Fatalf("the lock was granted or failed while another client held it: %v", err)
	case <-time.After(200 * time.Millisecond): // it waits for the holder
	}
	stopped := time.Now()
	h.at.Store(h.n.Load()) // the store stops answering now
	select {
	case err := <-done:
		require.Error(t, err)
		t.Logf("returned %v after the stop: %v", time.Since(stopped), err)
		assert.Less(t, time.Since(stopped), opTimeout+time.Second)
	case <-time.After(10 * time.Second):
		t.Fatal("a waiting lock still waits 10 s after the store stopped")
	}
	close(h.resume)
	require.NoError(t, held.Close())
}
