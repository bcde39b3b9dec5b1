package voldfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The path API: the io/fs read interfaces and the write side in the shape
// of os.Root. Paths are io/fs paths (unrooted, slash separated, "." is the
// root); every error is an *fs.PathError (or *os.LinkError for Rename and
// Link) wrapping a syscall.Errno or an fs.Err* sentinel.

var (
	_ fs.FS         = (*FS)(nil)
	_ fs.StatFS     = (*FS)(nil)
	_ fs.ReadFileFS = (*FS)(nil)
	_ fs.ReadDirFS  = (*FS)(nil)
	_ fs.SubFS      = (*FS)(nil)
	_ fs.GlobFS     = (*FS)(nil)
	_ fs.ReadLinkFS = (*FS)(nil)

	_ fs.ReadDirFile = (*File)(nil)
	_ io.ReaderAt    = (*File)(nil)
	_ io.WriterAt    = (*File)(nil)
	_ io.Seeker      = (*File)(nil)
	_ fs.ReadDirFile = (*Dir)(nil)
)

func pathErr(op, name string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == name {
		return err
	}
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// begin validates name and returns the operation's context.
func (f *FS) begin(op, name string) (context.Context, context.CancelFunc, error) {
	f.c.stats.op(op)
	if f.c.closed.Load() {
		return nil, nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrClosed}
	}
	if err := checkPath(op, name); err != nil {
		return nil, nil, err
	}
	ctx, cancel := f.op()
	return ctx, cancel, nil
}

// Open opens the named file or directory for reading, following symlinks.
// It returns a *File, or a *Dir for a directory.
func (f *FS) Open(name string) (fs.File, error) {
	ctx, cancel, err := f.begin("open", name)
	if err != nil {
		return nil, err
	}
	defer cancel()
	ino, n, err := f.walk(ctx, name, true)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if n.isDir() {
		return &Dir{fs: f, c: f.c, name: name, ino: ino}, nil
	}
	file, err := f.openIno(ctx, name, ino, os.O_RDONLY)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	return file, nil
}

// Create creates or truncates the named file, like os.Create.
func (f *FS) Create(name string) (*File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// OpenFile opens the named file with flag (os.O_RDONLY, O_WRONLY, O_RDWR,
// O_CREATE, O_EXCL, O_TRUNC, O_APPEND) and, when it creates the file, the
// permission bits of perm. A missing parent directory is ENOENT.
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (*File, error) {
	ctx, cancel, err := f.begin("open", name)
	if err != nil {
		return nil, err
	}
	defer cancel()
	file, err := f.openFile(ctx, name, flag, perm)
	return file, pathErr("open", name, err)
}

func (f *FS) openFile(ctx context.Context, name string, flag int, perm fs.FileMode) (*File, error) {
	if flag&os.O_CREATE == 0 || name == "." {
		ino, _, err := f.walk(ctx, name, true)
		if err != nil {
			return nil, err
		}
		return f.openIno(ctx, name, ino, flag)
	}
	for attempt := 0; attempt < 8; attempt++ {
		dir, dn, base, err := f.walkParent(ctx, name)
		if err != nil {
			return nil, err
		}
		// No store round trip to confirm a miss: if the cached directory is
		// stale and the name exists, the create's CAS finds it (EEXIST).
		e, child, err := f.c.lookupOnce(ctx, dn, base, false)
		if err == nil && flag&os.O_EXCL != 0 {
			// Refuse only on the current directory: the cached one may
			// still hold a name another client removed.
			if fresh, ferr := f.c.getInode(ctx, dir, 0); ferr == nil {
				e, child, err = f.c.lookupOnce(ctx, fresh.n, base, false)
			}
			if err == nil {
				return nil, syscall.EEXIST
			}
		}
		if err == nil {
			ino := e.ino
			if child.isSymlink() {
				if ino, _, err = f.walk(ctx, name, true); err != nil {
					return nil, err
				}
			}
			return f.openIno(ctx, name, ino, flag)
		}
		if !errors.Is(err, syscall.ENOENT) {
			return nil, err
		}
		n, err := f.c.create(ctx, dir, base, sIFREG|permBits(perm), nil)
		if errors.Is(err, syscall.EEXIST) && flag&os.O_EXCL == 0 {
			continue // created meanwhile by someone else: open theirs
		}
		if err != nil {
			return nil, err
		}
		return f.newFile(name, n, flag&^os.O_TRUNC), nil
	}
	return nil, syscall.EAGAIN
}

// openIno opens inode ino, fetching it from the store (close-to-open).
func (f *FS) openIno(ctx context.Context, name string, ino uint64, flag int) (*File, error) {
	ci, err := f.c.getInode(ctx, ino, 0)
	if err != nil {
		return nil, err
	}
	n := ci.n
	write := flag&(os.O_WRONLY|os.O_RDWR) != 0
	if n.isDir() {
		if write || flag&os.O_TRUNC != 0 {
			return nil, syscall.EISDIR
		}
		file := f.newFileAt(name, n, ci.at, flag)
		file.dir = &Dir{fs: f, c: f.c, name: name, ino: ino}
		return file, nil
	}
	if n.isSymlink() {
		return nil, syscall.ELOOP
	}
	if !n.isReg() {
		return nil, syscall.ENXIO // a special file (mknod.go)
	}
	file := f.newFileAt(name, n, ci.at, flag)
	if flag&os.O_TRUNC != 0 && write {
		o := file.o
		o.mu.Lock()
		var err error
		if o.size > 0 {
			var zero int64
			_, err = o.setattr(ctx, &SetAttr{Size: &zero})
		}
		o.mu.Unlock()
		if err != nil {
			f.c.release(ctx, o)
			return nil, err
		}
	}
	return file, nil
}

// newFile returns a handle of inode n, which was just created or committed.
func (f *FS) newFile(name string, n *inode, flag int) *File {
	return f.newFileAt(name, n, nanotime(), flag)
}

// newFileAt returns a handle of inode n, known current at time at, sharing
// the state of the inode's other handles in this core.
func (f *FS) newFileAt(name string, n *inode, at int64, flag int) *File {
	return &File{fs: f, c: f.c, o: f.c.retain(n, at), name: name, ino: n.ino, flag: flag}
}

// Stat returns the attributes of the named file, following symlinks.
func (f *FS) Stat(name string) (fs.FileInfo, error) { return f.stat("stat", name, true) }

// Lstat returns the attributes of the named file without following a final
// symlink.
func (f *FS) Lstat(name string) (fs.FileInfo, error) { return f.stat("lstat", name, false) }

func (f *FS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	ctx, cancel, err := f.begin(op, name)
	if err != nil {
		return nil, err
	}
	defer cancel()
	_, n, err := f.walk(ctx, name, follow)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	return f.c.info(baseName(name), n), nil
}

// ReadFile returns the content of the named file.
func (f *FS) ReadFile(name string) ([]byte, error) {
	file, err := f.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	if file.dir != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.EISDIR}
	}
	file.o.mu.Lock()
	size := file.o.size
	file.o.mu.Unlock()
	if size > 1<<40 {
		return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.EFBIG}
	}
	buf := make([]byte, size)
	n, err := file.ReadAt(buf, 0)
	if err == io.EOF {
		err = nil
	}
	return buf[:n], err
}

