package voldfs

import (
	"io/fs"
	"time"
)

// Attr is an inode's attributes: what FileInfo.Sys returns and what a FUSE
// server needs to answer getattr.
type Attr struct {
	Ino     uint64 // stable, unique in the filesystem
	Gen     uint64 // generation: differs between inodes that reuse a number
	Mode    uint32 // Unix mode: file type (S_IFMT) and permission bits
	Nlink   uint32
	Uid     uint32
	Gid     uint32
	Size    uint64
	Blocks  uint64 // 512-byte units allocated (approximate for sparse files)
	Blksize uint32 // preferred I/O size: the filesystem block size
	Atime   time.Time
	Mtime   time.Time
	Ctime   time.Time
	Btime   time.Time // creation (birth) time
}

// FileMode returns the Attr's mode as an fs.FileMode.
func (a *Attr) FileMode() fs.FileMode { return unixToFileMode(a.Mode) }

// attrOf returns n's attributes as this core sees them: with the writes its
// open handles buffered (liveAttr).
func (c *core) attrOf(n *inode) *Attr {
	a := &Attr{}
	c.fillAttr(a, n)
	c.liveAttr(a)
	return a
}

// fillAttr sets a to n's committed attributes.
func (c *core) fillAttr(a *Attr, n *inode) {
	*a = Attr{
		Ino: n.ino, Gen: n.gen, Mode: n.mode, Nlink: n.nlink, Uid: n.uid, Gid: n.gid,
		Size: n.size, Blksize: uint32(c.blockSize),
		Atime: time.Unix(0, n.atime), Mtime: time.Unix(0, n.mtime),
		Ctime: time.Unix(0, n.ctime), Btime: time.Unix(0, n.btime),
	}
	if n.isDir() {
		a.Nlink = 2 + n.subdir
		a.Size = uint64(c.blockSize)
		if n.dead() {
			a.Nlink = 0
		}
	}
	switch {
	case n.isReg() && n.root.isZero():
		a.Blocks = (uint64(len(n.inline)) + 511) / 512
	default:
		a.Blocks = (n.size + 511) / 512
	}
}

// fileInfo implements fs.FileInfo and fs.DirEntry.
type fileInfo struct {
	name string
	attr Attr
}

// info is attrOf as an fs.FileInfo named name.
func (c *core) info(name string, n *inode) *fileInfo {
	fi := &fileInfo{name: name}
	c.fillAttr(&fi.attr, n)
	c.liveAttr(&fi.attr)
	return fi
}

func (fi *fileInfo) Name() string               { return fi.name }
func (fi *fileInfo) Size() int64                { return int64(fi.attr.Size) }
func (fi *fileInfo) Mode() fs.FileMode          { return fi.attr.FileMode() }
func (fi *fileInfo) ModTime() time.Time         { return fi.attr.Mtime }
func (fi *fileInfo) IsDir() bool                { return fi.Mode().IsDir() }
func (fi *fileInfo) Sys() any                   { return &fi.attr }
func (fi *fileInfo) Type() fs.FileMode          { return fi.Mode().Type() }
func (fi *fileInfo) Info() (fs.FileInfo, error) { return fi, nil }
func (fi *fileInfo) String() string             { return fs.FormatFileInfo(fi) }
