package voldfs

import (
	"context"
	"errors"
	"io"
)

// The read path: a read copies committed blocks, fetched in parallel and
// read ahead when the access is sequential, overlaid with the writes the
// inode's open handles buffered.

// readAt reads at off with f.mu held. The shared state is locked only to
// take a consistent view (the committed version and the buffered bytes in
// range, copied out); blocks are fetched without it.
func (f *File) readAt(p []byte, off int64) (int, error) {
	o := f.o
	ctx, cancel := f.ctx()
	defer cancel()
	for attempt := 0; ; attempt++ {
		o.mu.Lock()
		v, err := o.view(ctx, p, off, attempt > 0)
		o.mu.Unlock()
		if err != nil {
			return 0, f.pathErr("read", err)
		}
		err = f.readClean(ctx, v, p, off)
		if errors.Is(err, errBlockMissing) && attempt < 3 {
			// The tree changed under us and its old blocks were freed:
			// read the latest version (a few times; a block still missing
			// then is reported).
			continue
		}
		if err != nil {
			return 0, f.pathErr("read", err)
		}
		if v.len < len(p) {
			return v.len, io.EOF
		}
		return v.len, nil
	}
}

// readView is what a read takes from the shared state under its lock.
type readView struct {
	n     *inode  // the committed version
	size  uint64  // the file's size, buffered writes included
	len   int     // bytes the read returns
	clean []int64 // blocks in range with no buffered bytes: read from n
}

// view copies the buffered bytes in [off, off+len(p)) into p and says
// which blocks are left to read from the committed version. Buffered
// appends are committed first (where they land is the commit's decision);
// refresh forces a fresh read of the inode.
func (o *openInode) view(ctx context.Context, p []byte, off int64, refresh bool) (readView, error) {
	if len(o.appendb) > 0 {
		if err := o.commit(ctx); err != nil {
			return readView{}, err
		}
	}
	if err := o.refresh(ctx, refresh); err != nil {
		return readView{}, err
	}
	v := readView{n: o.n, size: o.size}
	if uint64(off) >= o.size || len(p) == 0 {
		return v, nil
	}
	v.len = int(min(uint64(len(p)), o.size-uint64(off)))
	bs := int64(o.c.blockSize)
	first, last := off/bs, (off+int64(v.len)-1)/bs
	for idx := first; idx <= last; idx++ {
		d := o.dirty[uint64(idx)]
		if d == nil {
			v.clean = append(v.clean, idx)
			continue
		}
		copyBlock(p, off, v.len, idx, bs, d.data)
	}
	return v, nil
}

// copyBlock copies the part of block idx (content src, zeros past its end)
// that falls in the n bytes at off into p[:n].
func copyBlock(p []byte, off int64, n int, idx, bs int64, src []byte) {
	lo := max(off, idx*bs)
	hi := min(off+int64(n), (idx+1)*bs)
	dst := p[lo-off : hi-off]
	k := 0
	if b := lo - idx*bs; b < int64(len(src)) {
		k = copy(dst, src[b:])
	}
	clear(dst[k:])
}

// readClean fills the blocks of v.clean from the committed version,
// fetching them in parallel and reading ahead when the access is
// sequential.
func (f *File) readClean(ctx context.Context, v readView, p []byte, off int64) error {
	if v.len == 0 {
		return nil
	}
	bs := int64(f.c.blockSize)
	n := v.n
	inline := n.root.isZero() && n.height == 0
	if inline {
		for _, idx := range v.clean {
			var src []byte
			if idx == 0 {
				src = n.inline
			}
			copyBlock(p, off, v.len, idx, bs, src)
		}
	} else if len(v.clean) > 0 {
		refs := make([]blockRef, len(v.clean))
		for i, idx := range v.clean {
			ref, err := f.c.treeLookup(ctx, n, uint64(idx))
			if err != nil {
				return err
			}
			refs[i] = ref
		}
		blocks, err := f.c.fetchBlocks(ctx, refs)
		if err != nil {
			return err
		}
		for i, idx := range v.clean {
			var src []byte
			if !refs[i].isZero() {
				src = blocks[refs[i]]
			}
			copyBlock(p, off, v.len, idx, bs, src)
		}
	}
	last := (off + int64(v.len) - 1) / bs
	if off == f.lastRead && !inline && last+f.c.raWindow()/2 >= f.raNext {
		// Sequential: keep a window of blocks on their way, refilled
		// when the reader is half-way through it.
		from := max(last+1, f.raNext)
		f.readahead(n, v.size, from, int(last+1+f.c.raWindow()-from))
		f.raNext = last + 1 + f.c.raWindow()
	}
	f.lastRead = off + int64(v.len)
	return nil
}

// readahead fetches count blocks of n, of the given size, from block index
// from into the cache in the background, in one batch where the store
// offers it.
func (f *File) readahead(n *inode, size uint64, from int64, count int) {
	c := f.c
	bs := int64(c.blockSize)
	if count <= 0 || from*bs >= int64(size) {
		return
	}
	ctx := context.WithoutCancel(f.fs.ctx)
	go func() {
		var refs []blockRef
		for idx := from; idx < from+int64(count) && idx*bs < int64(size); idx++ {
			ref, err := c.treeLookup(ctx, n, uint64(idx))
			if err != nil {
				return
			}
			refs = append(refs, ref)
		}
		_, _ = c.fetchBlocks(ctx, refs)
	}()
}

// raWindow is how many blocks sequential readahead keeps in flight: twice
// Parallelism, at least 8 MiB, at most an eighth of the cache.
func (c *core) raWindow() int64 {
	w := max(2*int64(c.par), int64(8<<20)/int64(c.blockSize))
	if c.cache.max > 0 {
		w = min(w, max(1, c.cache.max/8/int64(c.blockSize)))
	}
	return w
}

// blockContent returns the committed content of block idx of n (shared:
// do not modify), its ref, and whether it is n's inline data.
func (c *core) blockContent(ctx context.Context, n *inode, idx uint64) ([]byte, blockRef, bool, error) {
	if n.root.isZero() && n.height == 0 {
		if idx == 0 {
			return n.inline, blockRef{}, true, nil
		}
		return nil, blockRef{}, false, nil
	}
	ref, err := c.treeLookup(ctx, n, idx)
	if err != nil || ref.isZero() {
		return nil, ref, false, err
	}
	p, err := c.getBlock(ctx, recData, ref)
	return p, ref, false, err
}
