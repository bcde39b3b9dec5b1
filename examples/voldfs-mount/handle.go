package main

import (
	"context"
	"io"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/voldfs/voldfs"
)

// fileHandle is an open voldfs file. The library shares one state among
// the handles of an inode (a read through one sees the writes through
// every other) and honours O_SYNC and O_DSYNC in its writes.
type fileHandle struct {
	f      *voldfs.File
	append bool // O_APPEND: the library places writes at the end at commit
	locks  lockOwners
}

func newHandle(f *voldfs.File, flags uint32) *fileHandle {
	return &fileHandle{f: f, append: flags&syscall.O_APPEND != 0}
}

func (h *fileHandle) read(dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, err := h.f.ReadAt(dest, off)
	if err != nil && err != io.EOF {
		return nil, toErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *fileHandle) write(data []byte, off int64) (uint32, syscall.Errno) {
	var n int
	var err error
	if h.append {
		// The kernel's offset is its idea of the end; the library's,
		// resolved at commit, is right even with other writers.
		n, err = h.f.Write(data)
	} else {
		n, err = h.f.WriteAt(data, off)
	}
	if err != nil {
		return uint32(n), toErrno(err)
	}
	return uint32(n), 0
}

// dirHandle lists a directory with stable offsets: 1 and 2 are "." and
// "..", every other offset is the library's cookie of the entry before, so
// a listing resumes correctly after seekdir and while entries change.
type dirHandle struct {
	vol         *volume
	ino, parent uint64

	mu  sync.Mutex
	pos uint64 // offset of the entry last returned (0: none)
	buf []voldfs.DirEntry
	eof bool
}

// dirBatch is how many entries one library call returns.
const dirBatch = 256

// Readdirent returns the next entry, or nil at the end.
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.pos {
	case 0:
		d.pos = 1
		return &fuse.DirEntry{Name: ".", Ino: d.ino, Mode: syscall.S_IFDIR, Off: 1}, 0
	case 1:
		d.pos = 2
		return &fuse.DirEntry{Name: "..", Ino: d.parent, Mode: syscall.S_IFDIR, Off: 2}, 0
	}
	if len(d.buf) == 0 {
		if d.eof {
			return nil, 0
		}
		cookie := d.pos
		if cookie == 2 {
			cookie = 0 // the start: the library revalidates the directory
		}
		ents, err := d.vol.ino.ReadDir(detach(ctx), d.ino, cookie, dirBatch)
		if err != nil {
			return nil, toErrno(err)
		}
		if len(ents) == 0 {
			d.eof = true
			return nil, 0
		}
		d.buf = ents
	}
	e := d.buf[0]
	d.buf = d.buf[1:]
	d.pos = e.Cookie
	return &fuse.DirEntry{Name: e.Name, Ino: e.Ino, Mode: typeBits(e.Type), Off: e.Cookie}, 0
}

// Seekdir continues the listing after the entry at offset off.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pos, d.buf, d.eof = off, nil, false
	return 0
}

// Fsyncdir makes the directory's changes durable. They are committed at
// once, but a store with group commit (bolt) acknowledges them before they
// are on disk: FS.Sync waits for everything acknowledged so far.
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return toErrno(d.vol.vfs.Sync())
}

// Releasedir drops the listing.
func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {}
