// Package memory is the reference backend.Store: a map guarded by a mutex.
//
// It implements the whole contract and every optional interface
// (BatchGetter, Lister, Putter, SizeLimiter, Committer), so it is the store to test
// voldfs against and to run examples on. Versions come from one counter shared
// by all keys, so a version is never reused (no ABA). Values are copied in and
// out. Nothing is persisted: the data is gone when the Store is dropped.
package memory

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/voldfs/voldfs/backend"
)

// DefaultMaxValueSize is the value size limit of a Store made by New.
const DefaultMaxValueSize = 16 << 20

// Store is an in-memory backend.Store. It is safe for concurrent use.
type Store struct {
	limit int

	mu     sync.RWMutex
	m      map[string]entry
	seq    backend.Version // last version handed out
	closed bool
}

type entry struct {
	value   []byte
	version backend.Version
}

var (
	_ backend.Store       = (*Store)(nil)
	_ backend.BatchGetter = (*Store)(nil)
	_ backend.Lister      = (*Store)(nil)
	_ backend.Putter      = (*Store)(nil)
	_ backend.SizeLimiter = (*Store)(nil)
	_ backend.Committer   = (*Store)(nil)
)

// New returns an empty Store that accepts values up to DefaultMaxValueSize.
func New() *Store { return NewWithLimit(DefaultMaxValueSize) }

// NewWithLimit returns an empty Store that accepts values up to maxValueSize
// bytes. It panics if maxValueSize is negative.
func NewWithLimit(maxValueSize int) *Store {
	if maxValueSize < 0 {
		panic("memory: negative value size limit")
	}
	return &Store{limit: maxValueSize, m: make(map[string]entry)}
}

// MaxValueSize returns the largest value the Store accepts.
func (s *Store) MaxValueSize() int { return s.limit }

// check validates the arguments common to every call. It is called without
// the lock held.
func (s *Store) check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !backend.ValidKey(key) {
		return fmt.Errorf("memory: key %q: %w", key, backend.ErrInvalidKey)
	}
	return nil
}

// Get implements backend.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	if err := s.check(ctx, key); err != nil {
		return nil, backend.NoVersion, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, backend.NoVersion, backend.ErrClosed
	}
	e, ok := s.m[key]
	if !ok {
		return nil, backend.NoVersion, backend.ErrNotFound
	}
	return clone(e.value), e.version, nil
}

// CAS implements backend.Store.
func (s *Store) CAS(ctx context.Context, key string, old backend.Version, value []byte) (backend.Version, error) {
	if err := s.check(ctx, key); err != nil {
		return backend.NoVersion, err
	}
	if len(value) > s.limit {
		return backend.NoVersion, fmt.Errorf("memory: %d-byte value: %w", len(value), backend.ErrTooLarge)
	}
	v := clone(value) // outside the lock
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return backend.NoVersion, backend.ErrClosed
	}
	if s.m[key].version != old { // a missing key has NoVersion
		return backend.NoVersion, backend.ErrConflict
	}
	return s.store(key, v), nil
}

// store writes v under key with a fresh version. s.mu must be held.
func (s *Store) store(key string, v []byte) backend.Version {
	s.seq++
	s.m[key] = entry{value: v, version: s.seq}
	return s.seq
}

// Delete implements backend.Store.
func (s *Store) Delete(ctx context.Context, key string, old backend.Version) error {
	if err := s.check(ctx, key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return backend.ErrClosed
	}
	e, ok := s.m[key]
	switch {
	case !ok:
		return backend.ErrNotFound
	case old != backend.AnyVersion && old != e.version:
		return backend.ErrConflict
	}
	delete(s.m, key)
	return nil
}

// Put implements backend.Putter.
func (s *Store) Put(ctx context.Context, key string, value []byte) (backend.Version, error) {
	if err := s.check(ctx, key); err != nil {
		return backend.NoVersion, err
	}
	if len(value) > s.limit {
		return backend.NoVersion, fmt.Errorf("memory: %d-byte value: %w", len(value), backend.ErrTooLarge)
	}
	v := clone(value)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return backend.NoVersion, backend.ErrClosed
	}
	return s.store(key, v), nil
}

// Commit implements backend.Committer: the conditions are checked and the
// writes applied under one lock. A delete of a key that is absent (allowed
// by Old NoVersion or AnyVersion) changes nothing.
func (s *Store) Commit(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	if err := backend.CheckOps(ctx, ops, s.limit); err != nil {
		return nil, fmt.Errorf("memory: commit: %w", err)
	}
	vals := make([][]byte, len(ops))
	for i, op := range ops {
		if !op.Delete && !op.Check {
			vals[i] = clone(op.Value) // outside the lock
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, backend.ErrClosed
	}
	for _, op := range ops {
		if op.Old != backend.AnyVersion && s.m[op.Key].version != op.Old {
			return nil, fmt.Errorf("memory: commit: %w", &backend.ConflictError{Key: op.Key})
		}
	}
	vers := make([]backend.Version, len(ops))
	for i, op := range ops {
		switch {
		case op.Check:
		case op.Delete:
			delete(s.m, op.Key)
		default:
			vers[i] = s.store(op.Key, vals[i])
		}
	}
	return vers, nil
}

// GetMulti implements backend.BatchGetter.
func (s *Store) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	for _, k := range keys {
		if err := s.check(ctx, k); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil { // for an empty keys
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, backend.ErrClosed
	}
	out := make(map[string]backend.Item, len(keys))
	for _, k := range keys {
		if e, ok := s.m[k]; ok {
			out[k] = backend.Item{Value: clone(e.value), Version: e.version}
		}
	}
	return out, nil
}

// List implements backend.Lister. fn runs without the Store's lock held, so
// it may call the Store; keys written during List may or may not be seen.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return backend.ErrClosed
	}
	var keys []string
	for k := range s.m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	s.mu.RUnlock()
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// Close implements backend.Store. It drops the data; calls after Close return
// backend.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return backend.ErrClosed
	}
	s.closed = true
	s.m = nil
	return nil
}

// clone returns a copy of b that is never nil.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}
