// Package voldafero is an afero.Fs over a voldfs filesystem, so a program
// written against github.com/spf13/afero can keep its files in any store
// voldfs runs on.
//
// # Basics
//
// New wraps a *voldfs.FS. Paths are slash-separated as with the os package:
// absolute ("/a/b") and relative ("a/b") paths both name a file under the
// filesystem's root (there is no working directory), "." and ".." are
// resolved lexically and ".." stops at the root. Files and directories are
// opened as one type, *File, which implements afero.File and fs.ReadDirFile.
//
// Every error is an *fs.PathError or *os.LinkError carrying the path the
// caller gave, wrapping what voldfs returned (a syscall.Errno or an fs.Err*
// sentinel), so os.IsNotExist, os.IsExist and errors.Is work as with OsFs.
//
// Besides afero.Fs, an *Fs implements afero.Lstater, afero.Symlinker
// (SymlinkIfPossible, ReadlinkIfPossible) and a few calls afero has no
// interface for but os has (Lchown, Link, Readlink, Symlink).
//
// # Caveats
//
//   - voldfs's consistency model applies: writes through a File are
//     published to other voldfs.FS values (other processes and machines) when
//     it is synced or closed (close-to-open), and path lookups may answer
//     from attributes cached for voldfs.Options.AttrTimeout.
//   - A trailing slash is dropped with the rest of the lexical cleaning, so
//     "file/" names the file (os reports ENOTDIR).
//   - The empty path is ENOENT, as in os (MemMapFs takes it for the root).
//   - There are no permission checks: the library trusts its caller, like a
//     process running as root.
package voldafero

import (
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/spf13/afero"
	"github.com/voldfs/voldfs"
)

// Fs is an afero.Fs whose files live in a voldfs filesystem. It is safe for
// concurrent use.
type Fs struct {
	fs *voldfs.FS
}

var (
	_ afero.Fs        = (*Fs)(nil)
	_ afero.Lstater   = (*Fs)(nil)
	_ afero.Symlinker = (*Fs)(nil)
)

// New returns an afero.Fs over f. The Fs does not own f: closing f is the
// caller's business, after the last use of the Fs.
func New(f *voldfs.FS) *Fs { return &Fs{fs: f} }

// FS returns the voldfs filesystem the Fs works on.
func (a *Fs) FS() *voldfs.FS { return a.fs }

// Name returns "voldfs".
func (a *Fs) Name() string { return "voldfs" }

// vpath turns an os-style path into the io/fs path voldfs takes: cleaned,
// unrooted, "." for the root. The empty path is invalid.
func vpath(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	p := path.Clean("/" + name)
	if p == "/" {
		return ".", true
	}
	return p[1:], true
}

// resolve is vpath with the error os gives for the empty path.
func resolve(op, name string) (string, error) {
	p, ok := vpath(name)
	if !ok {
		return "", &fs.PathError{Op: op, Path: name, Err: syscall.ENOENT}
	}
	return p, nil
}

// renamePath puts the caller's path back into an error voldfs returned for
// the translated one, so that the error names what the caller asked for.
func renamePath(err error, name string) error {
	if pe, ok := err.(*fs.PathError); ok && pe.Path != name {
		return &fs.PathError{Op: pe.Op, Path: name, Err: pe.Err}
	}
	return err
}

// renameLink is renamePath for the two paths of an *os.LinkError.
func renameLink(err error, op, oldname, newname string) error {
	switch e := err.(type) {
	case *os.LinkError:
		return &os.LinkError{Op: e.Op, Old: oldname, New: newname, Err: e.Err}
	case *fs.PathError:
		return &os.LinkError{Op: op, Old: oldname, New: newname, Err: e.Err}
	}
	return err
}

// named is an fs.FileInfo under the base name of the path the caller used,
// as os.Stat reports it ("/" for the root).
type named struct {
	fs.FileInfo
	name string
}

func (n named) Name() string { return n.name }

func withName(fi fs.FileInfo, name string) fs.FileInfo {
	base := path.Base(name)
	if fi == nil || fi.Name() == base {
		return fi
	}
	return named{fi, base}
}

