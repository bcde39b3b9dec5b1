package voldfs

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/txn"
)

// DefaultBlockSize is the block size of a filesystem formatted without one:
// 512 KiB, a power of two that fits memcached's default 1 MiB item limit with
// ample room for headers.
const DefaultBlockSize = 512 << 10

// DefaultName is the filesystem name (store key prefix) used when Options.Name
// is empty.
const DefaultName = "voldfs"

// RootIno is the inode number of the root directory.
const RootIno uint64 = 1

// Options configure Format and Open. The zero value is usable.
type Options struct {
	// Name is the filesystem's name in the store: every key starts with
	// Name + "/". At most 64 bytes of [A-Za-z0-9._-]. Default DefaultName.
	Name string

	// BlockSize, for Format only, is the data block size: a power of two
	// from 4 KiB to 16 MiB, no larger than the store's value limit allows.
	// Default DefaultBlockSize.
	BlockSize int

	// Blocks, if set, is a separate store for write-once blocks (file data
	// and tree nodes); inodes stay in the main store. The pairing is recorded
	// at Format and checked at Open.
	Blocks backend.Store

	// AttrTimeout is how long a cached inode may answer Stat and path
	// lookups before it is fetched again. Open always fetches. Default 1 s;
	// negative means zero (strict).
	AttrTimeout time.Duration

	// CacheSize bounds the bytes of the immutable block cache. Default
	// 64 MiB; negative disables the cache.
	CacheSize int64

	// WriteBuffer bounds the bytes each open file buffers before it commits.
	// Default 16 MiB (at least two blocks).
	WriteBuffer int

	// Parallelism bounds the concurrent store requests of one operation.
	// Default 8.
	Parallelism int

	// OpTimeout, if positive, bounds every FS and File operation. Use
	// FS.WithContext for per-call bounds.
	OpTimeout time.Duration

	// Uid and Gid own new files and directories. Default: the process's.
	Uid, Gid *uint32

	// Snapshots, for Format only, allows FS.Snapshot on a store without
	// native multi-key commits (memcached, a store through backend/txn):
	// every client then fences every commit from Open on, which costs each
	// write a lock of one extra key (doc.go, "Snapshots"). Stores with
	// native commits allow snapshots without it, at no cost.
	Snapshots bool

	// noBackoff retries a conflict at once (for tests whose scheduler
	// decides who goes next, where sleeping only costs time).
	noBackoff bool
	// maxUnpublished replaces MaxUnpublished (for tests).
	maxUnpublished time.Duration
}

// FS is a voldfs filesystem opened on a store. It is safe for concurrent use.
// An FS from WithContext shares everything with its parent but the context.
type FS struct {
	c    *core
	ctx  context.Context
	root uint64 // root of the view (Sub); 0 is RootIno
}

// core is the state shared by every view of one opened filesystem.
type core struct {
	inodes    backend.Store // through txn.Wrap if the store has no Committer
	blocks    backend.Store
	split     bool // blocks live in a store of their own (Options.Blocks)
	name      string
	prefix    string
	sb        superblock
	blockSize int
	fanBits   uint
	attrTTL   time.Duration
	wbuf      int
	par       int
	opTimeout time.Duration
	noBackoff bool // Options.noBackoff
	// maxUnpublished: a commit uploads again a block of its own older than
	// this (MaxUnpublished), so that GC never deletes what it publishes.
	maxUnpublished time.Duration
	uid, gid       uint32

	cache    *blockCache // immutable block payloads (decoded, for index nodes)
	dirCache *blockCache // decoded directory trie nodes
	flight   singleflight.Group

	imu        sync.Mutex
	inodeCache map[uint64]*cachedInode
	maxInodes  int

	omu  sync.Mutex
	open map[uint64]*openInode // inodes with open handles in this process

	closed  atomic.Bool
	locks   lockState      // lock session and its bookkeeping (session.go)
	stats   counters       // stats.go
	snap    snapState      // snapshot table and fence (snapshot.go)
	frees   sync.WaitGroup // background block frees
	freeSem chan struct{}  // bounds concurrent background frees
	upSem   chan struct{}  // bounds concurrent write-behind uploads
}

