package voldfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Reflink copies: a file made a copy of another by sharing its blocks, as
// Linux's FICLONE and FICLONERANGE ioctls do (cp --reflink). Blocks are
// immutable, so sharing them needs no copy; what needs care is freeing,
// which reference counts decide (reflinkcount.go).

// Clone makes dst a copy of the regular file src that shares src's blocks
// (a reflink copy, as cp --reflink=always makes): one commit, whatever the
// size, with no data read or written. Writing either file afterwards
// copies only what it changes, so the other is unaffected. dst is created
// with src's permission bits if it does not exist; an existing dst must be
// a regular file, and its content is replaced (its attributes and extended
// attributes stay its own). src's buffered writes are committed first.
// Errors are *os.LinkError: a directory src or dst is EISDIR, a special
// file ENXIO (it cannot be opened), as for OpenFile.
func (f *FS) Clone(src, dst string) error {
	fail := func(err error) error {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return linkErr("clone", src, dst, err)
	}
	s, err := f.OpenFile(src, os.O_RDONLY, 0)
	if err != nil {
		return fail(err)
	}
	defer s.Close()
	if s.dir != nil {
		return fail(syscall.EISDIR)
	}
	fi, err := s.Stat()
	if err != nil {
		return fail(err)
	}
	d, err := f.OpenFile(dst, os.O_WRONLY|os.O_CREATE, fi.Mode().Perm())
	if err != nil {
		return fail(err)
	}
	err = d.clone(s, "clone")
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// CloneFrom makes f's content a copy of src's that shares src's blocks,
// as the FICLONE ioctl does: f gets src's size and data in one commit,
// with no data moved (see FS.Clone). f must be open for writing and src
// for reading; both must be regular files of the same FS (another FS is
// EXDEV). The buffered writes of both are committed first; every handle of
// f in this FS sees the new content at once.
func (f *File) CloneFrom(src *File) error { return f.clone(src, "clone") }

func (f *File) clone(src *File, op string) error {
	if err := f.cloneCheck(src, op); err != nil {
		return err
	}
	ctx, cancel := f.ctx()
	defer cancel()
	if err := src.commitShared(ctx); err != nil {
		return f.pathErr(op, err)
	}
	f.lock()
	defer f.unlock()
	if err := f.o.commit(ctx); err != nil {
		return f.pathErr(op, err)
	}
	n, err := f.c.cloneFile(ctx, src.ino, f.ino)
	if err != nil {
		return f.pathErr(op, err)
	}
	f.o.setInode(n, nanotime())
	return nil
}

// CloneRange makes bytes [dstOff, dstOff+n) of f a copy of bytes [srcOff,
// srcOff+n) of src that shares src's blocks, as the FICLONERANGE ioctl
// does. n == 0 means up to the end of src, and a range past src's end is
// cut at it. srcOff and dstOff must be multiples of the block size, and so
// must n unless the range ends at src's end and reaches f's end or beyond;
// otherwise it is EINVAL (copy the bytes instead), as it is for srcOff at
// or past src's end and for overlapping ranges of one file. f grows to
// cover the range. One commit, counting one more reference for each block
// of the range (whole-file clones, CloneFrom, share the tree's root
// instead). A small src kept inside its inode has no blocks to share: its
// bytes are copied.
func (f *File) CloneRange(src *File, srcOff, dstOff, n int64) error {
	const op = "clonerange"
	if err := f.cloneCheck(src, op); err != nil {
		return err
	}
	if srcOff < 0 || dstOff < 0 || n < 0 || dstOff > maxFileSize-n {
		return f.pathErr(op, syscall.EINVAL)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	if err := src.commitShared(ctx); err != nil {
		return f.pathErr(op, err)
	}
	f.lock()
	err := f.o.cloneRange(ctx, src.ino, uint64(srcOff), uint64(dstOff), uint64(n))
	f.unlock()
	if errors.Is(err, errCloneInline) {
		return f.copyRange(src, srcOff, dstOff, n)
	}
	return f.pathErr(op, err)
}

func (o *openInode) cloneRange(ctx context.Context, src uint64, srcOff, dstOff, n uint64) error {
	if err := o.commit(ctx); err != nil {
		return err
	}
	nn, err := o.c.cloneRange(ctx, src, o.ino, srcOff, dstOff, n)
	if err != nil {
		return err
	}
	o.setInode(nn, nanotime())
	return nil
}

// copyRange copies bytes of an inline src (at most inlineMax of them).
func (f *File) copyRange(src *File, srcOff, dstOff, n int64) error {
	if n == 0 || n > inlineMax {
		n = inlineMax
	}
	buf := make([]byte, n)
	k, err := src.ReadAt(buf, srcOff)
	if err != nil && err != io.EOF {
		return err
	}
	if k == 0 {
		return f.pathErr("clonerange", syscall.EINVAL) // srcOff at or past the end
	}
	if _, err := f.WriteAt(buf[:k], dstOff); err != nil {
		return err
	}
	return f.Commit()
}

func (f *File) cloneCheck(src *File, op string) error {
	if err := f.check(op, true); err != nil {
		return err
	}
	if src == nil {
		return f.pathErr(op, syscall.EBADF)
	}
	if err := src.readable(); err != nil {
		return err
	}
	if src.dir != nil {
		return src.pathErr(op, syscall.EISDIR)
	}
	if src.c != f.c {
		return f.pathErr(op, syscall.EXDEV)
	}
	return nil
}

// commitShared commits the handle's buffered writes (those of every handle
// of its inode in this FS), so a clone of it sees them.
func (f *File) commitShared(ctx context.Context) error {
	f.lock()
	defer f.unlock()
	return f.o.commit(ctx)
}

// errCloneInline: the source range has no blocks to share.
var errCloneInline = errors.New("voldfs: clone of inline data")

// cloneFile makes inode dst's content src's, sharing src's tree: one
// commit that sets dst's root to src's, counts one more reference to it,
// marks both inodes shared and drops dst's old tree.
func (c *core) cloneFile(ctx context.Context, src, dst uint64) (*inode, error) {
	var out *inode
	err := c.updateMany(ctx, func(t *mtx) error {
		s, err := t.peek(src)
		if err != nil {
			return err
		}
		if err := cloneable(s); err != nil {
			return err
		}
		if src == dst {
			out = s
			return errNoChange
		}
		d, err := t.get(dst)
		if err != nil {
			return err
		}
		if err := cloneable(d); err != nil {
			return err
		}
		shares := !s.root.isZero()
		if shares && s.flags&flagShared == 0 {
			if s, err = t.get(src); err != nil {
				return err
			}
			s.flags |= flagShared
		}
		old := treeRoot{d.root, d.height}
		var nw treeRoot
		if shares {
			nw = treeRoot{s.root, s.height}
		}
		if d.flags&flagShared != 0 {
			freed, err := c.reaccount(ctx, t.tx, old, nw, nil)
			if err != nil {
				return err
			}
			t.add(nil, freed)
		} else {
			// dst's old tree is its own: free it whole.
			tree := &inode{root: d.root, height: d.height}
			if err := c.treeRefs(ctx, tree, func(ref blockRef, _ byte) error { t.free(ref); return nil }); err != nil {
				return err
			}
			if shares {
				if _, err := c.reaccount(ctx, t.tx, treeRoot{}, nw, nil); err != nil {
					return err
				}
			}
		}
		if shares {
			d.flags |= flagShared
		}
		d.root, d.height, d.inline, d.size = s.root, s.height, s.inline, s.size
		ts := now()
		d.mtime, d.ctime = ts, ts
		out = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func cloneable(n *inode) error {
	switch {
	case n.isDir():
		return syscall.EISDIR
	case !n.isReg():
		return syscall.EINVAL
	}
	return nil
}

// cloneRange places the blocks of src's range in dst's tree (see
// File.CloneRange) in one commit that counts one more reference for each.
func (c *core) cloneRange(ctx context.Context, src, dst uint64, srcOff, dstOff, n uint64) (*inode, error) {
	bs := uint64(c.blockSize)
	var out *inode
	err := c.updateMany(ctx, func(t *mtx) error {
		s, err := t.peek(src)
		if err != nil {
			return err
		}
		if err := cloneable(s); err != nil {
			return err
		}
		if srcOff >= s.size {
			return syscall.EINVAL
		}
		count := s.size - srcOff
		if n != 0 {
			count = min(n, count)
		}
		if s.root.isZero() && s.height == 0 {
			return errCloneInline
		}
		d, err := t.get(dst)
		if err != nil {
			return err
		}
		if err := cloneable(d); err != nil {
			return err
		}
		if src == dst {
			s = d // the working copy: its tree is read before it changes
		}
		end := srcOff + count
		switch {
		case srcOff%bs != 0 || dstOff%bs != 0:
			return syscall.EINVAL
		case end%bs != 0 && (end != s.size || dstOff+count < d.size):
			return syscall.EINVAL
		case src == dst && srcOff < dstOff+count && dstOff < end:
			return syscall.EINVAL
		}
		if s.flags&flagShared == 0 {
			if src != dst {
				if s, err = t.get(src); err != nil {
					return err
				}
			}
			s.flags |= flagShared
		}
		// From now on dst's frees are judged by counts (a tree that was
		// its own has no count records: each reads as 1).
		d.flags |= flagShared
		if d.root.isZero() && d.height == 0 && len(d.inline) > 0 {
			// The inline bytes become block 0 (as resize does).
			ref, err := c.putBlock(ctx, recData, d.inline)
			if err != nil {
				return err
			}
			t.wrote(ref)
			d.root, d.inline = ref, nil
		}
		d.inline = nil
		e := t.refEdit()
		first, last := srcOff/bs, (end+bs-1)/bs
		ups := make([]blockUpdate, 0, last-first)
		for i := first; i < last; i++ {
			ref, err := c.treeLookup(ctx, s, i)
			if err != nil {
				return err
			}
			if !ref.isZero() {
				e.reused[ref] = true
			}
			ups = append(ups, blockUpdate{dstOff/bs + (i - first), ref})
		}
		size := max(d.size, dstOff+count)
		root, h, err := c.treeUpdate(ctx, t.tx, d, ups, (size+bs-1)/bs)
		if err != nil {
			return err
		}
		d.root, d.height, d.size = root, h, size
		ts := now()
		d.mtime, d.ctime = ts, ts
		out = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
