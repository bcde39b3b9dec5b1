package voldfs

import (
	"context"
	"io/fs"
	"syscall"
)

// Special files: FIFOs, Unix domain sockets, and character and block
// devices are inodes without content; a device carries its device number
// (Attr.Rdev, an opaque dev_t this library never interprets). They can be
// renamed, linked, chmod'ed, chown'ed, given extended attributes (not in
// the user. namespace, as on Linux) and removed like files, but not opened
// through this library: Open, OpenFile and Inodes.Open return ENXIO ("no
// such device or address", what Linux returns for opening a socket),
// because what a read or write of one means is the kernel's business. On a
// FUSE mount the kernel serves FIFOs and sockets itself and hands device
// opens to the driver; it never asks the filesystem to open them.

// Mknod creates the named special file: mode's type bits are
// fs.ModeNamedPipe (a FIFO), fs.ModeSocket, fs.ModeDevice|fs.ModeCharDevice
// (a character device), fs.ModeDevice (a block device), or none (a regular
// file, as mknod(2) makes for a zero type); any other type is EINVAL. dev is
// the device number of a device and ignored otherwise. The permission bits
// (and setuid, setgid, sticky) come from mode; no umask is applied.
func (f *FS) Mknod(name string, mode fs.FileMode, dev uint64) error {
	ctx, cancel, err := f.begin("mknod", name)
	if err != nil {
		return err
	}
	defer cancel()
	typ, err := fileModeType(mode)
	if err != nil {
		return pathErr("mknod", name, err)
	}
	dir, _, base, err := f.walkParent(ctx, name)
	if err != nil {
		return pathErr("mknod", name, err)
	}
	_, err = f.c.mknod(ctx, dir, base, typ|permBits(mode), dev)
	return pathErr("mknod", name, err)
}

// Mknod creates the special file name in dir, owned by owner, as mknod(2):
// mode is a Unix mode whose S_IFMT bits are S_IFIFO, S_IFSOCK, S_IFCHR,
// S_IFBLK, S_IFREG or zero (a regular file); anything else is EINVAL. dev is
// the device number of a device and ignored otherwise.
func (in *Inodes) Mknod(ctx context.Context, dir uint64, name string, mode uint32, dev uint64, owner *Owner) (*Attr, error) {
	ctx, cancel, err := in.begin(ctx, "mknod", name, owner)
	if err != nil {
		return nil, err
	}
	defer cancel()
	typ := mode & sIFMT
	switch typ {
	case 0:
		typ = sIFREG
	case sIFREG, sIFIFO, sIFSOCK, sIFCHR, sIFBLK:
	default:
		return nil, pathErr("mknod", name, syscall.EINVAL)
	}
	n, err := in.fs.c.mknod(ctx, dir, name, typ|mode&0o7777, dev)
	if err != nil {
		return nil, pathErr("mknod", name, err)
	}
	return in.fs.c.attrOf(n), nil
}

// fileModeType returns the Unix type bits Mknod creates for mode.
func fileModeType(mode fs.FileMode) (uint32, error) {
	switch mode & fs.ModeType {
	case 0:
		return sIFREG, nil
	case fs.ModeNamedPipe:
		return sIFIFO, nil
	case fs.ModeSocket:
		return sIFSOCK, nil
	case fs.ModeDevice | fs.ModeCharDevice:
		return sIFCHR, nil
	case fs.ModeDevice:
		return sIFBLK, nil
	}
	return 0, syscall.EINVAL
}

type rdevKey struct{}

// withRdev carries the device number of the inode a create under ctx
// makes; newInodeValue reads it with rdevOf, so the number is set in the
// commit that creates the inode.
func withRdev(ctx context.Context, dev uint64) context.Context {
	return context.WithValue(ctx, rdevKey{}, dev)
}

// rdevOf returns the device number withRdev put in ctx, or 0.
func rdevOf(ctx context.Context) uint64 {
	dev, _ := ctx.Value(rdevKey{}).(uint64)
	return dev
}

// mknod creates a special file (or a regular one) with Unix mode mode. It
// is the one place a special file is created.
func (c *core) mknod(ctx context.Context, dir uint64, name string, mode uint32, dev uint64) (*inode, error) {
	typ := mode & sIFMT
	if typ != sIFCHR && typ != sIFBLK {
		dev = 0
	}
	return c.create(withRdev(ctx, dev), dir, name, mode, nil)
}