// WriteFile writes data to the named file, creating it with perm if needed
// and truncating it otherwise, like os.WriteFile.
func (f *FS) WriteFile(name string, data []byte, perm fs.FileMode) error {
	file, err := f.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = file.Write(data)
	if err1 := file.Close(); err == nil {
		err = err1
	}
	return err
}

// ReadDir returns the entries of the named directory, sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	ctx, cancel, err := f.begin("readdir", name)
	if err != nil {
		return nil, err
	}
	defer cancel()
	ino, n, err := f.walk(ctx, name, true)
	if err == nil && !n.isDir() {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	d := &Dir{fs: f, c: f.c, name: name, ino: ino}
	ents, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}

// ReadLink returns the target of the named symlink.
func (f *FS) ReadLink(name string) (string, error) {
	ctx, cancel, err := f.begin("readlink", name)
	if err != nil {
		return "", err
	}
	defer cancel()
	_, n, err := f.walk(ctx, name, false)
	if err == nil && !n.isSymlink() {
		err = syscall.EINVAL
	}
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	return string(n.inline), nil
}

// Readlink is ReadLink, named as in package os.
func (f *FS) Readlink(name string) (string, error) { return f.ReadLink(name) }

// Sub returns the filesystem rooted at dir: paths resolve from dir, ".."
// and absolute symlinks stop at it. It follows the directory if renamed.
func (f *FS) Sub(dir string) (fs.FS, error) {
	ctx, cancel, err := f.begin("sub", dir)
	if err != nil {
		return nil, err
	}
	defer cancel()
	ino, n, err := f.walk(ctx, dir, true)
	if err == nil && !n.isDir() {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return nil, pathErr("sub", dir, err)
	}
	return &FS{c: f.c, ctx: f.ctx, root: ino}, nil
}

// Glob returns the names matching pattern, as fs.Glob.
func (f *FS) Glob(pattern string) ([]string, error) {
	return fs.Glob(globFS{f}, pattern)
}

// globFS hides FS's Glob method so that fs.Glob does the matching.
type globFS struct{ f *FS }