func validFSName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func newCore(ctx context.Context, s backend.Store, o *Options) (*core, error) {
	if o == nil {
		o = &Options{}
	}
	name := o.Name
	if name == "" {
		name = DefaultName
	}
	if !validFSName(name) {
		return nil, fmt.Errorf("voldfs: invalid filesystem name %q: %w", name, fs.ErrInvalid)
	}
	c := &core{
		name:           name,
		prefix:         name + "/",
		attrTTL:        time.Second,
		wbuf:           16 << 20,
		par:            8,
		opTimeout:      o.OpTimeout,
		noBackoff:      o.noBackoff,
		maxUnpublished: MaxUnpublished,
		uid:            uint32(os.Getuid()),
		gid:            uint32(os.Getgid()),
		inodeCache:     make(map[uint64]*cachedInode),
		maxInodes:      1 << 18,
		open:           make(map[uint64]*openInode),
		freeSem:        make(chan struct{}, 4),
	}
	blocks := s
	if o.Blocks != nil {
		blocks = o.Blocks
		c.split = o.Blocks != s
	}
	native, err := canCommit(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("voldfs: probe the store for multi-key commits: %w", err)
	}
	c.snap.native = native // snapshot.go: fence every commit
	// Requests are counted as they reach the stores (stats.go), below
	// the commit fallback.
	c.inodes, c.blocks = countStore(s, &c.stats.inodes), countStore(blocks, &c.stats.blocks)
	if !native {
		// Namespace changes are multi-inode commits: build them on the
		// store's CAS. The wrapper reads plain values as they are, so a
		// filesystem formatted before opens unchanged; blocks never take
		// part in a commit and stay unwrapped.
		c.inodes = txn.Wrap(c.inodes)
	}
	if o.AttrTimeout > 0 {
		c.attrTTL = o.AttrTimeout
	} else if o.AttrTimeout < 0 {
		c.attrTTL = 0
	}
	cs := int64(64 << 20)
	if o.CacheSize != 0 {
		cs = o.CacheSize
	}
	c.cache = newBlockCache(cs)
	c.dirCache = newBlockCache(cs / 4)
	if o.WriteBuffer > 0 {
		c.wbuf = o.WriteBuffer
	}
	if o.maxUnpublished > 0 {
		c.maxUnpublished = o.maxUnpublished
	}
	if o.Parallelism > 0 {
		c.par = o.Parallelism
	}
	if o.Uid != nil {
		c.uid = *o.Uid
	}
	if o.Gid != nil {
		c.gid = *o.Gid
	}
	c.upSem = make(chan struct{}, c.par)
	return c, nil
}

func (c *core) setBlockSize(bs int) {
	c.blockSize = bs
	c.fanBits = fanFor(bs)
	c.wbuf = max(c.wbuf, 2*bs)
}

// Format creates a new, empty filesystem in s and opens it. It fails with an
// error wrapping fs.ErrExist if s already holds a filesystem of that name.
func Format(ctx context.Context, s backend.Store, o *Options) (*FS, error) {
	c, err := newCore(ctx, s, o)
	if err != nil {
		return nil, err
	}
	bs := DefaultBlockSize
	if o != nil && o.BlockSize != 0 {
		bs = o.BlockSize
	}
	if bs < 4<<10 || bs > 16<<20 || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("voldfs: block size %d is not a power of two from 4 KiB to 16 MiB: %w", bs, fs.ErrInvalid)
	}
	if lim := backend.MaxValueSize(c.blocks); lim > 0 && bs+64 > lim {
		return nil, fmt.Errorf("voldfs: block size %d exceeds the store's value limit %d: %w", bs, lim, fs.ErrInvalid)
	}
	c.setBlockSize(bs)
	var id [16]byte
	rand.Read(id[:])
	c.sb = superblock{version: formatVersion, blockSize: uint32(bs), root: RootIno, id: id, created: time.Now().UnixNano(), split: c.split,
		snapshots: o != nil && o.Snapshots}
	c.snap.fenced = c.sb.snapshots
	if _, _, err := s.Get(ctx, c.superKey()); err == nil {
		return nil, fmt.Errorf("voldfs: format %q: %w", c.name, fs.ErrExist)
	} else if !errors.Is(err, backend.ErrNotFound) {
		return nil, fmt.Errorf("voldfs: format %q: %w", c.name, err)
	}
	if c.sb.split {
		// The blocks store learns which filesystem it belongs to, so that
		// Open with the wrong pair is refused.
		if _, err := c.blocks.CAS(ctx, c.prefix+"blocks", backend.NoVersion, id[:]); err != nil {
			return nil, fmt.Errorf("voldfs: format %q: blocks store: %w", c.name, err)
		}
	}
	now := time.Now().UnixNano()
	root := &inode{ino: RootIno, mode: sIFDIR | 0o755, uid: c.uid, gid: c.gid, nlink: 2, gen: 1,
		atime: now, mtime: now, ctime: now, btime: now, parent: RootIno}
	key := c.inodeKey(RootIno)
	// A root left by a format that crashed before its superblock is replaced.
	_, ver, err := s.Get(ctx, key)
	if err != nil && !errors.Is(err, backend.ErrNotFound) {
		return nil, fmt.Errorf("voldfs: format %q: %w", c.name, err)
	}
	if ver, err = s.CAS(ctx, key, ver, encodeInode(root)); err != nil {
		return nil, fmt.Errorf("voldfs: format %q: root inode: %w", c.name, err)
	}
	c.putInode(root, ver)
	if _, err := s.CAS(ctx, c.superKey(), backend.NoVersion, encodeSuperblock(&c.sb)); err != nil {
		if errors.Is(err, backend.ErrConflict) {
			err = fs.ErrExist
		}
		return nil, fmt.Errorf("voldfs: format %q: superblock: %w", c.name, err)
	}
	return &FS{c: c, ctx: context.Background()}, nil
}

