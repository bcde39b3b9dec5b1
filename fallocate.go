package voldfs

import (
	"context"
	"slices"
	"syscall"
)

// Space allocation and holes: fallocate(2) and lseek(2)'s SEEK_DATA and
// SEEK_HOLE. A hole is native to the block tree (a zero block pointer), so
// punching one frees whole blocks; voldfs reserves no space, so plain
// allocation only sets the size.

// Modes of File.Allocate, as fallocate(2)'s FALLOC_FL_* flags.
const (
	FallocKeepSize  = 0x01 // FALLOC_FL_KEEP_SIZE: the size does not change
	FallocPunchHole = 0x02 // FALLOC_FL_PUNCH_HOLE: with FallocKeepSize only
	FallocZeroRange = 0x10 // FALLOC_FL_ZERO_RANGE
)

// SeekData and SeekHole are the whence values of lseek(2)'s SEEK_DATA and
// SEEK_HOLE. File.Seek does not take them (it keeps io.Seeker's three);
// File.SeekData and File.SeekHole do what lseek(2) does with them.
const (
	SeekData = 3
	SeekHole = 4
)

// SeekData is lseek(2) with SEEK_DATA: it moves the offset to the first
// byte at or after off that is data, and returns it. Data is what the
// committed block tree holds and what the handles buffered, by whole
// blocks. An off at or past the end, or no data after it, is ENXIO; a
// negative off EINVAL.
func (f *File) SeekData(off int64) (int64, error) { return f.seekHole(off, SeekData) }

// SeekHole is lseek(2) with SEEK_HOLE: it moves the offset to the first
// byte at or after off that starts a hole (a whole block the tree lacks and
// no handle buffered; the end of the file counts as one), and returns it.
// An off at or past the end is ENXIO; a negative off EINVAL.
func (f *File) SeekHole(off int64) (int64, error) { return f.seekHole(off, SeekHole) }

