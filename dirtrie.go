package voldfs

import (
	"context"
	"fmt"
	"slices"
	"syscall"
)

// dirEdit builds a new version of one directory's tree, copy-on-write. It
// records every block it writes, and every block of the old tree it makes
// unreachable, in the commit record rec.
type dirEdit struct {
	ctx     context.Context
	rec     *tx
	ns      nodeStore
	leafMax int
}

func (t *dirEdit) wrote(ref blockRef) { t.rec.wrote(ref) }
func (t *dirEdit) free(ref blockRef)  { t.rec.free(ref) }

func newDirEdit(ctx context.Context, rec *tx, ns nodeStore) (*dirEdit, error) {
	m := ns.maxNode()
	if m < dirMinNode {
		return nil, fmt.Errorf("voldfs: node size limit %d is below the directory minimum %d: %w", m, dirMinNode, syscall.EINVAL)
	}
	return &dirEdit{ctx: ctx, rec: rec, ns: ns, leafMax: min(m, dirLeafMax)}, nil
}

// dirBranchWidth returns the width of a new branch at bit offset off: 8
// (256 children) if the largest such branch fits in maxNode, narrower
// otherwise (7 with 4 KiB nodes), and never past the cookie's last bit.
func dirBranchWidth(maxNode int, off uint8) uint8 {
	w := uint8(dirMaxWidth)
	for w > 1 && dirFrameSize+2+dirBitmapLen(w)+(1<<w)*dirMaxKid > maxNode {
		w--
	}
	return min(w, dirCookieBits-off)
}

// load reads and decodes the node at ref, which the trie places at bit
// offset off on the path of cookie c.
func (t *dirEdit) load(ref blockRef, off uint8, c uint64) (*dirNode, error) {
	return dirLoad(t.ctx, t.ns, ref, off, c)
}

func dirLoad(ctx context.Context, ns nodeStore, ref blockRef, off uint8, c uint64) (*dirNode, error) {
	p, err := ns.getNode(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("voldfs: dir node %s: %w", ref, err)
	}
	n, err := decodeDirNode(p)
	if err != nil {
		return nil, fmt.Errorf("dir node %s: %w", ref, err)
	}
	if n.off != off {
		return nil, corruptf("dir node %s: at bit offset %d, records offset %d", ref, off, n.off)
	}
	if n.leaf && dirPrefix(n.cks[0], off) != dirPrefix(c, off) {
		return nil, corruptf("dir node %s: entries do not belong under its parent", ref)
	}
	return n, nil
}

// write writes n as a block, splitting it first if it is an oversized leaf.
func (t *dirEdit) write(n *dirNode) (dirKid, error) {
	n, err := t.fit(n)
	if err != nil {
		return dirKid{}, err
	}
	ref, err := t.ns.putNode(t.ctx, encodeDirNode(n))
	if err != nil {
		return dirKid{}, fmt.Errorf("voldfs: writing dir node: %w", err)
	}
	t.wrote(ref)
	return dirKid{ref: ref, size: n.size()}, nil
}

// fit returns n, or a branch holding n's entries if n is a leaf too large
// for a block. The branch's children are written; the branch is not.
func (t *dirEdit) fit(n *dirNode) (*dirNode, error) {
	if !n.leaf || n.leafBlockSize() <= t.leafMax {
		return n, nil
	}
	if n.off >= dirCookieBits {
		// Entries of one leaf at the last bit share a whole cookie: insert
		// refuses that, so only a corrupt tree gets here.
		return nil, corruptf("dir leaf of %d entries at bit offset %d", len(n.ents), n.off)
	}
	w := dirBranchWidth(t.ns.maxNode(), n.off)
	b := &dirNode{off: n.off, width: w}
	// Entries are in cookie order, so each slot's entries are a run.
	for i := 0; i < len(n.ents); {
		s := dirSlot(n.cks[i], n.off, w)
		j := i + 1
		for j < len(n.ents) && dirSlot(n.cks[j], n.off, w) == s {
			j++
		}
		k, err := t.write(&dirNode{leaf: true, off: n.off + w, ents: n.ents[i:j:j], cks: n.cks[i:j:j]})
		if err != nil {
			return nil, err
		}
		k.slot = uint8(s)
		b.kids = append(b.kids, k)
		i = j
	}
	return b, nil
}

// top returns the decoded top node of a non-empty root.
func (t *dirEdit) top(root dirRoot, c uint64) (*dirNode, error) {
	if root.top != nil {
		return parseDirRootTop(root)
	}
	return t.load(root.ref, 0, c)
}

// finish encodes the root of the updated tree whose top node is n.
func (t *dirEdit) finish(n *dirNode, count uint64) ([]byte, error) {
	if count == 0 {
		return nil, nil
	}
	n, err := t.fit(n)
	if err != nil {
		return nil, err
	}
	if b := encodeDirRoot(count, n, blockRef{}); len(b) <= dirInlineMax && (n.leaf || len(b) <= dirInlineBranchMax) {
		return b, nil
	}
	k, err := t.write(n)
	if err != nil {
		return nil, err
	}
	return encodeDirRoot(count, nil, k.ref), nil
}

// withKid returns a copy of branch n with child k set (at index i, replacing
// an existing child if present) or removed (if k is nil).
func (n *dirNode) withKid(i int, present bool, k *dirKid) *dirNode {
	b := &dirNode{off: n.off, width: n.width}
	switch {
	case k == nil:
		b.kids = slices.Concat(n.kids[:i], n.kids[i+1:])
	case present:
		b.kids = slices.Clone(n.kids)
		b.kids[i] = *k
	default:
		b.kids = slices.Concat(n.kids[:i], []dirKid{*k}, n.kids[i:])
	}
	return b
}

