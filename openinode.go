package voldfs

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"syscall"
	"time"
)

// openInode is the state every open File of one inode in one FS shares,
// like a kernel's page cache: the writes buffered and not yet committed
// (dirty blocks or an append buffer), the size they make, and the
// committed version they overlay. A read through any handle sees every
// write made through any other at once; Sync on any handle, Close, or the
// buffer passing Options.WriteBuffer commits them, one inode CAS per commit.
// Across FS values and machines the model is close-to-open.
//
// refs and orphaned are guarded by core.omu; everything else by mu. File
// operations hold mu throughout (so writes, commits and truncates of one
// inode serialise), except that a read holds it only to take its view and
// fetches blocks without it. A File's own offset and flags have their own
// lock (File.mu), always taken before mu.
type openInode struct {
	refs     int
	orphaned bool // nlink reached zero while open: the last close frees it

	c   *core
	ino uint64

	mu       sync.Mutex
	n        *inode // last known committed version
	at       int64  // when n was known current
	size     uint64 // committed size plus buffered growth
	writeEnd uint64 // end of the furthest buffered write
	mtime    int64  // time of the last buffered write
	dirty    map[uint64]*dirtyBlock
	dbytes   int
	appendb  []byte     // O_APPEND data, placed at the end at commit time
	garbage  []blockRef // background uploads superseded before any commit used them
}

// retain returns the shared state of inode n's open handles in this core,
// counting one more handle. n, known current at time at, becomes the
// state's committed version unless the state holds buffered writes (those
// are kept: an open does not throw away what other handles wrote) or knows
// a newer one.
func (c *core) retain(n *inode, at int64) *openInode {
	c.omu.Lock()
	o := c.open[n.ino]
	if o == nil {
		o = &openInode{c: c, ino: n.ino}
		c.open[n.ino] = o
	}
	o.refs++
	c.omu.Unlock()

	o.mu.Lock()
	defer o.mu.Unlock()
	if ci := c.cachedInode(n.ino, -1); ci != nil && ci.at > at {
		// A commit of this process finished after n was read.
		n, at = ci.n, ci.at
	}
	if o.n == nil || !o.buffered() && at >= o.at {
		o.setInode(n, at)
	}
	return o
}

// release counts one handle fewer. The last one discards what could not be
// committed and frees an inode unlinked while open.
func (c *core) release(ctx context.Context, o *openInode) {
	c.omu.Lock()
	o.refs--
	last := o.refs == 0
	if last && c.open[o.ino] == o {
		delete(c.open, o.ino)
	}
	c.omu.Unlock()
	if !last {
		return
	}
	o.mu.Lock()
	o.reset()
	o.mu.Unlock()
	if o.orphaned {
		_ = c.destroy(ctx, o.ino)
	}
}

// openState returns the shared state of inode ino if it is open in this
// core, else nil.
func (c *core) openState(ino uint64) *openInode {
	c.omu.Lock()
	defer c.omu.Unlock()
	return c.open[ino]
}

// buffered reports whether writes wait to be committed.
func (o *openInode) buffered() bool { return len(o.dirty) > 0 || len(o.appendb) > 0 }

// reset forgets the buffered writes (they are committed, or lost).
func (o *openInode) reset() {
	o.c.stats.dirty.Add(-int64(o.dbytes + len(o.appendb)))
	o.dirty, o.dbytes, o.appendb, o.writeEnd, o.mtime = nil, 0, nil, 0, 0
}

// setInode makes n, known current at time at, the committed version the
// buffered writes overlay.
func (o *openInode) setInode(n *inode, at int64) {
	o.n, o.at = n, at
	o.size = o.sizeOver(n.size)
}

// sizeOver is the size of the file when the buffered writes are placed on
// a committed version of the given size.
func (o *openInode) sizeOver(size uint64) uint64 {
	if len(o.appendb) > 0 {
		return size + uint64(len(o.appendb))
	}
	return max(size, o.writeEnd)
}

