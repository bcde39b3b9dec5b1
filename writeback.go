package voldfs

import (
	"context"
	"errors"
	"maps"
	"slices"
	"syscall"
	"time"
)

// Write-back: writes are buffered in an inode's shared open state as dirty
// blocks (or, for O_APPEND, as one append buffer) and published by commit
// with one inode CAS, rebased onto whatever other writers committed
// meanwhile. Complete blocks are uploaded in the background as soon as they
// are full (write-behind), so a commit mostly finds its data stored.

// dirtyBlock is a buffered block: its content from the block's start
// (materialized from base when first written), and the byte ranges written
// to it, so a commit that finds base replaced by another writer can
// re-apply just those ranges to the new content.
type dirtyBlock struct {
	data     []byte
	base     blockRef
	inline   bool // base was the inode's inline data
	spans    [][2]int
	uploaded blockRef // data as uploaded by an earlier commit attempt
	upBase   blockRef
	// mayLive: a commit whose outcome is unknown used uploaded, so a live
	// tree may reference it; it is then never freed here (a commit that
	// replaces it in the tree frees it, or GC). It is cleared when
	// uploaded changes.
	mayLive bool

	// A full block is uploaded in the background as soon as it is
	// complete (write-behind), so a commit finds it already stored.
	frame    []byte        // when set, data is frame[2:2+len]: room to seal in place
	inflight chan struct{} // closed when the background upload ends
	bgRef    blockRef      // its result, valid after inflight is closed
	bgErr    error
	temp     bool // made for one commit attempt: its upload is the attempt's
}

// addSpan records that [lo, hi) of the block was written.
func (d *dirtyBlock) addSpan(lo, hi int) {
	// The data changes: an upload no longer matches it. writeAt has put
	// it in the garbage unless a commit with an unknown outcome used it
	// (mayLive): then it is left to GC.
	d.uploaded, d.mayLive = blockRef{}, false
	// Sequential writes extend the last span; others are merged at commit.
	if k := len(d.spans); k > 0 && d.spans[k-1][1] >= lo && d.spans[k-1][0] <= lo {
		d.spans[k-1][1] = max(d.spans[k-1][1], hi)
	} else {
		d.spans = append(d.spans, [2]int{lo, hi})
	}
}

// covers reports whether the spans cover [0, n).
func (d *dirtyBlock) covers(n int) bool {
	s := slices.Clone(d.spans)
	slices.SortFunc(s, func(a, b [2]int) int { return a[0] - b[0] })
	end := 0
	for _, x := range s {
		if x[0] > end {
			return false
		}
		end = max(end, x[1])
	}
	return end >= n
}

