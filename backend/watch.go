package backend

import (
	"context"
	"time"
)

// Watcher is implemented by stores that can tell a waiting client when a
// key changes (etcd's watches, Redis's pub/sub), so that it need not poll.
//
// WaitChange returns nil once key's version is no longer ver: the key was
// written or deleted, or, for ver == NoVersion, created. It returns ctx's
// error (possibly wrapped) when ctx is done first, and any other error when
// it cannot watch (the caller then polls). A change that happened after the
// caller read ver but before the call must still make it return: the
// store watches from ver on, or subscribes first and re-reads the version
// before it waits. Spurious early returns are allowed (a reconnect, a
// version that changed and changed back): callers re-read the key and wait
// again if nothing they care about changed.
type Watcher interface {
	WaitChange(ctx context.Context, key string, ver Version) error
}

// WaitChange waits until key's version is no longer ver with s's Watcher
// if it has one, else sleeps for fallback. Either way it returns early,
// with ctx's error, when ctx is done. A Watcher that fails for another
// reason than ctx is treated as absent for this call: WaitChange sleeps for
// what is left of fallback, measured from the call, and returns nil. The
// caller bounds the wait with ctx (a Watcher may wait forever).
func WaitChange(ctx context.Context, s Store, key string, ver Version, fallback time.Duration) error {
	start := time.Now()
	if w, ok := s.(Watcher); ok {
		err := w.WaitChange(ctx, key, ver)
		if err == nil || ctx.Err() != nil {
			return err
		}
		fallback -= time.Since(start)
	}
	if fallback <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(fallback)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