// Create creates or truncates the named file, opened read-write, like
// os.Create. A missing parent directory is an error.
func (a *Fs) Create(name string) (afero.File, error) {
	return a.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Open opens the named file or directory for reading, like os.Open.
func (a *Fs) Open(name string) (afero.File, error) {
	return a.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile opens the named file with flag (os.O_RDONLY, O_WRONLY, O_RDWR,
// O_CREATE, O_EXCL, O_TRUNC, O_APPEND, O_SYNC) and, when it creates the
// file, the permission bits of perm (no umask is applied). A directory
// opens read-only.
func (a *Fs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	p, err := resolve("open", name)
	if err != nil {
		return nil, err
	}
	f, err := a.fs.OpenFile(p, flag, perm)
	if err != nil {
		return nil, renamePath(err, name)
	}
	return &File{f: f, name: name}, nil
}

// Mkdir creates a directory, like os.Mkdir.
func (a *Fs) Mkdir(name string, perm os.FileMode) error {
	p, err := resolve("mkdir", name)
	if err != nil {
		return err
	}
	return renamePath(a.fs.Mkdir(p, perm), name)
}

// MkdirAll creates a directory and any missing parents, like os.MkdirAll.
func (a *Fs) MkdirAll(name string, perm os.FileMode) error {
	p, err := resolve("mkdir", name)
	if err != nil {
		return err
	}
	return renamePath(a.fs.MkdirAll(p, perm), name)
}

// Remove removes a file or an empty directory, like os.Remove.
func (a *Fs) Remove(name string) error {
	p, err := resolve("remove", name)
	if err != nil {
		return err
	}
	return renamePath(a.fs.Remove(p), name)
}

// RemoveAll removes name and everything it contains, like os.RemoveAll:
// a missing name is not an error. The root cannot be removed (EINVAL).
func (a *Fs) RemoveAll(name string) error {
	p, ok := vpath(name)
	if !ok {
		return nil // os.RemoveAll("") succeeds
	}
	return renamePath(a.fs.RemoveAll(p), name)
}

// Rename renames (moves) oldname to newname with rename(2) semantics, in one
// atomic commit. Errors are *os.LinkError values.
func (a *Fs) Rename(oldname, newname string) error {
	op, ok1 := vpath(oldname)
	np, ok2 := vpath(newname)
	if !ok1 || !ok2 {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: syscall.ENOENT}
	}
	return renameLink(a.fs.Rename(op, np), "rename", oldname, newname)
}

// Stat returns the attributes of the named file, following symlinks. Sys
// returns a *voldfs.Attr.
func (a *Fs) Stat(name string) (os.FileInfo, error) {
	p, err := resolve("stat", name)
	if err != nil {
		return nil, err
	}
	fi, err := a.fs.Stat(p)
	if err != nil {
		return nil, renamePath(err, name)
	}
	return withName(fi, name), nil
}

// LstatIfPossible is Lstat; the bool is always true (afero.Lstater).
func (a *Fs) LstatIfPossible(name string) (os.FileInfo, bool, error) {
	fi, err := a.Lstat(name)
	return fi, true, err
}

// Lstat returns the attributes of the named file without following a final
// symlink.
func (a *Fs) Lstat(name string) (os.FileInfo, error) {
	p, err := resolve("lstat", name)
	if err != nil {
		return nil, err
	}
	fi, err := a.fs.Lstat(p)
	if err != nil {
		return nil, renamePath(err, name)
	}
	return withName(fi, name), nil
}

// Chmod changes the permission bits (and setuid, setgid, sticky) of the
// named file, following symlinks.
func (a *Fs) Chmod(name string, mode os.FileMode) error {
	p, err := resolve("chmod", name)
	if err != nil {
		return err
	}
	return renamePath(a.fs.Chmod(p, mode), name)
}

// Chown changes the owner and group of the named file, following symlinks.
// A -1 leaves that id unchanged.
func (a *Fs) Chown(name string, uid, gid int) error {
	p, err := resolve("chown", name)
	if err != nil {
		return err
	}
	return renamePath(a.fs.Chown(p, uid, gid), name)
}

// Lchown is Chown without following a final symlink.
func (a *Fs) Lchown(name string, uid, gid int) error {
	p, err := resolve("lchown", name)
	if err != nil {
		return err
	}
	return renamePath(a.fs.Lchown(p, uid, gid), name)
}

// Chtimes changes the access and modification times of the named file;
// a zero time.Time leaves that time unchanged, as in os.Chtimes.
func (a *Fs) Chtimes(name string, atime, mtime time.Time) error {
	p, err := resolve("chtimes", name)
	if err != nil {
		return err
	}
	return renamePath(a.fs.Chtimes(p, atime, mtime), name)
}

// SymlinkIfPossible is Symlink (afero.Linker).
func (a *Fs) SymlinkIfPossible(oldname, newname string) error {
	return a.Symlink(oldname, newname)
}

// Symlink creates newname as a symbolic link to oldname, like os.Symlink.
// The target is stored as given; an absolute target is resolved from the
// filesystem's root. Errors are *os.LinkError values.
func (a *Fs) Symlink(oldname, newname string) error {
	np, ok := vpath(newname)
	if !ok || oldname == "" {
		return &os.LinkError{Op: "symlink", Old: oldname, New: newname, Err: syscall.ENOENT}
	}
	return renameLink(a.fs.Symlink(oldname, np), "symlink", oldname, newname)
}

// Link creates newname as a hard link to oldname, like os.Link.
func (a *Fs) Link(oldname, newname string) error {
	op, ok1 := vpath(oldname)
	np, ok2 := vpath(newname)
	if !ok1 || !ok2 {
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.ENOENT}
	}
	return renameLink(a.fs.Link(op, np), "link", oldname, newname)
}

// ReadlinkIfPossible is Readlink (afero.LinkReader).
func (a *Fs) ReadlinkIfPossible(name string) (string, error) { return a.Readlink(name) }

// Readlink returns the target of the named symlink, as it was stored.
func (a *Fs) Readlink(name string) (string, error) {
	p, err := resolve("readlink", name)
	if err != nil {
		return "", err
	}
	t, err := a.fs.Readlink(p)
	return t, renamePath(err, name)
}
