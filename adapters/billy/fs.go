// Package voldbilly is a go-billy (v5) Filesystem over a voldfs filesystem,
// so that go-git, and anything else written against billy, can keep its
// files in any store voldfs runs on, without FUSE.
//
// # Basics
//
// New wraps a *voldfs.FS. Paths are slash-separated; absolute and relative
// paths both name a file under the Filesystem's root, and a path whose
// ".." climbs above that root is billy.ErrCrossedBoundary. As billy's
// contract asks (and unlike the voldfs and os calls), Create, OpenFile with
// os.O_CREATE, Rename, Symlink and TempFile create the missing parent
// directories of the file they make (with mode 0755).
//
// Chroot returns a Filesystem rooted at a subdirectory, which need not exist
// yet (it is created with the first file made in it). Operations on it run
// on a voldfs Sub view of the directory, so the boundary is the filesystem's
// own, as with chroot(2): ".." stops at the root and an absolute symlink
// target is resolved from it.
//
// Errors other than billy.ErrCrossedBoundary (which billy callers compare
// with ==) are *fs.PathError or *os.LinkError values naming the path the
// caller gave and wrapping what voldfs returned (a syscall.Errno or an
// fs.Err* sentinel), so os.IsNotExist and errors.Is work.
//
// Besides billy.Filesystem, a *Filesystem implements billy.Change (Chmod,
// Chown, Lchown, Chtimes), billy.Capable (every capability: voldfs files can
// be read, written, opened read-write, sought, truncated and locked) and
// RemoveAll, which billy's util.RemoveAll uses. Its files implement
// billy.File plus WriteAt, Stat and Sync.
//
// # Caveats
//
//   - voldfs's consistency model applies: a File's writes are published to
//     other voldfs.FS values (other processes and machines) when it is synced
//     or closed (close-to-open).
//   - A symlink is stored with the target it was given. A relative target
//     that climbs above a chroot's root stops at that root (as chroot(2)
//     does) instead of failing with billy.ErrCrossedBoundary as billy's own
//     chroot helper does; an absolute target made inside a chroot resolves
//     from the chroot's root there and from the filesystem's root outside it.
//   - File.Lock is a flock(2) lock held in the store: it excludes other
//     Files of every voldfs.FS on the same filesystem, not only of this
//     process.
//   - There are no permission checks: the library trusts its caller, like a
//     process running as root.
package voldbilly

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/voldfs/voldfs"
)

// Filesystem is a billy.Filesystem whose files live in a voldfs filesystem.
// It is safe for concurrent use.
type Filesystem struct {
	fs   *voldfs.FS
	base string // the root as Root reports it: "/" or "/a/b"
}

var (
	_ billy.Filesystem = (*Filesystem)(nil)
	_ billy.Change     = (*Filesystem)(nil)
	_ billy.Capable    = (*Filesystem)(nil)
)

// dirMode is the mode of the parent directories the Filesystem creates, as
// billy's osfs makes them.
const dirMode = 0o755

// New returns a billy Filesystem over f, rooted at f's root. The Filesystem
// does not own f: closing f is the caller's business, after its last use.
func New(f *voldfs.FS) *Filesystem { return &Filesystem{fs: f, base: "/"} }

// FS returns the voldfs filesystem the Filesystem works on (its root is the
// filesystem's, not the chroot's).
func (b *Filesystem) FS() *voldfs.FS { return b.fs }

// Capabilities returns billy.DefaultCapabilities: write, read, read-write,
// seek, truncate and lock are all supported.
func (b *Filesystem) Capabilities() billy.Capability { return billy.DefaultCapabilities }

// Root returns the Filesystem's root: "/" for New's, the joined path for a
// Chroot's.
func (b *Filesystem) Root() string { return b.base }

// Join joins path elements with "/" and cleans the result (path.Join).
func (b *Filesystem) Join(elem ...string) string { return path.Join(elem...) }

// Chroot returns the Filesystem rooted at dir (relative to this one's root).
// dir need not exist yet; a dir climbing above this root is
// billy.ErrCrossedBoundary.
func (b *Filesystem) Chroot(dir string) (billy.Filesystem, error) {
	rel, err := clean(dir)
	if err != nil {
		return nil, err
	}
	return &Filesystem{fs: b.fs, base: path.Join(b.base, rel)}, nil
}

// clean turns a billy path into the io/fs path voldfs takes: unrooted,
// cleaned, "." for the root. A path that climbs above the root (after
// dropping leading slashes, as billy's chroot helper does) is
// billy.ErrCrossedBoundary.
func clean(name string) (string, error) {
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", billy.ErrCrossedBoundary
	}
	return p, nil
}