func (g globFS) Open(name string) (fs.File, error)          { return g.f.Open(name) }
func (g globFS) ReadDir(name string) ([]fs.DirEntry, error) { return g.f.ReadDir(name) }
func (g globFS) Stat(name string) (fs.FileInfo, error)      { return g.f.Stat(name) }

// Mkdir creates a directory with the permission bits of perm.
func (f *FS) Mkdir(name string, perm fs.FileMode) error {
	ctx, cancel, err := f.begin("mkdir", name)
	if err != nil {
		return err
	}
	defer cancel()
	return pathErr("mkdir", name, f.mkdir(ctx, name, perm))
}

func (f *FS) mkdir(ctx context.Context, name string, perm fs.FileMode) error {
	if name == "." {
		return syscall.EEXIST
	}
	dir, _, base, err := f.walkParent(ctx, name)
	if err != nil {
		return err
	}
	_, err = f.c.create(ctx, dir, base, sIFDIR|permBits(perm), nil)
	return err
}

// MkdirAll creates a directory and any missing parents, like os.MkdirAll.
func (f *FS) MkdirAll(name string, perm fs.FileMode) error {
	ctx, cancel, err := f.begin("mkdir", name)
	if err != nil {
		return err
	}
	defer cancel()
	if name == "." {
		return nil
	}
	parts := strings.Split(name, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		err := f.mkdir(ctx, p, perm)
		if errors.Is(err, syscall.EEXIST) {
			_, n, serr := f.walk(ctx, p, true)
			if serr != nil {
				return pathErr("mkdir", p, serr)
			}
			if !n.isDir() {
				return pathErr("mkdir", p, syscall.ENOTDIR)
			}
			continue
		}
		if err != nil {
			return pathErr("mkdir", p, err)
		}
	}
	return nil
}

// Remove removes a file or an empty directory.
func (f *FS) Remove(name string) error {
	ctx, cancel, err := f.begin("remove", name)
	if err != nil {
		return err
	}
	defer cancel()
	return pathErr("remove", name, f.remove(ctx, name))
}

func (f *FS) remove(ctx context.Context, name string) error {
	if name == "." {
		return syscall.EBUSY
	}
	dir, dn, base, err := f.walkParent(ctx, name)
	if err != nil {
		return err
	}
	e, _, err := f.c.lookup(ctx, dn, base)
	if err != nil {
		return err
	}
	if e.typ == typeDir {
		return f.c.rmdir(ctx, dir, base)
	}
	return f.c.unlink(ctx, dir, base)
}

// RemoveAll removes name and everything it contains. A missing name is not
// an error.
func (f *FS) RemoveAll(name string) error {
	ctx, cancel, err := f.begin("removeall", name)
	if err != nil {
		return err
	}
	defer cancel()
	if name == "." {
		return &fs.PathError{Op: "removeall", Path: name, Err: syscall.EINVAL}
	}
	return f.removeAll(ctx, name)
}

