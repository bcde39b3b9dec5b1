package main

import (
	"context"
	"math"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Space: fallocate(2), lseek(2)'s SEEK_DATA and SEEK_HOLE, and statfs(2),
// all answered by the library.

var (
	_ gofs.NodeAllocater = (*node)(nil)
	_ gofs.NodeLseeker   = (*node)(nil)
)

// Allocate is fallocate(2). The mode bits are the library's Falloc*
// constants as they are; the library answers EOPNOTSUPP for the modes it
// lacks (collapse, insert, unshare, PUNCH_HOLE without KEEP_SIZE). The
// kernel drops its cached pages of a punched or zeroed range and, without
// KEEP_SIZE, extends its cached size itself.
func (n *node) Allocate(ctx context.Context, fh gofs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	h, errno := handleOf(fh)
	if errno != 0 {
		return errno
	}
	if off > math.MaxInt64 || size > math.MaxInt64 {
		return syscall.EFBIG
	}
	return toErrno(h.f.Allocate(int(mode), int64(off), int64(size)))
}

// Lseek is lseek(2) with SEEK_DATA or SEEK_HOLE (the kernel keeps the
// offset of the other whence values itself, after writing its dirty pages
// back through this mount, so the library sees them).
func (n *node) Lseek(ctx context.Context, fh gofs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	h, errno := handleOf(fh)
	if errno != 0 {
		return 0, errno
	}
	if off > math.MaxInt64 {
		return 0, syscall.ENXIO // past any end
	}
	pos, err := h.f.Seek(int64(off), int(whence))
	if err != nil {
		return 0, toErrno(err)
	}
	return uint64(pos), 0
}

// statfsWindow is how long the mount reuses the library's usage figures:
// the library counts the store's keys for them, too slow to do at every
// df (and programs such as cp or rsync ask statfs for every file).
var statfsWindow = 2 * time.Second

// statfsCache holds the last statfs reply.
type statfsCache struct {
	mu  sync.Mutex // held while asking the library: one count at a time
	at  time.Time
	out fuse.StatfsOut
}

// Statfs reports the library's estimate (voldfs.Statfs): used blocks and
// inodes counted in the store, and the store's capacity and free space
// where it can tell them (memcached's memory limit, a bolt file's disk;
// else nominal). The reply is reused for statfsWindow.
func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	c := &n.vol.statfs
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < statfsWindow {
		*out = c.out
		return 0
	}
	st, err := n.vol.ino.Statfs(detach(ctx))
	if err != nil {
		return toErrno(err)
	}
	c.out = fuse.StatfsOut{
		Blocks: st.Blocks, Bfree: st.Bfree, Bavail: st.Bavail,
		Files: st.Files, Ffree: st.Ffree,
		Bsize: st.Bsize, Frsize: st.Bsize, NameLen: st.NameMax,
	}
	c.at = time.Now()
	*out = c.out
	return 0
}
