package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/voldfs/voldfs/backend"
)

// bucket holds every key. Its sequence is the version ceiling (see the
// package comment).
var bucket = []byte("voldfs")

// versionLen is the length of the version prefix of a stored value.
const versionLen = 8

// maxValueSize is bbolt's value limit less the version prefix. The Store does
// not advertise it (it is no backend.SizeLimiter): 2 GiB is no practical limit.
const maxValueSize = bbolt.MaxValueSize - versionLen

// Durability says when a write is acknowledged.
type Durability int

const (
	// GroupCommit acknowledges a write once it is in the Store's memory;
	// the flusher writes it to the file within Options.Interval. The
	// default.
	GroupCommit Durability = iota
	// SyncAlways acknowledges a write once it is in the file.
	SyncAlways
)

// Defaults of Options.
const (
	DefaultInterval   = 20 * time.Millisecond
	DefaultMaxPending = 64 << 20
)

// Options configures Open. The zero value (or nil) is the default.
type Options struct {
	// Timeout is how long Open waits for the file lock; 0 waits forever.
	Timeout time.Duration
	// NoSync skips the fsync after each batch: faster, but a machine crash
	// can lose recent writes or corrupt the file. For tests and benchmarks.
	NoSync bool
	// Durability says when a write is acknowledged (default GroupCommit).
	Durability Durability
	// Interval is the longest a write acknowledged under GroupCommit waits
	// in memory before the flusher starts writing it (0: DefaultInterval).
	// Negative: batches are written only when asked (Sync, Close, a full
	// batch), for tests that decide where a crash cuts.
	Interval time.Duration
	// MaxPending bounds the bytes of writes waiting for the flusher (0:
	// DefaultMaxPending). One more batch of up to this size may be being
	// written at the same time.
	MaxPending int
	// MmapFlags are passed to bbolt (e.g. syscall.MAP_POPULATE).
	MmapFlags int
	// InitialMmapSize is the initial size of bbolt's memory map.
	InitialMmapSize int
}

// Store is a backend.Store in a bbolt file. It is safe for concurrent use.
type Store struct {
	db         *bbolt.DB
	file       *os.File // the same file, read-only, for big values (bigread.go)
	durability Durability
	interval   time.Duration
	maxPending int

	// mu guards the overlay (pending and flushing) and the flusher's state.
	// Every write takes it; reads take it to consult the overlay.
	mu sync.RWMutex
	// pending holds the writes acknowledged since the last swap: key ->
	// stored record (version + value), nil for a delete.
	pending      map[string][]byte
	pendingBytes int
	pendingSince time.Time
	// flushing is the batch the flusher is writing (nil when none). Reads
	// consult it until its transaction has committed.
	flushing map[string][]byte
	// batch is pending's number; batches up to durable are in the file.
	batch, durable uint64
	// next is the next version to hand out; reserved is the ceiling in the
	// file: next-1 <= reserved always.
	next, reserved backend.Version
	wantReserve    bool
	err            error // the first failed flush; the Store refuses writes after it
	// full: err is a disk full (ENOSPC) and flushing still holds the batch
	// that met it; the flusher tries it again (with the deletes taken
	// since) when kicked, and the Store takes writes again once it fits
	// (flush.go).
	full      bool
	retryNext time.Time // no retry before this
	closed    bool
	crashed   bool
	// changed is closed and replaced whenever a batch is swapped out or
	// written, or the Store fails or closes.
	changed chan struct{}

	kick  chan struct{} // flush now
	dirty chan struct{} // pending became non-empty
	stop  chan struct{}
	done  chan struct{}
}

var (
	_ backend.Store       = (*Store)(nil)
	_ backend.BatchGetter = (*Store)(nil)
	_ backend.Lister      = (*Store)(nil)
	_ backend.Putter      = (*Store)(nil)
	_ backend.Committer   = (*Store)(nil)
	_ backend.Syncer      = (*Store)(nil)
)

