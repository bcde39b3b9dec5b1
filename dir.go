package voldfs

// A directory is a hash trie of immutable nodes, ordered by readdir cookie.
//
// Every name has a cookie, a 63-bit hash (nameCookie). The trie consumes the
// cookie's bits from the top: a branch at bit offset off with width w has up
// to 2^w children, indexed by the w bits after the first off. So an in-order
// walk visits entries in ascending cookie order, and a listing resumed "after
// cookie c" needs only the path to c: an entry's position never depends on
// which other names exist. That is what makes readdir stable under
// concurrent inserts and removes (no entry returned twice, none present
// throughout missed), which a B-tree ordered by name cannot give with a
// 64-bit cookie, and an extendible hash table (the ancestor's) cannot give
// across bucket splits.
//
// Nodes are immutable blocks written through a nodeStore; an update rewrites
// only the path from the root to one leaf (copy-on-write) and reports exactly
// which blocks it wrote and which blocks of the old tree it made unreachable.
// The top node lives inline in the directory's inode when it is small, so a
// small directory costs no block I/O at all.
//
// Write buffer. Once the trie reaches blocks (the top node is a branch, or
// lives in a block), inserts and removes do not rewrite it: they are logged
// in a small buffer inside the inline root, LSM-style, so a create or unlink
// in a large directory usually writes no block, only the directory inode's
// CAS. A buffered change is an insert (which may shadow the trie's entry of
// the same name) or a tombstone (hiding the trie's entry). Each op records
// whether the trie holds its name, so the entry count kept in the root stays
// exact without I/O, and a name created and removed again before a merge
// leaves no trace. When the encoded root would pass dirInlineMax, all
// pending ops are merged into the trie in one pass: every touched leaf is
// rewritten once, the touched leaves written in parallel, and the top node
// once. Readers apply the buffer over the trie: a lookup checks it first; a
// listing merges the two in cookie order, so a name's readdir position still
// depends on its name alone and the listing guarantees are unchanged.

import (
	"context"
	"fmt"
	"syscall"
)

// dirEntry is one name in a directory.
type dirEntry struct {
	name string
	ino  uint64
	typ  uint8 // typeFile, typeDir, typeSymlink, typeFIFO, ...
}

// Directory entry type codes, as stored in directory entries. They are part
// of the on-store format: never renumber them.
const (
	typeFile    uint8 = 1
	typeDir     uint8 = 2
	typeSymlink uint8 = 3
	typeOther   uint8 = 4 // never written (no inode had another type); read as irregular
	typeFIFO    uint8 = 5
	typeSocket  uint8 = 6
	typeChar    uint8 = 7 // character device
	typeBlock   uint8 = 8 // block device
	typeMax           = typeBlock
)

// errCookieCollision: two different names of one directory hash to the same
// readdir cookie. Listing by cookie could not tell them apart, so the second
// name is refused. With n names the chance is about n²/2⁶⁴ (1 in 3.7·10⁹ for
// a directory of a million names); the error wraps ENOSPC because, as with a
// full directory, retrying the same name cannot succeed but other names can.
var errCookieCollision = fmt.Errorf("voldfs: name's readdir cookie is taken by another name in the directory: %w", syscall.ENOSPC)

const (
	// dirInlineMax bounds the inline root kept in the directory's inode. A
	// directory of up to roughly 130 typical names stays entirely inline;
	// beyond, the inline root is a pointer to the trie plus the write
	// buffer, which fills the rest. It is 4 KiB, not 2: the buffer's size
	// sets how often a merge must rewrite leaves (about one merge per 180
	// typical creates instead of 90), and the inode of a small file already
	// carries up to 4 KiB inline (inlineMax), so the store handles inodes of
	// this size on every write anyway. Going further would make every CAS
	// of a large directory ship more bytes for a shrinking gain.
	dirInlineMax = 4 << 10

	// dirInlineBranchMax bounds an inline top branch: a bigger one goes to
	// a block, leaving the inline space to the write buffer (a wide top
	// branch inline would cost a merge every few dozen changes to save one
	// block write per merge).
	dirInlineBranchMax = dirInlineMax / 4

	// dirMergeBelow: a remove that leaves at most this many entries in a
	// directory whose trie is in blocks merges at once, so that a nearly
	// empty directory collapses back inline.
	dirMergeBelow = 16

	// dirMergeParallel bounds the concurrent block reads and writes of one
	// merge (per branch).
	dirMergeParallel = 16

	// dirLeafMax bounds a leaf's encoding (also bounded by maxNode). Every
	// insert or remove rewrites one whole leaf, so a smaller leaf makes
	// updates cheaper; a larger one makes the trie shallower. 16 KiB holds
	// about 400-500 typical entries: with a 256-way root a directory of
	// ~100,000 names is still two blocks deep (root branch + leaf), and an
	// update writes ~16 KiB + 4 KiB instead of the 64+ KiB a larger leaf
	// would cost. Lookups are bounded by round trips, not bytes, so going
	// bigger buys nothing until directories pass a million names.
	dirLeafMax = 16 << 10

	// dirMinNode is the smallest maxNode the trie works with: a leaf must
	// hold at least one maximal entry, a branch at least two children.
	dirMinNode = 1 << 10

	// dirCookieMin is the smallest cookie: FUSE readdir offsets 0, 1 and 2
	// mean "start", "." and "..".
	dirCookieMin = 3

	// dirCookieBits is how many bits of a cookie the trie can consume.
	dirCookieBits = 63
)

