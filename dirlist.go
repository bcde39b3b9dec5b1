package voldfs

import (
	"context"
	"slices"
)

// dirList returns up to n entries (all if n <= 0) whose cookie is greater
// than after, in ascending cookie order, with their cookies. Because an
// entry's cookie depends only on its name, resuming with after set to the
// last cookie returned, even on a newer root, returns no entry twice and
// misses none that was present throughout.
func dirList(ctx context.Context, ns nodeStore, root []byte, after uint64, n int) (ents []dirEntry, cookies []uint64, err error) {
	r, err := decodeDirRoot(root)
	if err != nil || r.count == 0 || after >= 1<<dirCookieBits-1 {
		return nil, nil, err
	}
	var top *dirNode
	if r.top != nil {
		top, err = parseDirRootTop(r)
	} else {
		top, err = dirLoad(ctx, ns, r.ref, 0, 0)
	}
	if err != nil {
		return nil, nil, err
	}
	j, _ := r.opIndex(after + 1)
	l := dirLister{ctx: ctx, ns: ns, after: after, n: n, ops: r.ops[j:]}
	if err := l.walk(top, 0); err != nil {
		return nil, nil, err
	}
	l.flushOps(1<<dirCookieBits - 1)
	return l.ents, l.cookies, nil
}

type dirLister struct {
	ctx     context.Context
	ns      nodeStore
	after   uint64
	n       int
	ops     []dirOp // buffered ops not yet applied, all past after
	ents    []dirEntry
	cookies []uint64
}

func (l *dirLister) full() bool { return l.n > 0 && len(l.ents) >= l.n }

// flushOps lists the buffered inserts of names the trie lacks whose cookie
// is below c.
func (l *dirLister) flushOps(c uint64) {
	for len(l.ops) > 0 && l.ops[0].ck < c && !l.full() {
		if !l.ops[0].shadow {
			l.ents = append(l.ents, l.ops[0].e)
			l.cookies = append(l.cookies, l.ops[0].ck)
		}
		l.ops = l.ops[1:]
	}
}

// walk lists the entries under node n, whose lowest cookie is lo, with
// the buffered ops applied.
func (l *dirLister) walk(n *dirNode, lo uint64) error {
	if n.leaf {
		i, _ := slices.BinarySearch(n.cks, l.after+1)
		for ; i < len(n.ents) && !l.full(); i++ {
			e, c := n.ents[i], n.cks[i]
			if l.flushOps(c); l.full() {
				break
			}
			if len(l.ops) > 0 && l.ops[0].ck == c {
				o := l.ops[0]
				l.ops = l.ops[1:]
				if o.e.name != e.name || !o.shadow {
					return corruptf("dir root buffer: op on %q, the trie holds %q at its cookie", o.e.name, e.name)
				}
				if o.tomb() {
					continue
				}
				e = o.e
			}
			l.ents = append(l.ents, e)
			l.cookies = append(l.cookies, c)
		}
		return nil
	}
	span := uint64(1) << (dirCookieBits - n.off - n.width)
	for _, k := range n.kids {
		klo := dirKidLo(lo, n, k.slot)
		if klo+span-1 <= l.after {
			continue // nothing here is past the cursor: not even read
		}
		if l.full() {
			return nil
		}
		cn, err := dirLoad(l.ctx, l.ns, k.ref, n.off+n.width, klo)
		if err != nil {
			return err
		}
		if err := l.walk(cn, klo); err != nil {
			return err
		}
	}
	return nil
}
