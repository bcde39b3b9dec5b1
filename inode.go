package voldfs

import (
	"io/fs"
	"strconv"
	"sync"
)

// inode is the one mutable record of a file, directory or symlink: its
// attributes and the root of its copy-on-write tree. It lives under its own
// key and changes only by CAS (cas.go), so one CAS publishes one operation.
type inode struct {
	ino    uint64
	mode   uint32 // Unix mode: S_IFMT type bits and permission bits
	uid    uint32
	gid    uint32
	nlink  uint32
	flags  uint32
	gen    uint64
	size   uint64 // bytes of a file or symlink target; entries of a directory
	atime  int64  // nanoseconds since the Unix epoch
	mtime  int64
	ctime  int64
	btime  int64
	parent uint64 // directories: the parent directory (".."); root: itself
	subdir uint32 // directories: number of subdirectory entries

	// Content. Files: inline data (height 0, root zero) or a block tree of
	// the given height (height 0 with a root: the root is the only data
	// block). Symlinks: the target in inline. Directories: the trie root.
	inline []byte
	root   blockRef
	height uint8

	// Optional trailing fields (see encodeInode): extended attributes,
	// either encoded inline (xattrs) or as one write-once block (xattrRef),
	// and the device number of a character or block device.
	xattrs   []byte
	xattrRef blockRef
	rdev     uint64

	// Snapshots (snapshot.go): the epoch the record was written under, and
	// the stamp plus one of the preserved record it replaced (0: none).
	stamp uint64
	prev  uint64

	// dirc caches the decoded directory root of an inode that no one
	// modifies any more (set when it enters the inode cache).
	dirc *dirCache
}

type dirCache struct {
	once sync.Once
	r    dirRoot
	top  *dirNode // the inline top node, decoded; nil if the top is a block
	err  error
}

// dirRoot returns n's decoded directory root and its decoded inline top
// node (nil if the top node is a block), decoding them once for a cached
// inode.
func (n *inode) dirRoot() (dirRoot, *dirNode, error) {
	if n.dirc == nil {
		r, err := decodeDirRoot(n.inline)
		return r, nil, err
	}
	n.dirc.once.Do(func() {
		d := n.dirc
		if d.r, d.err = decodeDirRoot(n.inline); d.err == nil && d.r.top != nil {
			d.top, d.err = parseDirRootTop(d.r)
		}
	})
	return n.dirc.r, n.dirc.top, n.dirc.err
}

// Inode flags.
const (
	// flagDead marks a directory removed by rmdir: no entry may be added to
	// it, and an entry still naming it (after a crash) is treated as absent.
	flagDead uint32 = 1 << iota
	// flagGone marks the tombstone a writable clone leaves for a deleted
	// inode, so that its origin's record does not show through
	// (snapshotclone.go). Readers treat it as absent.
	flagGone
	// flagShared marks a regular file whose tree may share blocks with
	// another file's (a reflink copy, reflinkcount.go). It is never cleared.
	flagShared
)

// Unix file type bits, independent of the host platform.
const (
	sIFMT  = 0o170000
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
	// Special files (mknod.go): no content, and a device number for the
	// two kinds of device.
	sIFIFO  = 0o010000
	sIFCHR  = 0o020000
	sIFBLK  = 0o060000
	sIFSOCK = 0o140000
	sISUID  = 0o4000
	sISGID  = 0o2000
	sISVTX  = 0o1000
	// inlineMax is the largest file kept inside its inode, so that creating
	// and writing a small file costs no block write.
	inlineMax = 4096
	// maxSymlink is the longest symlink target (Linux's PATH_MAX).
	maxSymlink = 4096
	// maxInodeInline bounds inline content when decoding.
	maxInodeInline = 64 << 10
)

func (n *inode) isDir() bool     { return n.mode&sIFMT == sIFDIR }
func (n *inode) isSymlink() bool { return n.mode&sIFMT == sIFLNK }
func (n *inode) isReg() bool     { return n.mode&sIFMT == sIFREG }
func (n *inode) dead() bool      { return n.flags&flagDead != 0 || n.nlink == 0 }

// clone returns a copy that may be modified without affecting n. Inline
// content is copied on write by the code that changes it, never in place.
func (n *inode) clone() *inode {
	c := *n
	c.dirc = nil // the copy's content may change
	return &c
}

// dirType returns the directory-entry type code of n.
func (n *inode) dirType() uint8 {
	switch n.mode & sIFMT {
	case sIFREG:
		return typeFile
	case sIFDIR:
		return typeDir
	case sIFLNK:
		return typeSymlink
	case sIFIFO:
		return typeFIFO
	case sIFSOCK:
		return typeSocket
	case sIFCHR:
		return typeChar
	case sIFBLK:
		return typeBlock
	}
	return typeOther
}

func unixToFileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & sIFMT {
	case sIFDIR:
		mode |= fs.ModeDir
	case sIFLNK:
		mode |= fs.ModeSymlink
	case sIFREG:
	case sIFIFO:
		mode |= fs.ModeNamedPipe
	case sIFSOCK:
		mode |= fs.ModeSocket
	case sIFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case sIFBLK:
		mode |= fs.ModeDevice
	default:
		mode |= fs.ModeIrregular
	}
	if m&sISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&sISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&sISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// permBits converts the permission part of an fs.FileMode to Unix bits.
func permBits(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= sISUID
	}
	if m&fs.ModeSetgid != 0 {
		u |= sISGID
	}
	if m&fs.ModeSticky != 0 {
		u |= sISVTX
	}
	return u
}

func encodeInode(n *inode) []byte {
	e := enc{b: make([]byte, 0, 96+len(n.inline))}
	e.uv(n.ino)
	e.uv(uint64(n.mode))
	e.uv(uint64(n.uid))
	e.uv(uint64(n.gid))
	e.uv(uint64(n.nlink))
	e.uv(uint64(n.flags))
	e.uv(n.gen)
	e.uv(n.size)
	e.sv(n.atime)
	e.sv(n.mtime)
	e.sv(n.ctime)
	e.sv(n.btime)
	e.uv(n.parent)
	e.uv(uint64(n.subdir))
	e.raw(n.root[:])
	e.u8(n.height)
	e.bytes(n.inline)
	// The optional trailer: a mask of the fields present, then each present
	// field in mask order. A record without any is written as before, so
	// inodes without extended attributes or a device number stay readable
	// by earlier versions.
	var mask uint8
	if len(n.xattrs) > 0 {
		mask |= optXattrs
	}
	if !n.xattrRef.isZero() {
		mask |= optXattrRef
	}
	if n.rdev != 0 {
		mask |= optRdev
	}
	if n.stamp != 0 || n.prev != 0 {
		mask |= optSnap
	}
	if mask != 0 {
		e.u8(mask)
		if mask&optXattrs != 0 {
			e.bytes(n.xattrs)
		}
		if mask&optXattrRef != 0 {
			e.raw(n.xattrRef[:])
		}
		if mask&optRdev != 0 {
			e.uv(n.rdev)
		}
		if mask&optSnap != 0 {
			e.uv(n.stamp)
			e.uv(n.prev)
		}
	}
	return seal(recInode, e.b)
}

// Bits of the optional trailer's mask.
const (
	optXattrs   uint8 = 1 << iota // inline extended attributes (xattr.go)
	optXattrRef                   // the block holding them when they are larger
	optRdev                       // device number
	optSnap                       // snapshot stamp and predecessor (snapshot.go)
	optKnown    = optXattrs | optXattrRef | optRdev | optSnap
)

func decodeInode(key string, b []byte) (*inode, error) {
	p, err := unseal(recInode, key, b)
	if err != nil {
		return nil, err
	}
	d := dec{b: p, key: key}
	n := &inode{}
	n.ino = d.uv()
	n.mode = uint32(d.uv())
	n.uid = uint32(d.uv())
	n.gid = uint32(d.uv())
	n.nlink = uint32(d.uv())
	n.flags = uint32(d.uv())
	n.gen = d.uv()
	n.size = d.uv()
	n.atime = d.sv()
	n.mtime = d.sv()
	n.ctime = d.sv()
	n.btime = d.sv()
	n.parent = d.uv()
	n.subdir = uint32(d.uv())
	copy(n.root[:], d.raw(len(n.root)))
	n.height = d.u8()
	n.inline = d.bytes(maxInodeInline)
	if d.err == nil && len(d.b) > 0 {
		// The optional trailer (encodeInode); records without it end here.
		mask := d.u8()
		if mask&^optKnown != 0 || mask == 0 {
			return nil, corruptf("%s: unknown optional inode fields %#x", key, mask)
		}
		if mask&optXattrs != 0 {
			n.xattrs = d.bytes(xattrInlineMax)
		}
		if mask&optXattrRef != 0 {
			copy(n.xattrRef[:], d.raw(len(n.xattrRef)))
		}
		if mask&optRdev != 0 {
			n.rdev = d.uv()
		}
		if mask&optSnap != 0 {
			n.stamp = d.uv()
			n.prev = d.uv()
		}
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	switch n.mode & sIFMT {
	case sIFREG, sIFDIR, sIFLNK, sIFIFO, sIFSOCK, sIFCHR, sIFBLK:
	default:
		return nil, corruptf("%s: unknown file type %#o", key, n.mode&sIFMT)
	}
	if n.size > 1<<63-1 || n.height > 16 {
		return nil, corruptf("%s: size %d or tree height %d out of range", key, n.size, n.height)
	}
	if n.isReg() && n.root.isZero() && n.height == 0 && uint64(len(n.inline)) > n.size {
		return nil, corruptf("%s: inline data longer than the file", key)
	}
	return n, nil
}

// inodeKey returns the store key of inode ino.
func (c *core) inodeKey(ino uint64) string {
	return c.prefix + "i/" + strconv.FormatUint(ino, 16)
}
