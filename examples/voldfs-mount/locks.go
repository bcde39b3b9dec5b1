package main

import (
	"context"
	"errors"
	"math"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/voldfs/voldfs"
)

// Advisory locks through the mount (with fuse.MountOptions.EnableLocks the
// kernel forwards them): the library keeps them in the store, so two
// mounts, on one machine or two, exclude each other.
//
// What the kernel sends, and how it maps:
//   - flock(2) arrives as SETLK/SETLKW with FUSE_LK_FLOCK, owned by the
//     open file (the kernel's struct file): voldfs.FlockLock with that owner.
//   - fcntl F_SETLK/F_SETLKW arrive owned by the process (its files table):
//     voldfs.PosixLock with that owner. Every close(2) of a descriptor of
//     the file sends FLUSH with the closing process's owner: its POSIX locks
//     on the file go then.
//   - F_OFD_SETLK arrives exactly like a POSIX lock, but owned by the open
//     file; the server cannot tell them apart. As a PosixLock of that owner
//     it conflicts as an OFD lock must (with other open files, even of the
//     same process), survives the close of other descriptors (their FLUSH
//     carries another owner), and goes at RELEASE, the last close of the
//     open file, when the handle releases every owner that locked through
//     it. (Any process owner among them has already flushed, since each of
//     its descriptors of the open file was closed before RELEASE.) F_GETLK
//     and F_OFD_GETLK report an OFD holder as a POSIX one.
//
// The kernel sends RELEASE asynchronously, just after the last close(2)
// returns, so a flock or OFD lock lingers for a moment after that close: a
// non-blocking request at once may get EAGAIN, a waiting one gets the lock.
//
// A conflicting lock held through another mount is reported with pid 0:
// its pid is another machine's.

// lockKey is a lock owner that took a lock through a handle.
type lockKey struct {
	kind  voldfs.LockKind
	owner uint64
}

// lockOwners remembers which owners locked through one handle, so that
// RELEASE frees what the kernel leaves to the server.
type lockOwners struct {
	mu   sync.Mutex
	seen map[lockKey]bool
}

func (o *lockOwners) add(k lockKey) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen == nil {
		o.seen = make(map[lockKey]bool)
	}
	o.seen[k] = true
}

// take returns and forgets the owners.
func (o *lockOwners) take() []lockKey {
	o.mu.Lock()
	defer o.mu.Unlock()
	ks := make([]lockKey, 0, len(o.seen))
	for k := range o.seen {
		ks = append(ks, k)
	}
	o.seen = nil
	return ks
}

var (
	_ gofs.NodeGetlker  = (*node)(nil)
	_ gofs.NodeSetlker  = (*node)(nil)
	_ gofs.NodeSetlkwer = (*node)(nil)
)

// toLock converts a FUSE lock request.
func toLock(owner uint64, lk *fuse.FileLock, flags uint32) (voldfs.Lock, syscall.Errno) {
	l := voldfs.Lock{Kind: voldfs.PosixLock, Owner: owner, Pid: lk.Pid}
	if flags&fuse.FUSE_LK_FLOCK != 0 {
		l.Kind = voldfs.FlockLock
	}
	switch lk.Typ {
	case syscall.F_RDLCK:
		l.Type = voldfs.ReadLock
	case syscall.F_WRLCK:
		l.Type = voldfs.WriteLock
	case syscall.F_UNLCK:
		l.Type = voldfs.UnlockLock
	default:
		return l, syscall.EINVAL
	}
	if l.Kind == voldfs.FlockLock {
		return l, 0
	}
	if lk.Start > math.MaxInt64 || lk.End < lk.Start {
		return l, syscall.EINVAL
	}
	l.Start = int64(lk.Start)
	if lk.End < math.MaxInt64 { // the kernel's OFFSET_MAX: to the end of the file
		l.Len = int64(lk.End-lk.Start) + 1
	}
	return l, 0
}

