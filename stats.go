package voldfs

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/voldfs/voldfs/backend"
)

// Stats are an FS's counters: what its callers asked for, what it asked of
// its stores, how its caches did, and what it has in flight. Every field
// but the gauges (Uploads, Frees, DirtyBytes, OpenInodes) is cumulative
// since Open or Format, so the difference of two Stats measures what
// happened between them. Every view of one opened filesystem (WithContext,
// Sub) shares them. Store requests are counted as they reach the store,
// below the multi-key commit fallback (package backend/txn): on a store
// without native commits one namespace change is several CASes.
type Stats struct {
	// Ops counts the calls of the public API by kind: the names in
	// OpKinds ("open", "read", "write", "stat", ...). A call that fails
	// counts too.
	Ops map[string]int64

	// Inodes and Blocks count the requests to the inode store and the
	// block store (the same store, counted apart, unless Options.Blocks
	// set a store for blocks).
	Inodes, Blocks StoreStats

	// Conflicts counts inode CASes, commits and lock-table updates that
	// lost to another writer and were retried (the store's refusals, these
	// and others, are Inodes.Conflicts and Blocks.Conflicts).
	Conflicts int64
	// Retries counts the backoffs before a retry: after a conflict, a
	// block freed under a commit being built, or an unknown store outcome
	// being resolved by reading.
	Retries int64

	// CacheHits and CacheMisses count lookups in the block cache (file
	// data and index nodes); DirCache* those in the directory-node cache;
	// AttrCache* those in the inode cache by reads that may take a cached
	// copy (path walks and Stat within AttrTimeout; commits, which start
	// from the cached version whatever its age), not by those that must
	// fetch (Open).
	CacheHits, CacheMisses         int64
	DirCacheHits, DirCacheMisses   int64
	AttrCacheHits, AttrCacheMisses int64

	// BytesRead and BytesWritten count the bytes callers read from and
	// wrote to Files (the store's side is Inodes/Blocks BytesIn/BytesOut).
	BytesRead, BytesWritten int64

	// Uploads is the number of background block uploads (write-behind of
	// full blocks) started and not finished, running or waiting for one of
	// the Parallelism slots; Frees the number of background batches
	// of replaced blocks waiting to be deleted or being deleted; DirtyBytes
	// the bytes open Files buffer for write-back (the blocks their writes
	// change, and appends) until they commit; OpenInodes the inodes with
	// open Files. They are gauges: values now.
	Uploads, Frees, DirtyBytes, OpenInodes int64

	// The figures of earlier versions, kept for their users:
	// InodeGets is Inodes.Gets + Inodes.GetMultis; InodeCAS is
	// Inodes.CASes + Inodes.Puts + Inodes.Commits (every inode-store
	// write); InodeDeletes is Inodes.Deletes; BlockGets, BlockPuts and
	// BlockDeletes are the same sums for Blocks.
	InodeGets, InodeCAS, InodeDeletes  int64
	BlockGets, BlockPuts, BlockDeletes int64
}

// StoreStats count the requests an FS made to one store.
type StoreStats struct {
	// Gets, GetMultis (batch reads, one request however many keys), CASes,
	// Puts (blind writes of fresh keys; on a store without
	// backend.Putter they are CASes), Deletes, Commits (native multi-key
	// commits), Lists (key listings, one per call however many pages the
	// store needed), Syncs (durability waits) and Watches (waits for a key
	// to change).
	Gets, GetMultis, CASes, Puts, Deletes, Commits, Lists, Syncs, Watches int64
	// Conflicts counts requests refused with backend.ErrConflict; Errors
	// those that failed otherwise (not counting backend.ErrNotFound).
	Conflicts, Errors int64
	// BytesIn counts the value bytes read from the store, BytesOut those
	// written to it (keys and framing of the store's protocol not included).
	BytesIn, BytesOut int64
}

// RoundTrips is the number of requests in s.
func (s StoreStats) RoundTrips() int64 {
	return s.Gets + s.GetMultis + s.CASes + s.Puts + s.Deletes + s.Commits + s.Lists + s.Syncs + s.Watches
}

// RoundTrips is the total number of store requests in s.
func (s Stats) RoundTrips() int64 { return s.Inodes.RoundTrips() + s.Blocks.RoundTrips() }

