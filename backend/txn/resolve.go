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
			// A committed lock's logical version is its physical one.
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

// current returns key's state, resolving a lock from its record. sl, if not
// nil, is a slot just read. A lock of a pending transaction is waited out
// when wait (if not nil) says its outcome matters to the caller, and aborted
// once it has been pending for the timeout; otherwise current returns it with
// final false and the pre-image as the view.
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
		rec, recPhys, err := s.readRecord(ctx, l.record)
		if err != nil {
			return cur{}, err
		}
		old := s.age(l.record) >= s.timeout
		if rec.state != statePending {
			if recPhys == backend.NoVersion {
				s.forget(l.record)
			} else if old {
				// The owner should have finished long ago: finish for it.
				s.cleanup(ctx, l.record, rec, recPhys)
			}
			return cur{sl: *sl, v: l.logical(sl.phys, rec.state), final: true}, nil
		}
		v := l.logical(sl.phys, statePending)
		switch {
		case old:
			// Abandoned, or so it looks: abort it. A live owner's commit then
			// fails, and it starts over.
			if rec, recPhys, err = s.abort(ctx, l.record, rec, recPhys); err != nil {
				return cur{}, err
			}
			s.cleanup(ctx, l.record, rec, recPhys)
		case wait == nil || !wait(v):
			return cur{sl: *sl, v: v}, nil
		default:
			if err := b.wait(ctx); err != nil {
				return cur{}, err
			}
		}
		sl = nil
	}
}

// readRecord returns a transaction record and its version. A missing record
// belongs to a finished transaction whose every lock was released, or to one
// that never committed: it reads as aborted, at NoVersion.
func (s *Store) readRecord(ctx context.Context, key string) (record, backend.Version, error) {
	raw, ver, err := s.inner.Get(ctx, key)
	if errors.Is(err, backend.ErrNotFound) {
		return record{state: stateAborted}, backend.NoVersion, nil
	}
	if err != nil {
		return record{}, backend.NoVersion, err
	}
	rec, err := decodeRecord(raw)
	return rec, ver, err
}

// abort moves a pending record to aborted and returns the record's final
// state (committed if its owner won the race).
func (s *Store) abort(ctx context.Context, key string, rec record, ver backend.Version) (record, backend.Version, error) {
	for rec.state == statePending {
		aborted := record{state: stateAborted, keys: rec.keys}
		nv, err := s.inner.CAS(ctx, key, ver, aborted.encode())
		if err == nil {
			return aborted, nv, nil
		}
		// Lost the race, or the outcome is unknown: look.
		if rec, ver, err = s.readRecord(ctx, key); err != nil {
			return record{}, backend.NoVersion, err
		}
	}
	return rec, ver, nil
}

// cleanup releases every lock of a finished transaction and then deletes its
// record (at ver; NoVersion: already gone). It is best effort: anything it
// leaves is found again later.
func (s *Store) cleanup(ctx context.Context, key string, rec record, ver backend.Version) {
	if rec.state == statePending {
		return
	}
	for _, k := range rec.keys {
		sl, err := s.read(ctx, k)
		if err != nil {
			return
		}
		if sl.kind == slotLock && sl.lock.record == key {
			if err := s.finish(ctx, k, sl, rec.state); err != nil {
				return
			}
		}
	}
	if ver == backend.NoVersion {
		s.forget(key)
	} else if err := s.inner.Delete(ctx, key, ver); err == nil || errors.Is(err, backend.ErrNotFound) {
		s.forget(key)
	}
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

func (b *backoff) wait(ctx context.Context) error {
	if b.d == 0 {
		b.d = 200 * time.Microsecond
	}
	t := time.NewTimer(b.d/2 + rand.N(b.d))
	defer t.Stop()
	b.d = min(2*b.d, 20*time.Millisecond)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