// view returns the voldfs view of the Filesystem's root. For a chroot it is
// a Sub view, taken afresh for each operation so that it follows the
// directory's current name; with create, a missing root is created first.
func (b *Filesystem) view(create bool) (*voldfs.FS, error) {
	if b.base == "/" {
		return b.fs, nil
	}
	dir := b.base[1:]
	sub, err := b.fs.Sub(dir)
	if create && errors.Is(err, fs.ErrNotExist) {
		if err = b.fs.MkdirAll(dir, dirMode); err == nil {
			sub, err = b.fs.Sub(dir)
		}
	}
	if err != nil {
		return nil, err
	}
	v, ok := sub.(*voldfs.FS)
	if !ok { // voldfs's Sub returns an *FS; say so plainly should that change
		return nil, fmt.Errorf("voldbilly: voldfs Sub view is a %T, not a *voldfs.FS: %w", sub, errors.ErrUnsupported)
	}
	return v, nil
}

// resolve cleans name and returns it with the view it is relative to.
// Errors name the caller's path under op.
func (b *Filesystem) resolve(op, name string, create bool) (*voldfs.FS, string, error) {
	p, err := clean(name)
	if err != nil {
		return nil, "", err
	}
	v, err := b.view(create)
	if err != nil {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: unwrapPath(err)}
	}
	return v, p, nil
}

// unwrapPath returns what a *fs.PathError wraps, or err itself.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// renamePath puts the caller's path back into an error voldfs returned for
// the translated one.
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

// withParents runs op and, if it fails because a directory on the way to p
// is missing, creates p's parent directories and runs it once more.
func withParents(v *voldfs.FS, p string, op func() error) error {
	err := op()
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if dir := path.Dir(p); dir != "." {
		if merr := v.MkdirAll(dir, dirMode); merr != nil {
			return err
		}
		err = op()
	}
	return err
}

