package voldfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// The lock table. All locks of one inode, of every client, are one record,
// prefix+"l/"+hex ino, changed by CAS like an inode: each lock call reads
// it, checks for conflicts, and publishes the new table. A missing record
// is an empty table, and an emptied table is deleted.

// recLocks frames a lock table record.
const recLocks byte = 'L'

// lockEOF is the exclusive end of a lock that runs to the end of the file
// (Len 0): one past the largest offset.
const lockEOF = uint64(math.MaxInt64) + 1

// maxLockWait bounds the pause between two tries of a waiting lock.
const maxLockWait = 100 * time.Millisecond

// maxWatchedWait bounds the pause between two tries of a waiting lock on a
// store that wakes it when the lock table changes.
const maxWatchedWait = time.Second

// lockEnt is one lock of the table. end is exclusive.
type lockEnt struct {
	kind       LockKind
	typ        LockType
	start, end uint64
	sess       uint64
	owner      uint64
	pid        uint32
}

func (c *core) lockKey(ino uint64) string { return c.prefix + "l/" + strconv.FormatUint(ino, 16) }

func encodeLocks(ls []lockEnt) []byte {
	e := enc{}
	e.uv(uint64(len(ls)))
	for _, l := range ls {
		e.u8(uint8(l.kind))
		e.u8(uint8(l.typ))
		e.uv(l.start)
		e.uv(l.end)
		e.uv(l.sess)
		e.uv(l.owner)
		e.uv(uint64(l.pid))
	}
	return seal(recLocks, e.b)
}

func decodeLocks(key string, b []byte) ([]lockEnt, error) {
	p, err := unseal(recLocks, key, b)
	if err != nil {
		return nil, err
	}
	d := dec{b: p, key: key}
	n := d.uv()
	if n > uint64(len(p)) {
		return nil, corruptf("%s: %d locks in %d bytes", key, n, len(p))
	}
	ls := make([]lockEnt, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		l := lockEnt{kind: LockKind(d.u8()), typ: LockType(d.u8())}
		l.start, l.end, l.sess, l.owner, l.pid = d.uv(), d.uv(), d.uv(), d.uv(), uint32(d.uv())
		ls = append(ls, l)
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return ls, nil
}

// sameOwner reports whether a and b belong to one lock owner. POSIX and
// OFD owners are different owners even with equal numbers.
func (a *lockEnt) sameOwner(b *lockEnt) bool {
	return a.sess == b.sess && a.owner == b.owner && a.kind == b.kind
}

// conflicts reports whether a and b cannot both be held: different owners,
// overlapping ranges, one of them a write lock. flock locks and byte-range
// locks never conflict with each other (as on Linux).
func (a *lockEnt) conflicts(b *lockEnt) bool {
	if a.sameOwner(b) || (a.kind == FlockLock) != (b.kind == FlockLock) {
		return false
	}
	if a.typ != WriteLock && b.typ != WriteLock {
		return false
	}
	return a.start < b.end && b.start < a.end
}

// apply returns the table with req applied for its owner: for byte-range
// locks the owner's locks over req's range are replaced (split where they
// stick out) and, unless req unlocks, req is added and merged with the
// owner's adjacent or overlapping locks of the same type; an flock replaces
// the owner's flock. The result is sorted.
func apply(ls []lockEnt, req lockEnt) []lockEnt {
	out := make([]lockEnt, 0, len(ls)+2)
	for _, e := range ls {
		if !e.sameOwner(&req) || e.end <= req.start || e.start >= req.end {
			out = append(out, e)
			continue
		}
		if e.start < req.start {
			l := e
			l.end = req.start
			out = append(out, l)
		}
		if e.end > req.end {
			r := e
			r.start = req.end
			out = append(out, r)
		}
	}
	if req.typ != UnlockLock {
		merged := out[:0]
		for _, e := range out {
			if e.sameOwner(&req) && e.typ == req.typ && (e.end == req.start || e.start == req.end) {
				req.start, req.end = min(req.start, e.start), max(req.end, e.end)
				continue
			}
			merged = append(merged, e)
		}
		out = append(merged, req)
	}
	slices.SortFunc(out, func(a, b lockEnt) int {
		for _, d := range [...][2]uint64{{a.sess, b.sess}, {uint64(a.kind), uint64(b.kind)}, {a.owner, b.owner}, {a.start, b.start}} {
			if d[0] != d[1] {
				if d[0] < d[1] {
					return -1
				}
				return 1
			}
		}
		return 0
	})
	return out
}

// readLocks reads inode ino's lock table.
func (c *core) readLocks(ctx context.Context, ino uint64) ([]lockEnt, backend.Version, error) {
	key := c.lockKey(ino)
	ctx, cancel := c.step(ctx)
	defer cancel()
	b, ver, err := c.inodes.Get(ctx, key)
	if errors.Is(err, backend.ErrNotFound) {
		return nil, backend.NoVersion, nil
	}
	if err != nil {
		return nil, 0, err
	}
	ls, err := decodeLocks(key, b)
	return ls, ver, err
}

// writeLocks replaces the table of version ver with ls (deleting it when
// empty) and returns the new version. ErrConflict means another client
// changed it first.
func (c *core) writeLocks(ctx context.Context, ino uint64, ver backend.Version, ls []lockEnt) (backend.Version, error) {
	key := c.lockKey(ino)
	ctx, cancel := c.step(ctx)
	defer cancel()
	if len(ls) == 0 {
		if ver == backend.NoVersion {
			return backend.NoVersion, nil
		}
		err := c.inodes.Delete(ctx, key, ver)
		if errors.Is(err, backend.ErrNotFound) {
			err = backend.ErrConflict
		}
		return backend.NoVersion, err
	}
	nv, err := c.inodes.CAS(ctx, key, ver, encodeLocks(ls))
	if errors.Is(err, backend.ErrTooLarge) {
		return 0, fmt.Errorf("lock table %s: %w", key, syscall.ENOLCK)
	}
	return nv, err
}

// anyConflict reports whether some lock of ls conflicts with req.
func anyConflict(ls []lockEnt, req *lockEnt) bool {
	for i := range ls {
		if ls[i].conflicts(req) {
			return true
		}
	}
	return false
}

// maxTables bounds the lock tables a session keeps copies of.
const maxTables = 1024

// lockTable is a session's copy of an inode's lock table.
type lockTable struct {
	ls  []lockEnt
	ver backend.Version
}

func (s *session) cachedTable(ino uint64) ([]lockEnt, backend.Version, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tables[ino]
	return t.ls, t.ver, ok
}

func (s *session) cacheTable(ino uint64, ls []lockEnt, ver backend.Version) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tables[ino]; !ok && len(s.tables) >= maxTables {
		for k := range s.tables {
			delete(s.tables, k)
			break
		}
	}
	s.tables[ino] = lockTable{ls, ver}
}

