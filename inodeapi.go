package voldfs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// The inode-level API: operations on (directory inode, name) pairs and on
// inode numbers, as a FUSE server (examples/voldfs-mount) or an NFS-style
// server needs them. Names are single entries as the kernel passes them: any
// bytes but "/" and NUL, 1 to 255 bytes, not "." or "..". Errors are
// *fs.PathError values whose Path is the name (or "#ino").

func inoPath(ino uint64) string { return "#" + strconv.FormatUint(ino, 10) }

func (f *FS) inoOp(op, path string) (context.Context, context.CancelFunc, error) {
	if f.c.closed.Load() {
		return nil, nil, &fs.PathError{Op: op, Path: path, Err: fs.ErrClosed}
	}
	ctx, cancel := f.op()
	return ctx, cancel, nil
}

// Lookup returns the attributes of name in directory dir.
func (f *FS) Lookup(dir uint64, name string) (*Attr, error) {
	ctx, cancel, err := f.inoOp("lookup", name)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if err := checkName(name); err != nil {
		return nil, pathErr("lookup", name, err)
	}
	ci, err := f.c.getInode(ctx, dir, f.c.attrTTL)
	if err != nil {
		return nil, pathErr("lookup", name, err)
	}
	_, n, err := f.c.lookup(ctx, ci.n, name)
	if err != nil {
		return nil, pathErr("lookup", name, err)
	}
	return f.c.attrOf(n), nil
}

// GetAttr returns the attributes of inode ino (within the attribute window).
func (f *FS) GetAttr(ino uint64) (*Attr, error) {
	ctx, cancel, err := f.inoOp("getattr", inoPath(ino))
	if err != nil {
		return nil, err
	}
	defer cancel()
	ci, err := f.c.getInode(ctx, ino, f.c.attrTTL)
	if err != nil {
		return nil, pathErr("getattr", inoPath(ino), err)
	}
	return f.c.attrOf(ci.n), nil
}

// SetAttr changes the attributes of inode ino in one commit.
func (f *FS) SetAttr(ino uint64, a *SetAttr) (*Attr, error) {
	ctx, cancel, err := f.inoOp("setattr", inoPath(ino))
	if err != nil {
		return nil, err
	}
	defer cancel()
	n, err := f.c.setattrOpen(ctx, ino, a)
	if err != nil {
		return nil, pathErr("setattr", inoPath(ino), err)
	}
	return f.c.attrOf(n), nil
}

// CreateAt creates and opens a regular file name in dir with perm; with
// O_EXCL an existing name is EEXIST, else the existing file is opened.
func (f *FS) CreateAt(dir uint64, name string, flag int, perm fs.FileMode) (*File, error) {
	ctx, cancel, err := f.inoOp("create", name)
	if err != nil {
		return nil, err
	}
	defer cancel()
	n, err := f.c.create(ctx, dir, name, sIFREG|permBits(perm), nil)
	if err == syscall.EEXIST && flag&os.O_EXCL == 0 {
		var a *Attr
		if a, err = f.Lookup(dir, name); err == nil {
			return f.OpenIno(a.Ino, flag)
		}
	}
	if err != nil {
		return nil, pathErr("create", name, err)
	}
	return f.newFile(name, n, flag&^os.O_TRUNC), nil
}

// MkdirAt creates directory name in dir.
func (f *FS) MkdirAt(dir uint64, name string, perm fs.FileMode) (*Attr, error) {
	ctx, cancel, err := f.inoOp("mkdir", name)
	if err != nil {
		return nil, err
	}
	defer cancel()
	n, err := f.c.create(ctx, dir, name, sIFDIR|permBits(perm), nil)
	if err != nil {
		return nil, pathErr("mkdir", name, err)
	}
	return f.c.attrOf(n), nil
}

// SymlinkAt creates symlink name in dir pointing to target.
func (f *FS) SymlinkAt(dir uint64, name, target string) (*Attr, error) {
	ctx, cancel, err := f.inoOp("symlink", name)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if err := checkTarget(target); err != nil {
		return nil, pathErr("symlink", name, err)
	}
	n, err := f.c.create(ctx, dir, name, sIFLNK|0o777, []byte(target))
	if err != nil {
		return nil, pathErr("symlink", name, err)
	}
	return f.c.attrOf(n), nil
}

