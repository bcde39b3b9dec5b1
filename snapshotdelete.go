package voldfs

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// Reclaiming a deleted snapshot's space, without listing keys: the
// snapshot's namespace is walked once (O(its inodes) reads, most from
// caches shared with the live tree); for every inode whose record at the
// snapshot differs from its record at the next holder (the next live
// snapshot, or the live tree), the blocks of the snapshot's record that
// were born after the previous live snapshot (so no older snapshot holds
// them: the ZFS birth rule) and that the next holder's record does not
// reference are deleted, and so are the preserved records no live
// snapshot needs any more. Refs are shared between inodes only by reflink
// copies, whose files carry flagShared from the clone on (never cleared):
// the blocks of an inode that was ever shared are left to Fsck's GC. So
// this is exactly what only the snapshot held among reachable, unshared
// inodes; the rest is left to Fsck's GC.

// reclaim frees what only the deleted snapshot s held; t is the table
// without it. A snapshot taken during the walk may hold a block the walk
// judged free (the live tree still had it when the snapshot was taken, not
// when the walk looked), so the walk is done again with the new table
// until the epoch holds still across one.
func (c *core) reclaim(ctx context.Context, s snapInfo, t snapTable) error {
	for attempt := 0; ; attempt++ {
		dead, inos, err := c.reclaimWalk(ctx, s, t)
		if err != nil {
			return err
		}
		t2, _, err := c.readSnaps(ctx)
		if err != nil {
			return err
		}
		if t2.epoch != t.epoch {
			if attempt >= 3 {
				return nil // snapshots keep coming: leave it to Fsck's GC
			}
			t = t2
			continue
		}
		c.reclaimDelete(ctx, dead, inos, &t2)
		return nil
	}
}

// reclaimWalk returns the blocks only s held and the inodes whose records
// there differ from the next holder's.
func (c *core) reclaimWalk(ctx context.Context, s snapInfo, t snapTable) ([]blockRef, []uint64, error) {
	var prev uint64
	hasPrev := false
	if c.snap.origin != nil {
		// A clone: blocks born at or before its origin snapshot are the
		// origin's, like those of an earlier snapshot.
		prev, hasPrev = c.snap.originID, true
	}
	next := c // the live tree, unless a later snapshot holds on
	for _, o := range t.snaps {
		if o.id < s.id {
			prev, hasPrev = max(prev, o.id), true
		}
		if o.id > s.id && next == c {
			next = c.viewCore(o.id)
		}
	}
	vs := c.viewCore(s.id)
	var dead []blockRef
	var inos []uint64
	seen := map[uint64]bool{RootIno: true}
	queue := []uint64{RootIno}
	for len(queue) > 0 {
		ino := queue[0]
		queue = queue[1:]
		ci, err := vs.getInode(ctx, ino, -1)
		if errors.Is(err, syscall.ENOENT) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		rs := ci.n
		if rs.isDir() {
			ents, _, err := dirList(ctx, dirNodes{vs}, rs.inline, 0, 0)
			if err != nil {
				return nil, nil, err
			}
			for _, e := range ents {
				if !seen[e.ino] {
					seen[e.ino] = true
					queue = append(queue, e.ino)
				}
			}
		}
		age := time.Duration(-1)
		if next == c {
			age = 0 // the live record, fresh
		}
		var rn *inode
		if cn, err := next.getInode(ctx, ino, age); err == nil {
			rn = cn.n
		} else if !errors.Is(err, syscall.ENOENT) {
			return nil, nil, err
		}
		if rn != nil && rn.dead() && next != c {
			// Unlinked in the next snapshot: nothing there reaches it. (A
			// live unlinked inode may still be open: its destroy frees it.)
			rn = nil
		}
		if rn != nil && rn.stamp == rs.stamp && rn.prev == rs.prev {
			// The same record: nothing of it is the snapshot's alone, and
			// the older preserved records never served the snapshot.
			continue
		}
		inos = append(inos, ino)
		if shared, err := c.everShared(ctx, ino, rs, rn, next == c); err != nil {
			return nil, nil, err
		} else if shared {
			// A reflink copy (reflink.go) may hold these blocks from
			// another inode, which this walk does not see: leave them to
			// Fsck's GC, which walks every live file.
			continue
		}
		mine, err := recordRefs(ctx, vs, rs)
		if err != nil {
			return nil, nil, err
		}
		var theirs map[blockRef]bool
		if rn != nil {
			if theirs, err = recordRefs(ctx, next, rn); err != nil {
				return nil, nil, err
			}
		}
		for ref := range mine {
			if (!hasPrev || ref.birth() > prev) && !theirs[ref] {
				dead = append(dead, ref)
			}
		}
	}
	return dead, inos, nil
}

// reclaimDelete deletes the blocks and the preserved records of inodes
// inos that no live snapshot of t needs.
func (c *core) reclaimDelete(ctx context.Context, dead []blockRef, inos []uint64, t *snapTable) {
	for _, ref := range dead {
		c.cache.remove(ref)
		c.dirCache.remove(ref)
	}
	c.parallel(ctx, len(dead), func(ctx context.Context, i int) error {
		_ = c.blocks.Delete(ctx, c.blockKey(dead[i]), backend.AnyVersion)
		return nil
	})
	for _, ino := range inos {
		keep, chain, err := c.chainKeys(ctx, ino, t)
		if err != nil {
			continue // left to Fsck's GC
		}
		for _, k := range chain {
			if !keep[k] && k != c.inodeKey(ino) {
				_ = c.inodes.Delete(ctx, k, backend.AnyVersion)
			}
		}
	}
}

// recordRefs returns the blocks inode record n references, read through
// core v.
func recordRefs(ctx context.Context, v *core, n *inode) (map[blockRef]bool, error) {
	refs := map[blockRef]bool{}
	var err error
	if n.isDir() {
		if !n.xattrRef.isZero() {
			refs[n.xattrRef] = true
		}
		err = dirRefs(ctx, dirNodes{v}, n.inline, func(r blockRef) error { refs[r] = true; return nil })
	} else {
		err = v.treeRefs(ctx, n, func(r blockRef, _ byte) error { refs[r] = true; return nil })
	}
	return refs, err
}

// everShared reports whether inode ino's tree may share blocks with another
// file's: its record at the snapshot (rs), at the next holder (rn), or its
// newest record (live, or the gone record of a deleted inode) carries
// flagShared. flagShared is never cleared, so a clone made after the
// snapshot shows in the newest record even when the next holder no longer
// has the inode.
//
// rnLive says rn was read fresh from the live tree: it is then the newest
// record already (or, when nil, the inode is gone and only its gone record
// is left to read), which saves a round trip per changed inode.
func (c *core) everShared(ctx context.Context, ino uint64, rs, rn *inode, rnLive bool) (bool, error) {
	if rs.flags&flagShared != 0 || rn != nil && rn.flags&flagShared != 0 {
		return true, nil
	}
	if rs.isDir() || rnLive && rn != nil {
		return false, nil
	}
	key, b, err := c.inodeKey(ino), []byte(nil), backend.ErrNotFound
	if !rnLive {
		b, _, err = c.inodes.Get(ctx, key)
	}
	if errors.Is(err, backend.ErrNotFound) {
		key = c.goneKey(ino)
		b, _, err = c.inodes.Get(ctx, key)
	}
	if errors.Is(err, backend.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	n, err := decodeInode(key, b)
	if err != nil {
		return false, err
	}
	return n.flags&flagShared != 0, nil
}
