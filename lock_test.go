package voldfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/testserver"
)

// lockStores are the stores the lock tests run on: two FS values on one
// store stand for two machines.
var lockStores = []struct {
	name string
	new  func(t *testing.T) backend.Store
}{
	{"Memory", internalMemory},
	{"Memcached", internalMemcached},
}

// lockClients formats a filesystem in s and opens n clients of it (the
// first is the formatting one), closed in t.Cleanup, with lock timeout d.
func lockClients(t *testing.T, s backend.Store, n int, d time.Duration) []*FS {
	t.Helper()
	ctx := context.Background()
	a, err := Format(ctx, s, &Options{BlockSize: 4096})
	require.NoError(t, err)
	fss := []*FS{a}
	for len(fss) < n {
		b, err := Open(ctx, s, &Options{BlockSize: 4096})
		require.NoError(t, err)
		fss = append(fss, b)
	}
	for _, f := range fss {
		f.SetLockTimeout(d)
		t.Cleanup(func() { f.Close() })
	}
	return fss
}

// lockFile creates name through fss[0] and opens it in every client.
func lockFile(t *testing.T, fss []*FS, name string) []*File {
	t.Helper()
	f, err := fss[0].Create(name)
	require.NoError(t, err)
	files := []*File{f}
	for _, c := range fss[1:] {
		g, err := c.OpenFile(name, os.O_RDWR, 0)
		require.NoError(t, err)
		files = append(files, g)
	}
	for _, f := range files {
		t.Cleanup(func() { f.Close() })
	}
	return files
}

func eachLockStore(t *testing.T, fn func(t *testing.T, s backend.Store)) {
	for _, st := range lockStores {
		t.Run(st.name, func(t *testing.T) { fn(t, st.new(t)) })
	}
}

func TestFlockTwoClients(t *testing.T) {
	ctx := context.Background()
	eachLockStore(t, func(t *testing.T, s backend.Store) {
		fss := lockClients(t, s, 2, DefaultLockTimeout)
		f := lockFile(t, fss, "f")
		a, b := f[0], f[1]

		require.NoError(t, a.Flock(ctx, syscall.LOCK_EX|syscall.LOCK_NB))
		err := b.Flock(ctx, syscall.LOCK_EX|syscall.LOCK_NB)
		assert.ErrorIs(t, err, syscall.EAGAIN, "exclusive excludes another machine")
		var pe *fs.PathError
		assert.ErrorAs(t, err, &pe)
		assert.ErrorIs(t, b.Flock(ctx, syscall.LOCK_SH|syscall.LOCK_NB), syscall.EAGAIN)
		// flock and byte-range locks do not conflict (Linux).
		assert.NoError(t, b.Lock(ctx, Lock{Kind: PosixLock, Type: WriteLock, Owner: 7}, false))

		require.NoError(t, a.Flock(ctx, syscall.LOCK_SH), "downgrade")
		require.NoError(t, b.Flock(ctx, syscall.LOCK_SH|syscall.LOCK_NB), "shared locks coexist")
		assert.ErrorIs(t, a.Flock(ctx, syscall.LOCK_EX|syscall.LOCK_NB), syscall.EAGAIN, "upgrade against a shared holder")
		// As on Linux, the failed conversion dropped a's shared lock, so b
		// can now upgrade.
		require.NoError(t, b.Flock(ctx, syscall.LOCK_EX|syscall.LOCK_NB), "upgrade")
		require.NoError(t, b.Flock(ctx, syscall.LOCK_UN))
		require.NoError(t, a.Flock(ctx, syscall.LOCK_EX|syscall.LOCK_NB))

		// Two Files of one FS are two owners.
		a2, err := fss[0].OpenFile("f", os.O_RDWR, 0)
		require.NoError(t, err)
		defer a2.Close()
		assert.ErrorIs(t, a2.Flock(ctx, syscall.LOCK_SH|syscall.LOCK_NB), syscall.EAGAIN)
		require.NoError(t, a.ReleaseLocks(ctx, 0, true), "last close")
		assert.NoError(t, a2.Flock(ctx, syscall.LOCK_SH|syscall.LOCK_NB))
	})
}