func (f *FS) removeAll(ctx context.Context, name string) error {
	err := f.remove(ctx, name)
	if err == nil || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if !errors.Is(err, syscall.ENOTEMPTY) {
		return pathErr("removeall", name, err)
	}
	for {
		ents, err := f.ReadDir(name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if len(ents) == 0 {
			break
		}
		for _, e := range ents {
			if err := f.removeAll(ctx, name+"/"+e.Name()); err != nil {
				return err
			}
		}
	}
	if err := f.remove(ctx, name); err != nil && !errors.Is(err, syscall.ENOENT) {
		return pathErr("removeall", name, err)
	}
	return nil
}

// Rename renames (moves) oldname to newname with rename(2) semantics: a file
// replaces a file, a directory replaces an empty directory; moving a
// directory into itself is EINVAL. Renames within one directory are atomic;
// across directories they are crash-safe (see doc.go).
func (f *FS) Rename(oldname, newname string) error {
	return f.RenameFlags(oldname, newname, 0)
}

// RenameFlags is Rename with renameat2 flags (RenameNoReplace).
func (f *FS) RenameFlags(oldname, newname string, flags uint32) error {
	lerr := func(err error) error { return linkErr("rename", oldname, newname, err) }
	ctx, cancel, err := f.begin("rename", oldname)
	if err != nil {
		return lerr(err)
	}
	defer cancel()
	if err := checkPath("rename", newname); err != nil {
		return lerr(err)
	}
	if oldname == "." || newname == "." {
		return lerr(syscall.EBUSY)
	}
	odir, _, oname, err := f.walkParent(ctx, oldname)
	if err != nil {
		return lerr(err)
	}
	ndir, _, nname, err := f.walkParent(ctx, newname)
	if err != nil {
		return lerr(err)
	}
	return lerr(f.c.rename(ctx, odir, oname, ndir, nname, flags))
}

// linkErr returns err (nil stays nil) as an *os.LinkError, unwrapping a
// PathError a path step made.
func linkErr(op, oldname, newname string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &os.LinkError{Op: op, Old: oldname, New: newname, Err: err}
}

// Link creates newname as a hard link to the file oldname (not followed if
// a symlink). Directories cannot be linked (EPERM).
func (f *FS) Link(oldname, newname string) error {
	lerr := func(err error) error { return linkErr("link", oldname, newname, err) }
	ctx, cancel, err := f.begin("link", oldname)
	if err != nil {
		return lerr(err)
	}
	defer cancel()
	if err := checkPath("link", newname); err != nil {
		return lerr(err)
	}
	ino, _, err := f.walk(ctx, oldname, false)
	if err != nil {
		return lerr(err)
	}
	dir, _, base, err := f.walkParent(ctx, newname)
	if err != nil {
		return lerr(err)
	}
	_, err = f.c.link(ctx, ino, dir, base)
	return lerr(err)
}

// Symlink creates newname as a symbolic link to target.
func (f *FS) Symlink(target, newname string) error {
	ctx, cancel, err := f.begin("symlink", newname)
	if err != nil {
		return err
	}
	defer cancel()
	if err := checkTarget(target); err != nil {
		return pathErr("symlink", newname, err)
	}
	dir, _, base, err := f.walkParent(ctx, newname)
	if err != nil {
		return pathErr("symlink", newname, err)
	}
	_, err = f.c.create(ctx, dir, base, sIFLNK|0o777, []byte(target))
	return pathErr("symlink", newname, err)
}

func checkTarget(target string) error {
	switch {
	case target == "" || strings.IndexByte(target, 0) >= 0:
		return syscall.EINVAL
	case len(target) > maxSymlink:
		return syscall.ENAMETOOLONG
	}
	return nil
}

// Chmod changes the permission bits of the named file (following symlinks).
func (f *FS) Chmod(name string, mode fs.FileMode) error {
	return f.setattr("chmod", name, true, &SetAttr{Mode: &mode})
}

// Chown changes the owner and group of the named file (following symlinks).
// A -1 leaves that id unchanged.
func (f *FS) Chown(name string, uid, gid int) error {
	return f.setattr("chown", name, true, chownAttr(uid, gid))
}

// Lchown is Chown without following a final symlink.
func (f *FS) Lchown(name string, uid, gid int) error {
	return f.setattr("lchown", name, false, chownAttr(uid, gid))
}

func chownAttr(uid, gid int) *SetAttr {
	a := &SetAttr{}
	if uid >= 0 {
		u := uint32(uid)
		a.Uid = &u
	}
	if gid >= 0 {
		g := uint32(gid)
		a.Gid = &g
	}
	return a
}

// Chtimes changes the access and modification times; a zero time.Time
// leaves that time unchanged, as in os.Chtimes.
func (f *FS) Chtimes(name string, atime, mtime time.Time) error {
	a := &SetAttr{}
	if !atime.IsZero() {
		a.Atime = &atime
	}
	if !mtime.IsZero() {
		a.Mtime = &mtime
	}
	return f.setattr("chtimes", name, true, a)
}

// Truncate changes the size of the named file.
func (f *FS) Truncate(name string, size int64) error {
	return f.setattr("truncate", name, true, &SetAttr{Size: &size})
}

func (f *FS) setattr(op, name string, follow bool, a *SetAttr) error {
	return f.onInode(op, name, follow, func(ctx context.Context, ino uint64) error {
		_, err := f.c.setattrOpen(ctx, ino, a)
		return err
	})
}

// onInode runs fn on the inode name resolves to (following a final symlink
// if follow is set), within one operation op, and returns its error as a
// *fs.PathError.
func (f *FS) onInode(op, name string, follow bool, fn func(ctx context.Context, ino uint64) error) error {
	ctx, cancel, err := f.begin(op, name)
	if err != nil {
		return err
	}
	defer cancel()
	ino, _, err := f.walk(ctx, name, follow)
	if err != nil {
		return pathErr(op, name, err)
	}
	return pathErr(op, name, fn(ctx, ino))
}

// walk and walkParent resolve from f's root.
func (f *FS) walk(ctx context.Context, name string, follow bool) (uint64, *inode, error) {
	return f.c.walk(ctx, f.rootIno(), name, follow)
}

func (f *FS) walkParent(ctx context.Context, name string) (uint64, *inode, string, error) {
	return f.c.walkParent(ctx, f.rootIno(), name)
}

func (f *FS) rootIno() uint64 {
	if f.root == 0 {
		return RootIno
	}
	return f.root
}