// Sub returns s less an earlier t: what happened between them. Gauges keep
// s's values.
func (s Stats) Sub(t Stats) Stats {
	d := s
	d.Ops = make(map[string]int64, len(s.Ops))
	for k, v := range s.Ops {
		d.Ops[k] = v - t.Ops[k]
	}
	d.Inodes, d.Blocks = s.Inodes.sub(t.Inodes), s.Blocks.sub(t.Blocks)
	d.Conflicts -= t.Conflicts
	d.Retries -= t.Retries
	d.CacheHits -= t.CacheHits
	d.CacheMisses -= t.CacheMisses
	d.DirCacheHits -= t.DirCacheHits
	d.DirCacheMisses -= t.DirCacheMisses
	d.AttrCacheHits -= t.AttrCacheHits
	d.AttrCacheMisses -= t.AttrCacheMisses
	d.BytesRead -= t.BytesRead
	d.BytesWritten -= t.BytesWritten
	d.legacy()
	return d
}

func (s StoreStats) sub(t StoreStats) StoreStats {
	return StoreStats{s.Gets - t.Gets, s.GetMultis - t.GetMultis, s.CASes - t.CASes, s.Puts - t.Puts,
		s.Deletes - t.Deletes, s.Commits - t.Commits, s.Lists - t.Lists, s.Syncs - t.Syncs, s.Watches - t.Watches,
		s.Conflicts - t.Conflicts, s.Errors - t.Errors, s.BytesIn - t.BytesIn, s.BytesOut - t.BytesOut}
}

// legacy fills in the fields of earlier versions.
func (s *Stats) legacy() {
	s.InodeGets, s.InodeCAS, s.InodeDeletes = s.Inodes.Gets+s.Inodes.GetMultis, s.Inodes.CASes+s.Inodes.Puts+s.Inodes.Commits, s.Inodes.Deletes
	s.BlockGets, s.BlockPuts, s.BlockDeletes = s.Blocks.Gets+s.Blocks.GetMultis, s.Blocks.CASes+s.Blocks.Puts+s.Blocks.Commits, s.Blocks.Deletes
}

// Stats returns f's counters now. It takes no lock that an operation holds
// for long, so it may be called at any time (from a signal handler's
// goroutine, a metrics scrape).
func (f *FS) Stats() Stats {
	c := f.c
	s := &c.stats
	st := Stats{
		Ops:             make(map[string]int64, numOps),
		Inodes:          s.inodes.load(),
		Blocks:          s.blocks.load(),
		Conflicts:       s.conflicts.Load(),
		Retries:         s.retries.Load(),
		AttrCacheHits:   s.attrHits.Load(),
		AttrCacheMisses: s.attrMisses.Load(),
		BytesRead:       s.bytesRead.Load(),
		BytesWritten:    s.bytesWritten.Load(),
		Uploads:         s.uploads.Load(),
		Frees:           s.frees.Load(),
		DirtyBytes:      s.dirty.Load(),
	}
	for k := range numOps {
		st.Ops[opNames[k]] = s.ops[k].Load()
	}
	st.CacheHits, st.CacheMisses = c.cache.counts()
	st.DirCacheHits, st.DirCacheMisses = c.dirCache.counts()
	c.omu.Lock()
	st.OpenInodes = int64(len(c.open))
	c.omu.Unlock()
	st.legacy()
	return st
}

// counts returns the cache's hits and misses.
func (c *blockCache) counts() (hits, misses int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.miss
}

// counters are an FS's live counters: atomics, so that counting takes no
// lock on any path.
type counters struct {
	ops                     [numOps]atomic.Int64
	inodes, blocks          storeCounters
	conflicts, retries      atomic.Int64
	attrHits, attrMisses    atomic.Int64
	bytesRead, bytesWritten atomic.Int64
	uploads, frees, dirty   atomic.Int64
}

// op counts one call of the public API operation op (its *fs.PathError
// name).
func (s *counters) op(op string) { s.ops[opKindOf(op)].Add(1) }

// backoff is backoff, counted as a retry.
func (c *core) backoff(ctx context.Context, attempt int) error {
	c.stats.retries.Add(1)
	if c.noBackoff {
		return ctx.Err()
	}
	return backoff(ctx, attempt)
}

// An opKind is a kind of operation that Stats.Ops counts.
type opKind uint8

const (
	opOpen opKind = iota
	opCreate
	opRead
	opWrite
	opStat
	opLookup
	opReaddir
	opReadlink
	opMkdir
	opMknod
	opSymlink
	opLink
	opRemove
	opRename
	opSetattr
	opSync
	opClose
	opXattr
	opLock
	opStatfs
	opFallocate
	opSeek
	opOther
	numOps
)