func TestLockRangeConflicts(t *testing.T) {
	ctx := context.Background()
	fss := lockClients(t, internalMemory(t), 2, DefaultLockTimeout)
	ino := lockFile(t, fss, "f")[0].Ino()
	a, b := fss[0].Inodes(), fss[1].Inodes()
	W, R := WriteLock, ReadLock
	cases := []struct {
		name             string
		hs, hl           int64
		ht               LockType
		rs, rl           int64
		rt               LockType
		conflict         bool
		kindHeld, kindRq LockKind
	}{
		{"overlap", 0, 10, W, 5, 10, W, true, 0, 0},
		{"adjacent after", 0, 10, W, 10, 5, W, false, 0, 0},
		{"adjacent before", 10, 10, W, 0, 10, W, false, 0, 0},
		{"last byte", 0, 10, W, 9, 1, R, true, 0, 0},
		{"inside", 0, 100, R, 40, 10, W, true, 0, 0},
		{"read read", 0, 10, R, 0, 10, R, false, 0, 0},
		{"to EOF held", 100, 0, W, 1 << 40, 1, R, true, 0, 0},
		{"to EOF req", 100, 10, R, 0, 0, W, true, 0, 0},
		{"to EOF before", 100, 0, W, 0, 100, W, false, 0, 0},
		{"negative len", 10, 10, W, 30, -11, W, true, 0, 0},
		{"negative len adjacent", 10, 10, W, 30, -10, W, false, 0, 0},
		{"ofd vs posix", 0, 10, W, 5, 1, R, true, OFDLock, PosixLock},
		{"flock vs posix", 0, 0, W, 5, 1, W, false, FlockLock, PosixLock},
		{"posix vs flock", 0, 1, W, 0, 0, W, false, PosixLock, FlockLock},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kh, kr := max(tc.kindHeld, PosixLock), max(tc.kindRq, PosixLock)
			held := Lock{Kind: kh, Type: tc.ht, Start: tc.hs, Len: tc.hl, Owner: 1, Pid: 11}
			require.NoError(t, a.Setlk(ctx, ino, held, false))
			defer func() { require.NoError(t, a.ReleaseLocks(ctx, ino, kh, 1)) }()
			req := Lock{Kind: kr, Type: tc.rt, Start: tc.rs, Len: tc.rl, Owner: 1}
			got, err := b.Getlk(ctx, ino, req)
			require.NoError(t, err)
			err = b.Setlk(ctx, ino, req, false)
			if tc.conflict {
				assert.ErrorIs(t, err, syscall.EAGAIN)
				held.Remote = true
				if kh == FlockLock {
					held.Len = 0
				}
				assert.Equal(t, held, got, "GETLK reports the holder")
			} else {
				assert.NoError(t, err)
				assert.Equal(t, UnlockLock, got.Type)
				require.NoError(t, b.ReleaseLocks(ctx, ino, kr, 1))
			}
		})
	}
	// The same owner never conflicts with itself; another owner on the same
	// machine does.
	require.NoError(t, a.Setlk(ctx, ino, Lock{Kind: PosixLock, Type: W, Owner: 1}, false))
	assert.NoError(t, a.Setlk(ctx, ino, Lock{Kind: PosixLock, Type: W, Start: 3, Len: 1, Owner: 1}, false))
	err := a.Setlk(ctx, ino, Lock{Kind: PosixLock, Type: R, Owner: 2}, false)
	assert.ErrorIs(t, err, syscall.EAGAIN)
	got, err := a.Getlk(ctx, ino, Lock{Kind: PosixLock, Type: R, Owner: 2})
	require.NoError(t, err)
	assert.Equal(t, Lock{Kind: PosixLock, Type: W, Owner: 1}, got)
	assert.ErrorIs(t, a.Setlk(ctx, ino, Lock{Kind: PosixLock, Type: W, Start: -1}, false), syscall.EINVAL)
}

