// Package memcache is a backend.Store on memcached servers, through
// github.com/bradfitz/gomemcache. Keys are spread over the servers by hash.
//
// # Basics
//
// A key's Version is memcached's CAS unique, which the server draws from one
// counter for all writes, so it never repeats while the server runs. CAS with
// NoVersion is an "add"; CAS with a version is a "cas". memcached's "cas"
// reply does not carry the new CAS unique, so every write stores a random
// nonce in the item's flags and reads the item back ("gets"): if the nonce is
// still there, its CAS unique is the new version; if another writer got in
// first, the write is already overwritten and the version returned is one no
// item can have (so a CAS with it fails, as it would with the true, stale
// one), drawn at random from the upper half of the version range. A CAS
// therefore costs two round trips and reads its value back. Put (for
// write-once values) is a plain "set" that returns NoVersion, and Delete with
// AnyVersion a plain "delete": one round trip each.
//
// memcached has no conditional delete. Delete with a version is a "cas" that
// replaces the value with a tombstone: an empty item with flags 0 and a
// one-second expiry, so memcached reclaims it. A tombstone reads as missing,
// and creating a key over one is a "cas" on the tombstone's CAS unique, so
// every step is a single atomic server operation and no unconditional delete
// is ever sent (one could remove a value another client created after the
// tombstone). Tombstone CAS uniques are never handed out as versions.
//
// Keys outside backend.ValidKey (too long, spaces, control or non-ASCII bytes)
// are stored under "\xfe" and a hash of the key: memcached accepts the byte,
// and no valid key starts with it, so the two kinds never collide.
//
// # Caveats
//
// memcached is a cache. Run it with -M, so that when memory is full it refuses
// writes (reported as backend.ErrNoSpace, which voldfs reports as ENOSPC)
// instead of evicting live data; an evicted value
// is lost data to voldfs. It is not durable: a restart loses everything, and
// resets the version counter, so versions held across a restart may match
// again. Values are limited to the server's item size (-I, 1 MiB by default,
// including the key and about 50 bytes of header): the Store checks
// Options.MaxValueSize before sending, and maps the server's "object too
// large" error to backend.ErrTooLarge. There is no key listing: the Store is no
// backend.Lister.
//
// gomemcache takes no context: each call runs in its own goroutine when the
// context can be cancelled, and a cancelled call returns at once while the
// abandoned request finishes within Options.Timeout (writes are then of
// unknown outcome, as the backend contract allows).
package memcache

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	mc "github.com/bradfitz/gomemcache/memcache"

	"github.com/voldfs/voldfs/backend"
)

// DefaultMaxValueSize is the default value limit: memcached's default item
// size of 1 MiB less room for the item header and the longest key.
const DefaultMaxValueSize = 1<<20 - 512

// DefaultTimeout is the default network timeout per request.
const DefaultTimeout = 2 * time.Second

// Options configures NewWithOptions. Zero fields take the defaults.
type Options struct {
	// Timeout bounds each network read or write (default DefaultTimeout).
	Timeout time.Duration
	// MaxValueSize is the largest value accepted (default
	// DefaultMaxValueSize). It must fit the servers' item size limit (-I).
	MaxValueSize int
	// MaxIdleConns is the number of idle connections kept per server
	// (default 32).
	MaxIdleConns int
}

// Store is a backend.Store on memcached servers. It is safe for concurrent
// use.
type Store struct {
	c       *mc.Client
	servers *mc.ServerList // for stats (space.go)
	timeout time.Duration
	limit   int
	closed  atomic.Bool
}

var (
	_ backend.Store       = (*Store)(nil)
	_ backend.BatchGetter = (*Store)(nil)
	_ backend.Putter      = (*Store)(nil)
	_ backend.SizeLimiter = (*Store)(nil)
)

// New returns a Store on servers ("host:port"), with default Options.
func New(servers ...string) (*Store, error) {
	return NewWithOptions(Options{}, servers...)
}

// NewWithOptions returns a Store on servers ("host:port") configured by opts.
// It resolves the addresses but does not connect.
func NewWithOptions(opts Options, servers ...string) (*Store, error) {
	if len(servers) == 0 {
		return nil, errors.New("memcache: no servers")
	}
	ss := new(mc.ServerList)
	if err := ss.SetServers(servers...); err != nil {
		return nil, fmt.Errorf("memcache: %w", err)
	}
	c := mc.NewFromSelector(ss)
	c.Timeout = cmp(opts.Timeout, DefaultTimeout)
	c.MaxIdleConns = cmp(opts.MaxIdleConns, 32)
	return &Store{c: c, servers: ss, timeout: c.Timeout, limit: cmp(opts.MaxValueSize, DefaultMaxValueSize)}, nil
}

