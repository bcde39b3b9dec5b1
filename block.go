package voldfs

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"syscall"
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
	return time.Unix(0, r.bornNanos()) // without a birth id (snapshot.go)
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

func (c *core) blockKey(ref blockRef) string {
	if o := c.snap.origin; o != nil && ref.birth() <= c.snap.originID {
		return o.blockKey(ref) // a clone's block shared with its origin (snapshotclone.go)
	}
	return c.prefix + "b/" + ref.String()
}

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
	if c.snap.view {
		return blockRef{}, syscall.EROFS
	}
	ref := c.newRef() // with the epoch as its birth id (snapshot.go)
	if _, err := backend.Put(ctx, c.blocks, c.blockKey(ref), record); err != nil {
		if errors.Is(err, backend.ErrNoSpace) {
			return blockRef{}, fmt.Errorf("put block %s: %w (%w)", c.blockKey(ref), syscall.ENOSPC, err)
		}
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
// try again. It is the policy for every reader that follows an inode's
// tree: the commit loop, path lookups, fsck, listings and file reads.
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
	p, err := c.readBlock(ctx, kind, ref, true)
	if err != nil {
		return nil, err
	}
	c.cache.add(ref, p) // if the shared read was a getBlockNoCache
	return p, nil
}

// getBlockNoCache reads a block from the store; concurrent reads of one
// block share one request.
func (c *core) getBlockNoCache(ctx context.Context, kind byte, ref blockRef) ([]byte, error) {
	return c.readBlock(ctx, kind, ref, false)
}

// readBlock reads a block from the store, sharing the read with concurrent
// readers. With cache set the read caches the payload before it ends, so a
// reader arriving just after it finds the block cached.
func (c *core) readBlock(ctx context.Context, kind byte, ref blockRef, cache bool) ([]byte, error) {
	key := c.blockKey(ref)
	v, err := c.shared(ctx, key, func(ctx context.Context) (any, error) {
		b, _, err := c.blocks.Get(ctx, key)
		if errors.Is(err, backend.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", errBlockMissing, key)
		}
		if err != nil {
			return nil, fmt.Errorf("get block %s: %w", key, err)
		}
		p, err := openBlock(kind, key, b)
		if err == nil && cache {
			c.cache.add(ref, p)
		}
		return p, err
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
	refs = c.freeable(refs) // keep what a snapshot holds (snapshot.go)
	if len(refs) == 0 {
		return
	}
	for _, r := range refs {
		c.cache.remove(r)
		c.dirCache.remove(r)
	}
	ctx, cancel := c.background(ctx) // from now: a queued free expires too
	c.frees.Add(1)
	c.stats.frees.Add(1)
	go func() {
		defer c.frees.Done()
		defer c.stats.frees.Add(-1)
		defer cancel()
		select {
		case c.freeSem <- struct{}{}:
		case <-ctx.Done():
			return // the blocks stay: garbage that fsck collects
		}
		defer func() { <-c.freeSem }()
		c.parallel(ctx, len(refs), func(ctx context.Context, i int) error {
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
