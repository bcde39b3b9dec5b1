package voldfs

import "context"

// Bounded waits. Every wait ends at the caller's context or at OpTimeout:
// work that outlives its caller (write-behind uploads, frees, the deletion
// of an unlinked inode) runs under a context of its own, detached from the
// caller's cancellation but bounded by OpTimeout, and a fetch that several
// callers share runs under such a context too, while each caller waits
// for it only as long as its own context allows.

// background returns the context of work started for ctx that must not end
// with ctx (a free after the operation returned): ctx's values without its
// cancellation, ended after OpTimeout if one is set.
func (c *core) background(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx = context.WithoutCancel(ctx)
	if c.opTimeout > 0 {
		return context.WithTimeout(ctx, c.opTimeout)
	}
	return ctx, func() {}
}

// shared runs fetch once for the concurrent callers of key (singleflight).
// The fetch runs under its own context (background), so one caller's
// deadline never fails another caller, and each caller waits until the
// fetch ends or its own ctx does.
func (c *core) shared(ctx context.Context, key string, fetch func(ctx context.Context) (any, error)) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	run := func() (any, error) {
		fctx, cancel := c.background(ctx)
		defer cancel()
		return fetch(fctx)
	}
	if ctx.Done() == nil {
		// A caller that never gives up may wait in the call itself (no
		// goroutine hop); callers with deadlines still join it below.
		v, err, _ := c.flight.Do(key, run)
		return v, err
	}
	ch := c.flight.DoChan(key, run)
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// step returns the context of one step of an operation that may itself
// wait longer than OpTimeout (a blocking lock waits for its holder): the
// step, a few store calls, ends at ctx or after OpTimeout.
func (c *core) step(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.opTimeout > 0 {
		return context.WithTimeout(ctx, c.opTimeout)
	}
	return ctx, func() {}
}