// writeAt buffers p at off. Background uploads run under bg. Buffered
// appends are committed first, so that dirty blocks and an append buffer
// never wait together.
func (o *openInode) writeAt(ctx, bg context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if uint64(off)+uint64(len(p)) > maxFileSize {
		return 0, syscall.EFBIG
	}
	if len(p) == 0 {
		return 0, nil // and the file does not grow
	}
	if len(o.appendb) > 0 {
		if err := o.commit(ctx); err != nil {
			return 0, err
		}
	}
	bs := int64(o.c.blockSize)
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		idx, b := uint64(pos/bs), int(pos%bs)
		chunk := min(len(p)-done, int(bs)-b)
		d, err := o.dirtyFor(ctx, idx)
		if err != nil {
			return done, err
		}
		o.settle(d) // its data is about to change
		if !d.uploaded.isZero() && !d.mayLive {
			// No tree references the upload the change makes stale.
			o.garbage = append(o.garbage, d.uploaded)
		}
		if !d.uploaded.isZero() {
			// The uploaded block's bytes are shared with the block cache
			// (and, after a commit with an unknown outcome, maybe with a
			// live tree): change a copy.
			d.data = append(make([]byte, 0, cap(d.data)), d.data...)
			d.frame = nil
		}
		if end := b + chunk; end > len(d.data) {
			o.c.stats.dirty.Add(int64(end - len(d.data)))
			o.dbytes += end - len(d.data)
			if end > cap(d.data) {
				// Grow geometrically up to the block size (a small file
				// stays small); past the first block the file is big, so
				// take the whole block at once. The bytes past len are
				// always zero, so reslicing exposes zeros.
				c := min(int(bs), max(end, 2*cap(d.data)))
				if idx > 0 {
					c = int(bs)
				}
				var nd []byte
				d.frame = nil
				if c == int(bs) {
					// A whole block: keep room around it to seal it in
					// place when it is uploaded.
					d.frame = make([]byte, 2+c, 2+c+4)
					nd = d.frame[2 : 2+len(d.data) : 2+c]
				} else {
					nd = make([]byte, len(d.data), c)
				}
				copy(nd, d.data)
				d.data = nd
			}
			d.data = d.data[:end]
		}
		copy(d.data[b:], p[done:done+chunk])
		d.addSpan(b, b+chunk)
		if len(d.data) == int(bs) && d.base.isZero() && !d.inline && d.covers(int(bs)) {
			o.writeBehind(bg, d)
		}
		done += chunk
	}
	o.writeEnd = max(o.writeEnd, uint64(off)+uint64(len(p)))
	o.size = max(o.size, o.writeEnd)
	o.mtime = now()
	if o.dbytes >= o.c.wbuf {
		if err := o.commit(ctx); err != nil {
			return done, err
		}
	}
	return done, nil
}

// appendWrite buffers p for the end of the file, where the commit places
// it against the latest committed size. Dirty blocks are committed first.
func (o *openInode) appendWrite(ctx context.Context, p []byte) error {
	if len(o.dirty) > 0 {
		if err := o.commit(ctx); err != nil {
			return err
		}
	}
	if uint64(len(o.appendb))+uint64(len(p)) > maxFileSize {
		return syscall.EFBIG
	}
	o.appendb = append(o.appendb, p...)
	o.c.stats.dirty.Add(int64(len(p)))
	o.size += uint64(len(p))
	o.mtime = now()
	if len(o.appendb) >= o.c.wbuf {
		return o.commit(ctx)
	}
	return nil
}

// writeBehind starts uploading a complete block in the background. The
// block's data must not change while the upload runs (settle waits).
func (o *openInode) writeBehind(ctx context.Context, d *dirtyBlock) {
	c, data, frame, done := o.c, d.data, d.frame, make(chan struct{})
	if frame != nil && (len(data) != cap(data) || &frame[2] != &data[0]) {
		frame = nil // data no longer fills the frame's payload room
	}
	d.inflight = done
	ctx, cancel := c.background(ctx) // bounded: a commit waits for it (settle)
	c.stats.uploads.Add(1)
	go func() {
		defer close(done)
		defer c.stats.uploads.Add(-1)
		defer cancel()
		select {
		case c.upSem <- struct{}{}:
		case <-ctx.Done():
			d.bgErr = ctx.Err()
			return
		}
		defer func() { <-c.upSem }()
		if frame != nil {
			d.bgRef, d.bgErr = c.putFramed(ctx, frame[:2+len(data)])
		} else {
			d.bgRef, d.bgErr = c.putBlock(ctx, recData, data)
		}
	}()
}

// settle waits for d's background upload and adopts its result as the
// block's upload if the data did not change since it started (a write
// about to change it calls settle first, and addSpan then drops it).
func (o *openInode) settle(d *dirtyBlock) {
	if d.inflight == nil {
		return
	}
	<-d.inflight
	d.inflight = nil
	if d.bgErr != nil {
		return
	}
	if !d.uploaded.isZero() && !d.mayLive {
		o.garbage = append(o.garbage, d.uploaded)
	}
	// Only a block with no base is uploaded in the background, so the
	// upload is valid against a tree where the block is still absent.
	d.uploaded, d.upBase, d.mayLive = d.bgRef, blockRef{}, false
}