func (s *session) dropTable(ino uint64) {
	s.mu.Lock()
	delete(s.tables, ino)
	s.mu.Unlock()
}

// conflicting returns the locks of ls that conflict with req and belong to
// live sessions, and ls without the locks of the dead sessions it found.
func (s *session) conflicting(ctx context.Context, ls []lockEnt, req *lockEnt) (confl, kept []lockEnt, err error) {
	dead := map[uint64]bool{}
	checked := map[uint64]bool{}
	for i := range ls {
		e := &ls[i]
		if !e.conflicts(req) || dead[e.sess] {
			continue
		}
		if !checked[e.sess] {
			checked[e.sess] = true
			ok, err := s.alive(ctx, e.sess)
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				dead[e.sess] = true
				continue
			}
		}
		confl = append(confl, *e)
	}
	if len(dead) == 0 {
		return confl, ls, nil
	}
	kept = make([]lockEnt, 0, len(ls))
	for _, e := range ls {
		if !dead[e.sess] {
			kept = append(kept, e)
		}
	}
	return confl, kept, nil
}

// errWouldBlock is a non-blocking lock's refusal.
var errWouldBlock = syscall.EAGAIN

// setLock applies req (owner in req.sess and req.owner) to inode ino's lock
// table. With wait it waits for conflicting locks to go; without, a
// conflict is EAGAIN. A cancelled wait is EINTR. On success the table holds
// req (or no longer holds what it unlocked).
func (c *core) setLock(ctx context.Context, s *session, ino uint64, req lockEnt, wait bool) error {
	unknown := 0
	for attempt, waits := 0, 0; ; attempt++ {
		// Removing our own locks is always safe: an unlock goes ahead
		// even when the session is lost or late (so a client cut off for a
		// while leaks no lock it released meanwhile), and reports the loss
		// after.
		if req.typ != UnlockLock {
			if err := s.check(); err != nil {
				return err
			}
		}
		unlock := s.lockIno(ino)
		res, err := c.tryLock(ctx, s, ino, &req, attempt == 0)
		_, ver, seen := s.cachedTable(ino) // the table res was judged on
		unlock()
		switch res {
		case tryDone:
			if req.typ == UnlockLock {
				return s.lostErr()
			}
			return nil
		case tryFailed:
			return lockCtxErr(ctx, err)
		case tryStale:
		case tryRaced:
			c.stats.conflicts.Add(1)
			if err := c.backoff(ctx, attempt); err != nil {
				return lockCtxErr(ctx, err)
			}
		case tryUnknown:
			// The next read tells (req is idempotent: applied, it leaves
			// nothing to change).
			if unknown++; unknown > 3 || ctx.Err() != nil {
				return lockCtxErr(ctx, err)
			}
		case tryBlocked:
			if !wait {
				return errWouldBlock
			}
			if err := c.lockWait(ctx, s, ino, ver, seen, waits); err != nil {
				return err
			}
			waits++
		}
	}
}

