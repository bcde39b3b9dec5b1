// Package faulty wraps a backend.Store to inject errors, lost replies,
// latency and hangs, for testing how voldfs behaves when its store fails.
// It follows pebble's vfs/errorfs: an Injector decides, operation by
// operation, whether the operation fails.
//
// A crash sweep runs a workload once per operation index i with After(i) (the
// store stops answering at operation i, as if the client crashed) or
// OnIndex(i), and checks that each run either succeeds or returns ErrInjected
// and leaves the filesystem consistent.
//
// Real network failures are not ErrInjected but errno-carrying errors such as
// a *net.OpError wrapping syscall.ECONNRESET: FailWith makes any injector fail
// with such an error (NetError, ErrConnReset, ErrBrokenPipe, ErrTimedOut)
// instead, and LostReply applies an operation and then fails it with one.
package faulty

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/voldfs/voldfs/backend"
)

// ErrInjected is the error an Injector injects. Store returns it wrapped, so
// test with errors.Is.
var ErrInjected = errors.New("faulty: injected error")

// ErrReplyLost, returned by an Injector, makes the Store perform the operation
// on the wrapped store and then return ErrReplyLost instead of the result: the
// write happened but the caller cannot know it. It wraps ErrInjected.
var ErrReplyLost = fmt.Errorf("%w (reply lost after the operation was applied)", ErrInjected)

// Op is the kind of a store operation.
type Op int

// The operations a Store passes to its Injector.
const (
	OpGet      Op = iota // backend.Store.Get
	OpCAS                // backend.Store.CAS
	OpDelete             // backend.Store.Delete
	OpGetMulti           // backend.BatchGetter.GetMulti
	OpList               // backend.Lister.List
	OpPut                // backend.Putter.Put
	OpCommit             // backend.Committer.Commit
)

var opNames = [...]string{"Get", "CAS", "Delete", "GetMulti", "List", "Put", "Commit"}

// String returns the operation's method name.
func (op Op) String() string {
	if op < 0 || int(op) >= len(opNames) {
		return fmt.Sprintf("Op(%d)", int(op))
	}
	return opNames[op]
}

// IsWrite reports whether op changes the store.
func (op Op) IsWrite() bool {
	return op == OpCAS || op == OpDelete || op == OpPut || op == OpCommit
}

// Store is a backend.Store that consults an Injector before each operation.
// It implements every optional interface of package backend: when the
// wrapped store lacks one, Store falls back as the backend helpers do
// (GetMulti: one Get per key; Put: a create-only CAS; List and Commit:
// errors.ErrUnsupported; MaxValueSize: 0). Close is passed through without
// injection. Store is safe for concurrent use.
type Store struct {
	s   backend.Store
	inj atomic.Pointer[injectorBox]
	ops atomic.Int64
}

type injectorBox struct{ Injector }

var (
	_ backend.Store       = (*Store)(nil)
	_ backend.BatchGetter = (*Store)(nil)
	_ backend.Lister      = (*Store)(nil)
	_ backend.Putter      = (*Store)(nil)
	_ backend.SizeLimiter = (*Store)(nil)
	_ backend.Committer   = (*Store)(nil)
)

// Wrap returns a Store that forwards to s and consults inj (nil: never fail).
func Wrap(s backend.Store, inj Injector) *Store {
	f := &Store{s: s}
	f.SetInjector(inj)
	return f
}

// SetInjector replaces the Injector (nil: never fail). It is safe to call
// while operations run; each operation consults the Injector in place when it
// starts.
func (f *Store) SetInjector(inj Injector) {
	if inj == nil {
		f.inj.Store(nil)
		return
	}
	f.inj.Store(&injectorBox{inj})
}

// Ops returns how many operations have been attempted (Close not counted).
func (f *Store) Ops() int64 { return f.ops.Load() }

// Unwrap returns the wrapped store.
func (f *Store) Unwrap() backend.Store { return f.s }

// before counts an operation and asks the Injector about it. It returns
// (apply, err): if err is nil the operation runs normally; otherwise it fails
// with err, after running if apply is set (a lost reply).
func (f *Store) before(ctx context.Context, op Op, key string) (apply bool, err error) {
	f.ops.Add(1)
	box := f.inj.Load()
	if box == nil {
		return false, nil
	}
	err = maybeError(ctx, box.Injector, op, key)
	if err == nil {
		return false, nil
	}
	return errors.Is(err, ErrReplyLost), fmt.Errorf("faulty: %s %q: %w", op, key, err)
}

// Get implements backend.Store.
func (f *Store) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	apply, err := f.before(ctx, OpGet, key)
	if err != nil {
		if apply {
			_, _, _ = f.s.Get(ctx, key)
		}
		return nil, backend.NoVersion, err
	}
	return f.s.Get(ctx, key)
}

// CAS implements backend.Store.
func (f *Store) CAS(ctx context.Context, key string, old backend.Version, value []byte) (backend.Version, error) {
	apply, err := f.before(ctx, OpCAS, key)
	if err != nil {
		if apply {
			_, _ = f.s.CAS(ctx, key, old, value)
		}
		return backend.NoVersion, err
	}
	return f.s.CAS(ctx, key, old, value)
}

// Delete implements backend.Store.
func (f *Store) Delete(ctx context.Context, key string, old backend.Version) error {
	apply, err := f.before(ctx, OpDelete, key)
	if err != nil {
		if apply {
			_ = f.s.Delete(ctx, key, old)
		}
		return err
	}
	return f.s.Delete(ctx, key, old)
}

// GetMulti implements backend.BatchGetter. The Injector sees the first key.
func (f *Store) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	var first string
	if len(keys) > 0 {
		first = keys[0]
	}
	apply, err := f.before(ctx, OpGetMulti, first)
	if err != nil {
		if apply {
			_, _ = backend.GetMulti(ctx, f.s, keys)
		}
		return nil, err
	}
	return backend.GetMulti(ctx, f.s, keys)
}

// List implements backend.Lister. The Injector sees the prefix as the key.
func (f *Store) List(ctx context.Context, prefix string, fn func(key string) error) error {
	apply, err := f.before(ctx, OpList, prefix)
	if err != nil {
		if apply {
			_ = backend.List(ctx, f.s, prefix, fn)
		}
		return err
	}
	return backend.List(ctx, f.s, prefix, fn)
}

// Put implements backend.Putter.
func (f *Store) Put(ctx context.Context, key string, value []byte) (backend.Version, error) {
	apply, err := f.before(ctx, OpPut, key)
	if err != nil {
		if apply {
			_, _ = backend.Put(ctx, f.s, key, value)
		}
		return backend.NoVersion, err
	}
	return backend.Put(ctx, f.s, key, value)
}

// Commit implements backend.Committer with the wrapped store's Commit
// (errors.ErrUnsupported if it has none). The Injector sees the first op's
// key; a lost reply applies the whole commit.
func (f *Store) Commit(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	var first string
	if len(ops) > 0 {
		first = ops[0].Key
	}
	apply, err := f.before(ctx, OpCommit, first)
	if err != nil {
		if apply {
			_, _ = backend.Commit(ctx, f.s, ops)
		}
		return nil, err
	}
	return backend.Commit(ctx, f.s, ops)
}

// MaxValueSize implements backend.SizeLimiter: the wrapped store's limit, or
// 0 if it states none.
func (f *Store) MaxValueSize() int { return backend.MaxValueSize(f.s) }

// Close closes the wrapped store. It is never injected.
func (f *Store) Close() error { return f.s.Close() }
