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
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
	"slices"
	"sync"
	"syscall"

	"golang.org/x/sync/errgroup"
)

// dirEntry is one name in a directory.
type dirEntry struct {
	name string
	ino  uint64
	typ  uint8 // typeFile, typeDir, typeSymlink or typeOther
}

// Directory entry type codes, as stored in directory entries. They are part
// of the on-store format: never renumber them.
const (
	typeFile    uint8 = 1
	typeDir     uint8 = 2
	typeSymlink uint8 = 3
	typeOther   uint8 = 4
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

// Node format. Every node, in a block or inline in the inode, is framed as
//
//	'N' | format version (1) | node type | body | crc32c(everything before) (4 bytes, big-endian)
//
// (the framing of the store's other records, with kind 'N'), so a truncated
// node, a flipped bit, a node of another kind or an unknown version is
// caught before the body is parsed. Bodies:
//
//	leaf:   off (1) | count (uvarint, >= 1) | count × entry
//	        entry = name length (1) | name | ino (uvarint) | type (1)
//	        entries in strictly ascending cookie order, all sharing the
//	        first off cookie bits. Cookies are not stored: they are
//	        recomputed from names, which also verifies the order.
//	branch: off (1) | width w (1..8) | bitmap (ceil(2^w / 8) bytes, slot i
//	        is bit 7-i%8 of byte i/8) | n × child ref (16) | n × subtree
//	        size (uvarint, >= 1), n = number of bits set (>= 1), children
//	        in ascending slot order. A subtree size is the total encoded
//	        size of the subtree's entries; it lets a remove decide to
//	        collapse a branch without reading its children.
//	root:   count (uvarint, >= 1) | buffer | a leaf or branch type and
//	        body (the top node inline) | or type ptr and a 16-byte block
//	        ref. The root is what the inode stores; an empty directory is
//	        an empty root. count is the number of entries the directory
//	        holds, buffer applied.
//	buffer: n (uvarint) | n × op, in strictly ascending cookie order; n is
//	        0 when the top node is an inline leaf (changes then go to
//	        the leaf directly).
//	        op = name length (1) | name | kind (1) | ino (uvarint, inserts
//	        only). kind's low 7 bits are 0 for a tombstone or the entry
//	        type (1..4) for an insert; bit 7 is set iff the trie holds
//	        the name (always set for a tombstone). So count = trie
//	        entries + inserts without bit 7 - tombstones.
const (
	dirRecKind       byte = 'N'
	dirFormatVersion byte = 1

	dirTypeLeaf   byte = 1
	dirTypeBranch byte = 2
	dirTypeRoot   byte = 3
	dirTypePtr    byte = 4

	dirOpShadow byte = 0x80 // op kind bit: the trie holds the op's name

	dirFrameSize   = 2 + 1 + 4     // kind, version, node type, crc
	dirMinEntry    = 1 + 1 + 1 + 1 // name length, 1-byte name, ino, type
	dirMinOp       = 1 + 1 + 1     // name length, 1-byte name, kind (tombstone)
	dirMaxBranchHd = 2 + 32        // off, width, bitmap of a 256-way branch
	dirMaxKid      = 16 + 10       // ref and subtree size
	dirMaxWidth    = 8
)

var dirCRC = crc32.MakeTable(crc32.Castagnoli)

// dirNode is a decoded trie node. Decoded nodes are never modified: updates
// build new nodes that may share the old ones' slices.
type dirNode struct {
	leaf bool
	off  uint8 // cookie bits consumed by the branches above

	// Leaf.
	ents []dirEntry // ascending cookie order
	cks  []uint64   // cks[i] = nameCookie(ents[i].name)

	// Branch.
	width uint8
	kids  []dirKid // present children, ascending slot order
}

// dirKid is a branch's pointer to a child.
type dirKid struct {
	slot uint8
	ref  blockRef
	size uint64 // encoded size of the subtree's entries
}

func dirEntrySize(e dirEntry) uint64 {
	return uint64(2 + len(e.name) + uvarintLen(e.ino))
}

func uvarintLen(v uint64) int {
	return (bits.Len64(v|1) + 6) / 7
}

// size returns the encoded size of the entries under n.
func (n *dirNode) size() uint64 {
	var s uint64
	if n.leaf {
		for _, e := range n.ents {
			s += dirEntrySize(e)
		}
		return s
	}
	for _, k := range n.kids {
		s += k.size
	}
	return s
}

// leafBlockSize returns the size of leaf n encoded as a block.
func (n *dirNode) leafBlockSize() int {
	return dirFrameSize + 1 + uvarintLen(uint64(len(n.ents))) + int(n.size())
}

// kid returns the index of the child in slot s and whether it exists.
func (n *dirNode) kid(s int) (int, bool) {
	return slices.BinarySearchFunc(n.kids, s, func(k dirKid, s int) int { return int(k.slot) - s })
}

func dirFrameStart(typ byte, sizeHint int) []byte {
	b := make([]byte, 0, sizeHint+dirFrameSize)
	return append(b, dirRecKind, dirFormatVersion, typ)
}

func dirFrameEnd(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, dirCRC))
}

