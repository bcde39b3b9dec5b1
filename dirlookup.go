package voldfs

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
)

// dirLookup returns the entry called name.
func dirLookup(ctx context.Context, ns nodeStore, root []byte, name string) (e dirEntry, found bool, err error) {
	r, err := decodeDirRoot(root)
	if err != nil {
		return dirEntry{}, false, err
	}
	return dirLookupRoot(ctx, ns, r, name)
}

// dirDecoded is implemented by node stores that keep decoded nodes, so a
// lookup in a cached directory binary-searches a decoded leaf instead of
// scanning (and checksumming) its bytes.
type dirDecoded interface {
	decodedNode(ref blockRef) *dirNode
	keepDecoded(ref blockRef, n *dirNode)
}

// dirFind looks name (cookie c) up in the decoded node n at bit offset off:
// it returns the entry, or the child ref to descend to.
func dirFind(n *dirNode, c uint64, name string) (e dirEntry, found bool, next blockRef, descend bool) {
	if n.leaf {
		i, _ := slices.BinarySearch(n.cks, c)
		for ; i < len(n.cks) && n.cks[i] == c; i++ {
			if n.ents[i].name == name {
				return n.ents[i], true, blockRef{}, false
			}
		}
		return dirEntry{}, false, blockRef{}, false
	}
	k, ok := n.kid(dirSlot(c, n.off, n.width))
	if !ok {
		return dirEntry{}, false, blockRef{}, false
	}
	return dirEntry{}, false, n.kids[k].ref, true
}

// bufLookup looks name (cookie c) up in r's write buffer. ok reports
// whether the buffer decides: it wins over the trie, and another name's op
// on the cookie means the trie cannot hold name either (inserting it would
// have collided).
func (r *dirRoot) bufLookup(c uint64, name string) (e dirEntry, found, ok bool) {
	i, ok := r.opIndex(c)
	if !ok {
		return dirEntry{}, false, false
	}
	if o := r.ops[i]; o.e.name == name && !o.tomb() {
		return o.e, true, true
	}
	return dirEntry{}, false, true
}

// dirLookupDecoded is dirLookupRoot for a root whose top node the caller
// decoded once (top: nil if the top is a block), walking decoded nodes kept
// by ns.
func dirLookupDecoded(ctx context.Context, ns nodeStore, r dirRoot, top *dirNode, name string) (dirEntry, bool, error) {
	dd, ok := ns.(dirDecoded)
	if !ok || r.count == 0 || checkName(name) != nil || (top == nil && r.top != nil) {
		return dirLookupRoot(ctx, ns, r, name)
	}
	c := nameCookie(name)
	if e, found, ok := r.bufLookup(c, name); ok {
		return e, found, nil
	}
	n, ref, off := top, r.ref, uint8(0)
	for depth := 0; depth < 64; depth++ {
		if n == nil {
			if n = dd.decodedNode(ref); n == nil {
				var err error
				if n, err = dirLoad(ctx, ns, ref, off, c); err != nil {
					return dirEntry{}, false, err
				}
				dd.keepDecoded(ref, n)
			}
		}
		e, found, next, descend := dirFind(n, c, name)
		if !descend {
			return e, found, nil
		}
		ref, off, n = next, n.off+n.width, nil
	}
	return dirEntry{}, false, corruptf("dir trie deeper than a cookie")
}