// Open opens or creates the bbolt file at path. opts may be nil.
func Open(path string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:         opts.Timeout,
		NoSync:          opts.NoSync,
		MmapFlags:       opts.MmapFlags,
		InitialMmapSize: opts.InitialMmapSize,
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s := &Store{
		db:         db,
		durability: opts.Durability,
		interval:   opts.Interval,
		maxPending: opts.MaxPending,
		pending:    map[string][]byte{},
		batch:      1,
		changed:    make(chan struct{}),
		kick:       make(chan struct{}, 1),
		dirty:      make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	// Without it big values are copied out of the map, only slower.
	s.file, _ = os.Open(path)
	if s.interval == 0 {
		s.interval = DefaultInterval
	}
	if s.maxPending <= 0 {
		s.maxPending = DefaultMaxPending
	}
	// The first block of versions is reserved before any is handed out.
	if err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		last := backend.Version(b.Sequence())
		if last > backend.AnyVersion-2*reserveBlock {
			return errors.New("versions exhausted")
		}
		s.next, s.reserved = last+1, last+reserveBlock
		return b.SetSequence(uint64(s.reserved))
	}); err != nil {
		db.Close()
		if s.file != nil {
			s.file.Close()
		}
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	go s.flusher()
	return s, nil
}

// dbErr maps bbolt's errors to the backend's.
func dbErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return backend.ErrClosed
	}
	return err
}

// record returns the stored form of value under version v.
func record(v backend.Version, value []byte) []byte {
	buf := make([]byte, versionLen+len(value))
	binary.BigEndian.PutUint64(buf, uint64(v))
	copy(buf[versionLen:], value)
	return buf
}

// recordVersion returns the version of a stored record (NoVersion for nil:
// absent or deleted).
func recordVersion(raw []byte) backend.Version {
	if raw == nil {
		return backend.NoVersion
	}
	return backend.Version(binary.BigEndian.Uint64(raw))
}

// decode splits a stored record into a copy of its value and its version.
func decode(raw []byte) ([]byte, backend.Version) {
	if raw == nil {
		return nil, backend.NoVersion
	}
	return append([]byte{}, raw[versionLen:]...), recordVersion(raw) // never nil
}

// overlay returns the record of key in the writes not yet in the file, and
// whether there is one (a nil record: deleted). s.mu must be held.
func (s *Store) overlay(key string) ([]byte, bool) {
	if raw, ok := s.pending[key]; ok {
		return raw, true
	}
	raw, ok := s.flushing[key]
	return raw, ok
}

// readable checks what every read checks before touching the Store.
func (s *Store) readable(ctx context.Context, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, k := range keys {
		if !backend.ValidKey(k) {
			return fmt.Errorf("bolt: key %q: %w", k, backend.ErrInvalidKey)
		}
	}
	return nil
}

// Get implements backend.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	if err := s.readable(ctx, key); err != nil {
		return nil, backend.NoVersion, err
	}
	s.mu.RLock()
	closed := s.closed
	raw, ok := s.overlay(key)
	s.mu.RUnlock()
	if closed {
		return nil, backend.NoVersion, backend.ErrClosed
	}
	if ok { // a shared record: copy the value out
		if raw == nil {
			return nil, backend.NoVersion, backend.ErrNotFound
		}
		val, ver := decode(raw)
		return val, ver, nil
	}
	// A key not in the overlay is written to the file only after a later
	// write puts it there, so the file holds its value as of the check or
	// a later one: either is right for a read that overlaps them.
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw = s.copyValue(tx.Bucket(bucket).Get([]byte(key)))
		return nil
	})
	if err != nil {
		return nil, backend.NoVersion, fmt.Errorf("bolt: get %q: %w", key, dbErr(err))
	}
	if raw == nil {
		return nil, backend.NoVersion, backend.ErrNotFound
	}
	return raw[versionLen:], recordVersion(raw), nil
}