var opNames = [numOps]string{"open", "create", "read", "write", "stat", "lookup", "readdir", "readlink",
	"mkdir", "mknod", "symlink", "link", "remove", "rename", "setattr", "sync", "close", "xattr", "lock",
	"statfs", "fallocate", "seek", "other"}

// OpKinds are the keys of Stats.Ops, in a stable order: "open" (FS.Open,
// OpenFile, Create, Inodes.Open), "create" (Inodes.Create), "read",
// "write", "stat" (Stat, Lstat, GetAttr, File.Stat), "lookup", "readdir",
// "readlink", "mkdir", "mknod", "symlink", "link", "remove" (Remove,
// RemoveAll, Unlink, Rmdir), "rename", "setattr" (Chmod, Chown, Chtimes,
// Truncate, SetAttr), "sync" (Sync, Commit), "close", "xattr" (the get,
// set, list and remove calls), "lock" (every lock call, releases too),
// "statfs", "fallocate", "seek" (SeekData, SeekHole) and "other".
func OpKinds() []string { return append([]string(nil), opNames[:]...) }

func opKindOf(op string) opKind {
	switch op {
	case "open":
		return opOpen
	case "create":
		return opCreate
	case "read":
		return opRead
	case "write":
		return opWrite
	case "stat", "lstat", "getattr":
		return opStat
	case "lookup":
		return opLookup
	case "readdir":
		return opReaddir
	case "readlink":
		return opReadlink
	case "mkdir":
		return opMkdir
	case "mknod":
		return opMknod
	case "symlink":
		return opSymlink
	case "link":
		return opLink
	case "remove", "removeall", "unlink", "rmdir":
		return opRemove
	case "rename":
		return opRename
	case "setattr", "chmod", "chown", "lchown", "chtimes", "truncate":
		return opSetattr
	case "sync", "commit":
		return opSync
	case "close":
		return opClose
	case "setxattr", "lsetxattr", "getxattr", "lgetxattr", "listxattr", "llistxattr", "removexattr", "lremovexattr":
		return opXattr
	case "lock":
		return opLock
	case "statfs":
		return opStatfs
	case "fallocate":
		return opFallocate
	case "seek":
		return opSeek
	}
	return opOther
}

// storeCounters count the requests to one store.
type storeCounters struct {
	gets, getMultis, cas, puts, deletes, commits, lists, syncs, watches atomic.Int64
	conflicts, errors, bytesIn, bytesOut                                atomic.Int64
}

func (s *storeCounters) load() StoreStats {
	return StoreStats{s.gets.Load(), s.getMultis.Load(), s.cas.Load(), s.puts.Load(), s.deletes.Load(),
		s.commits.Load(), s.lists.Load(), s.syncs.Load(), s.watches.Load(),
		s.conflicts.Load(), s.errors.Load(), s.bytesIn.Load(), s.bytesOut.Load()}
}

// done counts a request's failure, if it failed.
func (s *storeCounters) done(err error) {
	switch {
	case err == nil, errors.Is(err, backend.ErrNotFound):
	case errors.Is(err, backend.ErrConflict):
		s.conflicts.Add(1)
	default:
		s.errors.Add(1)
	}
}

// countStore returns s counting its requests in n. The result has the
// optional interfaces whose presence changes what voldfs does (batch gets,
// watches, listing) exactly when s has them; the others (Putter,
// SizeLimiter, Syncer, Committer) it always has, with the fallbacks of
// package backend's helpers, which is all voldfs uses them through (a
// Committer is probed on the store itself, see newCore).
func countStore(s backend.Store, n *storeCounters) backend.Store {
	c := &counted{s: s, n: n}
	_, b := s.(backend.BatchGetter)
	_, w := s.(backend.Watcher)
	_, l := s.(backend.Lister)
	bp, wp, lp := batchPart{c}, watchPart{c}, listPart{c}
	switch {
	case b && w && l:
		return struct {
			*counted
			batchPart
			watchPart
			listPart
		}{c, bp, wp, lp}
	case b && w:
		return struct {
			*counted
			batchPart
			watchPart
		}{c, bp, wp}
	case b && l:
		return struct {
			*counted
			batchPart
			listPart
		}{c, bp, lp}
	case w && l:
		return struct {
			*counted
			watchPart
			listPart
		}{c, wp, lp}
	case b:
		return struct {
			*counted
			batchPart
		}{c, bp}
	case w:
		return struct {
			*counted
			watchPart
		}{c, wp}
	case l:
		return struct {
			*counted
			listPart
		}{c, lp}
	}
	return c
}