// dirtyFor returns the buffer of block idx, materializing it from the
// committed content on first write.
func (o *openInode) dirtyFor(ctx context.Context, idx uint64) (*dirtyBlock, error) {
	if d := o.dirty[idx]; d != nil {
		return d, nil
	}
	if o.dirty == nil {
		o.dirty = make(map[uint64]*dirtyBlock)
	}
	d := &dirtyBlock{}
	src, base, inline, err := o.c.blockContent(ctx, o.n, idx)
	for attempt := 0; retryMissing(err, attempt); attempt++ {
		// Another client's commit freed the block our copy of the inode
		// names: materialize from the newer version instead.
		if err := o.refresh(ctx, true); err != nil {
			return nil, err
		}
		src, base, inline, err = o.c.blockContent(ctx, o.n, idx)
	}
	if err != nil {
		return nil, err
	}
	d.data = append(make([]byte, 0, len(src)), src...)
	d.base, d.inline = base, inline
	o.dbytes += len(d.data)
	o.c.stats.dirty.Add(int64(len(d.data)))
	o.dirty[idx] = d
	return d, nil
}

// commit publishes the buffered writes with one inode CAS (rebased as
// needed). Dirty blocks and an append buffer never wait together (each
// kind of write commits the other first).
func (o *openInode) commit(ctx context.Context) error {
	if !o.buffered() {
		return nil
	}
	c := o.c
	for _, d := range o.dirty {
		o.settle(d)
	}
	superseded := o.garbage
	o.garbage = nil
	var appended map[uint64]*dirtyBlock // the last attempt's append blocks
	n, err := c.update(ctx, o.ino, func(t *tx, n *inode) error {
		if !n.isReg() {
			return syscall.EISDIR
		}
		dirty, end := o.dirty, o.writeEnd
		if len(o.appendb) > 0 {
			// An earlier attempt lost its CAS: the data blocks it uploaded
			// for the append are referenced by no tree.
			for _, d := range appended {
				if !d.uploaded.isZero() {
					superseded = append(superseded, d.uploaded)
				}
			}
			var err error
			if dirty, err = c.appendBlocks(ctx, n, o.appendb); err != nil {
				return err
			}
			appended = dirty
			end = n.size + uint64(len(o.appendb))
		}
		size := max(n.size, end)
		if size > maxFileSize {
			return syscall.EFBIG
		}
		if err := c.applyDirty(ctx, t, n, dirty, size, &superseded); err != nil {
			return err
		}
		n.size = size
		n.mtime, n.ctime = now(), now()
		return nil
	})
	if errors.Is(err, errOutcomeUnknown) {
		for _, d := range o.dirty {
			d.mayLive = d.mayLive || !d.uploaded.isZero()
		}
	}
	if err != nil && !errors.Is(err, errOutcomeUnknown) {
		// No version references the blocks the attempts uploaded (the
		// file may have been removed meanwhile): free them. A retried
		// commit uploads again. But an upload an earlier commit of
		// unknown outcome used may be in a live tree: it stays (a later
		// commit that replaces it in the tree frees it, or GC does).
		for _, d := range o.dirty {
			if !d.uploaded.isZero() && !d.mayLive {
				superseded = append(superseded, d.uploaded)
				d.uploaded = blockRef{}
			}
		}
		for _, d := range appended {
			if !d.uploaded.isZero() {
				superseded = append(superseded, d.uploaded)
			}
		}
	}
	c.freeBlocks(ctx, superseded)
	if err != nil {
		return err
	}
	o.reset()
	o.setInode(n, nanotime())
	return nil
}

// appendBlocks places data at the end of n as dirty blocks.
func (c *core) appendBlocks(ctx context.Context, n *inode, data []byte) (map[uint64]*dirtyBlock, error) {
	bs := uint64(c.blockSize)
	dirty := make(map[uint64]*dirtyBlock)
	for done := 0; done < len(data); {
		pos := n.size + uint64(done)
		idx, b := pos/bs, int(pos%bs)
		chunk := min(len(data)-done, int(bs)-b)
		src, base, inline, err := c.blockContent(ctx, n, idx)
		if err != nil {
			return nil, err
		}
		d := &dirtyBlock{base: base, inline: inline, data: make([]byte, b+chunk)}
		copy(d.data, src)
		copy(d.data[b:], data[done:done+chunk])
		d.spans = [][2]int{{b, b + chunk}}
		dirty[idx] = d
		done += chunk
	}
	return dirty, nil
}

