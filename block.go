package voldfs

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/voldfs/voldfs/backend"
)

// blockRef names a write-once block: 8 bytes of creation time (Unix
// nanoseconds, big-endian, so GC can judge a block's age from its key alone)
// followed by 8 random bytes. The zero blockRef means "no block" (a hole).
// Refs are never reused, so a block belongs to exactly one tree and the
// committer that replaces it may free it at once.
type blockRef [16]byte

func (r blockRef) isZero() bool { return r == blockRef{} }

func (r blockRef) String() string { return hex.EncodeToString(r[:]) }

// born returns the block's creation time.
func (r blockRef) born() time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(r[:8])))
}

func newBlockRef() blockRef {
	var r blockRef
	binary.BigEndian.PutUint64(r[:8], uint64(time.Now().UnixNano()))
	if _, err := rand.Read(r[8:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return r
}

// nodeStore reads and writes the immutable nodes of directory tries. A node
// is a record (codec.go) the directory code frames and checks itself, so it
// is stored as it is. getNode returns the record of a block written by
// putNode; the returned slice is shared and must not be modified. putNode
// writes a new block and returns its ref. maxNode is the largest record
// putNode accepts.
type nodeStore interface {
	getNode(ctx context.Context, ref blockRef) ([]byte, error)
	putNode(ctx context.Context, payload []byte) (blockRef, error)
	maxNode() int
}

func (c *core) blockKey(ref blockRef) string { return c.prefix + "b/" + ref.String() }

// putBlock writes payload as a new block of the given record kind.
func (c *core) putBlock(ctx context.Context, kind byte, payload []byte) (blockRef, error) {
	return c.putRecord(ctx, kind, payload, seal(kind, payload))
}

// putSealed writes a block that already is a record of the given kind.
func (c *core) putSealed(ctx context.Context, kind byte, record []byte) (blockRef, error) {
	return c.putRecord(ctx, kind, record, record)
}

// putFramed writes a data block whose payload sits at frame[2:] with room
// for the checksum after it (see sealInPlace).
func (c *core) putFramed(ctx context.Context, frame []byte) (blockRef, error) {
	return c.putRecord(ctx, recData, frame[2:], sealInPlace(recData, frame))
}

func (c *core) putRecord(ctx context.Context, kind byte, payload, record []byte) (blockRef, error) {
	ref := newBlockRef()
	c.stats.blockPuts.Add(1)
	if _, err := backend.Put(ctx, c.blocks, c.blockKey(ref), record); err != nil {
		return blockRef{}, fmt.Errorf("put block %s: %w", c.blockKey(ref), err)
	}
	if kind != recIndex {
		c.cache.add(ref, payload)
	}
	return ref, nil
}

// errBlockMissing is returned by getBlock for a block the store lacks. The
// reader decides, by retryMissing, whether that means its inode changed
// (retry) or corruption.
var errBlockMissing = errors.New("voldfs: block missing")

// missingRetries is how many times a reader that met a missing block
// re-reads its inode and tries again before it reports the block missing.
const missingRetries = 5

// retryMissing is the one policy for a read that met a missing block. A
// block goes missing under a reader when a newer version of its inode freed
// it, so the reader re-reads the inode's latest version and tries again; a
// read that shared an older in-flight fetch may still see the old version,
// so it may take more than one try. retryMissing reports whether err is a
// missing block and the reader, having retried retries times already, should
// try again. Every reader that follows an inode's tree uses it: the commit
// loop, path lookups, directory listings and file reads.
func retryMissing(err error, retries int) bool {
	return retries < missingRetries && errors.Is(err, errBlockMissing)
}

// getBlock returns the payload of a block (see openBlock), from the cache
// when possible.
// Concurrent misses of one block share one store read.
func (c *core) getBlock(ctx context.Context, kind byte, ref blockRef) ([]byte, error) {
	if p, ok := c.cache.get(ref); ok {
		return p, nil
	}
	p, err := c.getBlockNoCache(ctx, kind, ref)
	if err != nil {
		return nil, err
	}
	c.cache.add(ref, p)
	return p, nil
}

// getBlockNoCache reads a block from the store; concurrent reads of one
// block share one request.
func (c *core) getBlockNoCache(ctx context.Context, kind byte, ref blockRef) ([]byte, error) {
	key := c.blockKey(ref)
	v, err, _ := c.flight.Do(key, func() (any, error) {
		c.stats.blockGets.Add(1)
		b, _, err := c.blocks.Get(ctx, key)
		if errors.Is(err, backend.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", errBlockMissing, key)
		}
		if err != nil {
			return nil, fmt.Errorf("get block %s: %w", key, err)
		}
		return openBlock(kind, key, b)
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// openBlock checks a stored block of the given kind and returns what
// getBlock hands out: the payload, or for a directory node (which the
// directory code frames and checks itself) the record. A directory node
// written by an earlier version of voldfs carries a second frame around the
// record: it is checked and removed here, so such stores keep opening.
func openBlock(kind byte, key string, b []byte) ([]byte, error) {
	if kind != recDirNode || len(b) > 2 && b[2] == recDirNode {
		return unseal(kind, key, b)
	}
	return b, nil
}

// fetchBlocks returns the payloads of the data blocks refs (zero refs are
// skipped), from the cache or with one batch request where the store offers
// it, else with parallel gets.
func (c *core) fetchBlocks(ctx context.Context, refs []blockRef) (map[blockRef][]byte, error) {
	got := make(map[blockRef][]byte, len(refs))
	var missing []blockRef
	for _, r := range refs {
		if !r.isZero() {
			if p, ok := c.cache.get(r); ok {
				got[r] = p
			} else {
				missing = append(missing, r)
			}
		}
	}
	if len(missing) == 0 {
		return got, nil
	}
	// One batch request saves round trips for small blocks; large blocks
	// are bandwidth-bound and go faster over parallel requests (and
	// share in-flight fetches with readahead through singleflight).
	if _, ok := c.blocks.(backend.BatchGetter); !ok || len(missing) == 1 || c.blockSize >= 64<<10 {
		ps := make([][]byte, len(missing))
		err := c.parallel(ctx, len(missing), func(ctx context.Context, i int) error {
			var err error
			ps[i], err = c.getBlock(ctx, recData, missing[i])
			return err
		})
		for i, r := range missing {
			got[r] = ps[i]
		}
		return got, err
	}
	keys := make([]string, len(missing))
	for i, r := range missing {
		keys[i] = c.blockKey(r)
	}
	c.stats.blockGets.Add(1)
	items, err := backend.GetMulti(ctx, c.blocks, keys)
	if err != nil {
		return nil, fmt.Errorf("get %d blocks: %w", len(keys), err)
	}
	for i, r := range missing {
		it, ok := items[keys[i]]
		if !ok {
			return nil, fmt.Errorf("%w: %s", errBlockMissing, keys[i])
		}
		p, err := unseal(recData, keys[i], it.Value)
		if err != nil {
			return nil, err
		}
		c.cache.add(r, p)
		got[r] = p
	}
	return got, nil
}

// freeBlocks deletes blocks no tree references any more, in the background
// so that the operation that freed them does not wait (waitFrees waits).
// Failures only leak space, which fsck's GC reclaims, so they are not
// reported. The cache forgets the blocks at once.
func (c *core) freeBlocks(ctx context.Context, refs []blockRef) {
	if len(refs) == 0 {
		return
	}
	for _, r := range refs {
		c.cache.remove(r)
		c.dirCache.remove(r)
	}
	ctx = context.WithoutCancel(ctx)
	c.frees.Add(1)
	go func() {
		defer c.frees.Done()
		c.freeSem <- struct{}{}
		defer func() { <-c.freeSem }()
		c.parallel(ctx, len(refs), func(ctx context.Context, i int) error {
			c.stats.blockDeletes.Add(1)
			_ = c.blocks.Delete(ctx, c.blockKey(refs[i]), backend.AnyVersion)
			return nil
		})
	}()
}

// waitFrees waits for background frees to finish.
func (c *core) waitFrees() { c.frees.Wait() }

// dirNodes adapts the block layer to the directory trie's nodeStore.
type dirNodes struct{ c *core }

func (d dirNodes) getNode(ctx context.Context, ref blockRef) ([]byte, error) {
	return d.c.getBlock(ctx, recDirNode, ref)
}
func (d dirNodes) putNode(ctx context.Context, record []byte) (blockRef, error) {
	return d.c.putSealed(ctx, recDirNode, record)
}
func (d dirNodes) maxNode() int { return d.c.blockSize }

// Decoded directory nodes are kept in a cache of their own: the block
// cache holds the raw payloads under the same refs.
func (d dirNodes) decodedNode(ref blockRef) *dirNode {
	if v, ok := d.c.dirCache.getAny(ref); ok {
		return v.(*dirNode)
	}
	return nil
}

func (d dirNodes) keepDecoded(ref blockRef, n *dirNode) {
	size := 64
	for _, e := range n.ents {
		size += len(e.name) + 48
	}
	d.c.dirCache.addAny(ref, n, size+len(n.kids)*32)
}

// File block trees.
//
// A regular file's data is either inline in its inode (small files), one data
// block (height 0, root = the block), or a radix tree of index nodes of the
// given height whose leaves point to data blocks. An index node holds up to
// 2^fanBits entries, stored sparsely (only non-hole entries), so a huge sparse
// file costs a few small nodes. A hole is an absent entry, never a missing
// block. Data blocks may be shorter than the block size: the missing tail
// reads as zeros.

type idxEntry struct {
	i   uint32
	ref blockRef
}

func encodeIndex(ents []idxEntry) []byte {
	e := enc{b: make([]byte, 0, 4+len(ents)*20)}
	e.uv(uint64(len(ents)))
	prev := uint64(0)
	for k, x := range ents {
		d := uint64(x.i)
		if k > 0 {
			d = uint64(x.i) - prev
		}
		e.uv(d)
		e.raw(x.ref[:])
		prev = uint64(x.i)
	}
	return e.b
}

func decodeIndex(key string, p []byte, fan uint64) ([]idxEntry, error) {
	d := dec{b: p, key: key}
	n := d.uv()
	if n > uint64(len(p))/17 || n > fan {
		return nil, corruptf("%s: index node claims %d entries", key, n)
	}
	ents := make([]idxEntry, 0, n)
	var prev uint64
	for k := uint64(0); k < n && d.err == nil; k++ {
		delta := d.uv()
		i := delta
		if k > 0 {
			if delta == 0 {
				return nil, corruptf("%s: index entries out of order", key)
			}
			i = prev + delta
		}
		if i >= fan {
			return nil, corruptf("%s: index entry %d beyond fan-out %d", key, i, fan)
		}
		var x idxEntry
		x.i = uint32(i)
		copy(x.ref[:], d.raw(16))
		if x.ref.isZero() {
			return nil, corruptf("%s: zero ref in index node", key)
		}
		ents = append(ents, x)
		prev = i
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return ents, nil
}

// fanFor returns log2 of the index fan-out for a block size: as many entries
// as fit a block at their worst-case encoded size, rounded down to a power of
// two so that index arithmetic is shifts.
func fanFor(blockSize int) uint {
	b := uint(2)
	for (1<<(b+1))*24+16 <= blockSize && b < 20 {
		b++
	}
	return b
}

// heightFor returns the tree height needed to address nblocks blocks.
func (c *core) heightFor(nblocks uint64) uint8 {
	if nblocks <= 1 {
		return 0
	}
	h := uint8(1)
	for bits := c.fanBits; bits < 64 && nblocks > 1<<bits; bits += c.fanBits {
		h++
	}
	return h
}

// readIndex returns the decoded entries of an index node. The decoded form
// is what the cache keeps, so a lookup does not decode again.
func (c *core) readIndex(ctx context.Context, ref blockRef) ([]idxEntry, error) {
	if v, ok := c.cache.getAny(ref); ok {
		if ents, ok := v.([]idxEntry); ok {
			return ents, nil
		}
	}
	p, err := c.getBlockNoCache(ctx, recIndex, ref)
	if err != nil {
		return nil, err
	}
	ents, err := decodeIndex(c.blockKey(ref), p, 1<<c.fanBits)
	if err != nil {
		return nil, err
	}
	c.cache.addAny(ref, ents, len(ents)*20)
	return ents, nil
}

// treeLookup returns the data block holding block index idx of n (zero for a
// hole).
func (c *core) treeLookup(ctx context.Context, n *inode, idx uint64) (blockRef, error) {
	if n.height == 0 {
		if idx == 0 {
			return n.root, nil
		}
		return blockRef{}, nil
	}
	if idx>>(uint(n.height)*c.fanBits) != 0 && uint(n.height)*c.fanBits < 64 {
		return blockRef{}, nil
	}
	ref := n.root
	for level := int(n.height); level >= 1 && !ref.isZero(); level-- {
		ents, err := c.readIndex(ctx, ref)
		if err != nil {
			return blockRef{}, err
		}
		slot := uint32(idx>>(uint(level-1)*c.fanBits)) & (1<<c.fanBits - 1)
		k := sort.Search(len(ents), func(k int) bool { return ents[k].i >= slot })
		if k == len(ents) || ents[k].i != slot {
			return blockRef{}, nil
		}
		ref = ents[k].ref
	}
	return ref, nil
}

// blockUpdate sets block index i to ref (zero: make it a hole).
type blockUpdate struct {
	i   uint64
	ref blockRef
}

// treeEdit builds a new version of a file's block tree, recording in its
// commit record the index nodes it writes and the blocks only the old tree
// referenced.
type treeEdit struct {
	c       *core
	ctx     context.Context
	rec     *tx
	limit   uint64 // blocks at or past limit are dropped
	virtual map[blockRef][]idxEntry
}

// treeUpdate applies ups (sorted by index, all below nblocks) to n's tree and
// drops every block at or past nblocks. It returns the new root and height,
// and records in rec the blocks it wrote (index nodes) and the blocks only
// the old tree referenced (replaced data blocks and index nodes).
func (c *core) treeUpdate(ctx context.Context, rec *tx, n *inode, ups []blockUpdate, nblocks uint64) (root blockRef, height uint8, err error) {
	t := &treeEdit{c: c, ctx: ctx, rec: rec, limit: nblocks}
	root, cur := n.root, n.height
	want := c.heightFor(nblocks)
	// Growing: the old tree becomes the first child of new index levels.
	// The new levels are virtual until rebuilt (they always are).
	for cur < want {
		if t.virtual == nil {
			t.virtual = make(map[blockRef][]idxEntry)
		}
		v := newBlockRef()
		v[0] = 0xff // never a real ref: real refs start with a timestamp
		var ents []idxEntry
		if !root.isZero() {
			ents = []idxEntry{{0, root}}
		}
		t.virtual[v] = ents
		root, cur = v, cur+1
	}
	// Shrinking: only the first child of the top levels survives.
	for cur > want {
		if root.isZero() {
			cur--
			continue
		}
		ents, err := t.entries(root)
		if err != nil {
			return blockRef{}, 0, err
		}
		next := blockRef{}
		for _, x := range ents {
			if x.i == 0 {
				next = x.ref
			} else if err := t.drop(x.ref, int(cur)-1); err != nil {
				return blockRef{}, 0, err
			}
		}
		t.free(root)
		root, cur = next, cur-1
	}
	root, err = t.rebuild(int(cur), root, 0, ups)
	if err != nil {
		return blockRef{}, 0, err
	}
	return root, cur, nil
}

func (t *treeEdit) entries(ref blockRef) ([]idxEntry, error) {
	if v, ok := t.virtual[ref]; ok {
		return v, nil
	}
	return t.c.readIndex(t.ctx, ref)
}

func (t *treeEdit) isVirtual(ref blockRef) bool {
	_, ok := t.virtual[ref]
	return ok
}

func (t *treeEdit) free(ref blockRef) {
	if _, ok := t.virtual[ref]; ok || ref.isZero() {
		return
	}
	t.rec.free(ref)
}

// drop frees a whole subtree.
func (t *treeEdit) drop(ref blockRef, level int) error {
	if ref.isZero() {
		return nil
	}
	if level > 0 {
		ents, err := t.entries(ref)
		if err != nil {
			return err
		}
		for _, x := range ents {
			if err := t.drop(x.ref, level-1); err != nil {
				return err
			}
		}
	}
	t.free(ref)
	return nil
}

// rebuild returns the new ref of the subtree at level (0: a data block)
// covering blocks from base, applying ups and the limit.
func (t *treeEdit) rebuild(level int, old blockRef, base uint64, ups []blockUpdate) (blockRef, error) {
	if level == 0 {
		if base >= t.limit {
			t.free(old)
			return blockRef{}, nil
		}
		if len(ups) == 0 {
			return old, nil
		}
		nu := ups[len(ups)-1].ref
		if nu != old {
			t.free(old)
		}
		return nu, nil
	}
	childBits := uint(level-1) * t.c.fanBits
	childSpan := uint64(1) << childBits
	var ents []idxEntry
	if !old.isZero() {
		var err error
		if ents, err = t.entries(old); err != nil {
			return blockRef{}, err
		}
	}
	_, virtual := t.virtual[old]
	changed := virtual
	out := make([]idxEntry, 0, len(ents)+len(ups))
	k := 0 // next entry
	for len(ups) > 0 || k < len(ents) {
		// Next slot to visit: the smaller of the next entry and next update.
		var slot uint32
		switch {
		case k < len(ents) && len(ups) > 0:
			slot = min(ents[k].i, uint32((ups[0].i-base)>>childBits))
		case k < len(ents):
			slot = ents[k].i
		default:
			slot = uint32((ups[0].i - base) >> childBits)
		}
		childBase := base + uint64(slot)<<childBits
		var oldChild blockRef
		if k < len(ents) && ents[k].i == slot {
			oldChild = ents[k].ref
			k++
		}
		j := 0
		for j < len(ups) && ups[j].i < childBase+childSpan {
			j++
		}
		childUps := ups[:j]
		ups = ups[j:]
		var nc blockRef
		switch {
		case childBase >= t.limit:
			if err := t.drop(oldChild, level-1); err != nil {
				return blockRef{}, err
			}
		case len(childUps) == 0 && childBase+childSpan <= t.limit && !t.isVirtual(oldChild):
			nc = oldChild
		default:
			var err error
			if nc, err = t.rebuild(level-1, oldChild, childBase, childUps); err != nil {
				return blockRef{}, err
			}
		}
		if nc != oldChild {
			changed = true
		}
		if !nc.isZero() {
			out = append(out, idxEntry{slot, nc})
		}
	}
	if !changed {
		return old, nil
	}
	t.free(old)
	if len(out) == 0 {
		return blockRef{}, nil
	}
	ref, err := t.c.putBlock(t.ctx, recIndex, encodeIndex(out))
	if err != nil {
		return blockRef{}, err
	}
	t.c.cache.addAny(ref, out, len(out)*20)
	t.rec.wrote(ref)
	return ref, nil
}

// treeRefs calls fn for every block of n's tree (index nodes and data).
func (c *core) treeRefs(ctx context.Context, n *inode, fn func(ref blockRef, kind byte) error) error {
	if n.root.isZero() {
		return nil
	}
	var walk func(ref blockRef, level int) error
	walk = func(ref blockRef, level int) error {
		if level == 0 {
			return fn(ref, recData)
		}
		if err := fn(ref, recIndex); err != nil {
			return err
		}
		ents, err := c.readIndex(ctx, ref)
		if err != nil {
			return err
		}
		for _, x := range ents {
			if err := walk(x.ref, level-1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(n.root, int(n.height))
}

// parallel runs fn(0..n-1) with at most c.par calls in flight and returns
// the first error.
func (c *core) parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	if n == 1 {
		return fn(ctx, 0)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.par)
	for i := 0; i < n; i++ {
		g.Go(func() error { return fn(gctx, i) })
	}
	return g.Wait()
}
