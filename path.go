package voldfs

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"unicode/utf8"
)

// maxSymlinkHops bounds symlink expansion in one path walk (Linux's 40).
const maxSymlinkHops = 40

// checkPath validates a path argument: an io/fs path (unrooted, slash
// separated, no "." or ".." elements except "." alone, valid UTF-8) whose
// elements are at most 255 bytes and hold no NUL.
func checkPath(op, name string) error {
	if !fs.ValidPath(name) || !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	for rest := name; rest != ""; {
		el, next, _ := strings.Cut(rest, "/")
		if len(el) > maxName {
			return &fs.PathError{Op: op, Path: name, Err: syscall.ENAMETOOLONG}
		}
		rest = next
	}
	return nil
}

// maxName is NAME_MAX, the longest name of a directory entry: the
// directory format stores a name's length in a byte.
const maxName = 255

// checkName is the one check of a directory entry name, for names the
// inode-level API takes (as the kernel passes them), for entries inserted and
// for entries decoded from the store: any bytes but "/" and NUL, not "." or
// "..", 1 to maxName bytes. A long name is ENAMETOOLONG, any other bad name
// EINVAL.
func checkName[S ~string | ~[]byte](name S) error {
	if len(name) > maxName {
		return syscall.ENAMETOOLONG
	}
	if len(name) == 0 || string(name) == "." || string(name) == ".." {
		return syscall.EINVAL
	}
	for i := range len(name) {
		if name[i] == '/' || name[i] == 0 {
			return syscall.EINVAL
		}
	}
	return nil
}

// split returns the parent path and final element of a valid path other
// than ".".
func split(name string) (dir, base string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return ".", name
	}
	return name[:i], name[i+1:]
}

// lookup finds name in directory dir, whose inode is n. A missing entry, or
// one naming a vanished or removed inode (left by a crash), is ENOENT.
func (c *core) lookup(ctx context.Context, n *inode, name string) (dirEntry, *inode, error) {
	return c.lookupOnce(ctx, n, name, true)
}

// lookupOnce is lookup, looking again in the directory's latest version
// only if retry is set.
func (c *core) lookupOnce(ctx context.Context, n *inode, name string, retry bool) (dirEntry, *inode, error) {
	if !n.isDir() {
		return dirEntry{}, nil, syscall.ENOTDIR
	}
	e, ci, err := c.lookupEntry(ctx, n, name)
	for retries := 0; retry && (retryMissing(err, retries) || retries == 0 && errors.Is(err, syscall.ENOENT)); retries++ {
		// The cached directory may be stale: a newer version freed its
		// nodes, holds a name another client created (a miss is confirmed
		// against the store once: close-to-open), or no longer names an
		// inode that vanished. Look again in the latest version.
		fresh, ferr := c.getInode(ctx, n.ino, 0)
		if ferr != nil {
			return dirEntry{}, nil, ferr
		}
		n = fresh.n
		e, ci, err = c.lookupEntry(ctx, n, name)
	}
	if err != nil {
		return dirEntry{}, nil, err
	}
	if ci.n.isDir() && ci.n.dead() {
		return dirEntry{}, nil, syscall.ENOENT
	}
	return e, ci.n, nil
}

// lookupEntry finds name in directory n and the inode it names; a missing
// entry or inode is ENOENT.
func (c *core) lookupEntry(ctx context.Context, n *inode, name string) (dirEntry, *cachedInode, error) {
	r, top, err := n.dirRoot()
	if err != nil {
		return dirEntry{}, nil, err
	}
	e, found, err := dirLookupDecoded(ctx, dirNodes{c}, r, top, name)
	if err != nil {
		return dirEntry{}, nil, err
	}
	if !found {
		return dirEntry{}, nil, syscall.ENOENT
	}
	ci, err := c.getInode(ctx, e.ino, c.attrTTL)
	return e, ci, err
}

// walk resolves a checked path to its inode. Symlinks in the middle of the
// path are always followed, the final one only if follow is set. Absolute
// symlink targets are taken relative to the filesystem root, and ".." stops
// at the root, as under chroot.
func (c *core) walk(ctx context.Context, top uint64, name string, follow bool) (uint64, *inode, error) {
	ino := top
	ci, err := c.getInode(ctx, ino, c.attrTTL)
	if err != nil {
		return 0, nil, err
	}
	n := ci.n
	if name == "." {
		return ino, n, nil
	}
	rest := name // components still to resolve
	hops := 0
	for rest != "" {
		comp, next, _ := strings.Cut(rest, "/")
		rest = next
		switch comp {
		case "", ".":
			continue
		case "..":
			if !n.isDir() {
				return 0, nil, syscall.ENOTDIR
			}
			if ino == top {
				continue
			}
			ino = n.parent
			ci, err := c.getInode(ctx, ino, c.attrTTL)
			if err != nil {
				return 0, nil, err
			}
			n = ci.n
			continue
		}
		if len(comp) > maxName {
			return 0, nil, syscall.ENAMETOOLONG
		}
		e, child, err := c.lookup(ctx, n, comp)
		if err != nil {
			return 0, nil, err
		}
		if child.isSymlink() && (rest != "" || follow) {
			if hops++; hops > maxSymlinkHops {
				return 0, nil, syscall.ELOOP
			}
			target := string(child.inline)
			if strings.HasPrefix(target, "/") {
				ino = top
				ci, err := c.getInode(ctx, ino, c.attrTTL)
				if err != nil {
					return 0, nil, err
				}
				n = ci.n
			}
			if rest != "" {
				target += "/" + rest
			}
			rest = target
			continue
		}
		ino, n = e.ino, child
	}
	return ino, n, nil
}

// walkParent resolves the directory holding the final element of a checked
// path other than ".", and returns that element.
func (c *core) walkParent(ctx context.Context, top uint64, name string) (uint64, *inode, string, error) {
	dir, base := split(name)
	ino, n, err := c.walk(ctx, top, dir, true)
	if err != nil {
		return 0, nil, "", err
	}
	if !n.isDir() {
		return 0, nil, "", syscall.ENOTDIR
	}
	return ino, n, base, nil
}