// insert returns n with e added or replaced, or nil if n is unchanged.
func (t *dirEdit) insert(n *dirNode, e dirEntry, c uint64, replace bool) (*dirNode, dirEntry, bool, error) {
	if n.leaf {
		i, ok := slices.BinarySearch(n.cks, c)
		if ok {
			old := n.ents[i]
			if old.name != e.name {
				return nil, dirEntry{}, false, fmt.Errorf("%w: %q and %q", errCookieCollision, e.name, old.name)
			}
			if !replace || old == e {
				return nil, old, true, nil
			}
			ents := slices.Clone(n.ents)
			ents[i] = e
			return &dirNode{leaf: true, off: n.off, ents: ents, cks: n.cks}, old, true, nil
		}
		return &dirNode{
			leaf: true, off: n.off,
			ents: slices.Concat(n.ents[:i], []dirEntry{e}, n.ents[i:]),
			cks:  slices.Concat(n.cks[:i], []uint64{c}, n.cks[i:]),
		}, dirEntry{}, false, nil
	}
	i, ok := n.kid(dirSlot(c, n.off, n.width))
	child := &dirNode{leaf: true, off: n.off + n.width, ents: []dirEntry{e}, cks: []uint64{c}}
	var old dirEntry
	var found bool
	if ok {
		cn, err := t.load(n.kids[i].ref, n.off+n.width, c)
		if err != nil {
			return nil, dirEntry{}, false, err
		}
		child, old, found, err = t.insert(cn, e, c, replace)
		if err != nil || child == nil {
			return nil, old, found, err
		}
	}
	k, err := t.write(child)
	if err != nil {
		return nil, dirEntry{}, false, err
	}
	k.slot = uint8(dirSlot(c, n.off, n.width))
	if ok {
		t.free(n.kids[i].ref)
	}
	return n.withKid(i, ok, &k), old, found, nil
}

// remove returns n without the entry name (cookie c), or nil if n holds no
// such entry. The result may be an empty leaf.
func (t *dirEdit) remove(n *dirNode, name string, c uint64) (*dirNode, dirEntry, bool, error) {
	if n.leaf {
		i, ok := slices.BinarySearch(n.cks, c)
		if !ok || n.ents[i].name != name {
			return nil, dirEntry{}, false, nil
		}
		return &dirNode{
			leaf: true, off: n.off,
			ents: slices.Concat(n.ents[:i], n.ents[i+1:]),
			cks:  slices.Concat(n.cks[:i], n.cks[i+1:]),
		}, n.ents[i], true, nil
	}
	i, ok := n.kid(dirSlot(c, n.off, n.width))
	if !ok {
		return nil, dirEntry{}, false, nil
	}
	cn, err := t.load(n.kids[i].ref, n.off+n.width, c)
	if err != nil {
		return nil, dirEntry{}, false, err
	}
	child, old, found, err := t.remove(cn, name, c)
	if err != nil || child == nil {
		return nil, old, found, err
	}
	t.free(n.kids[i].ref)

	// Collapse the branch into one leaf once its entries would fill a
	// quarter of one: far enough below the split point that a name
	// created and removed at the boundary does not split and merge the
	// branch each time. Any branch below this one on the path has
	// collapsed already (its subtree is smaller), so the blocks freed
	// here all belong to the old tree.
	if n.size()-n.kids[i].size+child.size() <= uint64(t.leafMax/4) {
		leaf := &dirNode{leaf: true, off: n.off}
		lo := dirLo(c, n.off)
		for j, k := range n.kids {
			if j == i {
				err = t.gather(leaf, child, dirKidLo(lo, n, k.slot))
			} else {
				err = t.gatherRef(leaf, k.ref, n.off+n.width, dirKidLo(lo, n, k.slot))
			}
			if err != nil {
				return nil, dirEntry{}, false, err
			}
		}
		return leaf, old, true, nil
	}
	if child.leaf && len(child.ents) == 0 {
		return n.withKid(i, true, nil), old, true, nil
	}
	k, err := t.write(child)
	if err != nil {
		return nil, dirEntry{}, false, err
	}
	k.slot = n.kids[i].slot
	return n.withKid(i, true, &k), old, true, nil
}

// gatherRef appends to leaf every entry under the node at ref (at bit
// offset off, lowest cookie lo) and frees the node and its descendants.
func (t *dirEdit) gatherRef(leaf *dirNode, ref blockRef, off uint8, lo uint64) error {
	t.free(ref)
	n, err := t.load(ref, off, lo)
	if err != nil {
		return err
	}
	return t.gather(leaf, n, lo)
}

// gather appends to leaf every entry under n (lowest cookie lo) and frees
// n's descendants. The caller accounts for n itself.
func (t *dirEdit) gather(leaf *dirNode, n *dirNode, lo uint64) error {
	if n.leaf {
		leaf.ents = append(leaf.ents, n.ents...)
		leaf.cks = append(leaf.cks, n.cks...)
		return nil
	}
	for _, k := range n.kids {
		if err := t.gatherRef(leaf, k.ref, n.off+n.width, dirKidLo(lo, n, k.slot)); err != nil {
			return err
		}
	}
	return nil
}

// dirLo returns the lowest cookie of the trie node at bit offset off on the
// path of cookie c.
func dirLo(c uint64, off uint8) uint64 {
	return dirPrefix(c, off) << (dirCookieBits - off)
}

// dirKidLo returns the lowest cookie under the child in slot s of branch n,
// whose lowest cookie is lo.
func dirKidLo(lo uint64, n *dirNode, s uint8) uint64 {
	return lo | uint64(s)<<(dirCookieBits-n.off-n.width)
}