// refresh re-reads the inode once its copy is older than the attribute
// window, so a long-open reader sees other clients' commits.
func (o *openInode) refresh(ctx context.Context, force bool) error {
	if !force && nanotime()-o.at <= int64(o.c.attrTTL) {
		return nil
	}
	ci, err := o.c.getInode(ctx, o.ino, 0)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return ErrStale
		}
		return err
	}
	o.setInode(ci.n, ci.at)
	return nil
}

// liveAttr sets a to n's attributes as this core's open handles of that
// inode see them: the size and times their buffered writes give it before
// they are committed. With the handles' shared state locked (no commit of
// theirs in flight) it starts from the newest version the cache holds, so
// writes they committed after n was read are not reported away (a size that
// shrinks under a reader makes the kernel cut its reads short). Every
// attribute this core reports (Stat, Lstat, File.Stat, ReadDir entries, the
// inode API's Lookup and GetAttr) goes through it, so that they agree with
// what a read returns. It locks the file's openInode: the caller must not
// hold that one (holding a directory's, as File.ReadDir does, is fine: no
// path locks a directory's after a file's).
func (c *core) liveAttr(a *Attr, n *inode) {
	var o *openInode
	if n.isReg() {
		o = c.openState(n.ino)
	}
	if o == nil {
		c.fillAttr(a, n)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if ci := c.cachedInode(n.ino, -1); ci != nil {
		n = ci.n
	}
	c.fillAttr(a, n)
	o.overlay(a)
}

// overlay is liveAttr with o.mu held.
func (o *openInode) overlay(a *Attr) {
	if !o.buffered() {
		return
	}
	a.Size = o.sizeOver(a.Size)
	// The commit will store whole blocks: count them, not the committed
	// (possibly inline) bytes, so the file does not look sparse.
	a.Blocks = max(a.Blocks, (a.Size+511)/512)
	if t := o.mtime; t > a.Mtime.UnixNano() {
		a.Mtime = time.Unix(0, t)
	}
	if t := o.mtime; t > a.Ctime.UnixNano() {
		a.Ctime = time.Unix(0, t)
	}
}

// commitOpen commits the buffered writes of every file open in this core
// (FS.Sync calls it before syncing the stores).
func (c *core) commitOpen(ctx context.Context) error {
	c.omu.Lock()
	open := make([]*openInode, 0, len(c.open))
	for _, o := range c.open {
		open = append(open, o)
	}
	c.omu.Unlock()
	var errs []error
	for _, o := range open {
		o.mu.Lock()
		err := o.commit(ctx)
		o.mu.Unlock()
		if err != nil {
			errs = append(errs, &fs.PathError{Op: "sync", Path: inoPath(o.ino), Err: err})
		}
	}
	return errors.Join(errs...)
}

// setattrOpen is setattr for a caller without a handle (a path or an inode
// number), keeping the inode's open handles in step: a size or mtime
// change commits their buffered writes first, and every handle sees the
// result.
func (c *core) setattrOpen(ctx context.Context, ino uint64, a *SetAttr) (*inode, error) {
	o := c.openState(ino)
	if o == nil {
		return c.setattr(ctx, ino, a)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.setattr(ctx, a)
}

// setattr changes the inode's attributes with o.mu held. Buffered writes
// are committed first when the change must come after them: a new size
// applies to the data written before it, and an explicit mtime must not be
// overwritten by the later commit of earlier writes.
func (o *openInode) setattr(ctx context.Context, a *SetAttr) (*inode, error) {
	if a.Size != nil || a.Mtime != nil {
		if err := o.commit(ctx); err != nil {
			return nil, err
		}
	}
	n, err := o.c.setattr(ctx, o.ino, a)
	if err != nil {
		return nil, err
	}
	o.setInode(n, nanotime())
	return n, nil
}