// uncounted returns the store countStore wrapped (s itself if it is not a
// counting wrapper).
func uncounted(s backend.Store) backend.Store {
	if c, ok := s.(interface{ countedStore() *counted }); ok {
		return c.countedStore().s
	}
	return s
}

// counted is the core of countStore's wrapper.
type counted struct {
	s backend.Store
	n *storeCounters
}

var (
	_ backend.Store       = (*counted)(nil)
	_ backend.Putter      = (*counted)(nil)
	_ backend.SizeLimiter = (*counted)(nil)
	_ backend.Syncer      = (*counted)(nil)
	_ backend.Committer   = (*counted)(nil)
	_ backend.BatchGetter = batchPart{}
	_ backend.Watcher     = watchPart{}
	_ backend.Lister      = listPart{}
)

func (c *counted) countedStore() *counted { return c }

func (c *counted) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	c.n.gets.Add(1)
	v, ver, err := c.s.Get(ctx, key)
	c.n.bytesIn.Add(int64(len(v)))
	c.n.done(err)
	return v, ver, err
}

func (c *counted) CAS(ctx context.Context, key string, old backend.Version, value []byte) (backend.Version, error) {
	c.n.cas.Add(1)
	c.n.bytesOut.Add(int64(len(value)))
	ver, err := c.s.CAS(ctx, key, old, value)
	c.n.done(err)
	return ver, err
}

func (c *counted) Delete(ctx context.Context, key string, old backend.Version) error {
	c.n.deletes.Add(1)
	err := c.s.Delete(ctx, key, old)
	c.n.done(err)
	return err
}

func (c *counted) Close() error { return c.s.Close() }

// Put is backend.Put: a create-only CAS on a store without Put.
func (c *counted) Put(ctx context.Context, key string, value []byte) (backend.Version, error) {
	p, ok := c.s.(backend.Putter)
	if !ok {
		return c.CAS(ctx, key, backend.NoVersion, value)
	}
	c.n.puts.Add(1)
	c.n.bytesOut.Add(int64(len(value)))
	ver, err := p.Put(ctx, key, value)
	c.n.done(err)
	return ver, err
}

// MaxValueSize is backend.MaxValueSize: 0 for a store without a limit.
func (c *counted) MaxValueSize() int { return backend.MaxValueSize(c.s) }

// Sync is backend.Sync: nil at once for a store without Sync.
func (c *counted) Sync(ctx context.Context) error {
	if _, ok := c.s.(backend.Syncer); !ok {
		return nil
	}
	c.n.syncs.Add(1)
	err := backend.Sync(ctx, c.s)
	c.n.done(err)
	return err
}

// Commit is backend.Commit: errors.ErrUnsupported for a store without
// Commit.
func (c *counted) Commit(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	if _, ok := c.s.(backend.Committer); !ok {
		return nil, errors.ErrUnsupported
	}
	c.n.commits.Add(1)
	var out int
	for _, op := range ops {
		out += len(op.Value)
	}
	c.n.bytesOut.Add(int64(out))
	vers, err := backend.Commit(ctx, c.s, ops)
	c.n.done(err)
	return vers, err
}

type batchPart struct{ c *counted }

func (p batchPart) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	p.c.n.getMultis.Add(1)
	items, err := backend.GetMulti(ctx, p.c.s, keys)
	var in int
	for _, it := range items {
		in += len(it.Value)
	}
	p.c.n.bytesIn.Add(int64(in))
	p.c.n.done(err)
	return items, err
}

type watchPart struct{ c *counted }

func (p watchPart) WaitChange(ctx context.Context, key string, ver backend.Version) error {
	p.c.n.watches.Add(1)
	err := p.c.s.(backend.Watcher).WaitChange(ctx, key, ver)
	if ctx.Err() == nil {
		p.c.n.done(err)
	}
	return err
}

type listPart struct{ c *counted }

func (p listPart) List(ctx context.Context, prefix string, fn func(key string) error) error {
	p.c.n.lists.Add(1)
	var stopped error // fn's own error, which is no store failure
	err := backend.List(ctx, p.c.s, prefix, func(key string) error {
		stopped = fn(key)
		return stopped
	})
	if stopped == nil || !errors.Is(err, stopped) {
		p.c.n.done(err)
	}
	return err
}
