package voldfs

import (
	"context"
	"slices"
)

// dirRefs calls fn for every block the directory's tree references, after
// checking that each decodes, sits at its place in the trie, and that the
// subtree sizes and entry count recorded above it are right. It is the
// fsck/GC walk: it reads the whole tree.
func dirRefs(ctx context.Context, ns nodeStore, root []byte, fn func(blockRef) error) error {
	r, err := decodeDirRoot(root)
	if err != nil || r.count == 0 {
		return err
	}
	w := dirWalker{ctx: ctx, ns: ns, fn: fn, ops: r.ops}
	var top *dirNode
	if r.top != nil {
		top, err = parseDirRootTop(r)
	} else {
		if err := fn(r.ref); err != nil {
			return err
		}
		top, err = dirLoad(ctx, ns, r.ref, 0, 0)
	}
	if err != nil {
		return err
	}
	if _, err := w.walk(top, 0); err != nil {
		return err
	}
	// Every op claiming its name is in the trie was matched by the walk;
	// the count is the trie's with the buffer applied.
	count := w.count
	for _, o := range r.ops {
		switch {
		case o.shadow:
			w.shadows--
			if o.tomb() {
				count--
			}
		default:
			count++
		}
	}
	if w.shadows != 0 {
		return corruptf("dir root buffer has ops on names its trie lacks")
	}
	if count != r.count {
		return corruptf("dir root counts %d entries, its tree and buffer hold %d", r.count, count)
	}
	return nil
}

type dirWalker struct {
	ctx     context.Context
	ns      nodeStore
	fn      func(blockRef) error
	ops     []dirOp // the root's buffer
	count   uint64  // entries in the trie
	shadows int     // entries in the trie with an op in the buffer
}

// walk checks the subtree under n (lowest cookie lo) and returns its size.
func (w *dirWalker) walk(n *dirNode, lo uint64) (uint64, error) {
	if n.leaf {
		w.count += uint64(len(n.ents))
		if len(w.ops) > 0 {
			for i, c := range n.cks {
				j, ok := slices.BinarySearchFunc(w.ops, c, func(o dirOp, c uint64) int { return cmpU64(o.ck, c) })
				if !ok {
					continue
				}
				if o := w.ops[j]; o.e.name != n.ents[i].name || !o.shadow {
					return 0, corruptf("dir root buffer: op on %q, the trie holds %q at its cookie", o.e.name, n.ents[i].name)
				}
				w.shadows++
			}
		}
		return n.size(), nil
	}
	for _, k := range n.kids {
		if err := w.fn(k.ref); err != nil {
			return 0, err
		}
		klo := dirKidLo(lo, n, k.slot)
		cn, err := dirLoad(w.ctx, w.ns, k.ref, n.off+n.width, klo)
		if err != nil {
			return 0, err
		}
		size, err := w.walk(cn, klo)
		if err != nil {
			return 0, err
		}
		if size != k.size {
			return 0, corruptf("dir node %s: holds %d bytes of entries, its parent records %d", k.ref, size, k.size)
		}
	}
	return n.size(), nil
}