// encodeDirNode encodes a leaf or branch as a block.
func encodeDirNode(n *dirNode) []byte {
	if n.leaf {
		return dirFrameEnd(appendDirLeaf(dirFrameStart(dirTypeLeaf, n.leafBlockSize()), n))
	}
	return dirFrameEnd(appendDirBranch(dirFrameStart(dirTypeBranch, dirMaxBranchHd+len(n.kids)*dirMaxKid), n))
}

func appendDirLeaf(b []byte, n *dirNode) []byte {
	b = append(b, n.off)
	b = binary.AppendUvarint(b, uint64(len(n.ents)))
	for _, e := range n.ents {
		b = append(b, byte(len(e.name)))
		b = append(b, e.name...)
		b = binary.AppendUvarint(b, e.ino)
		b = append(b, e.typ)
	}
	return b
}

func appendDirBranch(b []byte, n *dirNode) []byte {
	b = append(b, n.off, n.width)
	var bm [32]byte
	for _, k := range n.kids {
		bm[k.slot/8] |= 0x80 >> (k.slot % 8)
	}
	b = append(b, bm[:dirBitmapLen(n.width)]...)
	for _, k := range n.kids {
		b = append(b, k.ref[:]...)
	}
	for _, k := range n.kids {
		b = binary.AppendUvarint(b, k.size)
	}
	return b
}

func dirBitmapLen(w uint8) int { return (1<<w + 7) / 8 }

// dirRoot is a decoded inline root.
type dirRoot struct {
	count uint64
	ops   []dirOp  // the write buffer, ascending cookie order
	inner []byte   // the encoding after the buffer: top node type and body, or ptr and ref
	top   []byte   // the inline top node: type byte and body; nil if ref is set
	ref   blockRef // the top node's block
}

// dirOp is one buffered change.
type dirOp struct {
	e      dirEntry // the entry inserted; for a tombstone, only the name
	ck     uint64   // nameCookie(e.name)
	shadow bool     // the trie holds the name
}

// tomb reports whether op removes its name.
func (o dirOp) tomb() bool { return o.e.typ == 0 }

// inlineLeaf reports whether the root's top node is an inline leaf: the
// whole directory is in the root and changes go to it directly.
func (r *dirRoot) inlineLeaf() bool { return r.top != nil && r.top[0] == dirTypeLeaf }