func TestLockSplitMerge(t *testing.T) {
	ctx := context.Background()
	eachLockStore(t, func(t *testing.T, s backend.Store) {
		fss := lockClients(t, s, 2, DefaultLockTimeout)
		ino := lockFile(t, fss, "f")[0].Ino()
		a, b := fss[0].Inodes(), fss[1].Inodes()
		lk := func(in *Inodes, typ LockType, start, n int64) error {
			return in.Setlk(ctx, ino, Lock{Kind: PosixLock, Type: typ, Start: start, Len: n, Owner: 5}, false)
		}
		require.NoError(t, lk(a, WriteLock, 0, 100))
		require.NoError(t, lk(a, UnlockLock, 40, 20), "unlock of a sub-range")
		assert.NoError(t, lk(b, WriteLock, 40, 20), "the hole is free")
		assert.ErrorIs(t, lk(b, ReadLock, 39, 1), syscall.EAGAIN)
		assert.ErrorIs(t, lk(b, ReadLock, 60, 1), syscall.EAGAIN)
		require.NoError(t, lk(b, UnlockLock, 0, 0))
		// Downgrade the middle of the left piece: three pieces, merged back
		// by the upgrade.
		require.NoError(t, lk(a, ReadLock, 10, 10))
		assert.NoError(t, lk(b, ReadLock, 10, 10))
		assert.ErrorIs(t, lk(b, ReadLock, 9, 2), syscall.EAGAIN)
		require.NoError(t, lk(b, UnlockLock, 0, 0))
		require.NoError(t, lk(a, WriteLock, 10, 10))
		require.NoError(t, lk(a, WriteLock, 40, 20))
		ls, _, err := fss[0].c.readLocks(ctx, ino)
		require.NoError(t, err)
		require.Len(t, ls, 1, "adjacent pieces of one type merge: %+v", ls)
		assert.Equal(t, [2]uint64{0, 100}, [2]uint64{ls[0].start, ls[0].end})
		require.NoError(t, a.ReleaseLocks(ctx, ino, PosixLock, 5), "close")
		_, ver, err := fss[0].c.readLocks(ctx, ino)
		require.NoError(t, err)
		assert.Equal(t, backend.NoVersion, ver, "an empty table is deleted")
	})
}

func TestLockReleaseOwner(t *testing.T) {
	ctx := context.Background()
	fss := lockClients(t, internalMemory(t), 2, DefaultLockTimeout)
	f := lockFile(t, fss, "f")
	a, b := f[0], f[1]
	require.NoError(t, a.Lock(ctx, Lock{Kind: PosixLock, Type: WriteLock, Len: 10, Owner: 1}, false))
	require.NoError(t, a.Lock(ctx, Lock{Kind: PosixLock, Type: WriteLock, Start: 10, Len: 10, Owner: 2}, false))
	require.NoError(t, a.Lock(ctx, Lock{Kind: OFDLock, Type: WriteLock, Start: 20, Len: 10}, false))
	require.NoError(t, a.ReleaseLocks(ctx, 1, false), "closing a descriptor of owner 1")
	for _, c := range []struct {
		start int64
		free  bool
	}{{0, true}, {10, false}, {20, false}} {
		err := b.Lock(ctx, Lock{Kind: PosixLock, Type: ReadLock, Start: c.start, Len: 10, Owner: 9}, false)
		if c.free {
			assert.NoError(t, err, "start %d", c.start)
		} else {
			assert.ErrorIs(t, err, syscall.EAGAIN, "start %d", c.start)
		}
	}
	require.NoError(t, a.ReleaseLocks(ctx, 2, true), "last close of a")
	assert.NoError(t, b.Lock(ctx, Lock{Kind: PosixLock, Type: WriteLock, Start: 10, Len: 20, Owner: 9}, false))
	// FS.Close releases everything it holds.
	require.NoError(t, b.Flock(ctx, syscall.LOCK_EX))
	require.NoError(t, fss[1].Close())
	assert.NoError(t, a.Lock(ctx, Lock{Kind: PosixLock, Type: WriteLock, Owner: 3}, false))
	assert.NoError(t, a.Flock(ctx, syscall.LOCK_EX|syscall.LOCK_NB))
	_, _, err := fss[0].c.inodes.Get(ctx, fss[1].c.locks.s.key)
	assert.ErrorIs(t, err, backend.ErrNotFound, "Close deletes the session record")
}

