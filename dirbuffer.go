package voldfs

import (
	"context"
	"fmt"
	"golang.org/x/sync/errgroup"
	"slices"
)

// bufInsert is dirInsert on a root whose trie is in blocks: it buffers the
// change (root is r encoded).
func (t *dirEdit) bufInsert(r dirRoot, root []byte, e dirEntry, c uint64, replace bool) (newRoot []byte, old dirEntry, found bool, err error) {
	i, ok := r.opIndex(c)
	var shadow bool
	if ok {
		o := r.ops[i]
		if o.e.name != e.name {
			if !o.tomb() {
				return nil, dirEntry{}, false, fmt.Errorf("%w: %q and %q", errCookieCollision, e.name, o.e.name)
			}
			// The cookie belongs to a removed name still in the trie:
			// merge the removal, then insert into the merged tree.
			return t.insertAfterMerge(r, e, replace)
		}
		if !o.tomb() {
			old, found = o.e, true
			if !replace || old == e {
				return root, old, true, nil
			}
		}
		shadow = o.shadow
	} else {
		te, tfound, err := t.find(r, c)
		if err != nil {
			return nil, dirEntry{}, false, err
		}
		if tfound && te.name != e.name {
			return nil, dirEntry{}, false, fmt.Errorf("%w: %q and %q", errCookieCollision, e.name, te.name)
		}
		if tfound {
			old, found = te, true
			if !replace || old == e {
				return root, old, true, nil
			}
		}
		shadow = tfound
	}
	count := r.count
	if !found {
		count++
	}
	ops := r.setOp(i, ok, dirOp{e: e, ck: c, shadow: shadow})
	newRoot, err = t.commitBuf(r, count, ops, false)
	if err != nil {
		return nil, dirEntry{}, false, err
	}
	return newRoot, old, found, nil
}

// insertAfterMerge merges r's buffer into its trie and inserts e into the
// result.
func (t *dirEdit) insertAfterMerge(r dirRoot, e dirEntry, replace bool) (newRoot []byte, old dirEntry, found bool, err error) {
	merged, err := t.merge(r, r.count, r.ops)
	if err != nil {
		return nil, dirEntry{}, false, err
	}
	newRoot, old, found, err = dirInsert(t.ctx, t.rec, t.ns, merged, e, replace)
	if err != nil {
		return nil, dirEntry{}, false, err
	}
	if found && !replace {
		// Unchanged after all (the merge cannot reveal the name, but keep
		// the contract: found with replace false changes nothing).
		return nil, dirEntry{}, false, corruptf("dir root: merged trie holds %q after its tombstone", e.name)
	}
	return newRoot, old, found, nil
}

// setOp returns a copy of r's buffer with op o at index i (replacing the op
// there if present).
func (r *dirRoot) setOp(i int, present bool, o dirOp) []dirOp {
	if present {
		ops := slices.Clone(r.ops)
		ops[i] = o
		return ops
	}
	return slices.Insert(slices.Clone(r.ops), i, o)
}

// commitBuf encodes r with count and buffer ops, merging the buffer into
// the trie if it does not fit inline or merge is set.
func (t *dirEdit) commitBuf(r dirRoot, count uint64, ops []dirOp, merge bool) ([]byte, error) {
	if !merge || len(ops) == 0 {
		if b := encodeDirRootRaw(count, ops, r.inner); len(b) <= dirInlineMax || len(ops) == 0 {
			return b, nil
		}
	}
	return t.merge(r, count, ops)
}