// applyDirty writes dirty blocks into n's tree (or inline data) for a file
// of the given new size. Blocks uploaded by an earlier attempt are reused
// when their base did not change; ones it replaces go to superseded.
func (c *core) applyDirty(ctx context.Context, t *tx, n *inode, dirty map[uint64]*dirtyBlock, size uint64, superseded *[]blockRef) error {
	if n.root.isZero() && n.height == 0 && size <= inlineMax {
		// Inline after all (another client shrank the file): blocks an
		// earlier attempt uploaded are not needed.
		for _, d := range dirty {
			if !d.uploaded.isZero() {
				*superseded = append(*superseded, d.uploaded)
				d.uploaded = blockRef{}
			}
		}
		buf := make([]byte, 0, size)
		buf = append(buf, n.inline...)
		if d := dirty[0]; d != nil {
			for _, s := range d.spans {
				if s[1] > len(buf) {
					buf = append(buf, make([]byte, s[1]-len(buf))...)
				}
				copy(buf[s[0]:s[1]], d.data[s[0]:s[1]])
			}
		}
		n.inline = buf
		return nil
	}
	if n.root.isZero() && n.height == 0 && len(n.inline) > 0 && dirty[0] == nil {
		// Leaving inline storage: the inline bytes become block 0.
		dirty = maps.Clone(dirty)
		dirty[0] = &dirtyBlock{data: n.inline, inline: true, spans: [][2]int{{0, len(n.inline)}}, temp: true}
	}
	idxs := make([]uint64, 0, len(dirty))
	for i := range dirty {
		idxs = append(idxs, i)
	}
	slices.Sort(idxs)
	ups := make([]blockUpdate, len(idxs))
	old := make([]blockRef, len(idxs))
	err := c.parallel(ctx, len(idxs), func(ctx context.Context, k int) error {
		idx := idxs[k]
		d := dirty[idx]
		src, cur, inline, err := c.blockContent(ctx, n, idx)
		if err != nil {
			return err
		}
		stale := !d.uploaded.isZero() && time.Since(d.uploaded.born()) > c.maxUnpublished
		if !d.uploaded.isZero() && d.upBase == cur && !inline && !d.inline && !stale {
			ups[k] = blockUpdate{idx, d.uploaded}
			return nil
		}
		data := d.data
		if (cur != d.base || inline || d.inline) && !d.covers(len(d.data)) || len(src) > len(data) {
			// Another writer changed this block: re-apply our ranges.
			merged := make([]byte, max(len(src), len(data)))
			copy(merged, src)
			for _, s := range d.spans {
				copy(merged[s[0]:s[1]], d.data[s[0]:s[1]])
			}
			data = merged
		}
		ref, err := c.putBlock(ctx, recData, data)
		if err != nil {
			return err
		}
		if !d.mayLive {
			// (An upload a commit of unknown outcome used may be live:
			// the tree frees it when this commit replaces it, or GC.)
			old[k] = d.uploaded
		}
		d.uploaded, d.upBase, d.mayLive = ref, cur, false
		ups[k] = blockUpdate{idx, ref}
		return nil
	})
	for _, r := range old {
		if !r.isZero() {
			*superseded = append(*superseded, r)
		}
	}
	for k, u := range ups {
		if dirty[idxs[k]].temp && !u.ref.isZero() {
			t.written = append(t.written, u.ref) // freed if this attempt loses
		}
	}
	if err != nil {
		return err
	}
	bs := uint64(c.blockSize)
	root, h, err := c.treeUpdate(ctx, t, n, ups, (size+bs-1)/bs)
	if err != nil {
		return err
	}
	n.root, n.height, n.inline = root, h, nil
	return nil
}
