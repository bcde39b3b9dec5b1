package main

import (
	"context"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"github.com/voldfs/voldfs"
)

// Extended attributes: the library checks names, namespaces, flags and
// sizes; the mount only sizes the replies. go-fuse answers a size-0 query
// (getxattr(2) with an empty buffer) with the size the reply needs.

var (
	_ gofs.NodeGetxattrer    = (*node)(nil)
	_ gofs.NodeSetxattrer    = (*node)(nil)
	_ gofs.NodeListxattrer   = (*node)(nil)
	_ gofs.NodeRemovexattrer = (*node)(nil)
)

// Getxattr copies the value of attr into dest (ERANGE, with the size
// needed, when it does not fit).
func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	v, err := n.vol.ino.Getxattr(detach(ctx), n.ino(), attr)
	if err != nil {
		return 0, toErrno(err)
	}
	if len(v) > len(dest) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

// Setxattr sets attr; flags are setxattr(2)'s XATTR_CREATE and
// XATTR_REPLACE (others are EINVAL, from the library).
func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	vf := int(flags &^ (unix.XATTR_CREATE | unix.XATTR_REPLACE) << 8) // unknown bits stay unknown
	if flags&unix.XATTR_CREATE != 0 {
		vf |= voldfs.XattrCreate
	}
	if flags&unix.XATTR_REPLACE != 0 {
		vf |= voldfs.XattrReplace
	}
	return toErrno(n.vol.ino.Setxattr(detach(ctx), n.ino(), attr, data, vf))
}

// Removexattr removes attr.
func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return toErrno(n.vol.ino.Removexattr(detach(ctx), n.ino(), attr))
}

// Listxattr copies the names, each NUL-terminated, into dest (ERANGE, with
// the size needed, when they do not fit).
func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	names, err := n.vol.ino.Listxattr(detach(ctx), n.ino())
	if err != nil {
		return 0, toErrno(err)
	}
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name)
		b.WriteByte(0)
	}
	if b.Len() > len(dest) {
		return uint32(b.Len()), syscall.ERANGE
	}
	return uint32(copy(dest, b.String())), 0
}
