package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/voldfs/voldfs"
)

// volume is what the nodes of one mount share.
type volume struct {
	vfs    *voldfs.FS
	ino    *voldfs.Inodes
	owners *flushOwners // FLUSH's lock owners (see rawFS)
	statfs statfsCache  // the last usage figures (see Statfs)

	smu   sync.Mutex
	stale map[staleName]time.Time // names whose open last answered ESTALE
}

// staleName is a directory entry, as the kernel names it.
type staleName struct {
	dir  uint64
	name string
}

// staleAgain reports whether this open of the name k is the kernel's retry after an ESTALE for that name (the next open of
// the name after one answered ESTALE, within a second), and otherwise
// records that this one answers ESTALE.
func (v *volume) staleAgain(k staleName) bool {
	now := time.Now()
	v.smu.Lock()
	defer v.smu.Unlock()
	if at, ok := v.stale[k]; ok && now.Sub(at) < time.Second {
		delete(v.stale, k)
		return true
	}
	for s, at := range v.stale { // few: only names that went stale lately
		if now.Sub(at) >= time.Second {
			delete(v.stale, s)
		}
	}
	if v.stale == nil {
		v.stale = make(map[staleName]time.Time)
	}
	v.stale[k] = now
	return false
}

// retried ends the kernel's retry of an open of k that answered ESTALE:
// the retry opened or created the name.
func (v *volume) retried(k staleName) {
	v.smu.Lock()
	if len(v.stale) > 0 {
		delete(v.stale, k)
	}
	v.smu.Unlock()
}

// nameOf returns the directory entry the kernel knows n by.
func nameOf(n *node) (staleName, bool) {
	name, parent := n.Parent()
	if parent == nil {
		return staleName{}, false
	}
	return staleName{parent.StableAttr().Ino, name}, true
}

func newVolume(vfs *voldfs.FS) *volume {
	return &volume{vfs: vfs, ino: vfs.Inodes(), owners: &flushOwners{}}
}

// node is a file, directory or symlink, known by its voldfs inode number
// (StableAttr.Ino, with the inode's generation as StableAttr.Gen);
// everything else is asked of the library.
type node struct {
	gofs.Inode
	vol *volume

	// cached is the change attribute (ctime, which every commit to the
	// inode sets) of the inode at its last open in this mount: the
	// version the kernel's cached pages of the file belong to.
	cached atomic.Int64
}

var (
	_ gofs.NodeLookuper       = (*node)(nil)
	_ gofs.NodeGetattrer      = (*node)(nil)
	_ gofs.NodeSetattrer      = (*node)(nil)
	_ gofs.NodeCreater        = (*node)(nil)
	_ gofs.NodeOpener         = (*node)(nil)
	_ gofs.NodeReader         = (*node)(nil)
	_ gofs.NodeWriter         = (*node)(nil)
	_ gofs.NodeFlusher        = (*node)(nil)
	_ gofs.NodeFsyncer        = (*node)(nil)
	_ gofs.NodeReleaser       = (*node)(nil)
	_ gofs.NodeMkdirer        = (*node)(nil)
	_ gofs.NodeUnlinker       = (*node)(nil)
	_ gofs.NodeRmdirer        = (*node)(nil)
	_ gofs.NodeRenamer        = (*node)(nil)
	_ gofs.NodeSymlinker      = (*node)(nil)
	_ gofs.NodeReadlinker     = (*node)(nil)
	_ gofs.NodeLinker         = (*node)(nil)
	_ gofs.NodeOpendirHandler = (*node)(nil)
	_ gofs.NodeStatfser       = (*node)(nil)
)

func (n *node) ino() uint64 { return n.StableAttr().Ino }

// newNode returns the kernel-facing inode for a, reusing the one go-fuse
// already has for that inode number (hard links share it).
func (n *node) newNode(ctx context.Context, a *voldfs.Attr, out *fuse.EntryOut) *gofs.Inode {
	fillAttr(a, &out.Attr)
	return n.NewInode(ctx, &node{vol: n.vol}, gofs.StableAttr{Mode: a.Mode & syscall.S_IFMT, Ino: a.Ino, Gen: a.Gen})
}

func fillAttr(a *voldfs.Attr, out *fuse.Attr) {
	out.Ino = a.Ino
	out.Size = a.Size
	out.Blocks = a.Blocks
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Uid, out.Gid = a.Uid, a.Gid
	out.Blksize = a.Blksize
	out.Rdev = toKernelDev(a.Rdev)
	out.SetTimes(&a.Atime, &a.Mtime, &a.Ctime)
}