// Open opens the filesystem named o.Name in s. A store without it gives an
// error wrapping ErrNotFormatted; an unknown format version ErrFormatVersion.
// A cross-directory rename intent left by a crashed client of an older
// version is finished (this version writes none: renames are one commit).
func Open(ctx context.Context, s backend.Store, o *Options) (*FS, error) {
	c, err := newCore(ctx, s, o)
	if err != nil {
		return nil, err
	}
	b, _, err := s.Get(ctx, c.superKey())
	if errors.Is(err, backend.ErrNotFound) {
		return nil, fmt.Errorf("voldfs: open %q: %w", c.name, ErrNotFormatted)
	}
	if err != nil {
		return nil, fmt.Errorf("voldfs: open %q: %w", c.name, err)
	}
	sb, err := decodeSuperblock(c.superKey(), b)
	if err != nil {
		return nil, fmt.Errorf("voldfs: open %q: %w", c.name, err)
	}
	c.sb = *sb
	// Options.Snapshots at Format: fence every commit (snapshot.go).
	c.snap.fenced = sb.snapshots
	if err := c.openClone(ctx); err != nil { // snapshotclone.go
		return nil, fmt.Errorf("voldfs: open %q: %w", c.name, err)
	}
	c.setBlockSize(int(sb.blockSize))
	if sb.split != c.split {
		return nil, fmt.Errorf("voldfs: open %q: the filesystem was formatted with split=%v stores: %w", c.name, sb.split, ErrWrongStore)
	}
	if sb.split {
		id, _, err := c.blocks.Get(ctx, c.prefix+"blocks")
		if err != nil && !errors.Is(err, backend.ErrNotFound) {
			return nil, fmt.Errorf("voldfs: open %q: blocks store: %w", c.name, err)
		}
		if string(id) != string(sb.id[:]) {
			return nil, fmt.Errorf("voldfs: open %q: the blocks store belongs to another filesystem: %w", c.name, ErrWrongStore)
		}
	}
	f := &FS{c: c, ctx: context.Background()}
	if err := c.recoverRename(ctx); err != nil {
		return nil, fmt.Errorf("voldfs: open %q: finishing an interrupted rename: %w", c.name, err)
	}
	return f, nil
}

// Close releases the FS. It does not close the stores, which the caller
// owns. Files still open are not committed.
func (f *FS) Close() error {
	if f.c.closed.Swap(true) {
		return fs.ErrClosed
	}
	f.c.locks.close()
	f.c.waitFrees()
	return nil
}

// WaitFrees waits until the blocks that operations so far have freed are
// deleted from the store: a commit deletes the blocks it replaced in the
// background, after its CAS wins. It commits nothing (File.Sync does).
func (f *FS) WaitFrees() { f.c.waitFrees() }

// WithContext returns a view of f whose operations, and those of files it
// opens, are bounded by ctx.
func (f *FS) WithContext(ctx context.Context) *FS {
	return &FS{c: f.c, ctx: ctx, root: f.root}
}

// BlockSize returns the filesystem's data block size.
func (f *FS) BlockSize() int { return f.c.blockSize }

// op returns the context for one operation.
func (f *FS) op() (context.Context, context.CancelFunc) {
	ctx := f.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if f.c.opTimeout > 0 {
		return context.WithTimeout(ctx, f.c.opTimeout)
	}
	return ctx, func() {}
}

// newIno returns a random inode number: unique without coordination because
// the inode is created with a create-only CAS, and a collision just draws
// again. Numbers stay below 2^63 and above the root's.
func newIno() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if n := binary.BigEndian.Uint64(b[:]) >> 1; n > RootIno {
			return n
		}
	}
}

// canCommit reports whether s commits several keys atomically itself: a
// backend.Committer whose empty commit is not refused with
// errors.ErrUnsupported (a wrapper forwarding to a store without commits,
// or a Redis Cluster, whose keys span hash slots, refuses it).
func canCommit(ctx context.Context, s backend.Store) (bool, error) {
	cm, ok := s.(backend.Committer)
	if !ok {
		return false, nil
	}
	_, err := cm.Commit(ctx, nil)
	if errors.Is(err, errors.ErrUnsupported) {
		return false, nil
	}
	return err == nil, err
}