// fromLock converts a lock the library reports.
func fromLock(l voldfs.Lock, out *fuse.FileLock) {
	*out = fuse.FileLock{Typ: syscall.F_UNLCK}
	switch l.Type {
	case voldfs.ReadLock:
		out.Typ = syscall.F_RDLCK
	case voldfs.WriteLock:
		out.Typ = syscall.F_WRLCK
	default:
		return
	}
	out.Start = uint64(l.Start)
	out.End = math.MaxInt64
	if l.Len > 0 {
		out.End = uint64(l.Start+l.Len) - 1
	}
	if !l.Remote {
		out.Pid = l.Pid
	}
}

// Getlk reports the first lock that conflicts with lk (F_GETLK).
func (n *node) Getlk(ctx context.Context, fh gofs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32, out *fuse.FileLock) syscall.Errno {
	l, errno := toLock(owner, lk, flags)
	if errno != 0 {
		return errno
	}
	got, err := n.vol.ino.Getlk(detach(ctx), n.ino(), l)
	if err != nil {
		return toErrno(err)
	}
	fromLock(got, out)
	return 0
}

// Setlk sets, changes or releases a lock without waiting (EAGAIN on a
// conflict).
func (n *node) Setlk(ctx context.Context, fh gofs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return n.setlk(detach(ctx), fh, owner, lk, flags, false)
}

// Setlkw sets a lock, waiting for conflicting ones to go. Unlike other
// requests it keeps the request's cancellation: the kernel interrupts a
// waiting lock when the process gets a signal, the wait ends with EINTR,
// and the kernel restarts the call if the signal handler asks for that
// (SA_RESTART, as Go's runtime does), so a waiter is never stuck in an
// uninterruptible sleep.
func (n *node) Setlkw(ctx context.Context, fh gofs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return n.setlk(ctx, fh, owner, lk, flags, true)
}

func (n *node) setlk(ctx context.Context, fh gofs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32, wait bool) syscall.Errno {
	l, errno := toLock(owner, lk, flags)
	if errno != 0 {
		return errno
	}
	if h, ok := fh.(*fileHandle); ok && l.Type != voldfs.UnlockLock {
		h.locks.add(lockKey{l.Kind, l.Owner})
	}
	err := n.vol.ino.Setlk(ctx, n.ino(), l, wait)
	if errors.Is(err, context.Canceled) {
		return syscall.EINTR
	}
	if err == nil && l.Type != voldfs.UnlockLock {
		n.revalidate(ctx)
	}
	return toErrno(err)
}

// revalidate drops the kernel's cached pages and attributes of the file
// after a lock acquisition when the inode changed since they were cached:
// the library fetched the inode afresh, but a program that keeps the file
// open across transactions (SQLite) would otherwise read pages from
// before another mount's commit. Keep-cache is decided at open only.
func (n *node) revalidate(ctx context.Context) {
	a, err := n.vol.ino.GetAttr(ctx, n.ino())
	if err != nil {
		return // the read or write that follows reports it
	}
	if v := a.Ctime.UnixNano(); n.cached.Swap(v) != v {
		n.NotifyContent(0, 0)
	}
}

// releaseLocks releases what the last close of an open file leaves: the
// locks of every owner that locked through h.
func (n *node) releaseLocks(h *fileHandle) error {
	var err error
	for _, k := range h.locks.take() {
		err = errors.Join(err, n.vol.ino.ReleaseLocks(context.Background(), n.ino(), k.kind, k.owner))
	}
	return err
}

// flushOwners hands FLUSH's lock owner, which go-fuse's node API does not
// pass on, to Flush: rawFS records it under the request's cancel channel
// (one per request), which Flush finds in its fuse.Context.
type flushOwners struct {
	m sync.Map // <-chan struct{} -> uint64
}

func (f *flushOwners) owner(ctx context.Context) (uint64, bool) {
	c, ok := ctx.(*fuse.Context)
	if !ok || f == nil {
		return 0, false
	}
	v, ok := f.m.Load(c.Cancel)
	if !ok {
		return 0, false
	}
	return v.(uint64), true
}

// rawFS is go-fuse's node filesystem with FLUSH's lock owner recorded.
type rawFS struct {
	fuse.RawFileSystem
	owners *flushOwners
}

// Flush records the lock owner for the node's Flush.
func (r *rawFS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	r.owners.m.Store(cancel, in.LockOwner)
	defer r.owners.m.Delete(cancel)
	return r.RawFileSystem.Flush(cancel, in)
}