// opIndex returns the index of the buffered op with cookie c, or where one
// would go.
func (r *dirRoot) opIndex(c uint64) (int, bool) {
	return slices.BinarySearchFunc(r.ops, c, func(o dirOp, c uint64) int { return cmpU64(o.ck, c) })
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// encodeDirRoot encodes a root with no buffer whose top node is n (inline)
// or, if n is nil, the block ref.
func encodeDirRoot(count uint64, n *dirNode, ref blockRef) []byte {
	var inner []byte
	switch {
	case n == nil:
		inner = append([]byte{dirTypePtr}, ref[:]...)
	case n.leaf:
		inner = appendDirLeaf(append(make([]byte, 0, 1+n.leafBlockSize()), dirTypeLeaf), n)
	default:
		inner = appendDirBranch(append(make([]byte, 0, 1+dirMaxBranchHd+len(n.kids)*dirMaxKid), dirTypeBranch), n)
	}
	return encodeDirRootRaw(count, nil, inner)
}

// encodeDirRootRaw encodes a root from its count, buffer and encoded top
// (as dirRoot.inner).
func encodeDirRootRaw(count uint64, ops []dirOp, inner []byte) []byte {
	size := 20 + len(inner)
	for _, o := range ops {
		size += 2 + len(o.e.name) + 10
	}
	b := dirFrameStart(dirTypeRoot, size)
	b = binary.AppendUvarint(b, count)
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for _, o := range ops {
		b = append(b, byte(len(o.e.name)))
		b = append(b, o.e.name...)
		k := o.e.typ
		if o.shadow {
			k |= dirOpShadow
		}
		b = append(b, k)
		if !o.tomb() {
			b = binary.AppendUvarint(b, o.e.ino)
		}
	}
	b = append(b, inner...)
	return dirFrameEnd(b)
}

// dirUnframe checks a node's frame and returns its type byte and body.
func dirUnframe(b []byte) (byte, []byte, error) {
	if len(b) < dirFrameSize {
		return 0, nil, corruptf("dir node of %d bytes is too short", len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, dirCRC) != sum {
		return 0, nil, corruptf("dir node checksum mismatch")
	}
	if body[0] != dirRecKind {
		return 0, nil, corruptf("record kind %q, want dir node %q", body[0], dirRecKind)
	}
	if body[1] != dirFormatVersion {
		return 0, nil, corruptf("dir node format version %d unknown", body[1])
	}
	return body[2], body[3:], nil
}

// decodeDirNode decodes a leaf or branch block. It accepts arbitrary bytes:
// anything malformed is an error wrapping ErrCorrupt.
func decodeDirNode(b []byte) (*dirNode, error) {
	typ, body, err := dirUnframe(b)
	if err != nil {
		return nil, err
	}
	return parseDirNode(typ, body)
}

// decodeDirRoot decodes an inline root. An empty root is an empty directory.
// The inline top node is checked by its checksum but parsed only on use; the
// buffer is parsed and checked in full.
func decodeDirRoot(b []byte) (dirRoot, error) {
	if len(b) == 0 {
		return dirRoot{}, nil
	}
	typ, body, err := dirUnframe(b)
	if err != nil {
		return dirRoot{}, err
	}
	if typ != dirTypeRoot {
		return dirRoot{}, corruptf("dir root has node type %d", typ)
	}
	r := dirReader{b: body}
	var root dirRoot
	root.count = r.uvarint("entry count")
	nops := r.uvarint("buffer length")
	if r.err != nil {
		return dirRoot{}, r.err
	}
	if root.count == 0 {
		return dirRoot{}, corruptf("dir root with zero entries (an empty directory has an empty root)")
	}
	if nops > uint64(len(r.b)/dirMinOp) {
		return dirRoot{}, corruptf("dir root buffer claims %d ops in %d bytes", nops, len(r.b))
	}
	if nops > 0 {
		// One string for all names, as in parseDirLeaf.
		all := string(r.b)
		base := len(r.b)
		root.ops = make([]dirOp, nops)
		var inserts uint64
		for i := range root.ops {
			start := base - len(r.b) + 1
			name := r.take(int(r.byte1("op name length")), "op name")
			kind := r.byte1("op kind")
			if r.err != nil {
				return dirRoot{}, r.err
			}
			if !dirValidName(name) {
				return dirRoot{}, corruptf("dir root buffer has invalid name %q", name)
			}
			o := dirOp{e: dirEntry{name: all[start : start+len(name)], typ: kind &^ dirOpShadow}, shadow: kind&dirOpShadow != 0}
			switch {
			case o.e.typ > typeOther:
				return dirRoot{}, corruptf("dir root buffer op %q has kind %#x", name, kind)
			case o.tomb() && !o.shadow:
				return dirRoot{}, corruptf("dir root buffer removes %q, which the trie lacks", name)
			case !o.tomb():
				o.e.ino = r.uvarint("op inode number")
				inserts++
			}
			if r.err != nil {
				return dirRoot{}, r.err
			}
			o.ck = nameCookie(o.e.name)
			if i > 0 && o.ck <= root.ops[i-1].ck {
				return dirRoot{}, corruptf("dir root buffer ops %q and %q out of cookie order", root.ops[i-1].e.name, o.e.name)
			}
			root.ops[i] = o
		}
		if inserts > root.count {
			return dirRoot{}, corruptf("dir root counts %d entries, its buffer inserts %d", root.count, inserts)
		}
	}
	root.inner = r.b
	inner := r.byte1("root type")
	if r.err != nil {
		return dirRoot{}, r.err
	}
	switch inner {
	case dirTypePtr:
		copy(root.ref[:], r.take(16, "root ref"))
		if r.err != nil {
			return dirRoot{}, r.err
		}
		if len(r.b) != 0 {
			return dirRoot{}, corruptf("dir root: %d trailing bytes", len(r.b))
		}
		if root.ref.isZero() {
			return dirRoot{}, corruptf("dir root points to the zero block")
		}
	case dirTypeLeaf, dirTypeBranch:
		root.top = root.inner
		if inner == dirTypeLeaf && len(root.ops) != 0 {
			return dirRoot{}, corruptf("dir root has an inline leaf and a write buffer")
		}
	default:
		return dirRoot{}, corruptf("dir root has inner node type %d", inner)
	}
	return root, nil
}

// parseDirRootTop fully decodes an inline top node.
func parseDirRootTop(root dirRoot) (*dirNode, error) {
	n, err := parseDirNode(root.top[0], root.top[1:])
	if err != nil {
		return nil, err
	}
	if n.off != 0 {
		return nil, corruptf("dir root node at bit offset %d", n.off)
	}
	if n.leaf && uint64(len(n.ents)) != root.count {
		return nil, corruptf("dir root counts %d entries, its leaf holds %d", root.count, len(n.ents))
	}
	return n, nil
}

// dirReader reads fields from a node body. The first error sticks, so a
// parser checks it once per loop; it never allocates more than the input
// could hold.
type dirReader struct {
	b   []byte
	err error
}

func (r *dirReader) fail(what string) {
	if r.err == nil {
		r.err = corruptf("dir node: truncated or malformed %s", what)
	}
}

func (r *dirReader) byte1(what string) byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail(what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *dirReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	// Refusing padded varints keeps the encoding canonical: a node that
	// decodes re-encodes to the same bytes.
	if n <= 0 || n != uvarintLen(v) {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *dirReader) take(n int, what string) []byte {
	if r.err != nil || n < 0 || len(r.b) < n {
		r.fail(what)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// parseDirNode decodes a leaf or branch body.
func parseDirNode(typ byte, body []byte) (*dirNode, error) {
	r := dirReader{b: body}
	var n *dirNode
	var err error
	switch typ {
	case dirTypeLeaf:
		n, err = parseDirLeaf(&r)
	case dirTypeBranch:
		n, err = parseDirBranch(&r)
	default:
		return nil, corruptf("dir node type %d unknown", typ)
	}
	if err != nil {
		return nil, err
	}
	if len(r.b) != 0 {
		return nil, corruptf("dir node: %d trailing bytes", len(r.b))
	}
	return n, nil
}

// dirLeafHeader reads a leaf's offset and entry count.
func dirLeafHeader(r *dirReader) (off uint8, count int, err error) {
	off = r.byte1("leaf offset")
	c := r.uvarint("leaf entry count")
	if r.err != nil {
		return 0, 0, r.err
	}
	if off > dirCookieBits {
		return 0, 0, corruptf("dir leaf at bit offset %d", off)
	}
	if c == 0 || c > uint64(len(r.b)/dirMinEntry) {
		return 0, 0, corruptf("dir leaf claims %d entries in %d bytes", c, len(r.b))
	}
	return off, int(c), nil
}

// dirNextEntry reads one leaf entry; the name is a sub-slice of the input.
func dirNextEntry(r *dirReader) (name []byte, ino uint64, typ uint8, err error) {
	name = r.take(int(r.byte1("name length")), "name")
	ino = r.uvarint("inode number")
	typ = r.byte1("entry type")
	if r.err != nil {
		return nil, 0, 0, r.err
	}
	if !dirValidName(name) {
		return nil, 0, 0, corruptf("dir entry has invalid name %q", name)
	}
	if typ < typeFile || typ > typeOther {
		return nil, 0, 0, corruptf("dir entry %q has type %d", name, typ)
	}
	return name, ino, typ, nil
}

func parseDirLeaf(r *dirReader) (*dirNode, error) {
	off, count, err := dirLeafHeader(r)
	if err != nil {
		return nil, err
	}
	// One string for all names: each name is a substring of it, so
	// decoding a leaf costs three allocations, not one per entry.
	all := string(r.b)
	base := len(r.b)
	n := &dirNode{leaf: true, off: off, ents: make([]dirEntry, count), cks: make([]uint64, count)}
	for i := range count {
		start := base - len(r.b) + 1 // past the name length
		name, ino, typ, err := dirNextEntry(r)
		if err != nil {
			return nil, err
		}
		e := dirEntry{name: all[start : start+len(name)], ino: ino, typ: typ}
		c := nameCookie(e.name)
		if i > 0 && c <= n.cks[i-1] {
			return nil, corruptf("dir leaf entries %q and %q out of cookie order", n.ents[i-1].name, e.name)
		}
		if i > 0 && dirPrefix(c, off) != dirPrefix(n.cks[0], off) {
			return nil, corruptf("dir leaf at bit offset %d mixes cookie prefixes", off)
		}
		n.ents[i], n.cks[i] = e, c
	}
	return n, nil
}

func parseDirBranch(r *dirReader) (*dirNode, error) {
	off := r.byte1("branch offset")
	w := r.byte1("branch width")
	if r.err != nil {
		return nil, r.err
	}
	if w < 1 || w > dirMaxWidth || int(off)+int(w) > dirCookieBits {
		return nil, corruptf("dir branch at bit offset %d has width %d", off, w)
	}
	bm := r.take(dirBitmapLen(w), "branch bitmap")
	if r.err != nil {
		return nil, r.err
	}
	nk := 0
	for i, x := range bm {
		if i == len(bm)-1 && w < 3 && x&(0xff>>(1<<w)) != 0 {
			return nil, corruptf("dir branch bitmap has bits past slot %d", 1<<w)
		}
		nk += bits.OnesCount8(x)
	}
	if nk == 0 || nk*(16+1) > len(r.b) {
		return nil, corruptf("dir branch has %d children in %d bytes", nk, len(r.b))
	}
	n := &dirNode{off: off, width: w, kids: make([]dirKid, 0, nk)}
	for s := 0; s < 1<<w; s++ {
		if bm[s/8]&(0x80>>(s%8)) != 0 {
			k := dirKid{slot: uint8(s)}
			copy(k.ref[:], r.take(16, "child ref"))
			if k.ref.isZero() {
				return nil, corruptf("dir branch child %d is the zero block", s)
			}
			n.kids = append(n.kids, k)
		}
	}
	for i := range n.kids {
		n.kids[i].size = r.uvarint("subtree size")
		if r.err == nil && n.kids[i].size < dirMinEntry {
			return nil, corruptf("dir branch child %d has subtree size %d", n.kids[i].slot, n.kids[i].size)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return n, nil
}

// dirValidName reports whether name can be a directory entry.
func dirValidName(name []byte) bool {
	if len(name) == 0 || len(name) > maxNameLen {
		return false
	}
	if string(name) == "." || string(name) == ".." {
		return false
	}
	for _, c := range name {
		if c == '/' || c == 0 {
			return false
		}
	}
	return true
}

// maxNameLen is NAME_MAX; the leaf format stores a name's length in a byte.
const maxNameLen = 255

func dirCheckEntry(e dirEntry) error {
	if len(e.name) > maxNameLen {
		return syscall.ENAMETOOLONG
	}
	if !dirValidName([]byte(e.name)) {
		return fmt.Errorf("voldfs: invalid directory entry name %q: %w", e.name, syscall.EINVAL)
	}
	if e.typ < typeFile || e.typ > typeOther {
		return fmt.Errorf("voldfs: invalid directory entry type %d: %w", e.typ, syscall.EINVAL)
	}
	return nil
}

// dirTx is one directory update: it records the blocks it writes and the
// blocks of the old tree it makes unreachable.
type dirTx struct {
	ctx     context.Context
	ns      nodeStore
	leafMax int

	mu      sync.Mutex // guards written and freed: a merge works in parallel
	written []blockRef
	freed   []blockRef
}

func (t *dirTx) wrote(ref blockRef) {
	t.mu.Lock()
	t.written = append(t.written, ref)
	t.mu.Unlock()
}

func (t *dirTx) free(ref blockRef) {
	t.mu.Lock()
	t.freed = append(t.freed, ref)
	t.mu.Unlock()
}

func newDirTx(ctx context.Context, ns nodeStore) (*dirTx, error) {
	m := ns.maxNode()
	if m < dirMinNode {
		return nil, fmt.Errorf("voldfs: node size limit %d is below the directory minimum %d: %w", m, dirMinNode, syscall.EINVAL)
	}
	return &dirTx{ctx: ctx, ns: ns, leafMax: min(m, dirLeafMax)}, nil
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
func (t *dirTx) load(ref blockRef, off uint8, c uint64) (*dirNode, error) {
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
func (t *dirTx) write(n *dirNode) (dirKid, error) {
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
func (t *dirTx) fit(n *dirNode) (*dirNode, error) {
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
func (t *dirTx) top(root dirRoot, c uint64) (*dirNode, error) {
	if root.top != nil {
		return parseDirRootTop(root)
	}
	return t.load(root.ref, 0, c)
}

// finish encodes the root of the updated tree whose top node is n.
func (t *dirTx) finish(n *dirNode, count uint64) ([]byte, error) {
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
func (t *dirTx) insert(n *dirNode, e dirEntry, c uint64, replace bool) (*dirNode, dirEntry, bool, error) {
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
func (t *dirTx) remove(n *dirNode, name string, c uint64) (*dirNode, dirEntry, bool, error) {
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
func (t *dirTx) gatherRef(leaf *dirNode, ref blockRef, off uint8, lo uint64) error {
	t.free(ref)
	n, err := t.load(ref, off, lo)
	if err != nil {
		return err
	}
	return t.gather(leaf, n, lo)
}

// gather appends to leaf every entry under n (lowest cookie lo) and frees
// n's descendants. The caller accounts for n itself.
func (t *dirTx) gather(leaf *dirNode, n *dirNode, lo uint64) error {
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

// dirLookupDecoded is dirLookupRoot for a root whose top node the caller
// decoded once (top: nil if the top is a block), walking decoded nodes kept
// by ns.
func dirLookupDecoded(ctx context.Context, ns nodeStore, r dirRoot, top *dirNode, name string) (dirEntry, bool, error) {
	dd, ok := ns.(dirDecoded)
	if !ok || r.count == 0 || !dirValidName([]byte(name)) || (top == nil && r.top != nil) {
		return dirLookupRoot(ctx, ns, r, name)
	}
	c := nameCookie(name)
	if i, ok := r.opIndex(c); ok {
		o := r.ops[i]
		if o.e.name != name || o.tomb() {
			return dirEntry{}, false, nil
		}
		return o.e, true, nil
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
	if r.count == 0 || !dirValidName([]byte(name)) {
		return dirEntry{}, false, nil
	}
	c := nameCookie(name)
	if i, ok := r.opIndex(c); ok {
		// The buffer wins. Another name's op on the cookie means the trie
		// cannot hold name either (inserting it would have collided).
		o := r.ops[i]
		if o.e.name != name || o.tomb() {
			return dirEntry{}, false, nil
		}
		return o.e, true, nil
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

// dirInsert adds e to the directory with root root. If the name exists,
// with replace false it returns the existing entry, found true and root
// unchanged (nothing written); with replace true the entry is replaced and
// the old one returned (replacing an entry by an identical one writes
// nothing). written lists the blocks it wrote: the caller frees them if its
// inode CAS loses, and also if err is not nil. freed lists the blocks of the
// old tree the new one no longer references: the caller frees them once its
// CAS wins. A name whose cookie another name holds is errCookieCollision.
//
// Once the trie is in blocks the change is buffered in the root and writes
// nothing, unless the buffer is full: then every pending change is merged
// into the trie.
func dirInsert(ctx context.Context, ns nodeStore, root []byte, e dirEntry, replace bool) (newRoot []byte, old dirEntry, found bool, written, freed []blockRef, err error) {
	if err := dirCheckEntry(e); err != nil {
		return nil, dirEntry{}, false, nil, nil, err
	}
	r, err := decodeDirRoot(root)
	if err != nil {
		return nil, dirEntry{}, false, nil, nil, err
	}
	t, err := newDirTx(ctx, ns)
	if err != nil {
		return nil, dirEntry{}, false, nil, nil, err
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
			return nil, dirEntry{}, false, nil, nil, err
		}
		n, old, found, err = t.insert(top, e, c, replace)
		if err != nil {
			return nil, dirEntry{}, false, t.written, nil, err
		}
		if n == nil {
			return root, old, found, nil, nil, nil
		}
	}
	count := r.count
	if !found {
		count++
	}
	if newRoot, err = t.finish(n, count); err != nil {
		return nil, dirEntry{}, false, t.written, nil, err
	}
	return newRoot, old, found, t.written, t.freed, nil
}

// bufInsert is dirInsert on a root whose trie is in blocks: it buffers the
// change (root is r encoded).
func (t *dirTx) bufInsert(r dirRoot, root []byte, e dirEntry, c uint64, replace bool) (newRoot []byte, old dirEntry, found bool, written, freed []blockRef, err error) {
	i, ok := r.opIndex(c)
	var shadow bool
	if ok {
		o := r.ops[i]
		if o.e.name != e.name {
			if !o.tomb() {
				return nil, dirEntry{}, false, nil, nil, fmt.Errorf("%w: %q and %q", errCookieCollision, e.name, o.e.name)
			}
			// The cookie belongs to a removed name still in the trie:
			// merge the removal, then insert into the merged tree.
			return t.insertAfterMerge(r, e, replace)
		}
		if !o.tomb() {
			old, found = o.e, true
			if !replace || old == e {
				return root, old, true, nil, nil, nil
			}
		}
		shadow = o.shadow
	} else {
		te, tfound, err := t.find(r, c)
		if err != nil {
			return nil, dirEntry{}, false, nil, nil, err
		}
		if tfound && te.name != e.name {
			return nil, dirEntry{}, false, nil, nil, fmt.Errorf("%w: %q and %q", errCookieCollision, e.name, te.name)
		}
		if tfound {
			old, found = te, true
			if !replace || old == e {
				return root, old, true, nil, nil, nil
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
		return nil, dirEntry{}, false, t.written, nil, err
	}
	return newRoot, old, found, t.written, t.freed, nil
}

// insertAfterMerge merges r's buffer into its trie and inserts e into the
// result.
func (t *dirTx) insertAfterMerge(r dirRoot, e dirEntry, replace bool) (newRoot []byte, old dirEntry, found bool, written, freed []blockRef, err error) {
	merged, err := t.merge(r, r.count, r.ops)
	if err != nil {
		return nil, dirEntry{}, false, t.written, nil, err
	}
	newRoot, old, found, w, f, err := dirInsert(t.ctx, t.ns, merged, e, replace)
	written = append(t.written, w...)
	if err != nil {
		return nil, dirEntry{}, false, written, nil, err
	}
	if found && !replace {
		// Unchanged after all (the merge cannot reveal the name, but keep
		// the contract: found with replace false changes nothing).
		return nil, dirEntry{}, false, written, nil, corruptf("dir root: merged trie holds %q after its tombstone", e.name)
	}
	return newRoot, old, found, written, append(t.freed, f...), nil
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
func (t *dirTx) commitBuf(r dirRoot, count uint64, ops []dirOp, merge bool) ([]byte, error) {
	if !merge || len(ops) == 0 {
		if b := encodeDirRootRaw(count, ops, r.inner); len(b) <= dirInlineMax || len(ops) == 0 {
			return b, nil
		}
	}
	return t.merge(r, count, ops)
}

// dirRemove removes name from the directory with root root. If there is no
// such entry, found is false and nothing changes. written and freed are as
// for dirInsert.
func dirRemove(ctx context.Context, ns nodeStore, root []byte, name string) (newRoot []byte, old dirEntry, found bool, written, freed []blockRef, err error) {
	r, err := decodeDirRoot(root)
	if err != nil {
		return nil, dirEntry{}, false, nil, nil, err
	}
	if r.count == 0 || !dirValidName([]byte(name)) {
		return root, dirEntry{}, false, nil, nil, nil
	}
	t, err := newDirTx(ctx, ns)
	if err != nil {
		return nil, dirEntry{}, false, nil, nil, err
	}
	c := nameCookie(name)
	if !r.inlineLeaf() {
		return t.bufRemove(r, root, name, c)
	}
	top, err := t.top(r, c)
	if err != nil {
		return nil, dirEntry{}, false, nil, nil, err
	}
	n, old, found, err := t.remove(top, name, c)
	if err != nil {
		return nil, dirEntry{}, false, t.written, nil, err
	}
	if n == nil {
		return root, dirEntry{}, false, nil, nil, nil
	}
	if newRoot, err = t.finish(n, r.count-1); err != nil {
		return nil, dirEntry{}, false, t.written, nil, err
	}
	return newRoot, old, true, t.written, t.freed, nil
}

// bufRemove is dirRemove on a root whose trie is in blocks.
func (t *dirTx) bufRemove(r dirRoot, root []byte, name string, c uint64) (newRoot []byte, old dirEntry, found bool, written, freed []blockRef, err error) {
	i, ok := r.opIndex(c)
	var ops []dirOp
	if ok {
		o := r.ops[i]
		if o.e.name != name || o.tomb() {
			// Another name's op holds the cookie, so the trie cannot hold
			// name; or name is removed already.
			return root, dirEntry{}, false, nil, nil, nil
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
			return nil, dirEntry{}, false, nil, nil, err
		}
		if !tfound || te.name != name {
			return root, dirEntry{}, false, nil, nil, nil
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
			return nil, dirEntry{}, false, nil, nil, err
		}
		return nil, old, true, nil, t.freed, nil
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
		return nil, dirEntry{}, false, t.written, nil, err
	}
	return newRoot, old, true, t.written, t.freed, nil
}

// find returns the trie's entry with cookie c, if any, for a root whose
// trie is in blocks (or an inline branch).
func (t *dirTx) find(r dirRoot, c uint64) (dirEntry, bool, error) {
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
func (t *dirTx) merge(r dirRoot, count uint64, ops []dirOp) ([]byte, error) {
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
func (t *dirTx) mergeNode(n *dirNode, lo uint64, ops []dirOp) (*dirNode, error) {
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

// dirFlush merges the directory's write buffer into its trie. written and
// freed are as for dirInsert. A root with no buffer is returned as it is.
func dirFlush(ctx context.Context, ns nodeStore, root []byte) (newRoot []byte, written, freed []blockRef, err error) {
	r, err := decodeDirRoot(root)
	if err != nil || len(r.ops) == 0 {
		return root, nil, nil, err
	}
	t, err := newDirTx(ctx, ns)
	if err != nil {
		return nil, nil, nil, err
	}
	if newRoot, err = t.merge(r, r.count, r.ops); err != nil {
		return nil, t.written, nil, err
	}
	return newRoot, t.written, t.freed, nil
}

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
