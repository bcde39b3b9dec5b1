package voldfs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// Inodes is the inode-level API of an FS: operations on (directory inode,
// name) pairs and on inode numbers, the shape a FUSE server (such as
// examples/voldfs-mount) or an NFS-style server needs. Get one with
// FS.Inodes; it is safe for concurrent use.
//
// # Arguments
//
// An inode number (dir, ino) is the Ino of an Attr or DirEntry this API
// returned, or RootIno. Inode numbers are filesystem-wide: an Inodes from a
// Sub view is not confined to the view's subtree. A name is one directory
// entry as the kernel passes it: any bytes but "/" and NUL, 1 to 255 bytes,
// not "." or "..". It is never a path: no lookup of this API follows a
// symlink or walks more than one entry.
//
// Every call takes a context first, as go-fuse's node API does: the call is
// bounded by ctx and by Options.OpTimeout, whichever ends first (the context
// of an FS.WithContext view does not apply to these calls). A File that
// Create or Open returns outlives ctx: its later calls are bounded as the
// FS's own Files are (by the FS's context and OpTimeout).
//
// Create, Mkdir and Symlink take the owner of the new inode (a FUSE server
// passes the calling process's uid and gid); nil means the FS's default
// (Options.Uid and Options.Gid). The inode is created with that owner in
// the same commit that creates it: no caller ever sees it with another.
//
// # Results
//
// An Attr is a snapshot of the inode as this FS last knew it: Lookup and
// GetAttr may answer from an inode cached for up to Options.AttrTimeout, as
// Stat does; Open always fetches the current inode (close-to-open). The
// Attr is the caller's to keep and does not change later. The size and
// times of a regular file include the writes this FS's open Files of it
// have buffered and not yet committed (they share one state), so they agree
// with what a read through any of them returns; other FS values see those
// writes when they are committed.
//
// # Errors
//
// Every error is an *fs.PathError whose Path is the name the call was given,
// or "#<ino>" for calls that take only an inode number, wrapping a
// syscall.Errno (ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, EINVAL, ELOOP,
// EPERM, ...), fs.ErrClosed after FS.Close, ErrCorrupt, ErrStale, or a
// store error (whose outcome the library has resolved by reading where it
// could). A FUSE server can hand the errno to the kernel.
type Inodes struct {
	fs *FS
}

// Inodes returns the inode-level API of f.
func (f *FS) Inodes() *Inodes { return &Inodes{fs: f} }

func inoPath(ino uint64) string { return "#" + strconv.FormatUint(ino, 10) }

// begin returns the context one call runs under: ctx bounded by OpTimeout,
// carrying owner (when set) for the inode it creates.
func (in *Inodes) begin(ctx context.Context, op, path string, owner *Owner) (context.Context, context.CancelFunc, error) {
	c := in.fs.c
	c.stats.op(op)
	if c.closed.Load() {
		return nil, nil, &fs.PathError{Op: op, Path: path, Err: fs.ErrClosed}
	}
	if owner != nil {
		ctx = withOwner(ctx, *owner)
	}
	if c.opTimeout > 0 {
		ctx, cancel := context.WithTimeout(ctx, c.opTimeout)
		return ctx, cancel, nil
	}
	return ctx, func() {}, nil
}

// Lookup returns the attributes of the entry name in directory dir,
// without following a symlink.
func (in *Inodes) Lookup(ctx context.Context, dir uint64, name string) (*Attr, error) {
	ctx, cancel, err := in.begin(ctx, "lookup", name, nil)
	if err != nil {
		return nil, err
	}
	defer cancel()
	a, err := in.lookup(ctx, dir, name)
	return a, pathErr("lookup", name, err)
}

func (in *Inodes) lookup(ctx context.Context, dir uint64, name string) (*Attr, error) {
	c := in.fs.c
	if err := checkName(name); err != nil {
		return nil, err
	}
	ci, err := c.getInode(ctx, dir, c.attrTTL)
	if err != nil {
		return nil, err
	}
	_, n, err := c.lookup(ctx, ci.n, name)
	if err != nil {
		return nil, err
	}
	return c.attrOf(n), nil
}

// GetAttr returns the attributes of inode ino.
func (in *Inodes) GetAttr(ctx context.Context, ino uint64) (*Attr, error) {
	ctx, cancel, err := in.begin(ctx, "getattr", inoPath(ino), nil)
	if err != nil {
		return nil, err
	}
	defer cancel()
	ci, err := in.fs.c.getInode(ctx, ino, in.fs.c.attrTTL)
	if err != nil {
		return nil, pathErr("getattr", inoPath(ino), err)
	}
	return in.fs.c.attrOf(ci.n), nil
}

