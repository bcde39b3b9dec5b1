package voldfs

import (
	"context"
	"errors"
	"io/fs"
	"syscall"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// Namespace operations on (directory inode, name) pairs. The path API
// (fs.go) resolves paths to these; a FUSE server calls them directly through
// the exported inode-level methods (inodeapi.go).

func now() int64 { return time.Now().UnixNano() }

// newInodeValue returns a fresh inode (not yet stored) of the given mode.
func (c *core) newInodeValue(ctx context.Context, mode uint32, parent uint64, content []byte) *inode {
	t := now()
	uid, gid := c.owner(ctx)
	n := &inode{ino: newIno(), gen: uint64(t), mode: mode, uid: uid, gid: gid, nlink: 1, atime: t, mtime: t, ctime: t, btime: t, rdev: rdevOf(ctx)}
	if mode&sIFMT == sIFDIR {
		n.parent = parent
	}
	if mode&sIFMT == sIFLNK {
		n.inline = content
		n.size = uint64(len(content))
	}
	return n
}

// newInode creates a fresh inode with a create-only CAS, drawing another
// number on the (astronomically rare) collision. It is not linked anywhere
// (fsck's lost+found uses it).
func (c *core) newInode(ctx context.Context, mode uint32, parent uint64, content []byte) (*inode, backend.Version, error) {
	n := c.newInodeValue(ctx, mode, parent, content)
	for {
		ver, err := c.inodes.CAS(ctx, c.inodeKey(n.ino), backend.NoVersion, encodeInode(n))
		if errors.Is(err, backend.ErrConflict) {
			n.ino = newIno()
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		c.putInode(n, ver)
		return n, ver, nil
	}
}

// checkParent fails if d cannot take new entries.
func checkParent(d *inode) error {
	if !d.isDir() {
		return syscall.ENOTDIR
	}
	if d.dead() {
		return syscall.ENOENT
	}
	return nil
}

// setEntries installs root as directory d's tree after a change that
// removed an entry of type gone and added one of type came (0: none; a
// replaced entry is both): it keeps the entry count, the subdirectory count
// and the times that every entry change updates.
func (d *inode) setEntries(root []byte, gone, came uint8) {
	d.inline = root
	d.size = dirCount(root)
	if gone == typeDir && d.subdir > 0 {
		d.subdir--
	}
	if came == typeDir {
		d.subdir++
	}
	ts := now()
	d.mtime, d.ctime = ts, ts
}

// liveEntry reports whether e names an inode that exists and is not a
// removed directory: an entry left dangling by a crashed client is not live
// and may be replaced.
func (c *core) liveEntry(ctx context.Context, e dirEntry) (bool, error) {
	ci, err := c.getInode(ctx, e.ino, 0)
	if errors.Is(err, syscall.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !(ci.n.isDir() && ci.n.dead()), nil
}

// insertEntry adds e to directory d within an attempt; an existing live
// entry is EEXIST, a dangling one (left by a crashed client) is replaced.
func (c *core) insertEntry(ctx context.Context, t *tx, d *inode, e dirEntry) error {
	if err := checkParent(d); err != nil {
		return err
	}
	root, old, found, err := dirInsert(ctx, t, dirNodes{c}, d.inline, e, false)
	if err != nil {
		return err
	}
	var gone uint8
	if found {
		live, err := c.liveEntry(ctx, old)
		if err != nil {
			return err
		}
		if live {
			return syscall.EEXIST
		}
		if root, _, _, err = dirInsert(ctx, t, dirNodes{c}, d.inline, e, true); err != nil {
			return err
		}
		gone = old.typ // a dangling entry, replaced
	}
	d.setEntries(root, gone, e.typ)
	return nil
}

// create makes a new inode of the given mode and links it into dir: one
// commit writes the inode (create-only) and the parent's entry. It returns
// EEXIST if name exists.
func (c *core) create(ctx context.Context, dir uint64, name string, mode uint32, content []byte) (*inode, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	n := c.newInodeValue(ctx, mode, dir, content)
	err := c.updateMany(ctx, func(t *mtx) error {
		d, err := t.get(dir)
		if err != nil {
			return err
		}
		n.ino = newIno() // a fresh number each attempt: a collision conflicts
		if err := c.insertEntry(ctx, t.tx, d, dirEntry{name: name, ino: n.ino, typ: n.dirType()}); err != nil {
			return err
		}
		t.create(n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// removeEntry drops name from dir if it names want (want == 0: whatever it
// names, subject to check) and returns the removed entry.
func (c *core) removeEntry(ctx context.Context, dir uint64, name string, want uint64, check func(e dirEntry) error) (dirEntry, error) {
	var removed dirEntry
	_, err := c.update(ctx, dir, func(t *tx, d *inode) error {
		if !d.isDir() {
			return syscall.ENOTDIR
		}
		e, found, err := dirLookup(ctx, dirNodes{c}, d.inline, name)
		if err != nil {
			return err
		}
		if !found || want != 0 && e.ino != want {
			return syscall.ENOENT
		}
		if check != nil {
			if err := check(e); err != nil {
				return err
			}
		}
		root, old, _, err := dirRemove(ctx, t, dirNodes{c}, d.inline, name)
		if err != nil {
			return err
		}
		d.setEntries(root, old.typ, 0)
		removed = old
		return nil
	})
	return removed, err
}

// lookupIn reads directory dir into t's commit and looks name up in it: a
// non-directory is ENOTDIR, a missing name ENOENT.
func (c *core) lookupIn(ctx context.Context, t *mtx, dir uint64, name string) (*inode, dirEntry, error) {
	d, err := t.get(dir)
	if err != nil {
		return nil, dirEntry{}, err
	}
	e, found, err := c.entryIn(ctx, d, name)
	if err != nil {
		return nil, dirEntry{}, err
	}
	if !found {
		return nil, dirEntry{}, syscall.ENOENT
	}
	return d, e, nil
}

// unlink removes a non-directory entry and drops its link, in one commit.
func (c *core) unlink(ctx context.Context, dir uint64, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	var gone uint64 // the inode whose last link went
	err := c.updateMany(ctx, func(t *mtx) error {
		gone = 0
		d, e, err := c.lookupIn(ctx, t, dir, name)
		if err != nil {
			return err
		}
		if e.typ == typeDir {
			return syscall.EISDIR
		}
		n, err := t.get(e.ino)
		if errors.Is(err, syscall.ENOENT) {
			n = nil // a dangling entry: just remove it
		} else if err != nil {
			return err
		}
		root, old, _, err := dirRemove(ctx, t.tx, dirNodes{c}, d.inline, name)
		if err != nil {
			return err
		}
		d.setEntries(root, old.typ, 0)
		if n != nil && n.nlink > 0 {
			n.nlink--
			n.ctime = now()
			if n.nlink == 0 {
				gone = n.ino
			}
		}
		return nil
	})
	if err != nil || gone == 0 {
		return err
	}
	c.cleanup(c.unlinked(ctx, gone))
	return nil
}

// cleanup takes the error of freeing what a namespace commit unlinked: the
// operation is done whatever it says, and an inode a failure left behind
// (nlink 0, unreachable) is an orphan that Fsck deletes.
func (c *core) cleanup(error) {}

// unlinked frees an inode whose last link went, unless it is open in this
// process (then the last Close frees it).
func (c *core) unlinked(ctx context.Context, ino uint64) error {
	c.omu.Lock()
	if o := c.open[ino]; o != nil {
		o.orphaned = true
		c.omu.Unlock()
		return nil
	}
	c.omu.Unlock()
	return c.destroy(ctx, ino)
}

// dropLink decrements an inode's link count and frees it at zero, unless
// it is open in this process (then the last Close frees it). A crash
// between removing an entry and this leaves nlink too high: space leaks until
// fsck, nothing is lost.
func (c *core) dropLink(ctx context.Context, ino uint64) error {
	n, err := c.update(ctx, ino, func(t *tx, n *inode) error {
		if n.nlink == 0 {
			return errNoChange
		}
		n.nlink--
		n.ctime = now()
		return nil
	})
	if errors.Is(err, syscall.ENOENT) {
		return nil // already gone: a dangling entry was removed
	}
	if err != nil || n.nlink > 0 {
		return err
	}
	return c.unlinked(ctx, ino)
}

// destroy deletes an unlinked inode and every block of its tree.
func (c *core) destroy(ctx context.Context, ino uint64) error {
	ctx, cancel := c.background(ctx) // it finishes what the caller committed
	defer cancel()
	// Read it fresh: a cached copy may predate the last link's removal.
	ci, err := c.getInode(ctx, ino, 0)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil
		}
		return err
	}
	n := ci.n
	if !n.dead() {
		return nil // linked again meanwhile
	}
	if n.flags&flagShared != 0 {
		return c.destroyShared(ctx, ci) // reflinkcount.go
	}
	var refs []blockRef
	var werr error
	if n.isDir() {
		werr = dirRefs(ctx, dirNodes{c}, n.inline, func(r blockRef) error { refs = append(refs, r); return nil })
	} else {
		werr = c.treeRefs(ctx, n, func(r blockRef, _ byte) error { refs = append(refs, r); return nil })
	}
	err = c.deleteInode(ctx, c.inodeKey(ino), ci.ver, n, nil) // snapshot.go
	if errors.Is(err, backend.ErrConflict) {
		// Someone changed it since: look again with the latest version.
		c.dropInode(ino)
		if ci, err = c.getInode(ctx, ino, 0); err != nil || !ci.n.dead() {
			return nil
		}
		return c.destroy(ctx, ino)
	}
	c.dropInode(ino)
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return err
	}
	if werr == nil {
		c.freeBlocks(ctx, refs)
	}
	return nil
}

// rmdir removes an empty directory: one commit drops its entry and marks it
// dead (so no entry can be added to it any more); then it is deleted.
func (c *core) rmdir(ctx context.Context, dir uint64, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	var child uint64
	err := c.updateMany(ctx, func(t *mtx) error {
		d, e, err := c.lookupIn(ctx, t, dir, name)
		if err != nil {
			return err
		}
		n, err := t.get(e.ino)
		if err != nil {
			return err
		}
		switch {
		case !n.isDir():
			return syscall.ENOTDIR
		case n.dead():
			return syscall.ENOENT
		case !dirIsEmpty(n.inline):
			return syscall.ENOTEMPTY
		}
		n.flags |= flagDead
		n.nlink = 0
		n.ctime = now()
		root, old, _, err := dirRemove(ctx, t.tx, dirNodes{c}, d.inline, name)
		if err != nil {
			return err
		}
		d.setEntries(root, old.typ, 0)
		child = e.ino
		return nil
	})
	if err != nil {
		return err
	}
	c.cleanup(c.destroy(ctx, child))
	return nil
}

// link adds a new name for a non-directory inode: one commit adds the entry
// and the link.
func (c *core) link(ctx context.Context, ino, dir uint64, name string) (*inode, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var res *inode
	err := c.updateMany(ctx, func(t *mtx) error {
		n, err := t.get(ino)
		if err != nil {
			return err
		}
		if n.isDir() {
			return syscall.EPERM
		}
		if n.nlink == 0 {
			return syscall.ENOENT
		}
		d, err := t.get(dir)
		if err != nil {
			return err
		}
		if err := c.insertEntry(ctx, t.tx, d, dirEntry{name: name, ino: ino, typ: n.dirType()}); err != nil {
			return err
		}
		n.nlink++
		n.ctime = now()
		res = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ci, gerr := c.getInode(ctx, ino, -1); gerr == nil {
		res = ci.n
	}
	return res, nil
}

// SetAttr lists attribute changes for FS.SetAttr; nil fields are unchanged.
type SetAttr struct {
	Mode  *fs.FileMode // permission bits (and setuid, setgid, sticky)
	Uid   *uint32
	Gid   *uint32
	Size  *int64
	Atime *time.Time
	Mtime *time.Time
}

// setattr applies a to inode ino in one CAS.
func (c *core) setattr(ctx context.Context, ino uint64, a *SetAttr) (*inode, error) {
	if a.Size != nil && *a.Size < 0 {
		return nil, syscall.EINVAL
	}
	return c.update(ctx, ino, func(t *tx, n *inode) error {
		ts := now()
		if a.Mode != nil {
			n.mode = n.mode&sIFMT | permBits(*a.Mode)
		}
		if a.Uid != nil {
			n.uid = *a.Uid
		}
		if a.Gid != nil {
			n.gid = *a.Gid
		}
		if a.Atime != nil {
			n.atime = a.Atime.UnixNano()
		}
		if a.Mtime != nil {
			n.mtime = a.Mtime.UnixNano()
		}
		if a.Size != nil {
			if n.isDir() {
				return syscall.EISDIR
			}
			if !n.isReg() {
				return syscall.EINVAL
			}
			if uint64(*a.Size) != n.size {
				if err := c.resize(ctx, t, n, uint64(*a.Size)); err != nil {
					return err
				}
				if a.Mtime == nil {
					n.mtime = ts
				}
			}
		}
		n.ctime = ts
		return nil
	})
}

// resize sets a regular file's size within a commit: blocks past the end
// are freed, a partial last block is cut so that later growth reads zeros.
func (c *core) resize(ctx context.Context, t *tx, n *inode, size uint64) error {
	if size > maxFileSize {
		return syscall.EFBIG
	}
	bs := uint64(c.blockSize)
	if n.root.isZero() && n.height == 0 {
		if size <= inlineMax {
			if size < uint64(len(n.inline)) {
				n.inline = append([]byte(nil), n.inline[:size]...)
			}
			n.size = size
			return nil
		}
		// Growing past the inline limit: the inline bytes become block 0.
		if len(n.inline) > 0 {
			ref, err := c.putBlock(ctx, recData, n.inline)
			if err != nil {
				return err
			}
			t.wrote(ref)
			n.root = ref
		}
		n.inline = nil
	}
	var ups []blockUpdate
	nb := (size + bs - 1) / bs
	if size < n.size && size%bs != 0 {
		idx := size / bs
		ref, err := c.treeLookup(ctx, n, idx)
		if err != nil {
			return err
		}
		if !ref.isZero() {
			data, err := c.getBlock(ctx, recData, ref)
			if err != nil {
				return err
			}
			if cut := size % bs; uint64(len(data)) > cut {
				nr, err := c.putBlock(ctx, recData, data[:cut])
				if err != nil {
					return err
				}
				t.wrote(nr)
				ups = append(ups, blockUpdate{idx, nr})
			}
		}
	}
	root, h, err := c.treeUpdate(ctx, t, n, ups, nb)
	if err != nil {
		return err
	}
	n.root, n.height, n.size = root, h, size
	return nil
}

// maxFileSize is the largest file size: offsets are int64.
const maxFileSize = 1<<63 - 1
