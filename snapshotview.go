package voldfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/voldfs/voldfs/backend"
)

// Snapshot views: a read-only core that resolves every inode to its record
// at the snapshot.

// OpenSnapshot returns the named snapshot as a read-only filesystem: the
// same read API as f (an fs.FS with Stat, ReadFile, ReadDir, ReadLink,
// Open, the inode API...), whose writes fail with EROFS. It shares f's
// stores and block cache; inode records of a snapshot never change, so the
// view caches them without revalidation. A missing snapshot is
// fs.ErrNotExist. Close the view when done (it does not close f).
func (f *FS) OpenSnapshot(ctx context.Context, name string) (*FS, error) {
	t, _, err := f.c.readSnaps(ctx)
	if err != nil {
		return nil, &fs.PathError{Op: "opensnapshot", Path: name, Err: err}
	}
	s, ok := t.find(name)
	if !ok {
		return nil, &fs.PathError{Op: "opensnapshot", Path: name, Err: fs.ErrNotExist}
	}
	return &FS{c: f.c.viewCore(s.id), ctx: f.ctx}, nil
}

// IsSnapshot reports whether f is a read-only snapshot view.
func (f *FS) IsSnapshot() bool { return f.c.snap.view }

// viewCore returns a read-only core reading snapshot id.
func (c *core) viewCore(id uint64) *core {
	v := &core{
		inodes:     readOnly(c.inodes),
		blocks:     readOnly(c.blocks),
		split:      c.split,
		name:       c.name,
		prefix:     c.prefix,
		sb:         c.sb,
		attrTTL:    c.attrTTL,
		wbuf:       c.wbuf,
		par:        c.par,
		opTimeout:  c.opTimeout,
		uid:        c.uid,
		gid:        c.gid,
		cache:      c.cache,
		dirCache:   c.dirCache,
		inodeCache: make(map[uint64]*cachedInode),
		maxInodes:  c.maxInodes,
		open:       make(map[uint64]*openInode),
		freeSem:    make(chan struct{}, 1),
		upSem:      make(chan struct{}, 1),
	}
	v.setBlockSize(c.blockSize)
	v.snap.view, v.snap.id = true, id
	v.snap.origin, v.snap.originID = c.snap.origin, c.snap.originID
	return v
}

// snapVersion is the version a view reports for every inode: its records
// never change.
const snapVersion backend.Version = 1

// snapFetch reads inode ino as of the view's snapshot: the live record,
// or the gone record of a deleted inode, then the preserved predecessors
// until one stamped at or before the snapshot. An inode created after the
// snapshot is ENOENT.
func (c *core) snapFetch(ctx context.Context, ino uint64) (*inode, error) {
	key := c.inodeKey(ino)
	b, _, err := c.inodes.Get(ctx, key)
	if errors.Is(err, backend.ErrNotFound) {
		key = c.goneKey(ino)
		b, _, err = c.inodes.Get(ctx, key)
	}
	for hops := 0; ; hops++ {
		if errors.Is(err, backend.ErrNotFound) && hops == 0 && c.snap.origin != nil {
			// A clone's inode it never wrote: the origin's.
			return c.snap.origin.snapFetch(ctx, ino)
		}
		if errors.Is(err, backend.ErrNotFound) {
			// Absent, or a link Fsck collected: only records no live
			// snapshot needs are collected (snapshotfsck.go).
			return nil, syscall.ENOENT
		}
		if err != nil {
			return nil, fmt.Errorf("get inode %s: %w", key, err)
		}
		n, derr := decodeInode(key, b)
		if derr != nil {
			return nil, derr
		}
		if n.ino != ino {
			return nil, corruptf("%s: holds inode %d", key, n.ino)
		}
		if n.stamp <= c.snap.id {
			if n.flags&flagGone != 0 {
				return nil, syscall.ENOENT // deleted in a clone
			}
			return n, nil
		}
		if n.prev == 0 || n.prev-1 >= n.stamp || hops > maxSnapshots {
			return nil, syscall.ENOENT // created after the snapshot
		}
		key = c.presKey(ino, n.prev-1)
		b, _, err = c.inodes.Get(ctx, key)
	}
}

// errReadOnly is what a snapshot view's stores answer every write with.
var errReadOnly = fmt.Errorf("voldfs: snapshot view: %w", syscall.EROFS)

// roStore is a snapshot view's store: reads pass, writes fail with EROFS
// (a backstop: the view refuses writes before they reach a store).
type roStore struct{ s backend.Store }

// roBatchStore is a roStore over a store with batch reads.
type roBatchStore struct{ roStore }

var _ backend.BatchGetter = roBatchStore{}

func readOnly(s backend.Store) backend.Store {
	if _, ok := s.(backend.BatchGetter); ok {
		return roBatchStore{roStore{s}}
	}
	return roStore{s}
}

func (r roStore) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	return r.s.Get(ctx, key)
}

func (r roBatchStore) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	return backend.GetMulti(ctx, r.s, keys)
}

func (r roStore) CAS(context.Context, string, backend.Version, []byte) (backend.Version, error) {
	return 0, errReadOnly
}

func (r roStore) Delete(context.Context, string, backend.Version) error { return errReadOnly }

func (r roStore) Commit(context.Context, []backend.Op) ([]backend.Version, error) {
	return nil, errReadOnly
}

func (r roStore) Close() error { return nil }