func (f *File) seekHole(off int64, whence int) (int64, error) {
	f.lock()
	defer f.unlock()
	if err := f.check("seek", false); err != nil {
		return 0, err
	}
	if f.dir != nil {
		return 0, f.pathErr("seek", syscall.EINVAL)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	pos, err := f.o.seekHole(ctx, off, whence)
	if err != nil {
		return 0, f.pathErr("seek", err)
	}
	f.off = pos
	return pos, nil
}

// Allocate is fallocate(2) on the file's byte range [off, off+length):
//
//   - mode 0 makes the file at least off+length bytes long (the new bytes
//     read as zeros). No space is reserved: a later write may still fail
//     for lack of store space.
//   - FallocKeepSize alone changes nothing.
//   - FallocPunchHole|FallocKeepSize makes the range read as zeros, freeing
//     the blocks it covers whole and zeroing the partial ones; the size
//     does not change.
//   - FallocZeroRange makes the range read as zeros as a punch does and,
//     without FallocKeepSize, extends the file to off+length.
//
// Other modes (FallocPunchHole without FallocKeepSize, collapse, insert,
// unshare) are EOPNOTSUPP; off < 0 or length <= 0 is EINVAL, a range past
// the largest file size EFBIG, a file not open for writing EBADF. Allocate
// commits the handles' buffered writes first and acts on the committed
// file in one commit, which every handle of the file in this FS sees at
// once.
func (f *File) Allocate(mode int, off, length int64) error {
	f.lock()
	defer f.unlock()
	if err := f.check("fallocate", true); err != nil {
		return err
	}
	ctx, cancel := f.ctx()
	defer cancel()
	return f.pathErr("fallocate", f.o.allocate(ctx, mode, off, length))
}

func (o *openInode) allocate(ctx context.Context, mode int, off, length int64) error {
	switch {
	case mode&^(FallocKeepSize|FallocPunchHole|FallocZeroRange) != 0,
		mode&FallocPunchHole != 0 && mode&FallocKeepSize == 0,
		mode&FallocPunchHole != 0 && mode&FallocZeroRange != 0:
		return syscall.EOPNOTSUPP
	case off < 0 || length <= 0:
		return syscall.EINVAL
	case off > maxFileSize-length:
		return syscall.EFBIG
	case mode == FallocKeepSize:
		return nil
	}
	if err := o.commit(ctx); err != nil {
		return err
	}
	lo, hi := uint64(off), uint64(off)+uint64(length)
	c := o.c
	n, err := c.update(ctx, o.ino, func(t *tx, n *inode) error {
		if !n.isReg() {
			return syscall.ENODEV // fallocate(2)'s error for a non-file
		}
		changed := false
		if mode&(FallocPunchHole|FallocZeroRange) != 0 && lo < n.size {
			if err := c.zeroRange(ctx, t, n, lo, min(hi, n.size)); err != nil {
				return err
			}
			changed = true
		}
		if mode&FallocKeepSize == 0 && hi > n.size {
			if err := c.resize(ctx, t, n, hi); err != nil {
				return err
			}
			changed = true
		}
		if !changed {
			return errNoChange
		}
		n.mtime, n.ctime = now(), now()
		return nil
	})
	if err != nil {
		return err
	}
	o.setInode(n, nanotime())
	return nil
}

// zeroRange makes bytes [lo, hi) of n (hi <= n.size) read as zeros within
// commit t: whole blocks become holes, partial ones are rewritten.
func (c *core) zeroRange(ctx context.Context, t *tx, n *inode, lo, hi uint64) error {
	if n.root.isZero() && n.height == 0 {
		if lo < uint64(len(n.inline)) {
			in := slices.Clone(n.inline)
			clear(in[lo:min(hi, uint64(len(in)))])
			n.inline = in
		}
		return nil
	}
	bs := uint64(c.blockSize)
	var ups []blockUpdate
	// partial rewrites block idx with [b0, b1) of it zeroed.
	partial := func(idx, b0, b1 uint64) error {
		src, ref, _, err := c.blockContent(ctx, n, idx)
		if err != nil || ref.isZero() || b0 >= uint64(len(src)) {
			return err
		}
		data := slices.Clone(src)
		if b1 >= uint64(len(data)) {
			data = data[:b0] // the tail reads as zeros
		} else {
			clear(data[b0:b1])
		}
		var nr blockRef
		if len(data) > 0 {
			if nr, err = c.putBlock(ctx, recData, data); err != nil {
				return err
			}
			t.wrote(nr)
		}
		ups = append(ups, blockUpdate{idx, nr})
		return nil
	}
	first, last := lo/bs, (hi-1)/bs
	wholeLo, wholeHi := first, last+1
	// A range ending at the end of the file covers its last block whole:
	// past the end a block reads as zeros anyway.
	cutEnd := hi%bs != 0 && hi != n.size
	if lo%bs != 0 || first == last && cutEnd {
		end := bs
		if first == last {
			end = hi - first*bs
		}
		if err := partial(first, lo%bs, end); err != nil {
			return err
		}
		wholeLo++
	}
	if wholeLo <= last && cutEnd {
		if err := partial(last, 0, hi%bs); err != nil {
			return err
		}
		wholeHi--
	}
	return c.applyHoles(ctx, t, n, ups, wholeLo, wholeHi)
}

// applyHoles applies ups and makes every present block in [lo, hi) a hole.
func (c *core) applyHoles(ctx context.Context, t *tx, n *inode, ups []blockUpdate, lo, hi uint64) error {
	if lo < hi {
		err := c.treeScan(ctx, n, lo, func(idx uint64) bool {
			if idx >= hi {
				return false
			}
			ups = append(ups, blockUpdate{idx, blockRef{}})
			return true
		})
		if err != nil {
			return err
		}
	}
	if len(ups) == 0 {
		return nil
	}
	slices.SortFunc(ups, func(a, b blockUpdate) int { return cmpU64(a.i, b.i) })
	bs := uint64(c.blockSize)
	root, h, err := c.treeUpdate(ctx, t, n, ups, (n.size+bs-1)/bs)
	if err != nil {
		return err
	}
	n.root, n.height = root, h
	return nil
}

// treeScan calls fn with the index of every data block of n's tree at or
// past from, in ascending order, until fn returns false. Index nodes
// wholly before from are not read. An inline file's content is block 0.
func (c *core) treeScan(ctx context.Context, n *inode, from uint64, fn func(idx uint64) bool) error {
	if n.root.isZero() {
		if n.height == 0 && len(n.inline) > 0 && from == 0 {
			fn(0)
		}
		return nil
	}
	stop := false
	var walk func(ref blockRef, level int, base uint64) error
	walk = func(ref blockRef, level int, base uint64) error {
		if level == 0 {
			if base >= from {
				stop = !fn(base)
			}
			return nil
		}
		ents, err := c.readIndex(ctx, ref)
		if err != nil {
			return err
		}
		bits := uint(level-1) * c.fanBits
		for _, x := range ents {
			child := base + uint64(x.i)<<bits
			if bits < 64 && child+(uint64(1)<<bits) <= from {
				continue // wholly before from
			}
			if err := walk(x.ref, level-1, child); err != nil || stop {
				return err
			}
		}
		return nil
	}
	return walk(n.root, int(n.height), 0)
}

// seekHole is File.SeekData and File.SeekHole with o.mu held. Data is
// what the committed tree holds and what the handles buffered, by whole
// blocks; the end of the file is a hole. An offset at or past the end is
// ENXIO, as is SeekData finding no data after the offset.
func (o *openInode) seekHole(ctx context.Context, off int64, whence int) (int64, error) {
	if len(o.appendb) > 0 {
		// The append's place is decided at commit: commit it first.
		if err := o.commit(ctx); err != nil {
			return 0, err
		}
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	size := o.size
	if uint64(off) >= size {
		return 0, syscall.ENXIO
	}
	bs := uint64(o.c.blockSize)
	from := uint64(off) / bs
	n := o.n
	scan := func(from uint64, fn func(idx uint64) bool) error {
		err := o.c.treeScan(ctx, n, from, fn)
		for attempt := 0; retryMissing(err, attempt); attempt++ {
			// A newer version freed an index node of ours: read it.
			if err = o.refresh(ctx, true); err != nil {
				return err
			}
			n = o.n
			err = o.c.treeScan(ctx, n, from, fn)
		}
		return err
	}
	var pos uint64
	if whence == SeekData {
		next, found := uint64(0), false
		if err := scan(from, func(idx uint64) bool { next, found = idx, true; return false }); err != nil {
			return 0, err
		}
		for idx := range o.dirty {
			if idx >= from && (!found || idx < next) {
				next, found = idx, true
			}
		}
		if !found || next*bs >= size {
			return 0, syscall.ENXIO
		}
		pos = max(uint64(off), next*bs)
	} else {
		expect := from
		err := scan(from, func(idx uint64) bool {
			for expect < idx && o.dirty[expect] != nil {
				expect++
			}
			if expect < idx {
				return false // a hole at expect
			}
			expect = idx + 1
			return true
		})
		if err != nil {
			return 0, err
		}
		for o.dirty[expect] != nil {
			expect++
		}
		pos = min(max(uint64(off), expect*bs), size)
	}
	return int64(pos), nil
}
