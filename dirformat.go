package voldfs

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"syscall"
)

// Node format. Every node, in a block or inline in the inode, is a record
// (codec.go) of kind 'N' whose payload is a node type and a body:
//
//	'N' | format version (1) | node type | body | crc32c(everything before) (4 bytes, big-endian)
//
// so a truncated node, a flipped bit, a node of another kind or an unknown
// version is caught before the body is parsed. The directory code frames
// and checks its nodes itself (a lookup walks the raw bytes of cached
// nodes), so the block layer stores them as they are, with no frame of its
// own. Bodies:
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
	dirTypeLeaf   byte = 1
	dirTypeBranch byte = 2
	dirTypeRoot   byte = 3
	dirTypePtr    byte = 4

	dirOpShadow byte = 0x80 // op kind bit: the trie holds the op's name

	dirFrameSize   = recOverhead + 1 // record frame and node type
	dirMinEntry    = 1 + 1 + 1 + 1   // name length, 1-byte name, ino, type
	dirMinOp       = 1 + 1 + 1       // name length, 1-byte name, kind (tombstone)
	dirMaxBranchHd = 2 + 32          // off, width, bitmap of a 256-way branch
	dirMaxKid      = 16 + 10         // ref and subtree size
	dirMaxWidth    = 8
)

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

// dirFrameStart starts a node record of type typ with room for a body of
// about sizeHint bytes; dirFrameEnd seals it.
func dirFrameStart(typ byte, sizeHint int) []byte {
	b := make([]byte, 2, sizeHint+dirFrameSize)
	return append(b, typ)
}

func dirFrameEnd(b []byte) []byte { return sealInPlace(recDirNode, b) }

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
	p, err := unseal(recDirNode, "dir node", b)
	if err != nil {
		return 0, nil, err
	}
	if len(p) == 0 {
		return 0, nil, corruptf("dir node of %d bytes is too short", len(b))
	}
	return p[0], p[1:], nil
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
			if checkName(name) != nil {
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
	if checkName(name) != nil {
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

// dirCheckEntry checks an entry before it is inserted.
func dirCheckEntry(e dirEntry) error {
	if err := checkName(e.name); err == syscall.ENAMETOOLONG {
		return err
	} else if err != nil {
		return fmt.Errorf("voldfs: invalid directory entry name %q: %w", e.name, err)
	}
	if e.typ < typeFile || e.typ > typeOther {
		return fmt.Errorf("voldfs: invalid directory entry type %d: %w", e.typ, syscall.EINVAL)
	}
	return nil
}
