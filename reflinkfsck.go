package voldfs

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall"

	"github.com/voldfs/voldfs/backend"
)

// fsckShared checks the reference counts of file blocks (reflinkcount.go):
// a block's count must be the number of its parents (inodes whose root it
// is, and distinct index nodes naming it) over every file tree, reachable
// or orphaned, and, on a store that can list keys, every count record must
// name a block some tree references. It runs only when some inode is
// marked shared or some count record exists, so a filesystem without
// clones pays nothing. reach holds the inodes Fsck reached from the root;
// orphans it lists itself. With Repair a wrong count is set to the number
// found and a record naming no referenced block is deleted: run it when no
// other client writes, since a count a concurrent clone or write changed
// looks wrong to a walk that read the trees before it.
func (c *core) fsckShared(ctx context.Context, r *FsckReport, o FsckOptions, reach map[uint64]*inode) error {
	files := make(map[uint64]*inode, len(reach))
	shared := false
	for ino, n := range reach {
		if n.isReg() {
			files[ino] = n
			shared = shared || n.flags&flagShared != 0
		}
	}
	var records []blockRef
	listed := true
	err := backend.List(ctx, c.inodes, c.prefix+"r/", func(key string) error {
		if ref, ok := parseRef(strings.TrimPrefix(key, c.prefix+"r/")); ok {
			records = append(records, ref)
		}
		return nil
	})
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		listed = false
	case err != nil:
		return err
	}
	if !shared && len(records) == 0 {
		return nil
	}
	if listed {
		err := backend.List(ctx, c.inodes, c.prefix+"i/", func(key string) error {
			ino, err := strconv.ParseUint(strings.TrimPrefix(key, c.prefix+"i/"), 16, 64)
			if err != nil || reach[ino] != nil {
				return nil
			}
			ci, err := c.getInode(ctx, ino, 0)
			if err == nil && ci.n.isReg() {
				files[ino] = ci.n
			} else if err != nil && !errors.Is(err, syscall.ENOENT) {
				return err
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	// Parents of every block: each inode names its root, each distinct
	// index node its children.
	want := map[blockRef]int64{}
	type node struct {
		ref   blockRef
		level int
	}
	var queue []node
	visit := func(ref blockRef, level int) {
		want[ref]++
		if want[ref] == 1 && level > 0 {
			queue = append(queue, node{ref, level})
		}
	}
	for _, n := range files {
		if !n.root.isZero() {
			visit(n.root, int(n.height))
		}
	}
	for len(queue) > 0 {
		x := queue[0]
		queue = queue[1:]
		ents, err := c.readIndex(ctx, x.ref)
		if err != nil {
			r.problem("refcount", 0, "index node %s: %v", x.ref, err)
			continue
		}
		for _, e := range ents {
			visit(e.ref, x.level-1)
		}
	}
	// Compare with the records: those listed, or else a read for every
	// block that should have one or may.
	check := make(map[blockRef]bool, len(records))
	for _, ref := range records {
		check[ref] = true
	}
	for ref, k := range want {
		if k > 1 || !listed {
			check[ref] = true
		}
	}
	for ref := range check {
		key := c.refKey(ref)
		stored, ver := int64(1), backend.NoVersion
		v, vv, err := c.inodes.Get(ctx, key)
		switch {
		case errors.Is(err, backend.ErrNotFound):
		case err != nil:
			return err
		default:
			if stored, err = decodeRefCount(key, v); err != nil {
				r.problem("refcount", 0, "%v", err)
				stored = -1
			}
			ver = vv
		}
		k := want[ref]
		if k == 0 && ver == backend.NoVersion || stored == k {
			continue
		}
		if k == 0 {
			r.problem("refcount", 0, "count record %s names a block no file references", key)
		} else {
			r.problem("refcount", 0, "block %s has %d parents, count %d", ref, k, stored)
		}
		if !o.Repair {
			continue
		}
		if k <= 1 {
			err = c.inodes.Delete(ctx, key, ver)
		} else {
			_, err = c.inodes.CAS(ctx, key, ver, encodeRefCount(k))
		}
		if err == nil {
			r.Repaired++
		}
	}
	return nil
}

// parseRef parses a block ref's hex form.
func parseRef(hexs string) (blockRef, bool) {
	var ref blockRef
	if len(hexs) != 32 {
		return ref, false
	}
	for i := range ref {
		v, err := strconv.ParseUint(hexs[2*i:2*i+2], 16, 8)
		if err != nil {
			return ref, false
		}
		ref[i] = byte(v)
	}
	return ref, true
}