func TestLockWait(t *testing.T) {
	ctx := context.Background()
	eachLockStore(t, func(t *testing.T, s backend.Store) {
		fss := lockClients(t, s, 2, DefaultLockTimeout)
		ino := lockFile(t, fss, "f")[0].Ino()
		a, b := fss[0].Inodes(), fss[1].Inodes()
		w := Lock{Kind: PosixLock, Type: WriteLock, Owner: 1}
		require.NoError(t, a.Setlk(ctx, ino, w, false))

		// A waiter is granted when the holder releases.
		done := make(chan error, 1)
		before := fss[1].Stats()
		go func() { done <- b.Setlk(ctx, ino, w, true) }()
		time.Sleep(300 * time.Millisecond)
		select {
		case err := <-done:
			t.Fatalf("waiter returned %v while the lock was held", err)
		default:
		}
		require.NoError(t, a.ReleaseLocks(ctx, ino, PosixLock, 1))
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("waiter not granted")
		}
		trips := fss[1].Stats().RoundTrips() - before.RoundTrips()
		t.Logf("waiter: %d store requests over a 300 ms wait", trips)
		assert.Less(t, trips, int64(60), "a waiter backs off rather than spinning")

		// A cancelled waiter gets EINTR.
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := a.Setlk(cctx, ino, w, true)
		assert.ErrorIs(t, err, syscall.EINTR)
		assert.Less(t, time.Since(start), 2*time.Second)
	})
}

func TestLockSessionBroken(t *testing.T) {
	ctx := context.Background()
	eachLockStore(t, func(t *testing.T, s backend.Store) {
		// Short for a test, long enough for heartbeats of a loaded machine.
		const timeout = 500 * time.Millisecond
		fss := lockClients(t, s, 2, timeout)
		ino := lockFile(t, fss, "f")[0].Ino()
		a, b := fss[0].Inodes(), fss[1].Inodes()
		w := Lock{Kind: PosixLock, Type: WriteLock, Owner: 1}
		require.NoError(t, a.Setlk(ctx, ino, w, false))
		// Heartbeats keep a's locks for longer than the timeout.
		assert.ErrorIs(t, b.Setlk(ctx, ino, w, false), syscall.EAGAIN)
		time.Sleep(timeout * 3 / 2)
		require.ErrorIs(t, b.Setlk(ctx, ino, w, false), syscall.EAGAIN, "a live session's lock is never broken")

		// a hangs: its heartbeat stops, its locks stay in the store.
		fss[0].c.currentSession().setPaused(true)
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 10*timeout)
		defer cancel()
		require.NoError(t, b.Setlk(wctx, ino, w, true), "the dead session's lock is broken")
		took := time.Since(start)
		assert.GreaterOrEqual(t, took, timeout*8/10, "not before the timeout")
		t.Logf("broken after %v (timeout %v)", took, timeout)

		// a comes back: it must not believe it holds anything.
		fss[0].c.currentSession().setPaused(false)
		err := a.Setlk(ctx, ino, Lock{Kind: PosixLock, Type: ReadLock, Start: 1 << 20, Owner: 2}, false)
		assert.ErrorIs(t, err, syscall.ENOLCK)
		time.Sleep(timeout / 2) // its next heartbeat finds the record gone
		assert.ErrorIs(t, a.Setlk(ctx, ino, w, false), syscall.ENOLCK)
		assert.ErrorIs(t, a.ReleaseLocks(ctx, ino, PosixLock, 1), syscall.ENOLCK)
		_, err = a.Getlk(ctx, ino, w)
		assert.ErrorIs(t, err, syscall.ENOLCK)
		got, err := b.Getlk(ctx, ino, Lock{Kind: PosixLock, Type: WriteLock, Owner: 2})
		require.NoError(t, err)
		assert.Equal(t, Lock{Kind: PosixLock, Type: WriteLock, Owner: 1}, got, "b holds it")
	})
}

// TestLockSessionLate checks a client that cannot renew its session for a
// while (nobody breaks it): it refuses new locks, still releases, and works
// again once a heartbeat goes through.
func TestLockSessionLate(t *testing.T) {
	ctx := context.Background()
	const timeout = 300 * time.Millisecond
	fss := lockClients(t, internalMemory(t), 2, timeout)
	ino := lockFile(t, fss, "f")[0].Ino()
	a, b := fss[0].Inodes(), fss[1].Inodes()
	w := Lock{Kind: PosixLock, Type: WriteLock, Owner: 1}
	require.NoError(t, a.Setlk(ctx, ino, w, false))
	s := fss[0].c.currentSession()
	s.setPaused(true)
	time.Sleep(timeout)
	assert.ErrorIs(t, a.Setlk(ctx, ino, Lock{Kind: PosixLock, Type: WriteLock, Start: 1 << 20, Owner: 2}, false), syscall.ENOLCK)
	assert.NoError(t, a.ReleaseLocks(ctx, ino, PosixLock, 1), "an unlock goes ahead")
	assert.NoError(t, b.Setlk(ctx, ino, w, false), "released at once, not after a timeout")
	require.NoError(t, b.ReleaseLocks(ctx, ino, PosixLock, 1))
	s.setPaused(false)
	time.Sleep(timeout / 2)
	assert.NoError(t, a.Setlk(ctx, ino, w, false), "renewed")
}

