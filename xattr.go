package voldfs

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// Extended attributes.
//
// An inode's extended attributes are one set, copy-on-write with the inode:
// small sets are encoded inside the inode record (inode.xattrs), a file's
// larger ones in one write-once block the inode names (inode.xattrRef),
// freed when replaced or when the file is destroyed. A change
// is one commit of the inode (cas.go), so it is atomic, and on a conflict
// it is applied again to the newer version: attributes another client set
// meanwhile are kept.
//
// The user., trusted. and security. namespaces are stored as given (this
// library does not check privileges: a FUSE server passes the kernel's
// request on, and the kernel has already checked them). Any other name,
// including system.posix_acl_access and system.posix_acl_default, is
// ENOTSUP: voldfs offers no POSIX ACLs, because a mount with
// default_permissions has the kernel check the mode bits only, so an ACL
// stored but never enforced would mislead. As on Linux, user. attributes
// exist only on regular files and directories (EPERM on others).

// XattrCreate and XattrReplace are the flags of Setxattr, as setxattr(2)'s
// XATTR_CREATE and XATTR_REPLACE.
const (
	XattrCreate  = 1 // fail with EEXIST if the attribute exists
	XattrReplace = 2 // fail with ENODATA if the attribute does not exist
)

const (
	xattrNameMax = 255      // longest attribute name (ERANGE beyond), as Linux
	xattrSizeMax = 64 << 10 // largest value (E2BIG beyond), as Linux
	// xattrInlineMax is the largest encoded set kept in the inode record.
	xattrInlineMax = 4 << 10
	// xattrSetMax bounds the encoded set of one inode (ENOSPC beyond).
	xattrSetMax = 256 << 10
)

type xattr struct {
	name  string
	value []byte
}

// encodeXattrs encodes a set sorted by name.
func encodeXattrs(set []xattr) []byte {
	if len(set) == 0 {
		return nil
	}
	e := enc{}
	e.uv(uint64(len(set)))
	for _, x := range set {
		e.bytes([]byte(x.name))
		e.bytes(x.value)
	}
	return e.b
}

