package voldfs

import (
	"context"
	"sort"
)

// File block trees.
//
// A regular file's data is either inline in its inode (small files), one data
// block (height 0, root = the block), or a radix tree of index nodes of the
// given height whose leaves point to data blocks. An index node holds up to
// 2^fanBits entries, stored sparsely (only non-hole entries), so a huge sparse
// file costs a few small nodes. A hole is an absent entry, never a missing
// block. Data blocks may be shorter than the block size: the missing tail
// reads as zeros.

type idxEntry struct {
	i   uint32
	ref blockRef
}

func encodeIndex(ents []idxEntry) []byte {
	e := enc{b: make([]byte, 0, 4+len(ents)*20)}
	e.uv(uint64(len(ents)))
	prev := uint64(0)
	for k, x := range ents {
		d := uint64(x.i)
		if k > 0 {
			d = uint64(x.i) - prev
		}
		e.uv(d)
		e.raw(x.ref[:])
		prev = uint64(x.i)
	}
	return e.b
}

func decodeIndex(key string, p []byte, fan uint64) ([]idxEntry, error) {
	d := dec{b: p, key: key}
	n := d.uv()
	if n > uint64(len(p))/17 || n > fan {
		return nil, corruptf("%s: index node claims %d entries", key, n)
	}
	ents := make([]idxEntry, 0, n)
	var prev uint64
	for k := uint64(0); k < n && d.err == nil; k++ {
		delta := d.uv()
		i := delta
		if k > 0 {
			if delta == 0 {
				return nil, corruptf("%s: index entries out of order", key)
			}
			i = prev + delta
		}
		if i >= fan {
			return nil, corruptf("%s: index entry %d beyond fan-out %d", key, i, fan)
		}
		var x idxEntry
		x.i = uint32(i)
		copy(x.ref[:], d.raw(16))
		if x.ref.isZero() {
			return nil, corruptf("%s: zero ref in index node", key)
		}
		ents = append(ents, x)
		prev = i
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return ents, nil
}

// fanFor returns log2 of the index fan-out for a block size: as many entries
// as fit a block at their worst-case encoded size, rounded down to a power of
// two so that index arithmetic is shifts.
func fanFor(blockSize int) uint {
	b := uint(2)
	for (1<<(b+1))*24+16 <= blockSize && b < 20 {
		b++
	}
	return b
}

// heightFor returns the tree height needed to address nblocks blocks.
func (c *core) heightFor(nblocks uint64) uint8 {
	if nblocks <= 1 {
		return 0
	}
	h := uint8(1)
	for bits := c.fanBits; bits < 64 && nblocks > 1<<bits; bits += c.fanBits {
		h++
	}
	return h
}

// readIndex returns the decoded entries of an index node. The decoded form
// is what the cache keeps, so a lookup does not decode again.
func (c *core) readIndex(ctx context.Context, ref blockRef) ([]idxEntry, error) {
	if v, ok := c.cache.getAny(ref); ok {
		if ents, ok := v.([]idxEntry); ok {
			return ents, nil
		}
	}
	p, err := c.getBlockNoCache(ctx, recIndex, ref)
	if err != nil {
		return nil, err
	}
	ents, err := decodeIndex(c.blockKey(ref), p, 1<<c.fanBits)
	if err != nil {
		return nil, err
	}
	c.cache.addAny(ref, ents, len(ents)*20)
	return ents, nil
}

// treeLookup returns the data block holding block index idx of n (zero for a
// hole).
func (c *core) treeLookup(ctx context.Context, n *inode, idx uint64) (blockRef, error) {
	if n.height == 0 {
		if idx == 0 {
			return n.root, nil
		}
		return blockRef{}, nil
	}
	if idx>>(uint(n.height)*c.fanBits) != 0 && uint(n.height)*c.fanBits < 64 {
		return blockRef{}, nil
	}
	ref := n.root
	for level := int(n.height); level >= 1 && !ref.isZero(); level-- {
		ents, err := c.readIndex(ctx, ref)
		if err != nil {
			return blockRef{}, err
		}
		slot := uint32(idx>>(uint(level-1)*c.fanBits)) & (1<<c.fanBits - 1)
		k := sort.Search(len(ents), func(k int) bool { return ents[k].i >= slot })
		if k == len(ents) || ents[k].i != slot {
			return blockRef{}, nil
		}
		ref = ents[k].ref
	}
	return ref, nil
}

// blockUpdate sets block index i to ref (zero: make it a hole).
type blockUpdate struct {
	i   uint64
	ref blockRef
}

// treeEdit builds a new version of a file's block tree, recording in its
// commit record the index nodes it writes and the blocks only the old tree
// referenced.
type treeEdit struct {
	c       *core
	ctx     context.Context
	rec     *tx
	limit   uint64 // blocks at or past limit are dropped
	virtual map[blockRef][]idxEntry
}

// treeUpdate applies ups (sorted by index, all below nblocks) to n's tree and
// drops every block at or past nblocks. It returns the new root and height,
// and records in rec the blocks it wrote (index nodes) and the blocks only
// the old tree referenced (replaced data blocks and index nodes).
func (c *core) treeUpdate(ctx context.Context, rec *tx, n *inode, ups []blockUpdate, nblocks uint64) (root blockRef, height uint8, err error) {
	if n.flags&flagShared != 0 {
		return c.sharedTreeUpdate(ctx, rec, n, ups, nblocks) // reflinkcount.go
	}
	return c.editTree(ctx, rec, n, ups, nblocks)
}

// editTree is treeUpdate for a tree that is n's alone.
func (c *core) editTree(ctx context.Context, rec *tx, n *inode, ups []blockUpdate, nblocks uint64) (root blockRef, height uint8, err error) {
	t := &treeEdit{c: c, ctx: ctx, rec: rec, limit: nblocks}
	root, cur := n.root, n.height
	want := c.heightFor(nblocks)
	// Growing: the old tree becomes the first child of new index levels.
	// The new levels are virtual until rebuilt (they always are).
	for cur < want {
		if t.virtual == nil {
			t.virtual = make(map[blockRef][]idxEntry)
		}
		v := newBlockRef()
		v[0] = 0xff // never a real ref: real refs start with a timestamp
		var ents []idxEntry
		if !root.isZero() {
			ents = []idxEntry{{0, root}}
		}
		t.virtual[v] = ents
		root, cur = v, cur+1
	}
	// Shrinking: only the first child of the top levels survives.
	for cur > want {
		if root.isZero() {
			cur--
			continue
		}
		ents, err := t.entries(root)
		if err != nil {
			return blockRef{}, 0, err
		}
		next := blockRef{}
		for _, x := range ents {
			if x.i == 0 {
				next = x.ref
			} else if err := t.drop(x.ref, int(cur)-1); err != nil {
				return blockRef{}, 0, err
			}
		}
		t.free(root)
		root, cur = next, cur-1
	}
	root, err = t.rebuild(int(cur), root, 0, ups)
	if err != nil {
		return blockRef{}, 0, err
	}
	return root, cur, nil
}

func (t *treeEdit) entries(ref blockRef) ([]idxEntry, error) {
	if v, ok := t.virtual[ref]; ok {
		return v, nil
	}
	return t.c.readIndex(t.ctx, ref)
}

func (t *treeEdit) isVirtual(ref blockRef) bool {
	_, ok := t.virtual[ref]
	return ok
}

func (t *treeEdit) free(ref blockRef) {
	if _, ok := t.virtual[ref]; ok || ref.isZero() {
		return
	}
	t.rec.free(ref)
}

// drop frees a whole subtree.
func (t *treeEdit) drop(ref blockRef, level int) error {
	if ref.isZero() {
		return nil
	}
	if level > 0 {
		ents, err := t.entries(ref)
		if err != nil {
			return err
		}
		for _, x := range ents {
			if err := t.drop(x.ref, level-1); err != nil {
				return err
			}
		}
	}
	t.free(ref)
	return nil
}

// rebuild returns the new ref of the subtree at level (0: a data block)
// covering blocks from base, applying ups and the limit.
func (t *treeEdit) rebuild(level int, old blockRef, base uint64, ups []blockUpdate) (blockRef, error) {
	if level == 0 {
		if base >= t.limit {
			t.free(old)
			return blockRef{}, nil
		}
		if len(ups) == 0 {
			return old, nil
		}
		nu := ups[len(ups)-1].ref
		if nu != old {
			t.free(old)
		}
		return nu, nil
	}
	childBits := uint(level-1) * t.c.fanBits
	childSpan := uint64(1) << childBits
	var ents []idxEntry
	if !old.isZero() {
		var err error
		if ents, err = t.entries(old); err != nil {
			return blockRef{}, err
		}
	}
	_, virtual := t.virtual[old]
	changed := virtual
	out := make([]idxEntry, 0, len(ents)+len(ups))
	k := 0 // next entry
	for len(ups) > 0 || k < len(ents) {
		// Next slot to visit: the smaller of the next entry and next update.
		var slot uint32
		switch {
		case k < len(ents) && len(ups) > 0:
			slot = min(ents[k].i, uint32((ups[0].i-base)>>childBits))
		case k < len(ents):
			slot = ents[k].i
		default:
			slot = uint32((ups[0].i - base) >> childBits)
		}
		childBase := base + uint64(slot)<<childBits
		var oldChild blockRef
		if k < len(ents) && ents[k].i == slot {
			oldChild = ents[k].ref
			k++
		}
		j := 0
		for j < len(ups) && ups[j].i < childBase+childSpan {
			j++
		}
		childUps := ups[:j]
		ups = ups[j:]
		var nc blockRef
		switch {
		case childBase >= t.limit:
			if err := t.drop(oldChild, level-1); err != nil {
				return blockRef{}, err
			}
		case len(childUps) == 0 && childBase+childSpan <= t.limit && !t.isVirtual(oldChild):
			nc = oldChild
		default:
			var err error
			if nc, err = t.rebuild(level-1, oldChild, childBase, childUps); err != nil {
				return blockRef{}, err
			}
		}
		if nc != oldChild {
			changed = true
		}
		if !nc.isZero() {
			out = append(out, idxEntry{slot, nc})
		}
	}
	if !changed {
		return old, nil
	}
	t.free(old)
	if len(out) == 0 {
		return blockRef{}, nil
	}
	ref, err := t.c.putBlock(t.ctx, recIndex, encodeIndex(out))
	if err != nil {
		return blockRef{}, err
	}
	t.c.cache.addAny(ref, out, len(out)*20)
	t.rec.wrote(ref)
	return ref, nil
}

// treeRefs calls fn for every block of n's tree (index nodes and data) and
// for the block of its extended attributes (xattr.go).
func (c *core) treeRefs(ctx context.Context, n *inode, fn func(ref blockRef, kind byte) error) error {
	if !n.xattrRef.isZero() {
		if err := fn(n.xattrRef, recData); err != nil {
			return err
		}
	}
	if n.root.isZero() {
		return nil
	}
	var walk func(ref blockRef, level int) error
	walk = func(ref blockRef, level int) error {
		if level == 0 {
			return fn(ref, recData)
		}
		if err := fn(ref, recIndex); err != nil {
			return err
		}
		ents, err := c.readIndex(ctx, ref)
		if err != nil {
			return err
		}
		for _, x := range ents {
			if err := walk(x.ref, level-1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(n.root, int(n.height))
}
