package voldfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"sync"
	"syscall"
)

// File is an open file of an FS. It is safe for concurrent use.
//
// Writes are buffered in the File (write-back) and committed, one inode CAS
// per commit, by Sync, Close, Truncate, or when the buffer passes
// Options.WriteBuffer. Reads through the File see its own buffered writes;
// other Files and other FS values see them after the commit.
type File struct {
	fs   *FS
	c    *core
	name string
	ino  uint64
	flag int

	mu       sync.Mutex
	closed   bool
	n        *inode // last known committed version
	at       int64  // when n was known current
	off      int64
	size     uint64 // local view: committed size plus buffered growth
	writeEnd uint64 // end of the furthest buffered write
	dirty    map[uint64]*dirtyBlock
	dbytes   int
	appendb  []byte     // O_APPEND data, placed at the end at commit time
	garbage  []blockRef // background uploads superseded before any commit used them
	lastRead int64      // end of the previous read, to detect sequential reads
	raNext   int64      // block index up to which readahead was started
	dir      *Dir       // set when the file is a directory
}

// dirtyBlock is a buffered block: its content from the block's start
// (materialized from base when first written), and the byte ranges this File
// wrote, so a commit that finds base replaced by another writer can re-apply
// just those ranges to the new content.
type dirtyBlock struct {
	data     []byte
	base     blockRef
	inline   bool // base was the inode's inline data
	spans    [][2]int
	uploaded blockRef // data as uploaded by an earlier commit attempt
	upBase   blockRef

	// A full block is uploaded in the background as soon as it is
	// complete (write-behind), so a commit finds it already stored.
	frame    []byte        // when set, data is frame[2:2+len]: room to seal in place
	inflight chan struct{} // closed when the background upload ends
	bgRef    blockRef      // its result, valid after inflight is closed
	bgErr    error
	temp     bool // made for one commit attempt: its upload is the attempt's
}

func (d *dirtyBlock) addSpan(lo, hi int) {
	if !d.uploaded.isZero() {
		// The data changes: the upload no longer matches it. It is no
		// one's block yet unless a commit with an unknown outcome used it,
		// so it is left to GC rather than freed.
		d.uploaded = blockRef{}
	}
	// Sequential writes extend the last span; others are merged at commit.
	if k := len(d.spans); k > 0 && d.spans[k-1][1] >= lo && d.spans[k-1][0] <= lo {
		d.spans[k-1][1] = max(d.spans[k-1][1], hi)
	} else {
		d.spans = append(d.spans, [2]int{lo, hi})
	}
	d.uploaded = blockRef{}
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

func (f *File) ctx() (context.Context, context.CancelFunc) { return f.fs.op() }

func (f *File) pathErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: f.name, Err: err}
}

// Name returns the name the file was opened with.
func (f *File) Name() string { return f.name }

// Ino returns the file's inode number.
func (f *File) Ino() uint64 { return f.ino }

func (f *File) check(op string, write bool) error {
	if f.closed {
		return f.pathErr(op, fs.ErrClosed)
	}
	if write && f.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return f.pathErr(op, syscall.EBADF)
	}
	if f.dir != nil && op != "readdir" && op != "close" && op != "stat" && op != "seek" && op != "sync" {
		return f.pathErr(op, syscall.EISDIR)
	}
	return nil
}

// readable fails unless the file is open and opened for reading.
func (f *File) readable() error {
	if err := f.check("read", false); err != nil {
		return err
	}
	if f.flag&os.O_WRONLY != 0 {
		return f.pathErr("read", syscall.EBADF)
	}
	return nil
}

// Read reads up to len(p) bytes at the current offset.
func (f *File) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.readable(); err != nil {
		return 0, err
	}
	n, err := f.readAt(p, f.off)
	f.off += int64(n)
	return n, err
}

// ReadAt reads len(p) bytes at off; fewer only at the end of the file (with
// io.EOF) or on error.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.readable(); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, f.pathErr("read", syscall.EINVAL)
	}
	return f.readAt(p, off)
}

