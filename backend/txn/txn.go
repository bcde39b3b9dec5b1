package txn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// DefaultTimeout is how long a pending transaction may hold a lock, as seen
// by a client that meets it, before that client aborts it.
const DefaultTimeout = 2 * time.Second

// maxSeen bounds the table of first sightings of transaction records.
const maxSeen = 4096

// Option configures Wrap.
type Option func(*Store)

// WithTimeout sets how long a pending transaction that blocks this client
// may stay pending, counted on this client's clock from when it first saw
// the transaction, before the client aborts it (default DefaultTimeout). It
// only decides when to help: correctness never depends on it.
func WithTimeout(d time.Duration) Option { return func(s *Store) { s.timeout = d } }

// WithClock replaces the clock that times abandoned transactions (for
// tests; default time.Now).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithSequentialRelease makes a commit release its locks one at a time, in
// key order, rather than all at once, so that its store calls come in an
// order fixed by the keys (for tests that schedule the calls
// deterministically; the default releases in parallel).
func WithSequentialRelease() Option { return func(s *Store) { s.sequential = true } }

// WithWait replaces how a client waits between two looks at a key that a
// pending transaction holds (default: a jittered exponential backoff from
// 200µs to 20ms, d being the delay it chose). For tests that schedule every
// store call themselves, where real waiting only costs time.
func WithWait(wait func(ctx context.Context, d time.Duration) error) Option {
	return func(s *Store) { s.wait = wait }
}

// Store is the wrapper Wrap returns: a backend.Store and backend.Committer
// over a store that offers only per-key CAS. Wrap's result also implements
// backend.Lister and backend.Syncer when the wrapped store does. Store is
// safe for concurrent use.
type Store struct {
	inner   backend.Store
	timeout time.Duration
	now     func() time.Time
	// sequential releases a commit's locks one at a time.
	sequential bool
	wait       func(ctx context.Context, d time.Duration) error // nil: sleep

	mu   sync.Mutex
	seen map[string]time.Time // record key -> when this client first met it
}

var (
	_ backend.Store       = (*Store)(nil)
	_ backend.Committer   = (*Store)(nil)
	_ backend.BatchGetter = (*Store)(nil)
	_ backend.Putter      = (*Store)(nil)
	_ backend.SizeLimiter = (*Store)(nil)
	_ backend.Lister      = listStore{}
	_ backend.Syncer      = syncStore{}
)

// Wrap returns a store that keeps its values in s and adds multi-key commits
// (backend.Committer) built on s's CAS; see the package comment. Every
// client of the keys must go through Wrap with the same record prefix. The
// result always uses the fallback, even if s has a Committer of its own.
func Wrap(s backend.Store, opts ...Option) backend.Store {
	t := &Store{inner: s, timeout: DefaultTimeout, now: time.Now, seen: map[string]time.Time{}}
	for _, o := range opts {
		o(t)
	}
	_, list := s.(backend.Lister)
	_, sync := s.(backend.Syncer)
	switch {
	case list && sync:
		return listSyncStore{t}
	case list:
		return listStore{t}
	case sync:
		return syncStore{t}
	}
	return t
}

type listStore struct{ *Store }

// List implements backend.Lister with the wrapped store's List. Keys that an
// unfinished transaction is creating or deleting are listed.
func (l listStore) List(ctx context.Context, prefix string, fn func(string) error) error {
	return backend.List(ctx, l.inner, prefix, fn)
}

type syncStore struct{ *Store }

// Sync implements backend.Syncer with the wrapped store's Sync.
func (y syncStore) Sync(ctx context.Context) error { return backend.Sync(ctx, y.inner) }

type listSyncStore struct{ *Store }

func (l listSyncStore) List(ctx context.Context, prefix string, fn func(string) error) error {
	return backend.List(ctx, l.inner, prefix, fn)
}

func (l listSyncStore) Sync(ctx context.Context) error { return backend.Sync(ctx, l.inner) }

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() backend.Store { return s.inner }

// MaxValueSize implements backend.SizeLimiter: the wrapped store's limit less
// the two bytes of an escaped value (0: no limit). A value in a Commit must
// also fit in a lock together with the key's current value (see Caveats).
func (s *Store) MaxValueSize() int {
	if l := backend.MaxValueSize(s.inner); l > 0 {
		return max(l-2, 1)
	}
	return 0
}

// Close closes the wrapped store.
func (s *Store) Close() error { return s.inner.Close() }

// view is a key's logical state: what a caller sees.
type view struct {
	exists bool
	value  []byte
	ver    backend.Version
}

// matches reports whether v satisfies the condition old of a CAS or an op.
func (v view) matches(old backend.Version) bool {
	switch old {
	case backend.AnyVersion:
		return true
	case backend.NoVersion:
		return !v.exists
	}
	return v.exists && v.ver == old
}

// Get implements backend.Store. A key locked by a transaction reads as its
// value before the transaction until the transaction commits.
func (s *Store) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	sl, err := s.read(ctx, key)
	if err != nil {
		return nil, backend.NoVersion, err
	}
	c, err := s.current(ctx, key, &sl, nil)
	if err != nil {
		return nil, backend.NoVersion, err
	}
	if !c.v.exists {
		return nil, backend.NoVersion, fmt.Errorf("txn: get %q: %w", key, backend.ErrNotFound)
	}
	return c.v.value, c.v.ver, nil
}