// nameCookie returns the stable readdir cookie of name: FNV-1a 64 finished
// with MurmurHash3's fmix64 (a bijection, so it adds no collisions, but it
// spreads the top bits the trie indexes by), shifted into [3, 2^63-1]. It is
// part of the on-store format: changing it reorders every directory.
func nameCookie(name string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return max(h>>1, dirCookieMin)
}

// dirSlot returns the w cookie bits that follow the first off bits.
func dirSlot(c uint64, off, w uint8) int {
	return int((c << 1 << off) >> (64 - w))
}

// dirPrefix returns the first off bits of cookie c.
func dirPrefix(c uint64, off uint8) uint64 {
	return c >> (dirCookieBits - off)
}

// dirInsert adds e to the directory with root root. If the name exists,
// with replace false it returns the existing entry, found true and root
// unchanged (nothing written); with replace true the entry is replaced and
// the old one returned (replacing an entry by an identical one writes
// nothing). It records in rec the blocks it wrote and the blocks of the old
// tree the new one no longer references, for the commit loop to free (the
// written ones if the CAS loses or err is not nil, the others once it wins);
// after an error the caller returns it, publishing nothing. A name whose
// cookie another name holds is errCookieCollision.
//
// Once the trie is in blocks the change is buffered in the root and writes
// nothing, unless the buffer is full: then every pending change is merged
// into the trie.
func dirInsert(ctx context.Context, rec *tx, ns nodeStore, root []byte, e dirEntry, replace bool) (newRoot []byte, old dirEntry, found bool, err error) {
	if err := dirCheckEntry(e); err != nil {
		return nil, dirEntry{}, false, err
	}
	r, err := decodeDirRoot(root)
	if err != nil {
		return nil, dirEntry{}, false, err
	}
	t, err := newDirEdit(ctx, rec, ns)
	if err != nil {
		return nil, dirEntry{}, false, err
	}
	c := nameCookie(e.name)
	if r.count != 0 && !r.inlineLeaf() {
		return t.bufInsert(r, root, e, c, replace)
	}
	var n *dirNode
	if r.count == 0 {
		n = &dirNode{leaf: true, ents: []dirEntry{e}, cks: []uint64{c}}
	} else {
		top, err := t.top(r, c)
		if err != nil {
			return nil, dirEntry{}, false, err
		}
		n, old, found, err = t.insert(top, e, c, replace)
		if err != nil {
			return nil, dirEntry{}, false, err
		}
		if n == nil {
			return root, old, found, nil
		}
	}
	count := r.count
	if !found {
		count++
	}
	if newRoot, err = t.finish(n, count); err != nil {
		return nil, dirEntry{}, false, err
	}
	return newRoot, old, found, nil
}

// dirRemove removes name from the directory with root root. If there is no
// such entry, found is false and nothing changes. It records into rec as
// dirInsert does.
func dirRemove(ctx context.Context, rec *tx, ns nodeStore, root []byte, name string) (newRoot []byte, old dirEntry, found bool, err error) {
	r, err := decodeDirRoot(root)
	if err != nil {
		return nil, dirEntry{}, false, err
	}
	if r.count == 0 || checkName(name) != nil {
		return root, dirEntry{}, false, nil
	}
	t, err := newDirEdit(ctx, rec, ns)
	if err != nil {
		return nil, dirEntry{}, false, err
	}
	c := nameCookie(name)
	if !r.inlineLeaf() {
		return t.bufRemove(r, root, name, c)
	}
	top, err := t.top(r, c)
	if err != nil {
		return nil, dirEntry{}, false, err
	}
	n, old, found, err := t.remove(top, name, c)
	if err != nil {
		return nil, dirEntry{}, false, err
	}
	if n == nil {
		return root, dirEntry{}, false, nil
	}
	if newRoot, err = t.finish(n, r.count-1); err != nil {
		return nil, dirEntry{}, false, err
	}
	return newRoot, old, true, nil
}

// dirIsEmpty reports whether the directory with root root has no entries.
// An empty directory always has an empty root, so this needs no decoding.
func dirIsEmpty(root []byte) bool { return len(root) == 0 }

// dirCount returns the number of entries of the directory with root root,
// or 0 if root is corrupt (every function that reads the tree then reports
// ErrCorrupt, and dirIsEmpty still reports false).
func dirCount(root []byte) uint64 {
	r, err := decodeDirRoot(root)
	if err != nil {
		return 0
	}
	return r.count
}