// TestLockCache checks lock boundaries are cache boundaries: a reader that
// takes the lock after a writer released it reads the writer's data at once,
// well inside the attribute window.
func TestLockCache(t *testing.T) {
	ctx := context.Background()
	eachLockStore(t, func(t *testing.T, s backend.Store) {
		fss := lockClients(t, s, 2, DefaultLockTimeout)
		f := lockFile(t, fss, "f")
		a, b := f[0], f[1]
		buf := make([]byte, 5)
		_, err := b.ReadAt(buf, 0) // b caches the empty file
		require.Error(t, err)
		for i := range 3 {
			require.NoError(t, a.Flock(ctx, syscall.LOCK_EX))
			_, err := a.WriteAt([]byte(fmt.Sprintf("gen%02d", i)), 0)
			require.NoError(t, err)
			require.NoError(t, a.Flock(ctx, syscall.LOCK_UN), "commits")
			require.NoError(t, b.Flock(ctx, syscall.LOCK_SH))
			n, err := b.ReadAt(buf, 0)
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprintf("gen%02d", i), string(buf[:n]))
			require.NoError(t, b.Flock(ctx, syscall.LOCK_UN))
		}
		// A downgrade publishes what was written under the write lock.
		w := Lock{Kind: PosixLock, Type: WriteLock, Owner: 1}
		require.NoError(t, a.Lock(ctx, w, false))
		_, err = a.WriteAt([]byte("down!"), 0)
		require.NoError(t, err)
		w.Type = ReadLock
		require.NoError(t, a.Lock(ctx, w, false))
		require.NoError(t, b.Lock(ctx, Lock{Kind: PosixLock, Type: ReadLock, Owner: 2}, false))
		n, err := b.ReadAt(buf, 0)
		require.NoError(t, err)
		assert.Equal(t, "down!", string(buf[:n]))
	})
}

func TestLockCloseEndsWaiter(t *testing.T) {
	ctx := context.Background()
	fss := lockClients(t, internalMemory(t), 2, DefaultLockTimeout)
	ino := lockFile(t, fss, "f")[0].Ino()
	w := Lock{Kind: PosixLock, Type: WriteLock, Len: 10, Owner: 1}
	require.NoError(t, fss[0].Inodes().Setlk(ctx, ino, w, false))
	require.NoError(t, fss[1].Inodes().Setlk(ctx, ino, Lock{Kind: PosixLock, Type: ReadLock, Start: 100, Len: 1, Owner: 1}, false))
	done := make(chan error, 1)
	go func() { done <- fss[1].Inodes().Setlk(ctx, ino, w, true) }()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, fss[1].Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, syscall.ENOLCK)
	case <-time.After(2 * time.Second):
		t.Fatal("waiter outlived FS.Close")
	}
	got, err := fss[0].Inodes().Getlk(ctx, ino, Lock{Kind: PosixLock, Type: WriteLock, Owner: 2})
	require.NoError(t, err)
	assert.Equal(t, w, got, "only a's lock is left")
}

func TestLockRoundTrips(t *testing.T) {
	ctx := context.Background()
	fss := lockClients(t, internalMemory(t), 1, DefaultLockTimeout)
	a := fss[0]
	ino := lockFile(t, fss, "f")[0].Ino()
	in := a.Inodes()
	w := Lock{Kind: PosixLock, Type: WriteLock, Owner: 1}
	require.NoError(t, in.Setlk(ctx, ino, w, false)) // starts the session
	require.NoError(t, in.ReleaseLocks(ctx, ino, PosixLock, 1))
	s0 := a.Stats()
	require.NoError(t, in.Setlk(ctx, ino, w, false))
	s1 := a.Stats()
	require.NoError(t, in.ReleaseLocks(ctx, ino, PosixLock, 1))
	s2 := a.Stats()
	require.NoError(t, in.ReleaseLocks(ctx, ino, PosixLock, 1))
	s3 := a.Stats()
	lock, unlock, idle := s1.RoundTrips()-s0.RoundTrips(), s2.RoundTrips()-s1.RoundTrips(), s3.RoundTrips()-s2.RoundTrips()
	t.Logf("round trips: lock %d (incl. re-reading the open file's inode), unlock %d, unlock of nothing %d", lock, unlock, idle)
	// The lock table's CAS goes straight to the version this session last
	// wrote; re-reading the open file's inode is the other round trip.
	assert.Equal(t, int64(2), lock)
	assert.Equal(t, int64(1), unlock)
	assert.Zero(t, idle, "releasing on close of a file never locked is free")
}