// Create creates or truncates the named file (and its missing parents),
// opened read-write with mode 0666.
func (b *Filesystem) Create(name string) (billy.File, error) {
	return b.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Open opens the named file (or directory) for reading.
func (b *Filesystem) Open(name string) (billy.File, error) {
	return b.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile opens the named file with flag (os.O_RDONLY, O_WRONLY, O_RDWR,
// O_CREATE, O_EXCL, O_TRUNC, O_APPEND, O_SYNC) and, when it creates the
// file, the permission bits of perm (no umask is applied). With O_CREATE the
// missing parent directories are created.
func (b *Filesystem) OpenFile(name string, flag int, perm os.FileMode) (billy.File, error) {
	create := flag&os.O_CREATE != 0
	v, p, err := b.resolve("open", name, create)
	if err != nil {
		return nil, err
	}
	var f *voldfs.File
	open := func() (err error) {
		f, err = v.OpenFile(p, flag, perm)
		return err
	}
	if create {
		err = withParents(v, p, open)
	} else {
		err = open()
	}
	if err != nil {
		return nil, renamePath(err, name)
	}
	return &File{f: f, name: p, path: name}, nil
}

// Stat returns the attributes of the named file, following symlinks. Sys
// returns a *voldfs.Attr.
func (b *Filesystem) Stat(name string) (os.FileInfo, error) {
	return b.stat("stat", name, (*voldfs.FS).Stat)
}

// Lstat returns the attributes of the named file without following a final
// symlink.
func (b *Filesystem) Lstat(name string) (os.FileInfo, error) {
	return b.stat("lstat", name, (*voldfs.FS).Lstat)
}

func (b *Filesystem) stat(op, name string, stat func(*voldfs.FS, string) (fs.FileInfo, error)) (os.FileInfo, error) {
	v, p, err := b.resolve(op, name, false)
	if err != nil {
		return nil, err
	}
	fi, err := stat(v, p)
	if err != nil {
		return nil, renamePath(err, name)
	}
	if p == "." {
		return named{fi, path.Base(b.base)}, nil
	}
	return fi, nil
}

// named is an fs.FileInfo under another name: the root's, which voldfs
// calls ".".
type named struct {
	fs.FileInfo
	name string
}

func (n named) Name() string { return n.name }

// Rename renames (moves) from to to with rename(2) semantics, in one atomic
// commit, creating to's missing parent directories.
func (b *Filesystem) Rename(from, to string) error {
	op, err := clean(from)
	if err != nil {
		return err
	}
	np, err := clean(to)
	if err != nil {
		return err
	}
	v, err := b.view(true)
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: unwrapPath(err)}
	}
	err = v.Rename(op, np)
	if errors.Is(err, fs.ErrNotExist) && path.Dir(np) != "." {
		// Make the target's parents only for a source that exists.
		if _, serr := v.Lstat(op); serr == nil && v.MkdirAll(path.Dir(np), dirMode) == nil {
			err = v.Rename(op, np)
		}
	}
	return renameLink(err, "rename", from, to)
}

// Remove removes a file or an empty directory.
func (b *Filesystem) Remove(name string) error {
	v, p, err := b.resolve("remove", name, false)
	if err != nil {
		return err
	}
	return renamePath(v.Remove(p), name)
}

// RemoveAll removes name and everything it contains; a missing name is not
// an error. billy's util.RemoveAll calls it.
func (b *Filesystem) RemoveAll(name string) error {
	v, p, err := b.resolve("removeall", name, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return renamePath(v.RemoveAll(p), name)
}

// MkdirAll creates a directory and any missing parents. The permission
// bits perm are used for the directories it creates.
func (b *Filesystem) MkdirAll(name string, perm os.FileMode) error {
	v, p, err := b.resolve("mkdir", name, true)
	if err != nil {
		return err
	}
	return renamePath(v.MkdirAll(p, perm), name)
}

// ReadDir returns the attributes of the entries of the named directory
// (Lstat's: a symlink is described as a link), sorted by name.
func (b *Filesystem) ReadDir(name string) ([]os.FileInfo, error) {
	v, p, err := b.resolve("readdir", name, false)
	if err != nil {
		return nil, err
	}
	ents, err := v.ReadDir(p)
	if err != nil {
		return nil, renamePath(err, name)
	}
	infos := make([]os.FileInfo, 0, len(ents))
	for _, e := range ents {
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing, as os.ReadDir skips it
		}
		if err != nil {
			return infos, renamePath(err, b.Join(name, e.Name()))
		}
		infos = append(infos, fi)
	}
	return infos, nil
}

// TempFile creates a new file in dir (created if missing; "" is the root),
// named prefix followed by a random string, and opens it read-write. As in
// os.CreateTemp, a "*" in prefix is replaced by the random string.
func (b *Filesystem) TempFile(dir, prefix string) (billy.File, error) {
	if strings.Contains(prefix, "/") {
		return nil, &fs.PathError{Op: "createtemp", Path: prefix, Err: fs.ErrInvalid}
	}
	before, after := prefix, ""
	if i := strings.LastIndex(prefix, "*"); i >= 0 {
		before, after = prefix[:i], prefix[i+1:]
	}
	for try := 0; ; try++ {
		var r [4]byte
		_, _ = rand.Read(r[:])
		name := b.Join(dir, before+strconv.FormatUint(uint64(binary.LittleEndian.Uint32(r[:])), 10)+after)
		f, err := b.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && try < 10000 {
			continue
		}
		return f, err
	}
}

// Symlink creates link as a symbolic link to target (stored as given),
// creating link's missing parent directories.
func (b *Filesystem) Symlink(target, link string) error {
	v, p, err := b.resolve("symlink", link, true)
	if err != nil {
		return err
	}
	err = withParents(v, p, func() error { return v.Symlink(target, p) })
	return renameLink(err, "symlink", target, link)
}

// Readlink returns the target of the named symlink, as it was stored.
func (b *Filesystem) Readlink(link string) (string, error) {
	v, p, err := b.resolve("readlink", link, false)
	if err != nil {
		return "", err
	}
	t, err := v.Readlink(p)
	return t, renamePath(err, link)
}

// Chmod changes the permission bits of the named file, following symlinks.
func (b *Filesystem) Chmod(name string, mode os.FileMode) error {
	v, p, err := b.resolve("chmod", name, false)
	if err != nil {
		return err
	}
	return renamePath(v.Chmod(p, mode), name)
}

// Chown changes the owner and group of the named file, following symlinks.
// A -1 leaves that id unchanged.
func (b *Filesystem) Chown(name string, uid, gid int) error {
	v, p, err := b.resolve("chown", name, false)
	if err != nil {
		return err
	}
	return renamePath(v.Chown(p, uid, gid), name)
}

// Lchown is Chown without following a final symlink.
func (b *Filesystem) Lchown(name string, uid, gid int) error {
	v, p, err := b.resolve("lchown", name, false)
	if err != nil {
		return err
	}
	return renamePath(v.Lchown(p, uid, gid), name)
}

// Chtimes changes the access and modification times of the named file; a
// zero time.Time leaves that time unchanged.
func (b *Filesystem) Chtimes(name string, atime, mtime time.Time) error {
	v, p, err := b.resolve("chtimes", name, false)
	if err != nil {
		return err
	}
	return renamePath(v.Chtimes(p, atime, mtime), name)
}
