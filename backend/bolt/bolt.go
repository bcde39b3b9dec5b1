// Package bolt is a backend.Store in one bbolt (go.etcd.io/bbolt) file: an
// embedded, durable store for a single process.
//
// # Basics
//
// All keys live in one bucket. Each value is stored behind an 8-byte
// big-endian version. Versions come from the bucket's persisted sequence, so
// they only grow, across deletes, re-creates and reopening the file: a stale
// version is always rejected (no ABA).
//
// # Caveats
//
// bbolt locks the file: one process at a time opens it (Options.Timeout bounds
// the wait). Every write is one fsync'd transaction unless Options.NoSync is
// set, so writes cost a disk flush each; reads are cheap. Contexts are checked
// before each call and, for writes, inside the transaction; a running bbolt
// transaction is not interrupted.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/voldfs/voldfs/backend"
)

// bucket holds every key.
var bucket = []byte("voldfs")

// versionLen is the length of the version prefix of a stored value.
const versionLen = 8

// maxValueSize is bbolt's value limit less the version prefix. The Store does
// not advertise it (it is no backend.SizeLimiter): 2 GiB is no practical limit.
const maxValueSize = bbolt.MaxValueSize - versionLen

// Options configures Open. The zero value (or nil) is the default.
type Options struct {
	// Timeout is how long Open waits for the file lock; 0 waits forever.
	Timeout time.Duration
	// NoSync skips the fsync after each write: faster, but a machine crash
	// can lose recent writes or corrupt the file. For tests and benchmarks.
	NoSync bool
}

// Store is a backend.Store in a bbolt file. It is safe for concurrent use.
type Store struct {
	db     *bbolt.DB
	closed atomic.Bool
}

var (
	_ backend.Store       = (*Store)(nil)
	_ backend.BatchGetter = (*Store)(nil)
	_ backend.Lister      = (*Store)(nil)
	_ backend.Putter      = (*Store)(nil)
)

// Open opens or creates the bbolt file at path. opts may be nil.
func Open(path string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout, NoSync: opts.NoSync})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	// A batch waits at most this long for company before it commits.
	db.MaxBatchDelay = 2 * time.Millisecond
	return &Store{db: db}, nil
}

// begin checks what every call checks before touching the database.
func (s *Store) begin(ctx context.Context, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return backend.ErrClosed
	}
	for _, k := range keys {
		if !backend.ValidKey(k) {
			return fmt.Errorf("bolt: key %q: %w", k, backend.ErrInvalidKey)
		}
	}
	return nil
}

// dbErr maps bbolt's errors to the backend's.
func dbErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return backend.ErrClosed
	}
	return err
}

// decode splits a stored value into a copy of its value and its version.
func decode(raw []byte) ([]byte, backend.Version) {
	if raw == nil {
		return nil, backend.NoVersion
	}
	v := backend.Version(binary.BigEndian.Uint64(raw))
	return append([]byte{}, raw[versionLen:]...), v // never nil
}

// Get implements backend.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	if err := s.begin(ctx, key); err != nil {
		return nil, backend.NoVersion, err
	}
	var (
		val []byte
		ver backend.Version
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		val, ver = decode(tx.Bucket(bucket).Get([]byte(key)))
		return nil
	})
	if err != nil {
		return nil, backend.NoVersion, fmt.Errorf("bolt: get %q: %w", key, dbErr(err))
	}
	if ver == backend.NoVersion {
		return nil, backend.NoVersion, backend.ErrNotFound
	}
	return val, ver, nil
}

// write runs fn in a write transaction after checking ctx again inside it.
func (s *Store) write(ctx context.Context, fn func(b *bbolt.Bucket) error) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fn(tx.Bucket(bucket))
	})
	return dbErr(err)
}

// put stores value under key with the next version. It is called inside a
// write transaction.
func put(b *bbolt.Bucket, key string, value []byte) (backend.Version, error) {
	seq, err := b.NextSequence()
	if err != nil {
		return backend.NoVersion, err
	}
	buf := make([]byte, versionLen+len(value))
	binary.BigEndian.PutUint64(buf, seq)
	copy(buf[versionLen:], value)
	return backend.Version(seq), b.Put([]byte(key), buf)
}