// tryResult is the outcome of one try of a lock request.
type tryResult int

const (
	tryDone    tryResult = iota // applied
	tryFailed                   // failed with the error
	tryStale                    // the session's copy of the table was stale: read
	tryRaced                    // another client changed the table first
	tryUnknown                  // the write's outcome is unknown
	tryBlocked                  // a conflicting lock is held
)

// tryLock makes one try of req, with the session's lock on ino held (so
// the session's copy of the table and its held set follow its writes in
// order). With useCache it works on the session's copy of the table from
// its last read or write, if any: a CAS with a stale version fails, so
// only a conflict or "nothing to do" judged on it needs a read.
func (c *core) tryLock(ctx context.Context, s *session, ino uint64, req *lockEnt, useCache bool) (tryResult, error) {
	ls, ver, cached := s.cachedTable(ino)
	cached = cached && useCache && !(req.typ != UnlockLock && anyConflict(ls, req))
	if !cached {
		var err error
		if ls, ver, err = c.readLocks(ctx, ino); err != nil {
			s.dropTable(ino)
			return tryFailed, err
		}
		s.cacheTable(ino, ls, ver)
	}
	var confl []lockEnt
	kept := ls
	if req.typ != UnlockLock {
		var err error
		if confl, kept, err = s.conflicting(ctx, ls, req); err != nil {
			return tryFailed, err
		}
	}
	next := kept
	if len(confl) > 0 && req.kind == FlockLock {
		// Linux converts an flock by dropping the old one first, so two
		// holders of a shared lock that both upgrade do not deadlock.
		drop := *req
		drop.typ = UnlockLock
		next = apply(kept, drop)
	} else if len(confl) == 0 {
		next = apply(kept, *req)
	}
	if !bytes.Equal(encodeLocks(next), encodeLocks(ls)) {
		s.noteHeld(ino)
		nv, err := c.writeLocks(ctx, ino, ver, next)
		switch {
		case errors.Is(err, backend.ErrConflict):
			s.dropTable(ino)
			if cached {
				return tryStale, nil
			}
			return tryRaced, nil
		case err != nil:
			s.dropTable(ino)
			return tryUnknown, err
		}
		s.cacheTable(ino, next, nv)
	} else if cached && req.typ != UnlockLock {
		// Our lock may have been broken since the copy was made: judge on
		// the store's table. (Others never add locks of ours, so an unlock
		// with nothing to remove in an up-to-date copy has nothing to do.)
		return tryStale, nil
	}
	if len(confl) > 0 {
		return tryBlocked, nil
	}
	s.settleHeld(ino, next)
	return tryDone, nil
}

// lockCtxErr turns an error of a cancelled call into EINTR, as an
// interrupted fcntl returns.
func lockCtxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", syscall.EINTR, err)
	}
	return err
}

