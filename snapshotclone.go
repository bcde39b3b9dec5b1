package voldfs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// Writable clones. A clone is a filesystem of its own name in the same
// store whose superblock names its origin: a filesystem and one of its
// snapshots. Creating it writes three keys whatever the tree's size (the
// origin's table, pinning the snapshot; the clone's table; its
// superblock). The clone reads every inode it never wrote from the
// origin's snapshot (an absent key falls through), so the first write of
// such an inode is a create-only CAS of the clone's own key, and a deletion
// leaves a tombstone. Blocks are shared until written: a ref born at or
// before the snapshot is the origin's (read under the origin's prefix and
// never freed by the clone); the clone's epochs start after the snapshot,
// so every block it writes is born later and lives under its own prefix.
// Each side's GC lists only its own blocks. A snapshot with clones cannot be
// deleted (EBUSY).

// CloneSnapshot creates a writable clone named name (a new filesystem name in the
// same store, opened with Open and Options.Name) from f's snapshot
// snapshot, in a constant number of store round trips. Writes to the clone
// and to f never show in each other; blocks are shared until written. A
// name in use is fs.ErrExist; a missing snapshot fs.ErrNotExist. Filesystems
// with a separate blocks store cannot be cloned yet (ENOTSUP).
func (f *FS) CloneSnapshot(ctx context.Context, snapshot, name string) error {
	c := f.c
	perr := func(err error) error { return &fs.PathError{Op: "clone", Path: name, Err: err} }
	switch {
	case c.snap.view:
		return perr(syscall.EROFS)
	case !validFSName(name):
		return perr(fs.ErrInvalid)
	case c.split:
		return perr(syscall.ENOTSUP)
	}
	superKey := name + "/super"
	if _, _, err := c.inodes.Get(ctx, superKey); err == nil {
		return perr(fs.ErrExist)
	} else if !errors.Is(err, backend.ErrNotFound) {
		return perr(err)
	}
	// Pin the snapshot first: a crash after it leaves a pin, never a clone
	// whose origin can be deleted.
	var id uint64
	var nonce [8]byte
	rand.Read(nonce[:])
	err := c.changeSnaps(ctx, func(t *snapTable) error {
		for i := range t.snaps {
			if t.snaps[i].name == snapshot {
				if t.snaps[i].id+1 >= birthMask {
					return syscall.ENOSPC // no birth ids left to tell the two apart
				}
				t.snaps[i].clones++
				id = t.snaps[i].id
				return nil
			}
		}
		return fs.ErrNotExist
	}, func(t *snapTable) bool {
		s, ok := t.find(snapshot)
		id = s.id
		return ok && s.clones > 0
	})
	if err != nil {
		return perr(err)
	}
	// The clone's table: its epoch starts after the snapshot.
	tabKey := name + "/snaps"
	_, ver, err := c.inodes.Get(ctx, tabKey)
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return perr(err)
	}
	if _, err := c.inodes.CAS(ctx, tabKey, ver, encodeSnapTable(&snapTable{epoch: id + 1})); err != nil {
		return perr(fmt.Errorf("clone table: %w", err))
	}
	sb := c.sb
	rand.Read(sb.id[:])
	sb.created = time.Now().UnixNano()
	sb.origin, sb.originID = c.name, id
	if _, err := c.inodes.CAS(ctx, superKey, backend.NoVersion, encodeSuperblock(&sb)); err != nil {
		if errors.Is(err, backend.ErrConflict) {
			err = fs.ErrExist
		}
		return perr(fmt.Errorf("clone superblock: %w", err))
	}
	return nil
}

// openClone attaches a clone's origin (Open).
func (c *core) openClone(ctx context.Context) error {
	if c.sb.origin == "" {
		return nil
	}
	o, err := c.originCore(ctx, c.sb.origin, c.sb.originID, 0)
	if err != nil {
		return err
	}
	c.snap.origin, c.snap.originID = o, c.sb.originID
	// Load the table now: blocks written before the first commit must
	// already carry the clone's birth ids.
	_, _, err = c.readSnaps(ctx)
	return err
}

// originCore returns a read-only view of filesystem name at snapshot id,
// itself attached to its own origin if it is a clone.
func (c *core) originCore(ctx context.Context, name string, id uint64, depth int) (*core, error) {
	if depth > 64 {
		return nil, corruptf("%s: clones nested too deep", name)
	}
	key := name + "/super"
	b, _, err := c.inodes.Get(ctx, key)
	if errors.Is(err, backend.ErrNotFound) {
		return nil, fmt.Errorf("origin %q: %w", name, ErrNotFormatted)
	}
	if err != nil {
		return nil, fmt.Errorf("origin %q: %w", name, err)
	}
	sb, err := decodeSuperblock(key, b)
	if err != nil {
		return nil, err
	}
	v := c.viewCore(id)
	v.name, v.prefix, v.sb = name, name+"/", *sb
	v.snap.origin, v.snap.originID = nil, 0
	if sb.origin != "" {
		if v.snap.origin, err = c.originCore(ctx, sb.origin, sb.originID, depth+1); err != nil {
			return nil, err
		}
		v.snap.originID = sb.originID
	}
	return v, nil
}

// originInode is inode ino of a clone that never wrote it: the origin's
// record, at version NoVersion, so the clone's first write of it is a
// create-only CAS of its own key.
func (c *core) originInode(ctx context.Context, ino uint64, start int64) (*cachedInode, error) {
	n, err := c.snap.origin.snapFetch(ctx, ino)
	if errors.Is(err, syscall.ENOENT) {
		c.dropInode(ino)
	}
	if err != nil {
		return nil, err
	}
	return c.putInodeAt(n, backend.NoVersion, start), nil
}
