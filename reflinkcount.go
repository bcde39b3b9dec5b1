package voldfs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"github.com/voldfs/voldfs/backend"
)

// Reference counts of shared file blocks (reflink copies, reflink.go).
//
// A block of a file tree (an index node or a data block) normally has one
// parent: one index node, or the inode whose root it is. Its count is then
// 1 and nothing is stored. A block with more parents has a count record
// ("r/<ref hex>") holding the number, written in the same multi-key commit
// as the inode change that made it so, as in Rodeh's "B-trees, shadowing
// and clones" (and btrfs): a clone stores a count of 2 for the one root the
// two files share, and an edit of a shared tree judges each block it
// replaces by the count. A block whose count reaches zero is freed after
// the commit, and so are its children whose counts that brings to zero.
//
// Only inodes carrying flagShared take this path: the trees of other files
// hold no shared block, so they keep freeing what they replace at once, and
// pay nothing for the feature.

// flagShared (inode.go) marks the files that take this path.

// recRefCount is the record kind of a block's reference count.
const recRefCount byte = 'C'

// refKey returns the store key of ref's count record.
func (c *core) refKey(ref blockRef) string { return c.prefix + "r/" + ref.String() }

func encodeRefCount(n int64) []byte {
	e := enc{}
	e.uv(uint64(n))
	return seal(recRefCount, e.b)
}

func decodeRefCount(key string, b []byte) (int64, error) {
	p, err := unseal(recRefCount, key, b)
	if err != nil {
		return 0, err
	}
	d := dec{b: p, key: key}
	n := d.uv()
	if err := d.done(); err != nil {
		return 0, err
	}
	if n < 2 || n > 1<<40 {
		return 0, corruptf("%s: reference count %d out of range", key, n)
	}
	return int64(n), nil
}

// refCount is one block's count as a commit attempt read it and as it
// leaves it.
type refCount struct {
	key    string
	ver    backend.Version // NoVersion: no record (count 1)
	stored int64
	cur    int64
}

// refEdit is the reference-count part of one commit attempt (tx.refs). The
// commit carries one op per count it read: a put, a delete (back to 1) or
// a check (unchanged, or absent and now 0), so every count the attempt
// judged a block by is a condition of its commit.
type refEdit struct {
	counts map[blockRef]*refCount
	reused map[blockRef]bool // existing blocks an edit places (clone ranges)
}

func (t *tx) refEdit() *refEdit {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.refs == nil {
		t.refs = &refEdit{counts: map[blockRef]*refCount{}, reused: map[blockRef]bool{}}
	}
	return t.refs
}

// refOps returns the commit ops of the attempt's count changes (none for
// an attempt that touched no shared tree).
func (t *tx) refOps() []backend.Op {
	if t.refs == nil || len(t.refs.counts) == 0 {
		return nil
	}
	ops := make([]backend.Op, 0, len(t.refs.counts))
	for _, rc := range t.refs.counts {
		op := backend.Op{Key: rc.key, Old: rc.ver}
		switch {
		case rc.cur == rc.stored, rc.cur <= 1 && rc.ver == backend.NoVersion:
			op.Check = true
		case rc.cur <= 1:
			op.Delete = true
		default:
			op.Value = encodeRefCount(rc.cur)
		}
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, b backend.Op) int { return strings.Compare(a.Key, b.Key) })
	return ops
}

// readCounts reads the counts of refs the edit has not read yet.
func (c *core) readCounts(ctx context.Context, e *refEdit, refs []blockRef) error {
	got := make([]*refCount, len(refs))
	err := c.parallel(ctx, len(refs), func(ctx context.Context, i int) error {
		key := c.refKey(refs[i])
		rc := &refCount{key: key, stored: 1}
		v, ver, err := c.inodes.Get(ctx, key)
		switch {
		case errors.Is(err, backend.ErrNotFound):
		case err != nil:
			return fmt.Errorf("get %s: %w", key, err)
		default:
			if rc.stored, err = decodeRefCount(key, v); err != nil {
				return err
			}
			rc.ver = ver
		}
		rc.cur = rc.stored
		got[i] = rc
		return nil
	})
	if err != nil {
		return err
	}
	for i, r := range refs {
		e.counts[r] = got[i]
	}
	return nil
}

// treeRoot is a file tree: its root and height (zero root: no blocks).
type treeRoot struct {
	root   blockRef
	height uint8
}