// read returns key's decoded physical state.
func (s *Store) read(ctx context.Context, key string) (slot, error) {
	raw, ver, err := s.inner.Get(ctx, key)
	if errors.Is(err, backend.ErrNotFound) {
		return slot{kind: slotAbsent}, nil
	}
	if err != nil {
		return slot{}, err
	}
	sl, err := decode(raw, ver)
	if err != nil {
		return slot{}, fmt.Errorf("txn: %q: %w", key, err)
	}
	return sl, nil
}

// GetMulti implements backend.BatchGetter with the wrapped store's batch
// read (or one Get per key), resolving locks key by key.
func (s *Store) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	items, err := backend.GetMulti(ctx, s.inner, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]backend.Item, len(items))
	for k, it := range items {
		sl, err := decode(it.Value, it.Version)
		if err != nil {
			return nil, fmt.Errorf("txn: %q: %w", k, err)
		}
		c, err := s.current(ctx, k, &sl, nil)
		if err != nil {
			return nil, err
		}
		if c.v.exists {
			out[k] = backend.Item{Value: c.v.value, Version: c.v.ver}
		}
	}
	return out, nil
}

// CAS implements backend.Store. A CAS whose condition holds on a key locked
// by a pending transaction waits for it (aborting it once it looks
// abandoned); one whose condition fails returns ErrConflict at once.
func (s *Store) CAS(ctx context.Context, key string, old backend.Version, value []byte) (backend.Version, error) {
	if err := backend.CheckKey(ctx, key); err != nil {
		return backend.NoVersion, err
	}
	if err := backend.CheckValue(value, s.MaxValueSize()); err != nil {
		return backend.NoVersion, fmt.Errorf("txn: cas %q: %w", key, err)
	}
	enc := encodePlain(value)
	// Fast path: a physical version equal to old is either a plain value at
	// old or a committed lock (whose logical version is its physical one):
	// replacing either is the caller's CAS.
	ver, err := s.inner.CAS(ctx, key, old, enc)
	if !errors.Is(err, backend.ErrConflict) || old == backend.AnyVersion {
		return ver, err
	}
	for {
		c, err := s.current(ctx, key, nil, func(v view) bool { return v.matches(old) })
		if err != nil {
			return backend.NoVersion, err
		}
		if !c.v.matches(old) {
			return backend.NoVersion, fmt.Errorf("txn: cas %q: %w", key, backend.ErrConflict)
		}
		ver, err := s.inner.CAS(ctx, key, c.sl.phys, enc)
		if !errors.Is(err, backend.ErrConflict) {
			return ver, err
		}
	}
}

// Delete implements backend.Store, waiting for a pending transaction on key
// as CAS does.
func (s *Store) Delete(ctx context.Context, key string, old backend.Version) error {
	if err := backend.CheckKey(ctx, key); err != nil {
		return err
	}
	if old != backend.AnyVersion {
		// Fast path, as in CAS. A missing key is missing logically too.
		err := s.inner.Delete(ctx, key, old)
		if !errors.Is(err, backend.ErrConflict) {
			return err
		}
	}
	for {
		c, err := s.current(ctx, key, nil, func(v view) bool { return v.exists && v.matches(old) })
		if err != nil {
			return err
		}
		if !c.v.exists {
			return fmt.Errorf("txn: delete %q: %w", key, backend.ErrNotFound)
		}
		if !c.v.matches(old) {
			return fmt.Errorf("txn: delete %q: %w", key, backend.ErrConflict)
		}
		err = s.inner.Delete(ctx, key, c.sl.phys)
		if !errors.Is(err, backend.ErrConflict) && !errors.Is(err, backend.ErrNotFound) {
			return err
		}
	}
}

// Put implements backend.Putter, for keys that no transaction touches
// (write-once): with the wrapped store's Put, which overwrites whatever the
// key holds, lock or not. Without one, Put is a CAS over the key's current
// value.
func (s *Store) Put(ctx context.Context, key string, value []byte) (backend.Version, error) {
	if err := backend.CheckKey(ctx, key); err != nil {
		return backend.NoVersion, err
	}
	if err := backend.CheckValue(value, s.MaxValueSize()); err != nil {
		return backend.NoVersion, fmt.Errorf("txn: put %q: %w", key, err)
	}
	if p, ok := s.inner.(backend.Putter); ok {
		return p.Put(ctx, key, encodePlain(value))
	}
	for {
		c, err := s.current(ctx, key, nil, func(view) bool { return true })
		if err != nil {
			return backend.NoVersion, err
		}
		ver, err := s.inner.CAS(ctx, key, c.sl.phys, encodePlain(value))
		if !errors.Is(err, backend.ErrConflict) {
			return ver, err
		}
	}
}

// age returns how long ago this client first met the record (0 the first
// time).
func (s *Store) age(rec string) time.Duration {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.seen[rec]
	if !ok {
		if len(s.seen) >= maxSeen {
			clear(s.seen) // only delays help
		}
		s.seen[rec] = now
		return 0
	}
	return now.Sub(t)
}

func (s *Store) forget(rec string) {
	s.mu.Lock()
	delete(s.seen, rec)
	s.mu.Unlock()
}
