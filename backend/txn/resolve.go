package txn

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// cur is a key's physical slot with its logical view. final is false only
// for a key locked by a pending transaction: a writer may replace the slot
// (at sl.phys) only when final is true.
type cur struct {
	sl    slot
	v     view
	final bool
}

// view returns an unlocked slot's view.
func (sl *slot) view() view {
	if sl.kind != slotPlain {
		return view{}
	}
	return view{exists: true, value: sl.value, ver: sl.ver}
}

// logical returns the view of a locked key once its transaction is in state.
func (l *lock) logical(phys backend.Version, state byte) view {
	if state == stateCommitted {
		switch l.kind {
		case kindPut:
			// A committed lock's logical version is its physical one,
			// but for the primary's (see commitVer).
			if l.state != 0 {
				return view{exists: true, value: l.value, ver: l.commitVer}
			}
			return view{exists: true, value: l.value, ver: phys}
		case kindDelete:
			return view{}
		}
	}
	if !l.preExists {
		return view{}
	}
	return view{exists: true, value: l.pre, ver: l.preVer}
}

// current returns key's state, resolving a lock from its transaction's
// primary lock. sl, if not nil, is a slot just read. A lock of a pending
// transaction is waited out when wait (if not nil) says its outcome matters
// to the caller, and aborted once it has been pending for the timeout;
// otherwise current returns it with final false and the pre-image as the
// view.
func (s *Store) current(ctx context.Context, key string, sl *slot, wait func(view) bool) (cur, error) {
	var b backoff
	for {
		if sl == nil {
			x, err := s.read(ctx, key)
			if err != nil {
				return cur{}, err
			}
			sl = &x
		}
		if sl.kind != slotLock {
			return cur{sl: *sl, v: sl.view(), final: true}, nil
		}
		l := &sl.lock
		prim, err := s.primary(ctx, key, sl)
		if err != nil {
			return cur{}, err
		}
		if prim.kind != slotLock && l.primary != key {
			// The transaction finished after this lock was read: its owner
			// (or a helper) may have released this lock with the committed
			// value and then the primary. Only a lock that still stands is
			// one left by an attempt that never committed.
			x, err := s.read(ctx, key)
			if err != nil {
				return cur{}, err
			}
			if x.kind != slotLock || x.phys != sl.phys {
				sl = &x
				continue
			}
		}
		state := stateAborted // the primary is released: finished
		if prim.kind == slotLock {
			state = prim.lock.state
		}
		old := s.age(l.txn()) >= s.timeout
		if state != statePending {
			switch {
			case prim.kind != slotLock:
				if old {
					// Left by an attempt that never committed: release it.
					if s.finish(ctx, key, *sl, stateAborted) == nil {
						s.forget(l.txn())
					}
				}
			case state == stateCommitted && l.state != 0 && wait != nil:
				// A writer must not replace a committed primary before the
				// other locks are released: they would then read as
				// aborted. Release them all first.
				if err := s.cleanup(ctx, prim); err != nil {
					return cur{}, err
				}
				sl = nil
				continue
			case old:
				// The owner should have finished long ago: finish for it.
				_ = s.cleanup(ctx, prim)
			}
			return cur{sl: *sl, v: l.logical(sl.phys, state), final: true}, nil
		}
		v := l.logical(sl.phys, statePending)
		switch {
		case old:
			// Abandoned, or so it looks: abort it. A live owner's commit then
			// fails, and it starts over.
			if prim, err = s.abort(ctx, prim); err != nil {
				return cur{}, err
			}
			_ = s.cleanup(ctx, prim)
		case wait == nil || !wait(v):
			return cur{sl: *sl, v: v}, nil
		default:
			if err := b.wait(ctx, s.wait); err != nil {
				return cur{}, err
			}
		}
		sl = nil
	}
}

// primary returns the primary lock of the transaction that locked key (sl),
// or a non-lock slot if the primary no longer holds that transaction's
// lock. The primary is released only after every other lock, and a lock can
// appear after that only from an attempt that never commits: a lock whose
// primary is gone belongs to an aborted transaction.
func (s *Store) primary(ctx context.Context, key string, sl *slot) (slot, error) {
	if sl.lock.primary == key {
		return *sl, nil
	}
	p, err := s.read(ctx, sl.lock.primary)
	if err != nil {
		return slot{}, err
	}
	if p.kind != slotLock || p.lock.id != sl.lock.id || p.lock.state == 0 {
		return slot{kind: slotAbsent}, nil
	}
	return p, nil
}

// abort moves a pending primary lock to aborted and returns the primary's
// final state: aborted, committed if its owner won the race, or not a lock
// if the transaction finished meanwhile.
func (s *Store) abort(ctx context.Context, prim slot) (slot, error) {
	key, id := prim.lock.primary, prim.lock.id
	for prim.kind == slotLock && prim.lock.state == statePending {
		l := prim.lock
		l.state = stateAborted
		nv, err := s.inner.CAS(ctx, key, prim.phys, l.encode())
		if err == nil {
			return slot{kind: slotLock, phys: nv, lock: l}, nil
		}
		// Lost the race, or the outcome is unknown: look.
		x, err := s.read(ctx, key)
		if err != nil {
			return slot{}, err
		}
		if x.kind != slotLock || x.lock.id != id {
			return slot{kind: slotAbsent}, nil
		}
		prim = x
	}
	return prim, nil
}

// cleanup releases every lock of a finished transaction, given its primary
// lock, the primary last. Whatever it leaves on an error is found again
// later.
func (s *Store) cleanup(ctx context.Context, prim slot) error {
	if prim.kind != slotLock || prim.lock.state == statePending {
		return nil
	}
	l := &prim.lock
	for _, k := range l.keys {
		if k == l.primary {
			continue
		}
		sl, err := s.read(ctx, k)
		if err != nil {
			return err
		}
		if sl.kind == slotLock && sl.lock.primary == l.primary && sl.lock.id == l.id {
			if err := s.finish(ctx, k, sl, l.state); err != nil {
				return err
			}
		}
	}
	if err := s.finish(ctx, l.primary, prim, l.state); err != nil {
		return err
	}
	s.forget(l.txn())
	return nil
}

// finish replaces a lock of a finished transaction with the key's logical
// value, keeping its logical version. A lock already replaced is not an
// error.
func (s *Store) finish(ctx context.Context, key string, sl slot, state byte) error {
	v := sl.lock.logical(sl.phys, state)
	var err error
	if v.exists {
		_, err = s.inner.CAS(ctx, key, sl.phys, encodeVersioned(v.ver, v.value))
	} else {
		err = s.inner.Delete(ctx, key, sl.phys)
	}
	if errors.Is(err, backend.ErrConflict) || errors.Is(err, backend.ErrNotFound) {
		return nil
	}
	return err
}

// backoff waits with jittered exponential delays, from 200µs up to 20ms.
type backoff struct{ d time.Duration }

func (b *backoff) wait(ctx context.Context, sleep func(context.Context, time.Duration) error) error {
	if b.d == 0 {
		b.d = 200 * time.Microsecond
	}
	d := b.d/2 + rand.N(b.d)
	b.d = min(2*b.d, 20*time.Millisecond)
	if sleep != nil {
		return sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