// cmp returns v, or def if v is not positive.
func cmp[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// MaxValueSize implements backend.SizeLimiter.
func (s *Store) MaxValueSize() int { return s.limit }

// Flags of stored items: a tombstone has flags 0; a value has a random
// non-zero nonce that lets its writer recognise it (see the package comment).
const tombstone = 0

// tombstoneTTL is the expiry of a tombstone, in seconds.
const tombstoneTTL = 1

// staleVersion returns the version of a write that another write overwrote
// before its version could be read: a random one in the upper half of the
// range, which memcached's CAS unique counter (counting up from 1) never
// reaches, so a CAS or Delete with it fails with ErrConflict, as it would with
// the true, stale version. Random, so that two writes do not share it.
func staleVersion() backend.Version {
	for {
		if v := backend.Version(1<<63 | rand.Uint64()); v != backend.AnyVersion {
			return v
		}
	}
}

func nonce() uint32 {
	for {
		if n := rand.Uint32(); n != tombstone {
			return n
		}
	}
}

// encodedPrefix starts the server key of a key outside backend.ValidKey.
const encodedPrefix = "\xfe"

// serverKey returns the memcached key for key.
func serverKey(key string) string {
	if backend.ValidKey(key) {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return encodedPrefix + base64.RawURLEncoding.EncodeToString(sum[:])
}

// call runs fn, returning early with ctx's error if ctx is done first (fn
// then finishes in the background within the client's timeout).
func call[T any](ctx context.Context, s *Store, fn func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if s.closed.Load() {
		return zero, backend.ErrClosed
	}
	if ctx.Done() == nil {
		return fn()
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// get fetches the item under server key mk; a missing key is a nil item.
func (s *Store) get(ctx context.Context, mk string) (*mc.Item, error) {
	it, err := call(ctx, s, func() (*mc.Item, error) { return s.c.Get(mk) })
	if errors.Is(err, mc.ErrCacheMiss) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if it.CasID == 0 {
		return nil, errors.New("memcache: server returned no CAS unique (is it running with -C?)")
	}
	return it, nil
}

// store runs a storage command (add, cas, set) with item.
func (s *Store) store(ctx context.Context, cmd func(*mc.Item) error, it *mc.Item) error {
	_, err := call(ctx, s, func() (struct{}, error) { return struct{}{}, cmd(it) })
	return err
}

// Get implements backend.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	it, err := s.get(ctx, serverKey(key))
	if err != nil {
		return nil, backend.NoVersion, fmt.Errorf("memcache: get %q: %w", key, err)
	}
	if it == nil || it.Flags == tombstone {
		return nil, backend.NoVersion, backend.ErrNotFound
	}
	return nonNil(it.Value), backend.Version(it.CasID), nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// newItem prepares value for writing under mk with a fresh nonce. When the
// call can be abandoned (a cancellable ctx) the value is copied, so that the
// request finishing in the background never reads a slice the caller got
// back.
func (s *Store) newItem(ctx context.Context, key string, value []byte) (*mc.Item, error) {
	if len(value) > s.limit {
		return nil, fmt.Errorf("memcache: %d-byte value for %q: %w", len(value), key, backend.ErrTooLarge)
	}
	if ctx.Done() != nil {
		value = append([]byte(nil), value...)
	}
	return &mc.Item{Key: serverKey(key), Value: value, Flags: nonce()}, nil
}

// CAS implements backend.Store.
func (s *Store) CAS(ctx context.Context, key string, old backend.Version, value []byte) (backend.Version, error) {
	it, err := s.newItem(ctx, key, value)
	if err != nil {
		return backend.NoVersion, err
	}
	if old == backend.NoVersion {
		err = s.create(ctx, it)
	} else {
		it.CasID = uint64(old)
		err = s.store(ctx, s.c.CompareAndSwap, it)
		if errors.Is(err, mc.ErrCASConflict) || errors.Is(err, mc.ErrCacheMiss) || errors.Is(err, mc.ErrNotStored) {
			err = backend.ErrConflict
		}
	}
	if err != nil {
		return backend.NoVersion, writeErr("cas", key, err)
	}
	return s.versionOf(ctx, key, it)
}

// create stores it only if its key is missing or a tombstone.
func (s *Store) create(ctx context.Context, it *mc.Item) error {
	for {
		err := s.store(ctx, s.c.Add, it)
		if !errors.Is(err, mc.ErrNotStored) {
			return err // nil, or a failure
		}
		cur, err := s.get(ctx, it.Key)
		switch {
		case err != nil:
			return err
		case cur == nil:
			continue // deleted or expired since the add: add again
		case cur.Flags != tombstone:
			return backend.ErrConflict
		}
		it.CasID = cur.CasID
		err = s.store(ctx, s.c.CompareAndSwap, it)
		if !errors.Is(err, mc.ErrCASConflict) && !errors.Is(err, mc.ErrCacheMiss) && !errors.Is(err, mc.ErrNotStored) {
			return err
		}
		// The tombstone changed or expired: look again.
	}
}

// versionOf reads back the item written as it to learn its version (see the
// package comment).
func (s *Store) versionOf(ctx context.Context, key string, it *mc.Item) (backend.Version, error) {
	cur, err := s.get(ctx, it.Key)
	if err != nil {
		return backend.NoVersion, fmt.Errorf("memcache: %q stored but its version is unknown: %w", key, err)
	}
	if cur == nil || cur.Flags != it.Flags {
		return staleVersion(), nil // already overwritten or deleted
	}
	return backend.Version(cur.CasID), nil
}

// writeErr wraps err from a write, mapping memcached's size refusal to
// backend.ErrTooLarge and its full memory to backend.ErrNoSpace.
func writeErr(op, key string, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "object too large"):
		return fmt.Errorf("memcache: %s %q: %v: %w", op, key, err, backend.ErrTooLarge)
	case strings.Contains(strings.ToLower(msg), "out of memory"):
		// With -M, memcached refuses the item ("SERVER_ERROR out of
		// memory storing object", or "Out of memory during read" for a
		// large one) rather than evict: nothing was stored.
		return fmt.Errorf("memcache: %s %q: server memory full (-m): %v: %w", op, key, err, backend.ErrNoSpace)
	}
	return fmt.Errorf("memcache: %s %q: %w", op, key, err)
}

// Put implements backend.Putter with an unconditional "set".
func (s *Store) Put(ctx context.Context, key string, value []byte) (backend.Version, error) {
	it, err := s.newItem(ctx, key, value)
	if err != nil {
		return backend.NoVersion, err
	}
	if err := s.store(ctx, s.c.Set, it); err != nil {
		return backend.NoVersion, writeErr("put", key, err)
	}
	// memcached's set does not report the new CAS unique and reading it
	// back would read the whole value again: Put is for write-once values
	// whose version no one needs (backend.Putter allows NoVersion).
	return backend.NoVersion, nil
}

// Delete implements backend.Store by replacing the value with a tombstone
// (see the package comment).
func (s *Store) Delete(ctx context.Context, key string, old backend.Version) error {
	if err := s.delete(ctx, serverKey(key), old); err != nil {
		return writeErr("delete", key, err) // a tombstone needs memory too
	}
	return nil
}

func (s *Store) delete(ctx context.Context, mk string, old backend.Version) error {
	if old == backend.AnyVersion {
		// Whatever version is there may go: a plain delete, which does not
		// read the value first (blocks are half a megabyte). A tombstone
		// left by a recent conditional delete is deleted too, so deleting
		// a key that was deleted within the last second reports success.
		_, err := call(ctx, s, func() (struct{}, error) { return struct{}{}, s.c.Delete(mk) })
		if errors.Is(err, mc.ErrCacheMiss) {
			return backend.ErrNotFound
		}
		return err
	}
	tomb := &mc.Item{Key: mk, Value: []byte{}, Flags: tombstone, Expiration: tombstoneTTL}
	for {
		if old == backend.NoVersion || old == backend.AnyVersion {
			cur, err := s.get(ctx, mk)
			switch {
			case err != nil:
				return err
			case cur == nil || cur.Flags == tombstone:
				return backend.ErrNotFound
			case old == backend.NoVersion:
				return backend.ErrConflict
			}
			tomb.CasID = cur.CasID
		} else {
			tomb.CasID = uint64(old)
		}
		err := s.store(ctx, s.c.CompareAndSwap, tomb)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, mc.ErrCacheMiss) || errors.Is(err, mc.ErrNotStored):
			if old == backend.AnyVersion {
				continue
			}
			return backend.ErrNotFound
		case !errors.Is(err, mc.ErrCASConflict):
			return err
		case old == backend.AnyVersion:
			continue // changed since the gets: look again
		}
		// The key holds another version, or is a tombstone.
		cur, err := s.get(ctx, mk)
		switch {
		case err != nil:
			return err
		case cur == nil || cur.Flags == tombstone:
			return backend.ErrNotFound
		}
		return backend.ErrConflict
	}
}