// lockWait pauses before the next try of a waiting lock, which found
// inode ino's table at version ver (if seen) holding a conflicting lock:
// jittered, doubling from 1 ms to maxLockWait, or until ctx is done
// (EINTR). On a store that can watch a key (backend.Watcher) it waits for
// the table to change instead, so the waiter tries again within a round
// trip of the unlock, bounded by maxWatchedWait (and an eighth of the
// session timeout), the schedule on which a waiter re-checks that the
// holder's session still lives.
func (c *core) lockWait(ctx context.Context, s *session, ino uint64, ver backend.Version, seen bool, n int) error {
	d := min(time.Millisecond<<min(n, 10), maxLockWait)
	d = d/2 + rand.N(d/2+1)
	if _, ok := c.inodes.(backend.Watcher); ok && seen {
		// d stays the pause if the watch fails.
		w := max(min(maxWatchedWait, s.timeout/8), maxLockWait)
		wctx, cancel := context.WithTimeout(ctx, w/2+rand.N(w/2+1))
		defer cancel()
		_ = backend.WaitChange(wctx, c.inodes, c.lockKey(ino), ver, d) // nil or wctx's error
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", syscall.EINTR, ctx.Err())
		}
		return nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w (%w)", syscall.EINTR, ctx.Err())
	case <-tm.C:
		return nil
	}
}

// noteHeld records that inode ino's table may hold locks of s, before a
// write that may add some (so Close finds them even if the outcome is
// unknown).
func (s *session) noteHeld(ino uint64) {
	s.mu.Lock()
	s.held[ino] = true
	s.mu.Unlock()
}

// settleHeld records whether the table ls, now published, holds locks of s.
func (s *session) settleHeld(ino uint64, ls []lockEnt) {
	mine := false
	for _, e := range ls {
		mine = mine || e.sess == s.id
	}
	s.mu.Lock()
	if mine {
		s.held[ino] = true
	} else {
		delete(s.held, ino)
	}
	s.mu.Unlock()
}

// holds reports whether inode ino's table may hold locks of s.
func (s *session) holds(ino uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[ino]
}

// getLock returns the first live lock in ino's table that conflicts with
// req, or false.
func (c *core) getLock(ctx context.Context, s *session, ino uint64, req lockEnt) (lockEnt, bool, error) {
	ls, _, err := c.readLocks(ctx, ino)
	if err != nil {
		return lockEnt{}, false, lockCtxErr(ctx, err)
	}
	confl, _, err := s.conflicting(ctx, ls, &req)
	if err != nil || len(confl) == 0 {
		return lockEnt{}, false, lockCtxErr(ctx, err)
	}
	return confl[0], true, nil
}

// dropSession removes every lock of s from ino's table (FS.Close).
func (c *core) dropSession(ctx context.Context, s *session, ino uint64) error {
	defer s.lockIno(ino)()
	s.dropTable(ino)
	for attempt := 0; ; attempt++ {
		ls, ver, err := c.readLocks(ctx, ino)
		if err != nil {
			return err
		}
		next := make([]lockEnt, 0, len(ls))
		for _, e := range ls {
			if e.sess != s.id {
				next = append(next, e)
			}
		}
		if len(next) == len(ls) {
			return nil
		}
		_, err = c.writeLocks(ctx, ino, ver, next)
		if err == nil || !errors.Is(err, backend.ErrConflict) && attempt > 3 {
			return err
		}
		if err := c.backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// lockBoundary keeps the cache consistent at lock boundaries, as NFS does:
// before a lock change (acquired false: a release, a downgrade, or any
// request) the file's buffered writes are committed, so the next holder
// reads them; after an acquisition (acquired true) the cached inode is
// dropped and the open state re-read (unless it holds buffered writes), so
// this holder reads what the previous one committed.
func (c *core) lockBoundary(ctx context.Context, ino uint64, acquired bool) error {
	ctx, cancel := c.step(ctx)
	defer cancel()
	if acquired {
		c.dropInode(ino)
	}
	o := c.openState(ino)
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !acquired {
		return o.commit(ctx)
	}
	if o.buffered() {
		// Written since the boundary before the acquisition, by another
		// handle: keep it (the commit rebases on the current version).
		return nil
	}
	if err := o.refresh(ctx, true); err != nil {
		o.at = math.MinInt64 / 2 // the next read re-reads it
	}
	return nil
}