// refresh re-reads the inode once its copy is older than the attribute
// window, so a long-open reader sees other clients' commits.
func (f *File) refresh(ctx context.Context, force bool) error {
	if !force && nanotime()-f.at <= int64(f.c.attrTTL) {
		return nil
	}
	ci, err := f.c.getInode(ctx, f.ino, 0)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return ErrStale
		}
		return err
	}
	f.setInode(ci.n, ci.at)
	return nil
}

func (f *File) setInode(n *inode, at int64) {
	f.n, f.at = n, at
	f.size = max(n.size, f.writeEnd)
	if len(f.appendb) > 0 {
		f.size = n.size + uint64(len(f.appendb))
	}
}

func (f *File) readAt(p []byte, off int64) (int, error) {
	ctx, cancel := f.ctx()
	defer cancel()
	if len(f.appendb) > 0 {
		if err := f.commit(ctx); err != nil {
			return 0, f.pathErr("read", err)
		}
	}
	if err := f.refresh(ctx, false); err != nil {
		return 0, f.pathErr("read", err)
	}
	for attempt := 0; ; attempt++ {
		n, err := f.readBlocks(ctx, p, off)
		if errors.Is(err, errBlockMissing) && attempt < 3 {
			// The tree changed under us and its old blocks were freed:
			// read the latest version (a few times; a block still missing
			// then is reported).
			if err := f.refresh(ctx, true); err != nil {
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
	if uint64(off) >= f.size {
		return 0, nil
	}
	p = p[:min(uint64(len(p)), f.size-uint64(off))]
	if len(p) == 0 {
		return 0, nil
	}
	bs := int64(f.c.blockSize)
	first, last := off/bs, (off+int64(len(p))-1)/bs
	n := f.n
	inline := n.root.isZero() && n.height == 0
	refs := make([]blockRef, last-first+1)
	var blocks map[blockRef][]byte
	if !inline {
		for i := range refs {
			if f.dirty[uint64(first)+uint64(i)] != nil {
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
		if d := f.dirty[uint64(idx)]; d != nil {
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
	n, size, c := f.n, f.size, f.c
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

// Write writes p at the current offset (at the end of the file with
// O_APPEND).
func (f *File) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	if f.flag&os.O_APPEND != 0 {
		ctx, cancel := f.ctx()
		defer cancel()
		f.appendb = append(f.appendb, p...)
		f.size += uint64(len(p))
		f.off = int64(f.size)
		if len(f.appendb) >= f.c.wbuf {
			if err := f.commit(ctx); err != nil {
				return 0, f.pathErr("write", err)
			}
		}
		return len(p), nil
	}
	n, err := f.writeAt(p, f.off)
	f.off += int64(n)
	return n, err
}

// WriteAt writes p at off. It is an error on a file opened with O_APPEND.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	if f.flag&os.O_APPEND != 0 {
		return 0, f.pathErr("write", errors.New("invalid use of WriteAt on file opened with O_APPEND"))
	}
	return f.writeAt(p, off)
}

func (f *File) writeAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, f.pathErr("write", syscall.EINVAL)
	}
	if uint64(off)+uint64(len(p)) > maxFileSize {
		return 0, f.pathErr("write", syscall.EFBIG)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	bs := int64(f.c.blockSize)
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		idx, b := uint64(pos/bs), int(pos%bs)
		chunk := min(len(p)-done, int(bs)-b)
		d, err := f.dirtyFor(ctx, idx)
		if err != nil {
			return done, f.pathErr("write", err)
		}
		f.settle(d) // its data is about to change
		if !d.uploaded.isZero() {
			// The uploaded block's bytes are shared with the block cache
			// (and, after a commit with an unknown outcome, maybe with a
			// live tree): change a copy.
			d.data = append(make([]byte, 0, cap(d.data)), d.data...)
			d.frame = nil
		}
		if end := b + chunk; end > len(d.data) {
			f.dbytes += end - len(d.data)
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
			f.writeBehind(d)
		}
		done += chunk
	}
	f.writeEnd = max(f.writeEnd, uint64(off)+uint64(len(p)))
	f.size = max(f.size, f.writeEnd)
	if f.dbytes >= f.c.wbuf {
		if err := f.commit(ctx); err != nil {
			return done, f.pathErr("write", err)
		}
	}
	return done, nil
}

// writeBehind starts uploading a complete block in the background. The
// block's data must not change while the upload runs (settle waits).
func (f *File) writeBehind(d *dirtyBlock) {
	c, data, frame, done := f.c, d.data, d.frame, make(chan struct{})
	if frame != nil && (len(data) != cap(data) || &frame[2] != &data[0]) {
		frame = nil // data no longer fills the frame's payload room
	}
	d.inflight = done
	ctx := context.WithoutCancel(f.fs.ctx)
	go func() {
		defer close(done)
		c.upSem <- struct{}{}
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
func (f *File) settle(d *dirtyBlock) {
	if d.inflight == nil {
		return
	}
	<-d.inflight
	d.inflight = nil
	if d.bgErr != nil {
		return
	}
	if !d.uploaded.isZero() {
		f.garbage = append(f.garbage, d.uploaded)
	}
	// Only a block with no base is uploaded in the background, so the
	// upload is valid against a tree where the block is still absent.
	d.uploaded, d.upBase = d.bgRef, blockRef{}
}

// dirtyFor returns the buffer of block idx, materializing it from the
// committed content on first write.
func (f *File) dirtyFor(ctx context.Context, idx uint64) (*dirtyBlock, error) {
	if d := f.dirty[idx]; d != nil {
		return d, nil
	}
	if f.dirty == nil {
		f.dirty = make(map[uint64]*dirtyBlock)
	}
	d := &dirtyBlock{}
	src, base, inline, err := f.c.blockContent(ctx, f.n, idx)
	for attempt := 0; errors.Is(err, errBlockMissing) && attempt < 3; attempt++ {
		// Another client's commit freed the block our copy of the inode
		// names: materialize from the newer version instead.
		if err := f.refresh(ctx, true); err != nil {
			return nil, err
		}
		src, base, inline, err = f.c.blockContent(ctx, f.n, idx)
	}
	if err != nil {
		return nil, err
	}
	d.data = append(make([]byte, 0, len(src)), src...)
	d.base, d.inline = base, inline
	f.dbytes += len(d.data)
	f.dirty[idx] = d
	return d, nil
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

// Sync commits buffered writes.
func (f *File) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("sync", false); err != nil {
		return err
	}
	ctx, cancel := f.ctx()
	defer cancel()
	return f.pathErr("sync", f.commit(ctx))
}

// commit publishes buffered writes with one inode CAS (rebased as needed).
func (f *File) commit(ctx context.Context) error {
	if len(f.dirty) == 0 && len(f.appendb) == 0 {
		return nil
	}
	for _, d := range f.dirty {
		f.settle(d)
	}
	superseded := f.garbage
	f.garbage = nil
	var appended map[uint64]*dirtyBlock // the last attempt's append blocks
	n, err := f.c.update(ctx, f.ino, func(t *tx, n *inode) error {
		if !n.isReg() {
			return syscall.EISDIR
		}
		dirty, end := f.dirty, f.writeEnd
		if len(f.appendb) > 0 {
			// An earlier attempt lost its CAS: the data blocks it uploaded
			// for the append are referenced by no tree.
			for _, d := range appended {
				if !d.uploaded.isZero() {
					superseded = append(superseded, d.uploaded)
				}
			}
			var err error
			if dirty, err = f.c.appendBlocks(ctx, n, f.appendb); err != nil {
				return err
			}
			appended = dirty
			end = n.size + uint64(len(f.appendb))
		}
		size := max(n.size, end)
		if size > maxFileSize {
			return syscall.EFBIG
		}
		if err := f.c.applyDirty(ctx, t, n, dirty, size, &superseded); err != nil {
			return err
		}
		n.size = size
		n.mtime, n.ctime = now(), now()
		return nil
	})
	if err != nil && !errors.Is(err, errOutcomeUnknown) {
		// No version references the blocks the attempts uploaded (the
		// file may have been removed meanwhile): free them. A retried
		// commit uploads again.
		for _, d := range f.dirty {
			if !d.uploaded.isZero() {
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
	f.c.freeBlocks(ctx, superseded)
	if err != nil {
		return err
	}
	f.dirty, f.dbytes, f.appendb, f.writeEnd = nil, 0, nil, 0
	f.setInode(n, nanotime())
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
		if !d.uploaded.isZero() && d.upBase == cur && !inline && !d.inline {
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
		old[k] = d.uploaded
		d.uploaded, d.upBase = ref, cur
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

// Seek sets the offset for the next Read or Write. A resulting negative
// offset is EINVAL.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, f.pathErr("seek", fs.ErrClosed)
	}
	if f.dir != nil {
		if offset != 0 || whence != io.SeekStart {
			return 0, f.pathErr("seek", syscall.EINVAL)
		}
		f.dir.rewind()
		return 0, nil
	}
	var pos int64
	switch whence {
	case io.SeekStart:
		pos = offset
	case io.SeekCurrent:
		pos = f.off + offset
	case io.SeekEnd:
		pos = int64(f.size) + offset
	default:
		return 0, f.pathErr("seek", syscall.EINVAL)
	}
	if pos < 0 { // a negative result, or an int64 overflow past 2^63
		return 0, f.pathErr("seek", syscall.EINVAL)
	}
	f.off = pos
	return pos, nil
}

// Stat returns the file's attributes, including buffered growth.
func (f *File) Stat() (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, f.pathErr("stat", fs.ErrClosed)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	if err := f.refresh(ctx, false); err != nil {
		return nil, f.pathErr("stat", err)
	}
	fi := f.c.info(baseName(f.name), f.n)
	if f.n.isReg() {
		fi.attr.Size = f.size
	}
	return fi, nil
}

// Truncate commits buffered writes and changes the file's size. Shrinking
// frees the blocks past the end; growing again reads zeros.
func (f *File) Truncate(size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return f.pathErr("truncate", syscall.EINVAL)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	if err := f.commit(ctx); err != nil {
		return f.pathErr("truncate", err)
	}
	n, err := f.c.setattr(ctx, f.ino, &SetAttr{Size: &size})
	if err != nil {
		return f.pathErr("truncate", err)
	}
	f.setInode(n, nanotime())
	return nil
}

// Chmod changes the file's permission bits.
func (f *File) Chmod(mode fs.FileMode) error {
	return f.setattr("chmod", &SetAttr{Mode: &mode})
}

// Chown changes the file's owner and group.
func (f *File) Chown(uid, gid int) error {
	u, g := uint32(uid), uint32(gid)
	return f.setattr("chown", &SetAttr{Uid: &u, Gid: &g})
}

func (f *File) setattr(op string, a *SetAttr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.pathErr(op, fs.ErrClosed)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	n, err := f.c.setattr(ctx, f.ino, a)
	if err != nil {
		return f.pathErr(op, err)
	}
	f.setInode(n, nanotime())
	return nil
}

// ReadDir reads the entries of a directory opened as a File; see Dir.ReadDir.
func (f *File) ReadDir(n int) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, f.pathErr("readdir", fs.ErrClosed)
	}
	if f.dir == nil {
		return nil, f.pathErr("readdir", syscall.ENOTDIR)
	}
	return f.dir.ReadDir(n)
}

// Close commits buffered writes and releases the file. A second Close
// returns an error wrapping fs.ErrClosed.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return f.pathErr("close", fs.ErrClosed)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	err := f.commit(ctx)
	f.closed = true
	f.dirty, f.appendb = nil, nil
	f.c.release(ctx, f.ino)
	return f.pathErr("close", err)
}

// retain and release count a process's open handles of an inode.
func (c *core) retain(ino uint64) {
	c.omu.Lock()
	o := c.open[ino]
	if o == nil {
		o = &openInode{}
		c.open[ino] = o
	}
	o.refs++
	c.omu.Unlock()
}

func (c *core) release(ctx context.Context, ino uint64) {
	c.omu.Lock()
	o := c.open[ino]
	if o == nil {
		c.omu.Unlock()
		return
	}
	o.refs--
	last := o.refs == 0
	if last {
		delete(c.open, ino)
	}
	c.omu.Unlock()
	if last && o.orphaned {
		_ = c.destroy(ctx, ino)
	}
}

func baseName(name string) string {
	if name == "." || name == "" {
		return "."
	}
	_, b := split(name)
	return b
}