// LinkAt adds name in dir as a hard link to inode ino.
func (f *FS) LinkAt(ino, dir uint64, name string) (*Attr, error) {
	ctx, cancel, err := f.inoOp("link", name)
	if err != nil {
		return nil, err
	}
	defer cancel()
	n, err := f.c.link(ctx, ino, dir, name)
	if err != nil {
		return nil, pathErr("link", name, err)
	}
	return f.c.attrOf(n), nil
}

// UnlinkAt removes the non-directory name from dir.
func (f *FS) UnlinkAt(dir uint64, name string) error {
	ctx, cancel, err := f.inoOp("unlink", name)
	if err != nil {
		return err
	}
	defer cancel()
	return pathErr("unlink", name, f.c.unlink(ctx, dir, name))
}

// RmdirAt removes the empty directory name from dir.
func (f *FS) RmdirAt(dir uint64, name string) error {
	ctx, cancel, err := f.inoOp("rmdir", name)
	if err != nil {
		return err
	}
	defer cancel()
	return pathErr("rmdir", name, f.c.rmdir(ctx, dir, name))
}

// RenameAt renames oname in odir to nname in ndir (flags: RenameNoReplace).
func (f *FS) RenameAt(odir uint64, oname string, ndir uint64, nname string, flags uint32) error {
	ctx, cancel, err := f.inoOp("rename", oname)
	if err != nil {
		return err
	}
	defer cancel()
	return pathErr("rename", oname, f.c.rename(ctx, odir, oname, ndir, nname, flags))
}

// OpenIno opens inode ino with flag (O_TRUNC truncates), fetching the
// current inode from the store (close-to-open).
func (f *FS) OpenIno(ino uint64, flag int) (*File, error) {
	ctx, cancel, err := f.inoOp("open", inoPath(ino))
	if err != nil {
		return nil, err
	}
	defer cancel()
	file, err := f.openIno(ctx, inoPath(ino), ino, flag)
	return file, pathErr("open", inoPath(ino), err)
}

// ReadlinkIno returns the target of symlink ino.
func (f *FS) ReadlinkIno(ino uint64) (string, error) {
	ctx, cancel, err := f.inoOp("readlink", inoPath(ino))
	if err != nil {
		return "", err
	}
	defer cancel()
	ci, err := f.c.getInode(ctx, ino, f.c.attrTTL)
	if err == nil && !ci.n.isSymlink() {
		err = syscall.EINVAL
	}
	if err != nil {
		return "", pathErr("readlink", inoPath(ino), err)
	}
	return string(ci.n.inline), nil
}

// ReadDirIno returns up to n entries (n <= 0: all) of directory dir after
// cookie (0: from the start), in cookie order. Cookies are at least 3, so a
// FUSE server can use 1 and 2 for "." and "..".
func (f *FS) ReadDirIno(dir uint64, cookie uint64, n int) ([]DirEntry, error) {
	ents, err := f.readDir(dir, cookie, n)
	return ents, pathErr("readdir", inoPath(dir), err)
}

func (f *FS) readDir(dir uint64, cookie uint64, n int) ([]DirEntry, error) {
	if f.c.closed.Load() {
		return nil, fs.ErrClosed
	}
	ctx, cancel := f.op()
	defer cancel()
	// A listing that starts revalidates the directory (close-to-open); a
	// continuing one may use the attribute window.
	age := f.c.attrTTL
	if cookie == 0 {
		age = 0
	}
	ci, err := f.c.getInode(ctx, dir, age)
	if err != nil {
		return nil, err
	}
	if !ci.n.isDir() {
		return nil, syscall.ENOTDIR
	}
	ents, cookies, err := dirList(ctx, dirNodes{f.c}, ci.n.inline, cookie, n)
	for attempt := 0; errors.Is(err, errBlockMissing) && attempt < 8; attempt++ {
		// A newer version freed the nodes of the one we read (even a
		// fresh read can lose that race): read the latest and retry. A
		// block missing from an unchanged version is corruption.
		fresh, ferr := f.c.getInode(ctx, dir, 0)
		if ferr != nil {
			return nil, ferr
		}
		if fresh.ver == ci.ver {
			break
		}
		ci = fresh
		ents, cookies, err = dirList(ctx, dirNodes{f.c}, ci.n.inline, cookie, n)
	}
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, len(ents))
	for i, e := range ents {
		out[i] = DirEntry{Name: e.name, Ino: e.ino, Type: entryMode(e.typ), Cookie: cookies[i]}
	}
	return out, nil
}