// TestLockModel runs clients taking and releasing random byte-range locks
// against a model: first one at a time, where every outcome must match the
// model exactly, then concurrently, where no two conflicting locks may ever
// be held at once. VOLDFS_SEED=n replays a seed.
func TestLockModel(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("VOLDFS_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (replay with VOLDFS_SEED=%d)", seed, seed)
	eachLockStore(t, func(t *testing.T, s backend.Store) {
		ctx := context.Background()
		const clients, owners, size = 3, 2, 24
		fss := lockClients(t, s, clients, DefaultLockTimeout)
		ino := lockFile(t, fss, "f")[0].Ino()
		type key struct{ c, o int }
		var mu sync.Mutex
		// Each owner's lock type per byte; byte size stands for all bytes from
		// size on, which only locks to EOF (Len 0) reach.
		model := map[key]*[size + 1]LockType{}
		for c := range clients {
			for o := range owners {
				model[key{c, o}] = &[size + 1]LockType{}
			}
		}
		// conflict reports whether k may not take typ on [s, e).
		conflict := func(k key, typ LockType, s, e int) bool {
			for k2, m := range model {
				if k2 == k {
					continue
				}
				for i := s; i < e; i++ {
					if m[i] == WriteLock && typ != UnlockLock || m[i] == ReadLock && typ == WriteLock {
						return true
					}
				}
			}
			return false
		}
		set := func(k key, typ LockType, s, e int) {
			for i := s; i < e; i++ {
				model[k][i] = 0
				if typ != UnlockLock {
					model[k][i] = typ
				}
			}
		}
		check := func() {
			for i := range size + 1 {
				w, r := 0, 0
				for _, m := range model {
					switch m[i] {
					case WriteLock:
						w++
					case ReadLock:
						r++
					}
				}
				if w > 1 || w == 1 && r > 0 {
					t.Errorf("byte %d held by %d writers and %d readers", i, w, r)
				}
			}
		}
		op := func(rng *rand.Rand, c, o int, exact bool) {
			k := key{c, o}
			typ := []LockType{ReadLock, WriteLock, UnlockLock}[rng.IntN(3)]
			st := rng.IntN(size)
			n := rng.IntN(size - st + 1) // 0: to EOF
			e := st + n
			if n == 0 {
				e = size + 1
			}
			l := Lock{Kind: PosixLock, Type: typ, Start: int64(st), Len: int64(n), Owner: uint64(o)}
			// What a call releases (an unlock, a downgrade) leaves the model
			// before the call, what it acquires after, so that the model
			// never holds more than the store.
			mu.Lock()
			want := conflict(k, typ, st, e)
			saved := *model[k]
			if typ == UnlockLock {
				set(k, typ, st, e)
			} else if typ == ReadLock {
				for i := st; i < e; i++ {
					if model[k][i] == WriteLock {
						model[k][i] = ReadLock
					}
				}
			}
			mu.Unlock()
			err := fss[c].Inodes().Setlk(ctx, ino, l, false)
			if err != nil {
				mu.Lock()
				*model[k] = saved // a refused request changes nothing
				mu.Unlock()
			}
			if err != nil && !errors.Is(err, syscall.EAGAIN) {
				t.Errorf("client %d owner %d %+v: %v", c, o, l, err)
				return
			}
			if exact && (err != nil) != want {
				ls, _, _ := fss[0].c.readLocks(ctx, ino)
				t.Errorf("client %d owner %d %+v: err %v, model conflict %v; table %+v", c, o, l, err, want, ls)
			}
			if err == nil && typ != UnlockLock {
				mu.Lock()
				set(k, typ, st, e)
				check()
				mu.Unlock()
			}
		}
		rng := rand.New(rand.NewPCG(seed, 1))
		steps := 300
		if testing.Short() {
			steps = 100
		}
		for range steps {
			op(rng, rng.IntN(clients), rng.IntN(owners), true)
			if t.Failed() {
				return
			}
		}
		var wg sync.WaitGroup
		for c := range clients {
			for o := range owners {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(seed, uint64(2+c*owners+o)))
					for range steps / 3 {
						op(rng, c, o, false)
					}
				}()
			}
		}
		wg.Wait()
		// Every lock the model holds is in the store.
		for c := range clients {
			for o := range owners {
				m := model[key{c, o}]
				for i := range size + 1 {
					if m[i] == 0 {
						continue
					}
					// Another client's write request at i must conflict.
					other := fss[(c+1)%clients].Inodes()
					got, err := other.Getlk(ctx, ino, Lock{Kind: PosixLock, Type: WriteLock, Start: int64(i), Len: 1, Owner: 99})
					require.NoError(t, err)
					assert.NotEqual(t, UnlockLock, got.Type, "client %d owner %d byte %d", c, o, i)
				}
			}
		}
		// Releasing every owner, concurrently, leaves no lock behind.
		for c := range clients {
			for o := range owners {
				wg.Add(1)
				go func() {
					defer wg.Done()
					assert.NoError(t, fss[c].Inodes().ReleaseLocks(ctx, ino, PosixLock, uint64(o)))
				}()
			}
		}
		wg.Wait()
		ls, _, err := fss[0].c.readLocks(ctx, ino)
		require.NoError(t, err)
		assert.Empty(t, ls, "locks left after every owner released")
	})
}