// SetAttr changes the attributes of inode ino that a lists, in one commit,
// and returns the result. A size change of a file open in this FS comes
// after the writes its Files buffered (they are committed first).
func (in *Inodes) SetAttr(ctx context.Context, ino uint64, a *SetAttr) (*Attr, error) {
	ctx, cancel, err := in.begin(ctx, "setattr", inoPath(ino), nil)
	if err != nil {
		return nil, err
	}
	defer cancel()
	n, err := in.fs.c.setattrOpen(ctx, ino, a)
	if err != nil {
		return nil, pathErr("setattr", inoPath(ino), err)
	}
	return in.fs.c.attrOf(n), nil
}

// Create creates the regular file name in dir with the permission bits of
// perm, owned by owner, and opens it with flag (os.O_RDONLY, O_WRONLY,
// O_RDWR, O_APPEND, O_TRUNC, O_EXCL, O_SYNC). With O_EXCL an existing name
// is EEXIST; without, an existing file is opened as Open would (O_TRUNC
// truncates it) and keeps its owner and mode.
func (in *Inodes) Create(ctx context.Context, dir uint64, name string, flag int, perm fs.FileMode, owner *Owner) (*File, error) {
	ctx, cancel, err := in.begin(ctx, "create", name, owner)
	if err != nil {
		return nil, err
	}
	defer cancel()
	f := in.fs
	for attempt := 0; attempt < 8; attempt++ {
		n, err := f.c.create(ctx, dir, name, sIFREG|permBits(perm), nil)
		if errors.Is(err, syscall.EEXIST) && flag&os.O_EXCL == 0 {
			var a *Attr
			a, err = in.lookup(ctx, dir, name)
			if errors.Is(err, syscall.ENOENT) {
				continue // removed meanwhile: create again
			}
			if err == nil {
				var file *File
				file, err = f.openIno(ctx, name, a.Ino, flag)
				return file, pathErr("create", name, err)
			}
		}
		if err != nil {
			return nil, pathErr("create", name, err)
		}
		return f.newFile(name, n, flag&^os.O_TRUNC), nil
	}
	return nil, pathErr("create", name, syscall.EAGAIN)
}

// Mkdir creates the directory name in dir with the permission bits of perm
// (and setgid, sticky), owned by owner.
func (in *Inodes) Mkdir(ctx context.Context, dir uint64, name string, perm fs.FileMode, owner *Owner) (*Attr, error) {
	ctx, cancel, err := in.begin(ctx, "mkdir", name, owner)
	if err != nil {
		return nil, err
	}
	defer cancel()
	n, err := in.fs.c.create(ctx, dir, name, sIFDIR|permBits(perm), nil)
	if err != nil {
		return nil, pathErr("mkdir", name, err)
	}
	return in.fs.c.attrOf(n), nil
}

// Symlink creates the symlink name in dir pointing to target (1 to 4095
// bytes, no NUL; not resolved), owned by owner.
func (in *Inodes) Symlink(ctx context.Context, dir uint64, name, target string, owner *Owner) (*Attr, error) {
	ctx, cancel, err := in.begin(ctx, "symlink", name, owner)
	if err != nil {
		return nil, err
	}
	defer cancel()
	if err := checkTarget(target); err != nil {
		return nil, pathErr("symlink", name, err)
	}
	n, err := in.fs.c.create(ctx, dir, name, sIFLNK|0o777, []byte(target))
	if err != nil {
		return nil, pathErr("symlink", name, err)
	}
	return in.fs.c.attrOf(n), nil
}

// Link adds the entry name in dir as a hard link to inode ino, which must
// not be a directory (EPERM), and returns ino's attributes.
func (in *Inodes) Link(ctx context.Context, ino, dir uint64, name string) (*Attr, error) {
	ctx, cancel, err := in.begin(ctx, "link", name, nil)
	if err != nil {
		return nil, err
	}
	defer cancel()
	n, err := in.fs.c.link(ctx, ino, dir, name)
	if err != nil {
		return nil, pathErr("link", name, err)
	}
	return in.fs.c.attrOf(n), nil
}

// Unlink removes the entry name, which is not a directory (EISDIR), from
// dir. An inode whose last name goes is freed at once, or at the last Close
// of its Files in this FS.
func (in *Inodes) Unlink(ctx context.Context, dir uint64, name string) error {
	ctx, cancel, err := in.begin(ctx, "unlink", name, nil)
	if err != nil {
		return err
	}
	defer cancel()
	return pathErr("unlink", name, in.fs.c.unlink(ctx, dir, name))
}

