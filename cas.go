package voldfs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// The commit loop. Every change to an inode is a function applied to a
// private copy of its latest known version and published with one CAS. On a
// conflict the function is applied again to the newer version (rebase); it
// must therefore derive everything from the inode it is given.

// errNoChange, returned by an update function, ends the update without a CAS.
var errNoChange = errors.New("voldfs: no change")

// errOutcomeUnknown marks an update error after which the CAS may or may
// not have been applied: blocks the attempt wrote may be live and must not
// be freed.
var errOutcomeUnknown = errors.New("outcome unknown")

// update applies fn to inode ino until a CAS publishes the result. It starts
// from the cached copy whatever its age (a stale copy only costs a retry: the
// CAS checks the version). A missing inode is ENOENT. An error from fn ends the
// update; errNoChange ends it successfully without a write.
func (c *core) update(ctx context.Context, ino uint64, fn func(t *tx, n *inode) error) (*inode, error) {
	ci, err := c.getInode(ctx, ino, -1)
	if err != nil {
		return nil, err
	}
	key := c.inodeKey(ino)
	fresh := false // ci was read from the store during this update
	missing := 0   // block-missing retries on an unchanged version
	for attempt := 0; ; attempt++ {
		n := ci.n.clone()
		t := &tx{}
		err := fn(t, n)
		if errors.Is(err, errNoChange) {
			c.freeBlocks(ctx, t.written)
			if fresh {
				return ci.n, nil
			}
			// "Nothing to do" judged on a cached copy is not safe: the
			// store may hold a version where there is. Judge it again on
			// the latest version.
			prev := ci.ver
			if ci, err = c.getInode(ctx, ino, 0); err != nil {
				return nil, err
			}
			fresh = true
			if ci.ver == prev {
				return ci.n, nil
			}
			continue
		}
		if err != nil {
			c.freeBlocks(ctx, t.written)
			if !fresh && !errors.Is(err, errBlockMissing) {
				// A refusal (ENOENT, EEXIST, a race...) judged on a cached
				// copy may be wrong for the store's version: if the store
				// holds a newer one, judge again on it.
				latest, gerr := c.getInode(ctx, ino, 0)
				if gerr != nil {
					return nil, gerr
				}
				fresh = true
				if latest.ver != ci.ver {
					ci = latest
					continue
				}
			}
			if errors.Is(err, errBlockMissing) && missing < 5 {
				// The copy fn started from was stale: a newer version freed
				// blocks it references. Rebase on the latest version. A
				// read that shared an older in-flight fetch may still see
				// the same version: try again a few times before calling
				// the block lost.
				latest, gerr := c.getInode(ctx, ino, 0)
				if gerr != nil {
					return nil, gerr
				}
				if latest.ver == ci.ver {
					missing++
				}
				ci, fresh = latest, true
				if err := backoff(ctx, attempt+1); err != nil {
					return nil, err
				}
				continue
			}
			return nil, err
		}
		val := encodeInode(n)
		c.stats.inodeCAS.Add(1)
		ver, err := c.inodes.CAS(ctx, key, ci.ver, val)
		if err == nil {
			c.putInode(n, ver)
			c.freeBlocks(ctx, t.freed)
			return n, nil
		}
		if !errors.Is(err, backend.ErrConflict) {
			// The outcome is unknown: the CAS may have been applied, so
			// the blocks it wrote may be live. Leave them (GC finds them if
			// not) and forget the cached inode.
			c.dropInode(ino)
			if errors.Is(err, backend.ErrTooLarge) {
				return nil, fmt.Errorf("inode %s: %w", key, syscall.EFBIG)
			}
			return nil, fmt.Errorf("cas %s: %w (%w)", key, err, errOutcomeUnknown)
		}
		c.stats.conflicts.Add(1)
		c.freeBlocks(ctx, t.written)
		if err := backoff(ctx, attempt); err != nil {
			return nil, err
		}
		if ci, err = c.getInode(ctx, ino, 0); err != nil {
			return nil, err
		}
		fresh = true
	}
}

// backoff sleeps a jittered, bounded, exponentially growing time, or until
// ctx is done.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return ctx.Err()
	}
	d := time.Duration(50<<min(attempt, 11)) * time.Microsecond
	d = min(d, 50*time.Millisecond)
	d = d/2 + rand.N(d/2+1)
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// getInode returns inode ino, from the cache if it was known current at most
// maxAge ago (maxAge < 0: any age), else from the store. Concurrent fetches of
// one inode share one store read, except with maxAge 0. A missing inode is
// ENOENT.
func (c *core) getInode(ctx context.Context, ino uint64, maxAge time.Duration) (*cachedInode, error) {
	if ci := c.cachedInode(ino, maxAge); ci != nil {
		return ci, nil
	}
	key := c.inodeKey(ino)
	fetch := func() (any, error) {
		c.stats.inodeGets.Add(1)
		start := nanotime()
		b, ver, err := c.inodes.Get(ctx, key)
		if errors.Is(err, backend.ErrNotFound) {
			c.dropInode(ino)
			return nil, syscall.ENOENT
		}
		if err != nil {
			return nil, fmt.Errorf("get inode %s: %w", key, err)
		}
		n, err := decodeInode(key, b)
		if err != nil {
			return nil, err
		}
		if n.ino != ino {
			return nil, corruptf("%s: holds inode %d", key, n.ino)
		}
		return c.putInodeAt(n, ver, start), nil
	}
	var v any
	var err error
	if maxAge == 0 {
		// A caller that needs the current version (close-to-open, a
		// rebase) must not share a fetch that began before it asked.
		v, err = fetch()
	} else {
		v, err, _ = c.flight.Do(key, fetch)
	}
	if err != nil {
		return nil, err
	}
	return v.(*cachedInode), nil
}

func (c *core) cachedInode(ino uint64, maxAge time.Duration) *cachedInode {
	c.imu.Lock()
	defer c.imu.Unlock()
	ci := c.inodeCache[ino]
	if ci == nil {
		return nil
	}
	if maxAge >= 0 && nanotime()-ci.at > int64(maxAge) {
		return nil
	}
	return ci
}

// putInode records n at version ver as current, unless the cache already
// holds a newer version (versions of one key grow in every store we know, but
// the contract does not promise it, so the newest arrival wins).
func (c *core) putInode(n *inode, ver backend.Version) *cachedInode {
	return c.putInodeAt(n, ver, nanotime())
}

// putInodeAt caches n, known current at time at, unless the cache holds a
// copy known current later: a read that began before a commit of this
// process finished must not replace the commit's newer result.
func (c *core) putInodeAt(n *inode, ver backend.Version, at int64) *cachedInode {
	if n.isDir() {
		n.dirc = &dirCache{} // n is immutable from here on
	}
	ci := &cachedInode{n: n, ver: ver, at: at}
	c.imu.Lock()
	defer c.imu.Unlock()
	if old := c.inodeCache[n.ino]; old != nil && old.at > at {
		return old
	}
	if len(c.inodeCache) >= c.maxInodes {
		for k := range c.inodeCache { // drop an arbitrary quarter
			delete(c.inodeCache, k)
			if len(c.inodeCache) < c.maxInodes*3/4 {
				break
			}
		}
	}
	c.inodeCache[n.ino] = ci
	return ci
}

func (c *core) dropInode(ino uint64) {
	c.imu.Lock()
	delete(c.inodeCache, ino)
	c.imu.Unlock()
}

var clockStart = time.Now()

// nanotime is a monotonic clock reading.
func nanotime() int64 { return int64(time.Since(clockStart)) }