// BenchmarkLock measures an uncontended lock and unlock pair (through the
// inode API, no file open) and reports the store round trips per pair.
func BenchmarkLock(b *testing.B) {
	stores := []struct {
		name string
		new  func(b *testing.B) backend.Store
	}{
		{"Memory", func(b *testing.B) backend.Store { return memory.New() }},
		{"Memcached", func(b *testing.B) backend.Store {
			s, err := memcache.New(testserver.Memcached(b))
			require.NoError(b, err)
			return s
		}},
	}
	for _, st := range stores {
		b.Run(st.name, func(b *testing.B) {
			ctx := context.Background()
			s := st.new(b)
			defer s.Close()
			a, err := Format(ctx, s, &Options{BlockSize: 4096})
			require.NoError(b, err)
			defer a.Close()
			in := a.Inodes()
			attr, err := in.Mkdir(ctx, RootIno, "d", 0o755, nil)
			require.NoError(b, err)
			w := Lock{Kind: PosixLock, Type: WriteLock, Owner: 1}
			require.NoError(b, in.Setlk(ctx, attr.Ino, w, false))
			require.NoError(b, in.ReleaseLocks(ctx, attr.Ino, PosixLock, 1))
			b.Run("OneClient", func(b *testing.B) {
				s0 := a.Stats()
				for range b.N {
					if err := in.Setlk(ctx, attr.Ino, w, false); err != nil {
						b.Fatal(err)
					}
					if err := in.ReleaseLocks(ctx, attr.Ino, PosixLock, 1); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(a.Stats().RoundTrips()-s0.RoundTrips())/float64(b.N), "trips/op")
			})

			// Two clients taking turns (the table is deleted when emptied, so
			// each one's create-only CAS still wins at once).
			c2, err := Open(ctx, s, nil)
			require.NoError(b, err)
			defer c2.Close()
			ins := []*Inodes{in, c2.Inodes()}
			for _, x := range ins {
				require.NoError(b, x.Setlk(ctx, attr.Ino, w, false))
				require.NoError(b, x.ReleaseLocks(ctx, attr.Ino, PosixLock, 1))
			}
			b.Run("Alternating", func(b *testing.B) {
				t0 := a.Stats().RoundTrips() + c2.Stats().RoundTrips()
				for i := range b.N {
					x := ins[i%2]
					if err := x.Setlk(ctx, attr.Ino, w, false); err != nil {
						b.Fatal(err)
					}
					if err := x.ReleaseLocks(ctx, attr.Ino, PosixLock, 1); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(a.Stats().RoundTrips()+c2.Stats().RoundTrips()-t0)/float64(b.N), "trips/op")
			})
		})
	}
}