func decodeXattrs(key string, p []byte) ([]xattr, error) {
	if len(p) == 0 {
		return nil, nil
	}
	d := dec{b: p, key: key}
	n := d.uv()
	if n > uint64(len(p)) {
		return nil, corruptf("%s: %d extended attributes in %d bytes", key, n, len(p))
	}
	set := make([]xattr, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		name := string(d.bytes(xattrNameMax))
		value := d.bytes(xattrSizeMax)
		if d.err == nil && (name == "" || i > 0 && name <= set[i-1].name) {
			return nil, corruptf("%s: extended attribute names empty or out of order", key)
		}
		set = append(set, xattr{name, value})
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return set, nil
}

// checkXattrName validates an attribute name.
func checkXattrName(attr string) error {
	switch {
	case attr == "":
		return syscall.EINVAL
	case len(attr) > xattrNameMax:
		return syscall.ERANGE
	}
	for _, ns := range []string{"user.", "trusted.", "security."} {
		if strings.HasPrefix(attr, ns) && len(attr) > len(ns) {
			return nil
		}
	}
	return syscall.ENOTSUP
}

// xattrAllowed refuses user. attributes on inodes other than regular files
// and directories, as Linux does.
func xattrAllowed(n *inode, attr string) error {
	if strings.HasPrefix(attr, "user.") && !n.isReg() && !n.isDir() {
		return syscall.EPERM
	}
	return nil
}

// xattrSet returns n's decoded attribute set.
func (c *core) xattrSet(ctx context.Context, n *inode) ([]xattr, error) {
	if !n.xattrRef.isZero() {
		p, err := c.getBlock(ctx, recData, n.xattrRef)
		if err != nil {
			return nil, err
		}
		return decodeXattrs(c.blockKey(n.xattrRef), p)
	}
	return decodeXattrs(c.inodeKey(n.ino), n.xattrs)
}

// storeXattrs makes set n's attribute set in the commit t: inline when it
// is small, else in a new block, freeing the block it replaces.
func (c *core) storeXattrs(ctx context.Context, t *tx, n *inode, set []xattr) error {
	p := encodeXattrs(set)
	if len(p) > xattrSetMax || n.isDir() && len(p) > xattrInlineMax {
		// A directory's set stays inline: removing a directory frees its
		// trie (dirRefs), not a tree's blocks, so a block of its
		// attributes would be left for GC.
		return syscall.ENOSPC
	}
	old := n.xattrRef
	n.xattrs, n.xattrRef = nil, blockRef{}
	if len(p) <= xattrInlineMax {
		n.xattrs = p
	} else {
		ref, err := c.putBlock(ctx, recData, p)
		if err != nil {
			if errors.Is(err, backend.ErrTooLarge) {
				return syscall.ENOSPC
			}
			return err
		}
		t.wrote(ref)
		n.xattrRef = ref
	}
	if !old.isZero() {
		t.free(old)
	}
	return nil
}

// updateOpen is update for a change that does not touch the buffered
// writes of the inode's open handles (setattrOpen does the same for
// attributes): it commits with their state locked and makes the result the
// version they overlay, so a later commit of theirs starts from it.
func (c *core) updateOpen(ctx context.Context, ino uint64, fn func(t *tx, n *inode) error) (*inode, error) {
	o := c.openState(ino)
	if o == nil {
		return c.update(ctx, ino, fn)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := c.update(ctx, ino, fn)
	if err == nil {
		o.setInode(n, nanotime())
	}
	return n, err
}

func (c *core) setxattr(ctx context.Context, ino uint64, attr string, value []byte, flags int) error {
	if err := checkXattrName(attr); err != nil {
		return err
	}
	if len(value) > xattrSizeMax {
		return syscall.E2BIG
	}
	if flags&^(XattrCreate|XattrReplace) != 0 || flags == XattrCreate|XattrReplace {
		return syscall.EINVAL
	}
	value = bytes.Clone(value)
	if value == nil {
		value = []byte{}
	}
	_, err := c.updateOpen(ctx, ino, func(t *tx, n *inode) error {
		if err := xattrAllowed(n, attr); err != nil {
			return err
		}
		set, err := c.xattrSet(ctx, n)
		if err != nil {
			return err
		}
		i, found := slices.BinarySearchFunc(set, attr, func(x xattr, a string) int { return strings.Compare(x.name, a) })
		switch {
		case found && flags&XattrCreate != 0:
			return syscall.EEXIST
		case !found && flags&XattrReplace != 0:
			return syscall.ENODATA
		case found:
			set = slices.Clone(set)
			set[i].value = value
		default:
			set = slices.Insert(slices.Clone(set), i, xattr{attr, value})
		}
		n.ctime = now()
		return c.storeXattrs(ctx, t, n, set)
	})
	return err
}

func (c *core) removexattr(ctx context.Context, ino uint64, attr string) error {
	if err := checkXattrName(attr); err != nil {
		return err
	}
	_, err := c.updateOpen(ctx, ino, func(t *tx, n *inode) error {
		set, err := c.xattrSet(ctx, n)
		if err != nil {
			return err
		}
		i, found := slices.BinarySearchFunc(set, attr, func(x xattr, a string) int { return strings.Compare(x.name, a) })
		if !found {
			return syscall.ENODATA
		}
		n.ctime = now()
		return c.storeXattrs(ctx, t, n, slices.Delete(slices.Clone(set), i, i+1))
	})
	return err
}

// readXattrs returns the attribute set of inode ino, from a copy at most
// age old, reading the latest version when a newer one freed the block.
func (c *core) readXattrs(ctx context.Context, ino uint64, age time.Duration) ([]xattr, *inode, error) {
	ci, err := c.getInode(ctx, ino, age)
	if err != nil {
		return nil, nil, err
	}
	set, err := c.xattrSet(ctx, ci.n)
	for retries := 0; retryMissing(err, retries); retries++ {
		if ci, err = c.getInode(ctx, ino, 0); err != nil {
			return nil, nil, err
		}
		set, err = c.xattrSet(ctx, ci.n)
	}
	return set, ci.n, err
}

func (c *core) getxattr(ctx context.Context, ino uint64, attr string) ([]byte, error) {
	if err := checkXattrName(attr); err != nil {
		return nil, err
	}
	set, _, err := c.readXattrs(ctx, ino, c.attrTTL)
	if err != nil {
		return nil, err
	}
	i, found := slices.BinarySearchFunc(set, attr, func(x xattr, a string) int { return strings.Compare(x.name, a) })
	if !found {
		return nil, syscall.ENODATA
	}
	return bytes.Clone(set[i].value), nil
}

func (c *core) listxattr(ctx context.Context, ino uint64) ([]string, error) {
	set, _, err := c.readXattrs(ctx, ino, c.attrTTL)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(set))
	for i, x := range set {
		names[i] = x.name
	}
	return names, nil
}

// Setxattr sets the extended attribute attr of the named file (following
// symlinks) to value. flags is 0, XattrCreate (EEXIST if attr exists) or
// XattrReplace (ENODATA if it does not). attr must be in the user.,
// trusted. or security. namespace (ENOTSUP), 1 to 255 bytes (EINVAL,
// ERANGE); value at most 64 KiB (E2BIG). The whole set of one file is
// bounded at 256 KiB encoded, a directory's at 4 KiB, as ext4 bounds
// every inode's (ENOSPC).
func (f *FS) Setxattr(name, attr string, value []byte, flags int) error {
	return f.onInode("setxattr", name, true, func(ctx context.Context, ino uint64) error {
		return f.c.setxattr(ctx, ino, attr, value, flags)
	})
}

// Lsetxattr is Setxattr without following a final symlink.
func (f *FS) Lsetxattr(name, attr string, value []byte, flags int) error {
	return f.onInode("lsetxattr", name, false, func(ctx context.Context, ino uint64) error {
		return f.c.setxattr(ctx, ino, attr, value, flags)
	})
}

// Getxattr returns the value of the extended attribute attr of the named
// file, following symlinks (ENODATA if it has none).
func (f *FS) Getxattr(name, attr string) ([]byte, error) {
	var v []byte
	err := f.onInode("getxattr", name, true, func(ctx context.Context, ino uint64) (err error) {
		v, err = f.c.getxattr(ctx, ino, attr)
		return err
	})
	return v, err
}

// Lgetxattr is Getxattr without following a final symlink.
func (f *FS) Lgetxattr(name, attr string) ([]byte, error) {
	var v []byte
	err := f.onInode("lgetxattr", name, false, func(ctx context.Context, ino uint64) (err error) {
		v, err = f.c.getxattr(ctx, ino, attr)
		return err
	})
	return v, err
}

// Listxattr returns the names of the extended attributes of the named
// file, following symlinks, in byte order.
func (f *FS) Listxattr(name string) ([]string, error) {
	var names []string
	err := f.onInode("listxattr", name, true, func(ctx context.Context, ino uint64) (err error) {
		names, err = f.c.listxattr(ctx, ino)
		return err
	})
	return names, err
}

// Llistxattr is Listxattr without following a final symlink.
func (f *FS) Llistxattr(name string) ([]string, error) {
	var names []string
	err := f.onInode("llistxattr", name, false, func(ctx context.Context, ino uint64) (err error) {
		names, err = f.c.listxattr(ctx, ino)
		return err
	})
	return names, err
}

// Removexattr removes the extended attribute attr of the named file,
// following symlinks (ENODATA if it has none).
func (f *FS) Removexattr(name, attr string) error {
	return f.onInode("removexattr", name, true, func(ctx context.Context, ino uint64) error {
		return f.c.removexattr(ctx, ino, attr)
	})
}

// Lremovexattr is Removexattr without following a final symlink.
func (f *FS) Lremovexattr(name, attr string) error {
	return f.onInode("lremovexattr", name, false, func(ctx context.Context, ino uint64) error {
		return f.c.removexattr(ctx, ino, attr)
	})
}

// Setxattr is FS.Setxattr on inode ino (with the same flags, limits and
// errors).
func (in *Inodes) Setxattr(ctx context.Context, ino uint64, attr string, value []byte, flags int) error {
	return in.xattrOp(ctx, "setxattr", ino, func(ctx context.Context) error {
		return in.fs.c.setxattr(ctx, ino, attr, value, flags)
	})
}

// Getxattr is FS.Getxattr on inode ino. It may answer from an inode cached
// for up to Options.AttrTimeout, as GetAttr does.
func (in *Inodes) Getxattr(ctx context.Context, ino uint64, attr string) ([]byte, error) {
	var v []byte
	err := in.xattrOp(ctx, "getxattr", ino, func(ctx context.Context) (err error) {
		v, err = in.fs.c.getxattr(ctx, ino, attr)
		return err
	})
	return v, err
}

// Listxattr is FS.Listxattr on inode ino. A FUSE server answering
// listxattr(2) joins the names with NUL terminators.
func (in *Inodes) Listxattr(ctx context.Context, ino uint64) ([]string, error) {
	var names []string
	err := in.xattrOp(ctx, "listxattr", ino, func(ctx context.Context) (err error) {
		names, err = in.fs.c.listxattr(ctx, ino)
		return err
	})
	return names, err
}

// Removexattr is FS.Removexattr on inode ino.
func (in *Inodes) Removexattr(ctx context.Context, ino uint64, attr string) error {
	return in.xattrOp(ctx, "removexattr", ino, func(ctx context.Context) error {
		return in.fs.c.removexattr(ctx, ino, attr)
	})
}

func (in *Inodes) xattrOp(ctx context.Context, op string, ino uint64, fn func(ctx context.Context) error) error {
	ctx, cancel, err := in.begin(ctx, op, inoPath(ino), nil)
	if err != nil {
		return err
	}
	defer cancel()
	return pathErr(op, inoPath(ino), fn(ctx))
}
