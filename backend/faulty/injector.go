package faulty

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Injector decides whether an operation fails. MaybeError is called before
// every operation of a Store, from many goroutines at once; it returns nil to
// let the operation run, ErrReplyLost (or an error wrapping it) to run the
// operation and fail anyway, or any other error (normally ErrInjected) to
// fail the operation without running it.
type Injector interface {
	MaybeError(op Op, key string) error
}

// ctxInjector is implemented by injectors that wait (Latency, Hang): the
// Store calls maybeErrorCtx instead of MaybeError so the wait ends with ctx.
type ctxInjector interface {
	maybeErrorCtx(ctx context.Context, op Op, key string) error
}

func maybeError(ctx context.Context, inj Injector, op Op, key string) error {
	if inj == nil {
		return nil
	}
	if c, ok := inj.(ctxInjector); ok {
		return c.maybeErrorCtx(ctx, op, key)
	}
	return inj.MaybeError(op, key)
}

// InjectorFunc adapts a function to an Injector.
type InjectorFunc func(op Op, key string) error

// MaybeError calls fn(op, key).
func (fn InjectorFunc) MaybeError(op Op, key string) error { return fn(op, key) }

// indexed fails the operations whose 0-based index, counted over the calls
// the injector sees, satisfies match.
type indexed struct {
	n     atomic.Int64
	match func(i int64) bool
	err   error
}

func (x *indexed) MaybeError(Op, string) error {
	if x.match(x.n.Add(1) - 1) {
		return x.err
	}
	return nil
}

// OnIndex fails exactly the i-th operation (0-based) the injector sees, with
// ErrInjected. Installed with Wrap, that is the i-th operation of the Store.
func OnIndex(i int64) Injector {
	return &indexed{match: func(n int64) bool { return n == i }, err: ErrInjected}
}

// After fails every operation from the i-th (0-based) on, with ErrInjected:
// the store stopped answering, as when a client crashes or is cut off.
func After(i int64) Injector {
	return &indexed{match: func(n int64) bool { return n >= i }, err: ErrInjected}
}

// Ambiguous makes the i-th operation (0-based) run and then fail with
// ErrReplyLost: a write (CAS, Put, Delete) is applied but the caller gets an
// error, as when the reply is lost on the network.
func Ambiguous(i int64) Injector {
	return &indexed{match: func(n int64) bool { return n == i }, err: ErrReplyLost}
}

// Randomly fails each operation with probability p, with ErrInjected. The
// sequence of decisions is determined by seed (their assignment to concurrent
// operations is not).
func Randomly(p float64, seed int64) Injector {
	return &random{p: p, rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed)>>32^0x9e3779b97f4a7c15))}
}

type random struct {
	p   float64
	mu  sync.Mutex
	rng *rand.Rand
}

func (r *random) MaybeError(Op, string) error {
	r.mu.Lock()
	fail := r.rng.Float64() < r.p
	r.mu.Unlock()
	if fail {
		return ErrInjected
	}
	return nil
}

// Latency delays every operation by d, then defers to inner (nil: no
// error). The delay ends early, with the context's error, if the operation's
// context is done.
func Latency(d time.Duration, inner Injector) Injector {
	return &latency{d: d, inner: inner}
}

type latency struct {
	d     time.Duration
	inner Injector
}

func (l *latency) MaybeError(op Op, key string) error {
	time.Sleep(l.d)
	if l.inner == nil {
		return nil
	}
	return l.inner.MaybeError(op, key)
}

func (l *latency) maybeErrorCtx(ctx context.Context, op Op, key string) error {
	t := time.NewTimer(l.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	return maybeError(ctx, l.inner, op, key)
}

// Hang makes the i-th operation (0-based) block until its context is done and
// then return the context's error, without running it: a store that stopped
// replying. Use it to test cancellation and timeouts.
func Hang(i int64) Injector {
	return &hang{idx: indexed{match: func(n int64) bool { return n == i }, err: ErrInjected}}
}

type hang struct{ idx indexed }

// MaybeError is used only where no context is at hand (inside a caller's own
// Injector): with nothing to wait for, the operation fails with ErrInjected.
func (h *hang) MaybeError(op Op, key string) error { return h.idx.MaybeError(op, key) }

func (h *hang) maybeErrorCtx(ctx context.Context, op Op, key string) error {
	if h.idx.MaybeError(op, key) == nil {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}