// bufRemove is dirRemove on a root whose trie is in blocks.
func (t *dirEdit) bufRemove(r dirRoot, root []byte, name string, c uint64) (newRoot []byte, old dirEntry, found bool, err error) {
	i, ok := r.opIndex(c)
	var ops []dirOp
	if ok {
		o := r.ops[i]
		if o.e.name != name || o.tomb() {
			// Another name's op holds the cookie, so the trie cannot hold
			// name; or name is removed already.
			return root, dirEntry{}, false, nil
		}
		old = o.e
		if o.shadow {
			ops = r.setOp(i, true, dirOp{e: dirEntry{name: name}, ck: c, shadow: true})
		} else {
			ops = slices.Delete(slices.Clone(r.ops), i, i+1)
		}
	} else {
		te, tfound, err := t.find(r, c)
		if err != nil {
			return nil, dirEntry{}, false, err
		}
		if !tfound || te.name != name {
			return root, dirEntry{}, false, nil
		}
		old = te
		ops = r.setOp(i, false, dirOp{e: dirEntry{name: name}, ck: c, shadow: true})
	}
	count := r.count - 1
	if count == 0 {
		// Every entry is gone: the empty directory has an empty root, and
		// the whole trie is garbage.
		err := dirRefs(t.ctx, t.ns, root, func(ref blockRef) error { t.free(ref); return nil })
		if err != nil {
			return nil, dirEntry{}, false, err
		}
		return nil, old, true, nil
	}
	// Merge early once the buffer hides as many entries as the directory
	// holds (the trie then shrinks by half or more), or the directory is
	// down to a few entries: a nearly emptied directory returns inline, as
	// it would without the buffer.
	tombs := 0
	for _, o := range ops {
		if o.tomb() {
			tombs++
		}
	}
	newRoot, err = t.commitBuf(r, count, ops, uint64(tombs) >= count || count <= dirMergeBelow)
	if err != nil {
		return nil, dirEntry{}, false, err
	}
	return newRoot, old, true, nil
}

// find returns the trie's entry with cookie c, if any, for a root whose
// trie is in blocks (or an inline branch).
func (t *dirEdit) find(r dirRoot, c uint64) (dirEntry, bool, error) {
	n, err := t.top(r, c)
	if err != nil {
		return dirEntry{}, false, err
	}
	for !n.leaf {
		i, ok := n.kid(dirSlot(c, n.off, n.width))
		if !ok {
			return dirEntry{}, false, nil
		}
		if n, err = t.load(n.kids[i].ref, n.off+n.width, c); err != nil {
			return dirEntry{}, false, err
		}
	}
	i, ok := slices.BinarySearch(n.cks, c)
	if !ok {
		return dirEntry{}, false, nil
	}
	return n.ents[i], true, nil
}

// merge applies buffer ops to r's trie and returns the root of the result,
// with count entries and an empty buffer.
func (t *dirEdit) merge(r dirRoot, count uint64, ops []dirOp) ([]byte, error) {
	top, err := t.top(r, 0)
	if err != nil {
		return nil, err
	}
	n, err := t.mergeNode(top, 0, ops)
	if err != nil {
		return nil, err
	}
	if n.leaf && uint64(len(n.ents)) != count {
		return nil, corruptf("dir root counts %d entries, merging its buffer gives %d", count, len(n.ents))
	}
	newRoot, err := t.finish(n, count)
	if err != nil {
		return nil, err
	}
	if !r.ref.isZero() {
		t.free(r.ref)
	}
	return newRoot, nil
}