// Rmdir removes the empty directory name from dir (ENOTEMPTY, ENOTDIR).
func (in *Inodes) Rmdir(ctx context.Context, dir uint64, name string) error {
	ctx, cancel, err := in.begin(ctx, "rmdir", name, nil)
	if err != nil {
		return err
	}
	defer cancel()
	return pathErr("rmdir", name, in.fs.c.rmdir(ctx, dir, name))
}

// Rename renames the entry oname in odir to nname in ndir, replacing a
// target as rename(2) does. flags are renameat2's: RenameNoReplace (an
// existing target is EEXIST) or RenameExchange (swap two existing entries).
func (in *Inodes) Rename(ctx context.Context, odir uint64, oname string, ndir uint64, nname string, flags uint32) error {
	ctx, cancel, err := in.begin(ctx, "rename", oname, nil)
	if err != nil {
		return err
	}
	defer cancel()
	return pathErr("rename", oname, in.fs.c.rename(ctx, odir, oname, ndir, nname, flags))
}

// Open opens inode ino with flag (as Create; O_TRUNC truncates), fetching
// the current inode from the store (close-to-open). A directory opens
// read-only (EISDIR for writing); a symlink is ELOOP.
func (in *Inodes) Open(ctx context.Context, ino uint64, flag int) (*File, error) {
	ctx, cancel, err := in.begin(ctx, "open", inoPath(ino), nil)
	if err != nil {
		return nil, err
	}
	defer cancel()
	file, err := in.fs.openIno(ctx, inoPath(ino), ino, flag)
	return file, pathErr("open", inoPath(ino), err)
}

// Readlink returns the target of symlink ino (EINVAL if it is not one).
func (in *Inodes) Readlink(ctx context.Context, ino uint64) (string, error) {
	ctx, cancel, err := in.begin(ctx, "readlink", inoPath(ino), nil)
	if err != nil {
		return "", err
	}
	defer cancel()
	ci, err := in.fs.c.getInode(ctx, ino, in.fs.c.attrTTL)
	if err == nil && !ci.n.isSymlink() {
		err = syscall.EINVAL
	}
	if err != nil {
		return "", pathErr("readlink", inoPath(ino), err)
	}
	return string(ci.n.inline), nil
}

// ReadDir returns up to n entries (n <= 0: all) of directory dir after
// cookie (0: from the start), in cookie order; an empty result is the end.
// A listing that starts (cookie 0) reads the current directory; one that
// continues may use the attribute window. Under concurrent inserts and
// removes no entry is returned twice and none present throughout is missed.
// Cookies are at least 3, so a FUSE server can use 1 and 2 for "." and "..".
func (in *Inodes) ReadDir(ctx context.Context, dir uint64, cookie uint64, n int) ([]DirEntry, error) {
	ctx, cancel, err := in.begin(ctx, "readdir", inoPath(dir), nil)
	if err != nil {
		return nil, err
	}
	defer cancel()
	ents, err := in.fs.c.readDir(ctx, dir, cookie, n)
	return ents, pathErr("readdir", inoPath(dir), err)
}

func (c *core) readDir(ctx context.Context, dir uint64, cookie uint64, n int) ([]DirEntry, error) {
	// A listing that starts revalidates the directory (close-to-open); a
	// continuing one may use the attribute window.
	age := c.attrTTL
	if cookie == 0 {
		age = 0
	}
	ci, err := c.getInode(ctx, dir, age)
	if err != nil {
		return nil, err
	}
	if !ci.n.isDir() {
		return nil, syscall.ENOTDIR
	}
	ents, cookies, err := dirList(ctx, dirNodes{c}, ci.n.inline, cookie, n)
	for attempt := 0; retryMissing(err, attempt); attempt++ {
		// A newer version freed the nodes of the one we read (even a
		// fresh read can lose that race): read the latest and retry. A
		// block missing from an unchanged version is corruption.
		fresh, ferr := c.getInode(ctx, dir, 0)
		if ferr != nil {
			return nil, ferr
		}
		if fresh.ver == ci.ver {
			break
		}
		ci = fresh
		ents, cookies, err = dirList(ctx, dirNodes{c}, ci.n.inline, cookie, n)
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

// readDir lists directory dir for a Dir, under the FS's context.
func (f *FS) readDir(dir uint64, cookie uint64, n int) ([]DirEntry, error) {
	if f.c.closed.Load() {
		return nil, fs.ErrClosed
	}
	ctx, cancel := f.op()
	defer cancel()
	return f.c.readDir(ctx, dir, cookie, n)
}