// reaccount records in t the count changes of replacing tree old by tree
// nw in one inode (zero roots for none) and returns the blocks that no
// tree references any more. fresh holds the blocks this attempt wrote,
// which no other tree can know: each is referenced by the tree that
// places it only, so it has no count to read.
//
// It works level by level from the top: every reference to a block that
// goes away (from the inode, or from a parent that dies) counts -1, every
// reference a new block makes (the inode to the new root, a new index
// node to its children) +1. A block whose count reaches zero dies and
// takes away its references to its children; a block of this attempt that
// ends up referenced is born and makes its references to its children.
// References that an edit moves from an old node to its copy cancel out,
// so an edit of an unshared path reads a count for each block it replaces
// and writes none; the first edit under a shared node copies it and counts
// one more reference for each of its children (Rodeh's increment).
func (c *core) reaccount(ctx context.Context, t *tx, old, nw treeRoot, fresh map[blockRef]bool) ([]blockRef, error) {
	e := t.refEdit()
	top := int(max(old.height, nw.height))
	deltas := make([]map[blockRef]int64, top+1)
	add := func(level int, ref blockRef, d int64) {
		if ref.isZero() {
			return
		}
		if deltas[level] == nil {
			deltas[level] = map[blockRef]int64{}
		}
		deltas[level][ref] += d
	}
	add(int(old.height), old.root, -1)
	add(int(nw.height), nw.root, +1)
	var freed []blockRef
	for level := top; level >= 0; level-- {
		m := deltas[level]
		var need []blockRef
		for ref, d := range m {
			if d != 0 && !fresh[ref] && e.counts[ref] == nil {
				need = append(need, ref)
			}
		}
		if err := c.readCounts(ctx, e, need); err != nil {
			return nil, err
		}
		for ref, d := range m {
			if d == 0 {
				continue
			}
			var dies, born bool
			if fresh[ref] {
				dies, born = d < 0, d > 0
			} else {
				rc := e.counts[ref]
				if rc.cur == 0 {
					return nil, fmt.Errorf("voldfs: block %s referenced again after it died in one commit", ref)
				}
				rc.cur += d
				if rc.cur < 0 {
					return nil, corruptf("%s: reference count below zero", rc.key)
				}
				dies = rc.cur == 0
			}
			if dies {
				freed = append(freed, ref)
			}
			if level == 0 || !dies && !born {
				continue
			}
			ents, err := c.readIndex(ctx, ref)
			if err != nil {
				return nil, err
			}
			sign := int64(1)
			if dies {
				sign = -1
			}
			for _, x := range ents {
				add(level-1, x.ref, sign)
			}
		}
	}
	return freed, nil
}

// sharedTreeUpdate is treeUpdate for a file whose tree may share blocks:
// the plain edit builds the new tree and records the blocks it wrote; the
// blocks it replaced are then judged by their counts (reaccount) instead
// of freed as the edit's own.
func (c *core) sharedTreeUpdate(ctx context.Context, rec *tx, n *inode, ups []blockUpdate, nblocks uint64) (blockRef, uint8, error) {
	old := treeRoot{n.root, n.height}
	e := rec.refEdit()
	rec.mu.Lock()
	f0 := len(rec.freed)
	rec.mu.Unlock()
	root, h, err := c.editTree(ctx, rec, n, ups, nblocks)
	if err != nil {
		return blockRef{}, 0, err
	}
	rec.mu.Lock()
	rec.freed = rec.freed[:f0] // judged again below
	fresh := make(map[blockRef]bool, len(rec.written)+len(ups))
	for _, r := range rec.written {
		fresh[r] = true
	}
	rec.mu.Unlock()
	for _, u := range ups {
		if !u.ref.isZero() && !e.reused[u.ref] {
			fresh[u.ref] = true
		}
	}
	freed, err := c.reaccount(ctx, rec, old, treeRoot{root, h}, fresh)
	if err != nil {
		return blockRef{}, 0, err
	}
	rec.add(nil, freed)
	return root, h, nil
}

// destroyShared deletes an unlinked inode whose tree may share blocks: the
// delete and the count changes of dropping its tree are one commit, and
// only the blocks no other tree references are freed.
func (c *core) destroyShared(ctx context.Context, ci *cachedInode) error {
	ino := ci.n.ino
	for attempt := 0; ; attempt++ {
		n := ci.n
		t := &tx{}
		freed, err := c.reaccount(ctx, t, treeRoot{n.root, n.height}, treeRoot{}, nil)
		if err != nil {
			return err
		}
		// Fenced against snapshots like any destroy (snapshot.go).
		err = c.deleteInode(ctx, c.inodeKey(ino), ci.ver, n, t.refOps())
		c.dropInode(ino)
		if err == nil {
			if !n.xattrRef.isZero() {
				freed = append(freed, n.xattrRef)
			}
			c.freeBlocks(ctx, freed)
			return nil
		}
		if !errors.Is(err, backend.ErrConflict) {
			// Unknown or refused: the inode stays dead (fsck collects
			// an orphan) or is gone with its counts; blocks leak at worst.
			return err
		}
		ci, err = c.getInode(ctx, ino, 0)
		if errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if err != nil {
			return err
		}
		if !ci.n.dead() {
			return nil // linked again meanwhile
		}
		if err := c.backoff(ctx, attempt+1); err != nil {
			return err
		}
	}
}