// mergeNode returns n (whose lowest cookie is lo) with ops applied; ops all
// lie under n. The result may be an empty leaf or an oversized one (write
// splits it). Blocks under n that the result no longer references are
// freed; n itself is the caller's to account for.
func (t *dirEdit) mergeNode(n *dirNode, lo uint64, ops []dirOp) (*dirNode, error) {
	if n.leaf {
		return mergeLeaf(n, ops)
	}
	// Ops are in cookie order, so each slot's ops are a run.
	type group struct {
		slot    uint8
		i       int  // index of the child in n.kids
		present bool // the child exists
		ops     []dirOp
		n       *dirNode // the merged child
	}
	var groups []*group
	for i := 0; i < len(ops); {
		s := dirSlot(ops[i].ck, n.off, n.width)
		j := i + 1
		for j < len(ops) && dirSlot(ops[j].ck, n.off, n.width) == s {
			j++
		}
		k, ok := n.kid(s)
		groups = append(groups, &group{slot: uint8(s), i: k, present: ok, ops: ops[i:j:j]})
		i = j
	}
	off := n.off + n.width
	for _, gr := range groups {
		if !gr.present {
			var err error
			if gr.n, err = mergeLeaf(&dirNode{leaf: true, off: off}, gr.ops); err != nil {
				return nil, err
			}
		}
	}
	g, _ := errgroup.WithContext(t.ctx)
	g.SetLimit(dirMergeParallel)
	for _, gr := range groups {
		if !gr.present {
			continue
		}
		g.Go(func() error {
			klo := dirKidLo(lo, n, gr.slot)
			cn, err := t.load(n.kids[gr.i].ref, off, klo)
			if err != nil {
				return err
			}
			gr.n, err = t.mergeNode(cn, klo, gr.ops)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	size := n.size()
	allLeaves := true
	for _, gr := range groups {
		if gr.present {
			size -= n.kids[gr.i].size
			t.free(n.kids[gr.i].ref)
		}
		size += gr.n.size()
		allLeaves = allLeaves && gr.n.leaf
	}

	// Collapse the branch into one leaf if its entries would fill a
	// quarter of one, as remove does. A merged child that is a branch is
	// bigger than that, so it does not happen then.
	if size <= uint64(t.leafMax/4) && allLeaves {
		leaf := &dirNode{leaf: true, off: n.off}
		gi := 0
		for _, k := range n.kids {
			for gi < len(groups) && groups[gi].slot < k.slot {
				gather(leaf, groups[gi].n) // a new child
				gi++
			}
			if gi < len(groups) && groups[gi].slot == k.slot {
				gather(leaf, groups[gi].n)
				gi++
				continue
			}
			if err := t.gatherRef(leaf, k.ref, off, dirKidLo(lo, n, k.slot)); err != nil {
				return nil, err
			}
		}
		for ; gi < len(groups); gi++ {
			gather(leaf, groups[gi].n)
		}
		return leaf, nil
	}

	kids := make([]*dirKid, len(groups))
	g, _ = errgroup.WithContext(t.ctx)
	g.SetLimit(dirMergeParallel)
	for i, gr := range groups {
		if gr.n.leaf && len(gr.n.ents) == 0 {
			continue
		}
		g.Go(func() error {
			k, err := t.write(gr.n)
			k.slot = gr.slot
			kids[i] = &k
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	b := &dirNode{off: n.off, width: n.width, kids: make([]dirKid, 0, len(n.kids)+len(groups))}
	gi := 0
	for _, k := range n.kids {
		for gi < len(groups) && groups[gi].slot < k.slot {
			if kids[gi] != nil {
				b.kids = append(b.kids, *kids[gi])
			}
			gi++
		}
		if gi < len(groups) && groups[gi].slot == k.slot {
			if kids[gi] != nil {
				b.kids = append(b.kids, *kids[gi])
			}
			gi++
			continue
		}
		b.kids = append(b.kids, k)
	}
	for ; gi < len(groups); gi++ {
		if kids[gi] != nil {
			b.kids = append(b.kids, *kids[gi])
		}
	}
	if len(b.kids) == 0 {
		return nil, corruptf("dir branch at bit offset %d: merge left no children", n.off)
	}
	return b, nil
}

// gather appends leaf n's entries to leaf.
func gather(leaf, n *dirNode) {
	leaf.ents = append(leaf.ents, n.ents...)
	leaf.cks = append(leaf.cks, n.cks...)
}

// mergeLeaf returns leaf n with ops applied. An op that contradicts the
// leaf (a tombstone or shadowing insert of a name it lacks, or an insert
// of a name it holds but the op says it lacks) means a corrupt root.
func mergeLeaf(n *dirNode, ops []dirOp) (*dirNode, error) {
	out := &dirNode{leaf: true, off: n.off, ents: make([]dirEntry, 0, len(n.ents)+len(ops)), cks: make([]uint64, 0, len(n.ents)+len(ops))}
	i := 0
	for _, o := range ops {
		for i < len(n.ents) && n.cks[i] < o.ck {
			out.ents, out.cks = append(out.ents, n.ents[i]), append(out.cks, n.cks[i])
			i++
		}
		has := i < len(n.ents) && n.cks[i] == o.ck
		if has && n.ents[i].name != o.e.name {
			return nil, corruptf("dir root buffer: op on %q, the trie holds %q at its cookie", o.e.name, n.ents[i].name)
		}
		if has != o.shadow {
			return nil, corruptf("dir root buffer: op on %q says the trie holds it %v, the trie says %v", o.e.name, o.shadow, has)
		}
		if has {
			i++
		}
		if !o.tomb() {
			out.ents, out.cks = append(out.ents, o.e), append(out.cks, o.ck)
		}
	}
	out.ents, out.cks = append(out.ents, n.ents[i:]...), append(out.cks, n.cks[i:]...)
	return out, nil
}

// dirFlush merges the directory's write buffer into its trie, recording into
// rec as dirInsert does. A root with no buffer is returned as it is.
func dirFlush(ctx context.Context, rec *tx, ns nodeStore, root []byte) ([]byte, error) {
	r, err := decodeDirRoot(root)
	if err != nil || len(r.ops) == 0 {
		return root, err
	}
	t, err := newDirEdit(ctx, rec, ns)
	if err != nil {
		return nil, err
	}
	return t.merge(r, r.count, r.ops)
}