// dirLookupRoot is dirLookup on an already decoded root, so that a caller
// that keeps the decoded root of a cached directory does not decode (and
// hash) its write buffer on every lookup.
func dirLookupRoot(ctx context.Context, ns nodeStore, r dirRoot, name string) (e dirEntry, found bool, err error) {
	if r.count == 0 || checkName(name) != nil {
		return dirEntry{}, false, nil
	}
	c := nameCookie(name)
	if e, found, ok := r.bufLookup(c, name); ok {
		return e, found, nil
	}
	// Walk the raw nodes rather than decoding them: a lookup compares
	// names and needs no cookies of the leaf's other entries, so it costs
	// neither hashing nor allocation per entry.
	var typ byte
	var body []byte
	if r.top != nil {
		typ, body = r.top[0], r.top[1:]
	}
	ref := r.ref
	for off := uint8(0); ; {
		if body == nil {
			p, err := ns.getNode(ctx, ref)
			if err != nil {
				return dirEntry{}, false, fmt.Errorf("voldfs: dir node %s: %w", ref, err)
			}
			if typ, body, err = dirUnframe(p); err != nil {
				return dirEntry{}, false, fmt.Errorf("dir node %s: %w", ref, err)
			}
		}
		if typ == dirTypeLeaf {
			e, found, err = dirLeafFind(body, off, name)
			if err != nil {
				err = fmt.Errorf("dir node %s: %w", ref, err)
			}
			return e, found, err
		}
		if typ != dirTypeBranch {
			return dirEntry{}, false, fmt.Errorf("dir node %s: %w", ref, corruptf("node type %d unknown", typ))
		}
		next, w, ok, err := dirBranchStep(body, off, c)
		if err != nil {
			return dirEntry{}, false, fmt.Errorf("dir node %s: %w", ref, err)
		}
		if !ok {
			return dirEntry{}, false, nil
		}
		// Offsets strictly increase (width >= 1, checked), so the walk
		// ends within 63 nodes even in a corrupt tree.
		ref, off, body = next, off+w, nil
	}
}

// dirBranchStep returns the child of a branch body that cookie c leads to,
// reading only the bitmap and that child's ref: a lookup needs no more,
// and decoding all 256 children would cost more than the rest of the
// lookup together. The full checks are parseDirBranch's.
func dirBranchStep(body []byte, off uint8, c uint64) (ref blockRef, width uint8, ok bool, err error) {
	r := dirReader{b: body}
	boff := r.byte1("branch offset")
	w := r.byte1("branch width")
	if r.err != nil {
		return blockRef{}, 0, false, r.err
	}
	if boff != off {
		return blockRef{}, 0, false, corruptf("at bit offset %d, records offset %d", off, boff)
	}
	if w < 1 || w > dirMaxWidth || int(off)+int(w) > dirCookieBits {
		return blockRef{}, 0, false, corruptf("dir branch at bit offset %d has width %d", off, w)
	}
	bm := r.take(dirBitmapLen(w), "branch bitmap")
	if r.err != nil {
		return blockRef{}, 0, false, r.err
	}
	s := dirSlot(c, off, w)
	if bm[s/8]&(0x80>>(s%8)) == 0 {
		return blockRef{}, w, false, nil
	}
	rank := bits.OnesCount8(bm[s/8] >> (8 - s%8))
	for _, x := range bm[:s/8] {
		rank += bits.OnesCount8(x)
	}
	r.take(rank*16, "child refs")
	copy(ref[:], r.take(16, "child ref"))
	if r.err != nil {
		return blockRef{}, 0, false, r.err
	}
	if ref.isZero() {
		return blockRef{}, 0, false, corruptf("dir branch child %d is the zero block", s)
	}
	return ref, w, true, nil
}

// dirLeafFind scans a leaf body for name.
func dirLeafFind(body []byte, off uint8, name string) (dirEntry, bool, error) {
	r := dirReader{b: body}
	loff, count, err := dirLeafHeader(&r)
	if err != nil {
		return dirEntry{}, false, err
	}
	if loff != off {
		return dirEntry{}, false, corruptf("at bit offset %d, records offset %d", off, loff)
	}
	for range count {
		n, ino, typ, err := dirNextEntry(&r)
		if err != nil {
			return dirEntry{}, false, err
		}
		if string(n) == name {
			return dirEntry{name: name, ino: ino, typ: typ}, true, nil
		}
	}
	if len(r.b) != 0 {
		return dirEntry{}, false, corruptf("dir node: %d trailing bytes", len(r.b))
	}
	return dirEntry{}, false, nil
}
