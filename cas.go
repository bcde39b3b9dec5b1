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
	missing := 0   // block-missing retries on an unchanged version (retryMissing)
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
			if retryMissing(err, missing) {
				// The copy fn started from was stale: a newer version freed
				// blocks it references. Rebase on the latest version; only
				// tries on an unchanged version count against the policy.
				latest, gerr := c.getInode(ctx, ino, 0)
				if gerr != nil {
					return nil, gerr
				}
				if latest.ver == ci.ver {
					missing++
				}
				ci, fresh = latest, true
				if err := c.backoff(ctx, attempt+1); err != nil {
					return nil, err
				}
				continue
			}
			return nil, err
		}
		val := encodeInode(n)
		ver, err := c.inodes.CAS(ctx, key, ci.ver, val)
		if err == nil {
			c.putInode(n, ver)
			c.freeBlocks(ctx, t.freed)
			return n, nil
		}
		if errors.Is(err, backend.ErrNoSpace) {
			// A refusal: nothing was stored.
			c.dropInode(ino)
			c.freeBlocks(ctx, t.written)
			return nil, fmt.Errorf("inode %s: %w (%w)", key, syscall.ENOSPC, err)
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
		if err := c.backoff(ctx, attempt); err != nil {
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