// perm converts Unix permission bits (with setuid, setgid, sticky) to an
// fs.FileMode, the form the library takes.
func perm(mode uint32) fs.FileMode {
	m := fs.FileMode(mode & 0o777)
	if mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// openFlags keeps the open(2) flags the library understands.
func openFlags(flags uint32) int {
	return int(flags) & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_TRUNC | os.O_EXCL | os.O_SYNC | syscall.O_DSYNC)
}

// detach returns the request's context without its cancellation: the
// kernel interrupts a request whenever the calling thread gets a signal,
// and Go programs get one (SIGURG, for preemption) all the time, so an
// interrupted namespace call would fail with EINTR that callers such as
// os.Rename do not retry. Like NFS hard mounts, requests run to the end;
// the library's OpTimeout bounds them.
func detach(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// caller is the identity of the process that made the request: new inodes
// are created with it, in the commit that creates them.
func caller(ctx context.Context) *voldfs.Owner {
	c, ok := fuse.FromContext(ctx)
	if !ok {
		return nil
	}
	return &voldfs.Owner{Uid: c.Uid, Gid: c.Gid}
}

// Lookup finds name in the directory.
func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	a, err := n.vol.ino.Lookup(detach(ctx), n.ino(), name)
	if err != nil {
		return nil, toErrno(err)
	}
	return n.newNode(ctx, a, out), 0
}

// Getattr returns the attributes, with the size and times of writes
// buffered in this mount. An fstat of a file whose inode is already gone
// (removed by another client, or by a rename racing its open) asks the
// open file, which still holds it.
func (n *node) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	a, err := n.vol.ino.GetAttr(detach(ctx), n.ino())
	if h, ok := fh.(*fileHandle); ok && errors.Is(err, syscall.ENOENT) {
		var fi fs.FileInfo
		if fi, err = h.f.Stat(); err == nil {
			a = fi.Sys().(*voldfs.Attr)
		}
	}
	if err != nil {
		return toErrno(err)
	}
	fillAttr(a, &out.Attr)
	return 0
}

// Setattr changes size, mode, owner and times in one commit (the library
// orders a size change after the writes buffered in this mount).
func (n *node) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	ino := n.ino()
	var sa voldfs.SetAttr
	change := false
	if m, ok := in.GetMode(); ok {
		p := perm(m)
		sa.Mode, change = &p, true
	}
	if uid, ok := in.GetUID(); ok {
		sa.Uid, change = &uid, true
	}
	if gid, ok := in.GetGID(); ok {
		sa.Gid, change = &gid, true
	}
	if t, ok := in.GetATime(); ok {
		sa.Atime, change = &t, true
	}
	if t, ok := in.GetMTime(); ok {
		sa.Mtime, change = &t, true
	}
	if sz, ok := in.GetSize(); ok {
		size := int64(sz)
		sa.Size, change = &size, true
	}
	var a *voldfs.Attr
	var err error
	if change {
		a, err = n.vol.ino.SetAttr(detach(ctx), ino, &sa)
	} else {
		a, err = n.vol.ino.GetAttr(detach(ctx), ino)
	}
	if err != nil {
		return toErrno(err)
	}
	fillAttr(a, &out.Attr)
	return 0
}

// Create creates and opens a regular file.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	f, err := n.vol.ino.Create(detach(ctx), n.ino(), name, openFlags(flags), perm(mode), caller(ctx))
	if err != nil {
		return nil, nil, 0, toErrno(err)
	}
	n.vol.retried(staleName{n.ino(), name})
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, 0, toErrno(err)
	}
	a := fi.Sys().(*voldfs.Attr)
	return n.newNode(ctx, a, out), newHandle(f, flags), 0, 0
}

// Open opens the file; the library fetches the current inode
// (close-to-open). When no commit changed the inode since its last open
// here, the kernel keeps its cached pages (FOPEN_KEEP_CACHE); otherwise it
// drops them (writing dirty mmap pages back first, through this mount) and
// the cached attributes too, so no reader sees new data with an old size or
// old data after a newer close.
func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	f, err := n.vol.ino.Open(detach(ctx), n.ino(), openFlags(flags))
	if errors.Is(err, fs.ErrNotExist) {
		// The inode is gone. If its name went through this mount, the
		// open raced that removal or rename: ENOENT, a name removed
		// between lookup and open. If another client removed it, the
		// kernel's dentry is stale: ESTALE makes the kernel look the
		// name up again and retry once (an O_CREAT open then creates the
		// file); if the inode that retry finds is gone too, the name is
		// being replaced faster than it can be opened, and a second
		// ESTALE would reach the program: ENOENT.
		k, attached := nameOf(n)
		if !attached || n.vol.staleAgain(k) {
			return nil, 0, syscall.ENOENT
		}
		return nil, 0, syscall.ESTALE
	}
	if err != nil {
		return nil, 0, toErrno(err)
	}
	if k, ok := nameOf(n); ok {
		n.vol.retried(k)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, toErrno(err)
	}
	var keep uint32
	if v := fi.Sys().(*voldfs.Attr).Ctime.UnixNano(); n.cached.Swap(v) == v {
		keep = fuse.FOPEN_KEEP_CACHE
	} else {
		n.NotifyContent(-1, 0) // attributes only: the pages go at open
	}
	return newHandle(f, flags), keep, 0
}

