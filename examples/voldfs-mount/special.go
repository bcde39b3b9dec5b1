package main

import (
	"context"
	"io/fs"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Special files: FIFOs, sockets and devices are inodes of the library
// (Inodes.Mknod); the kernel serves them (a FIFO's data or a socket's
// connections never reach the mount).

var _ gofs.NodeMknoder = (*node)(nil)

// Mknod creates a FIFO, socket, device or regular file, owned by the
// caller. dev is the kernel's 32-bit device encoding; the library keeps the
// one of stat(2) and unix.Mkdev.
func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	a, err := n.vol.ino.Mknod(detach(ctx), n.ino(), name, mode, fromKernelDev(dev), caller(ctx))
	if err != nil {
		return nil, toErrno(err)
	}
	return n.newNode(ctx, a, out), 0
}

// fromKernelDev decodes the kernel's new_encode_dev form (what FUSE carries):
// minor bits 0-7 and 20-31, major bits 8-19.
func fromKernelDev(dev uint32) uint64 {
	major := (dev & 0xfff00) >> 8
	minor := (dev & 0xff) | (dev>>12)&0xfff00
	return unix.Mkdev(major, minor)
}

// toKernelDev is the inverse of fromKernelDev (device numbers beyond its
// 12-bit major and 20-bit minor are truncated, as the kernel's are).
func toKernelDev(dev uint64) uint32 {
	major, minor := unix.Major(dev), unix.Minor(dev)
	return minor&0xff | (major&0xfff)<<8 | (minor&^0xff)<<12
}

// typeBits is the S_IFMT bits of a directory entry's type.
func typeBits(t fs.FileMode) uint32 {
	switch {
	case t&fs.ModeDir != 0:
		return syscall.S_IFDIR
	case t&fs.ModeSymlink != 0:
		return syscall.S_IFLNK
	case t&fs.ModeNamedPipe != 0:
		return syscall.S_IFIFO
	case t&fs.ModeSocket != 0:
		return syscall.S_IFSOCK
	case t&fs.ModeCharDevice != 0:
		return syscall.S_IFCHR
	case t&fs.ModeDevice != 0:
		return syscall.S_IFBLK
	}
	return syscall.S_IFREG
}
