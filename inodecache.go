package voldfs

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// The inode cache: the latest version of each inode this process read or
// wrote, with the time it was known current. Path lookups and Stat may
// answer from it within the attribute window; the commit loop starts from it
// whatever its age (the CAS checks the version).

// cachedInode is an inode as last read or written by this process.
type cachedInode struct {
	n   *inode
	ver backend.Version
	at  int64 // monotonic nanoseconds when it was known current
}

// getInode returns inode ino, from the cache if it was known current at most
// maxAge ago (maxAge < 0: any age), else from the store. Concurrent fetches of
// one inode share one store read, except with maxAge 0. A missing inode is
// ENOENT.
func (c *core) getInode(ctx context.Context, ino uint64, maxAge time.Duration) (*cachedInode, error) {
	if ci := c.cachedInode(ino, maxAge); ci != nil {
		c.stats.attrHits.Add(1)
		return ci, nil
	} else if maxAge != 0 {
		c.stats.attrMisses.Add(1)
	}
	key := c.inodeKey(ino)
	fetch := func(ctx context.Context) (any, error) {
		start := nanotime()
		if c.snap.view {
			n, err := c.snapFetch(ctx, ino)
			if err != nil {
				return nil, err
			}
			return c.putInodeAt(n, snapVersion, start), nil
		}
		b, ver, err := c.inodes.Get(ctx, key)
		if errors.Is(err, backend.ErrNotFound) && c.snap.origin != nil {
			return c.originInode(ctx, ino, start) // snapshotclone.go
		}
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
		if n.flags&flagGone != 0 {
			c.dropInode(ino) // a clone's tombstone (snapshotclone.go)
			return nil, syscall.ENOENT
		}
		return c.putInodeAt(n, ver, start), nil
	}
	var v any
	var err error
	if maxAge == 0 {
		// A caller that needs the current version (close-to-open, a
		// rebase) must not share a fetch that began before it asked.
		v, err = fetch(ctx)
	} else {
		v, err = c.shared(ctx, key, fetch)
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
	if maxAge >= 0 && nanotime()-ci.at > int64(maxAge) && !c.snap.view {
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
