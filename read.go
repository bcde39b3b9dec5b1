package voldfs

import (
	"context"
	"errors"
	"io"
)

// The read path: a read copies committed blocks, fetched in parallel and
// read ahead when the access is sequential, overlaid with the writes the
// inode's open handles buffered.

// readAt reads at off with f.o.mu held.
func (f *File) readAt(p []byte, off int64) (int, error) {
	o := f.o
	ctx, cancel := f.ctx()
	defer cancel()
	if len(o.appendb) > 0 {
		// Where the appended bytes land is decided by the commit.
		if err := o.commit(ctx); err != nil {
			return 0, f.pathErr("read", err)
		}
	}
	if err := o.refresh(ctx, false); err != nil {
		return 0, f.pathErr("read", err)
	}
	for attempt := 0; ; attempt++ {
		n, err := f.readBlocks(ctx, p, off)
		if errors.Is(err, errBlockMissing) && attempt < 3 {
			// The tree changed under us and its old blocks were freed:
			// read the latest version (a few times; a block still missing
			// then is reported).
			if err := o.refresh(ctx, true); err != nil {
				return 0, f.pathErr("read", err)
			}
			continue
		}
		if err != nil {
			return n, f.pathErr("read", err)
		}
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
}

// readBlocks copies file bytes at off into p, fetching the blocks it spans
// in parallel and reading ahead when the access is sequential.
func (f *File) readBlocks(ctx context.Context, p []byte, off int64) (int, error) {
	o := f.o
	if uint64(off) >= o.size {
		return 0, nil
	}
	p = p[:min(uint64(len(p)), o.size-uint64(off))]
	if len(p) == 0 {
		return 0, nil
	}
	bs := int64(f.c.blockSize)
	first, last := off/bs, (off+int64(len(p))-1)/bs
	n := o.n
	inline := n.root.isZero() && n.height == 0
	refs := make([]blockRef, last-first+1)
	var blocks map[blockRef][]byte
	if !inline {
		for i := range refs {
			if o.dirty[uint64(first)+uint64(i)] != nil {
				continue
			}
			ref, err := f.c.treeLookup(ctx, n, uint64(first)+uint64(i))
			if err != nil {
				return 0, err
			}
			refs[i] = ref
		}
		var err error
		if blocks, err = f.c.fetchBlocks(ctx, refs); err != nil {
			return 0, err
		}
	}
	for i := range refs {
		idx := first + int64(i)
		lo := max(off, idx*bs)
		hi := min(off+int64(len(p)), (idx+1)*bs)
		dst := p[lo-off : hi-off]
		var src []byte
		if d := o.dirty[uint64(idx)]; d != nil {
			src = d.data
		} else if inline {
			if idx == 0 {
				src = n.inline
			}
		} else if !refs[i].isZero() {
			src = blocks[refs[i]]
		}
		k := 0
		if b := lo - idx*bs; b < int64(len(src)) {
			k = copy(dst, src[b:])
		}
		clear(dst[k:])
	}
	if off == f.lastRead && !inline && last+f.c.raWindow()/2 >= f.raNext {
		// Sequential: keep a window of blocks on their way, refilled
		// when the reader is half-way through it.
		from := max(last+1, f.raNext)
		f.readahead(from, int(last+1+f.c.raWindow()-from))
		f.raNext = last + 1 + f.c.raWindow()
	}
	f.lastRead = off + int64(len(p))
	return len(p), nil
}

// readahead fetches count blocks from block index from into the cache in
// the background, in one batch where the store offers it.
func (f *File) readahead(from int64, count int) {
	n, size, c := f.o.n, f.o.size, f.c
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
