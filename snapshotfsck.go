package voldfs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/voldfs/voldfs/backend"
)

// Fsck's part for snapshots: it walks every snapshot, keeps the blocks each
// holds out of GC, reports what each holds, and (with GC, on stores that
// list keys) deletes preserved inode records no live snapshot needs.

// SnapshotsReport is what Fsck found in the snapshots.
type SnapshotsReport struct {
	// Each describes one live snapshot, oldest first.
	Each []SnapshotUsage
	// GarbageRecords counts preserved inode records no live snapshot
	// needs (deleted with GC; found only on stores that list keys).
	GarbageRecords int
}

// SnapshotUsage is what one snapshot holds.
type SnapshotUsage struct {
	Name                  string
	ID                    uint64
	Dirs, Files, Symlinks int   // inodes reachable in the snapshot
	Bytes                 int64 // logical bytes of its files
	// Blocks counts the blocks its trees reference; Exclusive those that
	// neither the live tree nor another snapshot references: what
	// deleting it would free.
	Blocks, Exclusive int
}

// fsckSnapshots walks every live snapshot. live holds the blocks the live
// tree references; the snapshots' blocks are added to it, so that GC keeps
// them.
func (c *core) fsckSnapshots(ctx context.Context, o FsckOptions, r *FsckReport, live map[blockRef]bool) error {
	t, _, err := c.readSnaps(ctx)
	if err != nil {
		return err
	}
	sets := make([]map[blockRef]bool, len(t.snaps))
	for i, s := range t.snaps {
		u := SnapshotUsage{Name: s.name, ID: s.id}
		sets[i] = map[blockRef]bool{}
		c.walkSnapshot(ctx, c.viewCore(s.id), &u, sets[i], live, r)
		r.Snapshots.Each = append(r.Snapshots.Each, u)
	}
	for i := range t.snaps {
		u := &r.Snapshots.Each[i]
		u.Blocks = len(sets[i])
		for ref := range sets[i] {
			only := !live[ref]
			for j := range sets {
				if j != i && sets[j][ref] {
					only = false
					break
				}
			}
			if only {
				u.Exclusive++
			}
		}
	}
	for _, set := range sets {
		for ref := range set {
			live[ref] = true
		}
	}
	return c.collectPreserved(ctx, o, r, &t)
}

// walkSnapshot adds every block snapshot view v references to refs,
// reading (to verify) the data blocks the live tree does not share.
func (c *core) walkSnapshot(ctx context.Context, v *core, u *SnapshotUsage, refs, live map[blockRef]bool, r *FsckReport) {
	bad := func(ino uint64, what string, err error) {
		r.problem("snapshot", ino, "snapshot %q: %s: %v", u.Name, what, err)
	}
	seen := map[uint64]bool{RootIno: true}
	queue := []uint64{RootIno}
	for len(queue) > 0 {
		ino := queue[0]
		queue = queue[1:]
		ci, err := v.getInode(ctx, ino, -1)
		if err != nil {
			bad(ino, "inode", err)
			continue
		}
		n := ci.n
		if n.isDir() {
			u.Dirs++
			if !n.xattrRef.isZero() {
				refs[n.xattrRef] = true
			}
			if err := dirRefs(ctx, dirNodes{v}, n.inline, func(ref blockRef) error { refs[ref] = true; return nil }); err != nil {
				bad(ino, "directory tree", err)
				continue
			}
			ents, _, err := dirList(ctx, dirNodes{v}, n.inline, 0, 0)
			if err != nil {
				bad(ino, "listing", err)
				continue
			}
			for _, e := range ents {
				if !seen[e.ino] {
					seen[e.ino] = true
					queue = append(queue, e.ino)
				}
			}
			continue
		}
		switch {
		case n.isSymlink():
			u.Symlinks++
		case n.isReg():
			u.Files++
			u.Bytes += int64(n.size)
		}
		err = v.treeRefs(ctx, n, func(ref blockRef, kind byte) error {
			refs[ref] = true
			if kind == recData && !live[ref] {
				_, err := v.getBlockNoCache(ctx, recData, ref)
				return err
			}
			return nil
		})
		if err != nil {
			bad(ino, "file tree", err)
		}
	}
}

// collectPreserved finds (and with GC deletes) preserved records no live
// snapshot needs: it follows each inode's chain from its head (the live
// record, or the gone record of a deleted inode) and keeps the records down
// to the oldest one a live snapshot resolves to. Only the chain's tail goes,
// so every kept record stays reachable; a reader that meets a missing link
// is past everything any live snapshot needs.
func (c *core) collectPreserved(ctx context.Context, o FsckOptions, r *FsckReport, t *snapTable) error {
	pre := c.prefix + "v/"
	byIno := map[uint64][]string{}
	err := backend.List(ctx, c.inodes, pre, func(key string) error {
		ino, err := strconv.ParseUint(strings.SplitN(strings.TrimPrefix(key, pre), "/", 2)[0], 16, 64)
		if err == nil {
			byIno[ino] = append(byIno[ino], key)
		}
		return nil
	})
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing preserved records: %w", err)
	}
	for ino, keys := range byIno {
		keep, _, err := c.chainKeys(ctx, ino, t)
		if err != nil {
			r.problem("snapshot", ino, "preserved records: %v", err)
			continue
		}
		var garbage []string
		for _, k := range keys {
			if !keep[k] {
				garbage = append(garbage, k)
			}
		}
		r.Snapshots.GarbageRecords += len(garbage)
		if o.GC {
			for _, k := range garbage {
				_ = c.inodes.Delete(ctx, k, backend.AnyVersion)
			}
		}
	}
	return nil
}

// chainKeys returns the keys of inode ino's chain (its head first: the
// live record, or the gone record of a deleted inode) and those of them
// that must stay for the live snapshots of t.
func (c *core) chainKeys(ctx context.Context, ino uint64, t *snapTable) (keep map[string]bool, chain []string, err error) {
	type link struct {
		key   string
		stamp uint64
	}
	var links []link
	key := c.inodeKey(ino)
	b, _, err := c.inodes.Get(ctx, key)
	if errors.Is(err, backend.ErrNotFound) {
		key = c.goneKey(ino)
		b, _, err = c.inodes.Get(ctx, key)
	}
	for err == nil && len(links) <= maxSnapshots+1 {
		n, derr := decodeInode(key, b)
		if derr != nil {
			return nil, nil, derr
		}
		links = append(links, link{key, n.stamp})
		if n.prev == 0 || n.prev-1 >= n.stamp {
			break
		}
		key = c.presKey(ino, n.prev-1)
		b, _, err = c.inodes.Get(ctx, key)
	}
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return nil, nil, err
	}
	chain = make([]string, len(links))
	for k, l := range links {
		chain[k] = l.key
	}
	// Record k (k >= 1) serves the snapshots in [its stamp, the stamp of
	// the record that replaced it).
	oldest := -1
	for k := 1; k < len(links); k++ {
		for _, s := range t.snaps {
			if s.id >= links[k].stamp && s.id < links[k-1].stamp {
				oldest = k
			}
		}
	}
	keep = map[string]bool{}
	for k := 1; k <= oldest; k++ {
		keep[links[k].key] = true
	}
	if oldest > 0 {
		keep[links[0].key] = true // the gone record heading a needed chain
	}
	return keep, chain, nil
}