// GetMulti implements backend.BatchGetter with one "gets" per server.
func (s *Store) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	byServerKey := make(map[string][]string, len(keys))
	mks := make([]string, 0, len(keys))
	for _, k := range keys {
		mk := serverKey(k)
		if _, ok := byServerKey[mk]; !ok {
			mks = append(mks, mk)
		}
		byServerKey[mk] = append(byServerKey[mk], k)
	}
	items, err := call(ctx, s, func() (map[string]*mc.Item, error) {
		if len(mks) == 0 {
			return nil, nil
		}
		return s.c.GetMulti(mks)
	})
	if err != nil {
		return nil, fmt.Errorf("memcache: getmulti: %w", err)
	}
	out := make(map[string]backend.Item, len(items))
	for mk, it := range items {
		if it.Flags == tombstone {
			continue
		}
		if it.CasID == 0 {
			return nil, errors.New("memcache: server returned no CAS unique (is it running with -C?)")
		}
		for i, k := range byServerKey[mk] {
			v := nonNil(it.Value)
			if i > 0 {
				v = append([]byte{}, v...) // each result owns its slice
			}
			out[k] = backend.Item{Value: v, Version: backend.Version(it.CasID)}
		}
	}
	return out, nil
}

// Close closes the idle connections. Calls after Close return
// backend.ErrClosed; calls in progress finish.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return backend.ErrClosed
	}
	return s.c.Close()
}