func (s *Store) checkWrite(ctx context.Context, key string, value []byte) error {
	if err := s.begin(ctx, key); err != nil {
		return err
	}
	if len(value) > maxValueSize {
		return fmt.Errorf("bolt: %d-byte value: %w", len(value), backend.ErrTooLarge)
	}
	return nil
}

// CAS implements backend.Store.
func (s *Store) CAS(ctx context.Context, key string, old backend.Version, value []byte) (backend.Version, error) {
	if err := s.checkWrite(ctx, key, value); err != nil {
		return backend.NoVersion, err
	}
	var nv backend.Version
	err := s.write(ctx, func(b *bbolt.Bucket) error {
		raw := b.Get([]byte(key))
		cur := backend.NoVersion
		if raw != nil {
			cur = backend.Version(binary.BigEndian.Uint64(raw))
		}
		if cur != old {
			return backend.ErrConflict
		}
		var err error
		nv, err = put(b, key, value)
		return err
	})
	if err != nil {
		return backend.NoVersion, fmt.Errorf("bolt: cas %q: %w", key, err)
	}
	return nv, nil
}

// Put implements backend.Putter.
func (s *Store) Put(ctx context.Context, key string, value []byte) (backend.Version, error) {
	if err := s.checkWrite(ctx, key, value); err != nil {
		return backend.NoVersion, err
	}
	// Puts are write-once blocks, written by voldfs many at a time: Batch
	// lets concurrent puts share one transaction and one fsync. fn may run
	// more than once (bbolt retries a failed batch one by one), so it only
	// sets nv from the transaction it runs in.
	var nv backend.Version
	err := s.db.Batch(func(tx *bbolt.Tx) (err error) {
		if err := ctx.Err(); err != nil {
			return err
		}
		nv, err = put(tx.Bucket(bucket), key, value)
		return err
	})
	if err != nil {
		return backend.NoVersion, fmt.Errorf("bolt: put %q: %w", key, dbErr(err))
	}
	return nv, nil
}

// Delete implements backend.Store.
func (s *Store) Delete(ctx context.Context, key string, old backend.Version) error {
	if err := s.begin(ctx, key); err != nil {
		return err
	}
	err := s.write(ctx, func(b *bbolt.Bucket) error {
		raw := b.Get([]byte(key))
		switch {
		case raw == nil:
			return backend.ErrNotFound
		case old != backend.AnyVersion && backend.Version(binary.BigEndian.Uint64(raw)) != old:
			return backend.ErrConflict
		}
		return b.Delete([]byte(key))
	})
	if err != nil {
		return fmt.Errorf("bolt: delete %q: %w", key, err)
	}
	return nil
}

// GetMulti implements backend.BatchGetter with one read transaction.
func (s *Store) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	if err := s.begin(ctx, keys...); err != nil {
		return nil, err
	}
	out := make(map[string]backend.Item, len(keys))
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, k := range keys {
			if val, ver := decode(b.Get([]byte(k))); ver != backend.NoVersion {
				out[k] = backend.Item{Value: val, Version: ver}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: getmulti: %w", dbErr(err))
	}
	return out, nil
}

// listBatch is how many keys List reads per read transaction.
const listBatch = 1024

// List implements backend.Lister, in key order. fn runs outside any
// transaction (so it may write to the Store); keys are read in batches, and a
// key written during List may or may not be seen.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string) error) error {
	p := []byte(prefix)
	seek, after := p, false // after: skip seek itself, the previous batch's last key
	for {
		if err := s.begin(ctx); err != nil {
			return err
		}
		var keys []string
		err := s.db.View(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			k, _ := c.Seek(seek)
			if after && bytes.Equal(k, seek) {
				k, _ = c.Next()
			}
			for ; k != nil && bytes.HasPrefix(k, p) && len(keys) < listBatch; k, _ = c.Next() {
				keys = append(keys, string(k))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bolt: list %q: %w", prefix, dbErr(err))
		}
		for _, k := range keys {
			if err := fn(k); err != nil {
				return err
			}
		}
		if len(keys) < listBatch {
			return nil
		}
		seek, after = []byte(keys[len(keys)-1]), true
	}
}

// Close closes the file, after the transactions in progress. Calls after
// Close return backend.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return backend.ErrClosed
	}
	return s.db.Close()
}