func handleOf(fh gofs.FileHandle) (*fileHandle, syscall.Errno) {
	h, ok := fh.(*fileHandle)
	if !ok {
		return nil, syscall.EBADF
	}
	return h, 0
}

// Read reads from an open file.
func (n *node) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h, errno := handleOf(fh)
	if errno != 0 {
		return nil, errno
	}
	return h.read(dest, off)
}

// Write writes to an open file.
func (n *node) Write(ctx context.Context, fh gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	h, errno := handleOf(fh)
	if errno != 0 {
		return 0, errno
	}
	return h.write(data, off)
}

// Flush runs at every close(2) of a descriptor: it commits the buffered
// writes, so close reports a failed commit and other clients see the data
// (durable when the store says so; fsync waits for that). It releases the
// closing process's POSIX locks on the file, as close(2) does.
func (n *node) Flush(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	h, errno := handleOf(fh)
	if errno != 0 {
		return errno
	}
	err := h.f.Commit()
	if owner, ok := n.vol.owners.owner(ctx); ok {
		err = errors.Join(err, n.vol.ino.ReleaseLocks(detach(ctx), n.ino(), voldfs.PosixLock, owner))
	}
	return toErrno(err)
}

// Fsync commits the buffered writes and waits until the stores hold them
// durably.
func (n *node) Fsync(ctx context.Context, fh gofs.FileHandle, flags uint32) syscall.Errno {
	h, errno := handleOf(fh)
	if errno != 0 {
		return errno
	}
	return toErrno(h.f.Sync())
}

// Release closes the file when its last descriptor is gone, releasing the
// flock and OFD locks taken through it.
func (n *node) Release(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	h, errno := handleOf(fh)
	if errno != 0 {
		return errno
	}
	return toErrno(errors.Join(n.releaseLocks(h), h.f.Close()))
}

// Mkdir creates a directory.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	a, err := n.vol.ino.Mkdir(detach(ctx), n.ino(), name, perm(mode), caller(ctx))
	if err != nil {
		return nil, toErrno(err)
	}
	return n.newNode(ctx, a, out), 0
}

// Symlink creates a symbolic link.
func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	a, err := n.vol.ino.Symlink(detach(ctx), n.ino(), name, target, caller(ctx))
	if err != nil {
		return nil, toErrno(err)
	}
	return n.newNode(ctx, a, out), 0
}

// Link adds a hard link to target.
func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	a, err := n.vol.ino.Link(detach(ctx), target.EmbeddedInode().StableAttr().Ino, n.ino(), name)
	if err != nil {
		return nil, toErrno(err)
	}
	return n.newNode(ctx, a, out), 0
}

// Readlink returns a symlink's target.
func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	t, err := n.vol.ino.Readlink(detach(ctx), n.ino())
	if err != nil {
		return nil, toErrno(err)
	}
	return []byte(t), 0
}

// Unlink removes a non-directory.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return toErrno(n.vol.ino.Unlink(detach(ctx), n.ino(), name))
}

// Rmdir removes an empty directory.
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return toErrno(n.vol.ino.Rmdir(detach(ctx), n.ino(), name))
}

// The flags of renameat2(2).
const (
	renameNoReplace = 1
	renameExchange  = 2
)

// Rename renames name to newName in newParent. RENAME_NOREPLACE and
// RENAME_EXCHANGE are supported (go-fuse then swaps its own nodes);
// RENAME_WHITEOUT is EINVAL.
func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if flags&^(renameNoReplace|renameExchange) != 0 {
		return syscall.EINVAL
	}
	var vf uint32
	if flags&renameNoReplace != 0 {
		vf |= voldfs.RenameNoReplace
	}
	if flags&renameExchange != 0 {
		vf |= voldfs.RenameExchange
	}
	return toErrno(n.vol.ino.Rename(detach(ctx), n.ino(), name, newParent.EmbeddedInode().StableAttr().Ino, newName, vf))
}

// OpendirHandle opens a directory listing.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	parent := n.ino()
	if _, p := n.Parent(); p != nil {
		parent = p.StableAttr().Ino
	}
	return &dirHandle{vol: n.vol, ino: n.ino(), parent: parent}, 0, 0
}