// GetMulti implements backend.BatchGetter: the overlay, then one read
// transaction for the rest.
func (s *Store) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	if err := s.readable(ctx, keys...); err != nil {
		return nil, err
	}
	out := make(map[string]backend.Item, len(keys))
	var rest []string
	s.mu.RLock()
	closed := s.closed
	for _, k := range keys {
		if raw, ok := s.overlay(k); !ok {
			rest = append(rest, k)
		} else if raw != nil {
			val, ver := decode(raw)
			out[k] = backend.Item{Value: val, Version: ver}
		}
	}
	s.mu.RUnlock()
	if closed {
		return nil, backend.ErrClosed
	}
	if len(rest) == 0 {
		return out, nil
	}
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, k := range rest {
			if raw := s.copyValue(b.Get([]byte(k))); raw != nil {
				out[k] = backend.Item{Value: raw[versionLen:], Version: recordVersion(raw)}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: getmulti: %w", dbErr(err))
	}
	return out, nil
}

// listBatch is how many keys of the file List reads per read transaction.
const listBatch = 1024

// List implements backend.Lister, in key order. fn runs outside any
// transaction and lock (so it may write to the Store); keys are read in
// batches, each a consistent view of the overlay over the file, and a key
// written during List may or may not be seen.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string) error) error {
	p := []byte(prefix)
	seek, after := p, false // after: skip seek itself, the previous batch's last key
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		keys, last, more, err := s.listBatch(p, seek, after)
		if err != nil {
			return fmt.Errorf("bolt: list %q: %w", prefix, err)
		}
		for _, k := range keys {
			if err := fn(k); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
		seek, after = last, true
	}
}

// listBatch returns the live keys with prefix p from seek (after: past it)
// up to and including the listBatch'th key of the file, whether there may be
// more, and the last file key read. The overlay cannot change meanwhile, and
// its flushing batch overrides the file whether or not the file already
// holds it, so the merge is consistent.
func (s *Store) listBatch(p, seek []byte, after bool) (keys []string, last []byte, more bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, nil, false, backend.ErrClosed
	}
	var fileKeys []string
	err = s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		k, _ := c.Seek(seek)
		if after && bytes.Equal(k, seek) {
			k, _ = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, p) && len(fileKeys) < listBatch; k, _ = c.Next() {
			fileKeys = append(fileKeys, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, nil, false, dbErr(err)
	}
	more = len(fileKeys) == listBatch
	in := func(k string) bool { // in this batch's range
		if !strings.HasPrefix(k, string(p)) || k < string(seek) || after && k == string(seek) {
			return false
		}
		return !more || k <= fileKeys[len(fileKeys)-1]
	}
	live := map[string]bool{}
	for _, k := range fileKeys {
		live[k] = true
	}
	for _, m := range []map[string][]byte{s.flushing, s.pending} { // pending last: it wins
		for k, raw := range m {
			if in(k) {
				live[k] = raw != nil
			}
		}
	}
	for k, ok := range live {
		if ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if more {
		last = []byte(fileKeys[len(fileKeys)-1])
	}
	return keys, last, more, nil
}

// Close flushes what is pending and closes the file. Calls after Close
// return backend.ErrClosed. Close returns the error of a failed flush.
func (s *Store) Close() error {
	return s.shut(false)
}

// Crash closes the Store as a crash of its process would: writes not yet in
// the file are dropped, not flushed (a batch being written completes or
// not, as a whole). It is for power-loss tests: reopening the file then
// shows what a crash at this moment would have left.
func (s *Store) Crash() error {
	return s.shut(true)
}

func (s *Store) shut(crash bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return backend.ErrClosed
	}
	s.closed, s.crashed = true, crash
	s.signalLocked()
	s.mu.Unlock()
	close(s.stop)
	<-s.done // the flusher writes the last batch, unless crashed
	s.mu.Lock()
	ferr := s.err
	if crash {
		ferr = nil
	}
	s.pending, s.flushing = nil, nil
	s.mu.Unlock()
	err := s.db.Close() // after the read transactions in progress
	if s.file != nil {
		s.file.Close()
	}
	return errors.Join(ferr, err)
}
