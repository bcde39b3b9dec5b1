package txn

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/voldfs/voldfs/backend"
)

// errAborted: another client aborted this attempt's record; nothing of it
// applies, and Commit starts over.
var errAborted = errors.New("txn: transaction aborted by another client")

// Commit implements backend.Committer with the protocol in the package
// comment. A single op is one conditional write (or a read, for a check).
func (s *Store) Commit(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	if err := backend.CheckOps(ctx, ops, s.MaxValueSize()); err != nil {
		return nil, err
	}
	switch len(ops) {
	case 0:
		return []backend.Version{}, nil
	case 1:
		v, err := s.commitOne(ctx, ops[0])
		if err != nil {
			return nil, err
		}
		return []backend.Version{v}, nil
	}
	var b backoff
	for {
		vers, err := s.attempt(ctx, ops)
		if !errors.Is(err, errAborted) {
			return vers, err
		}
		// Aborted by another client: nothing applied. Let it go ahead
		// before trying again, or two clients with short timeouts could
		// abort each other for ever.
		if err := b.wait(ctx, s.wait); err != nil {
			return nil, err
		}
	}
}

func conflict(key string) error { return &backend.ConflictError{Key: key} }

// commitOne applies one op with the wrapper's own single-key calls.
func (s *Store) commitOne(ctx context.Context, op backend.Op) (backend.Version, error) {
	if !op.Check && op.Old != backend.AnyVersion && (!op.Delete || op.Old != backend.NoVersion) {
		// One conditional write.
		var ver backend.Version
		var err error
		if op.Delete {
			err = s.Delete(ctx, op.Key, op.Old)
		} else {
			ver, err = s.CAS(ctx, op.Key, op.Old, op.Value)
		}
		if errors.Is(err, backend.ErrConflict) || errors.Is(err, backend.ErrNotFound) {
			return backend.NoVersion, conflict(op.Key)
		}
		return ver, err
	}
	for {
		c, err := s.current(ctx, op.Key, nil, func(v view) bool { return v.matches(op.Old) })
		if err != nil {
			return backend.NoVersion, err
		}
		if !c.v.matches(op.Old) {
			return backend.NoVersion, conflict(op.Key)
		}
		if op.Check {
			return backend.NoVersion, nil
		}
		old := c.v.ver // NoVersion if absent
		if op.Delete {
			if !c.v.exists {
				return backend.NoVersion, nil
			}
			err = s.Delete(ctx, op.Key, old)
			if err == nil {
				return backend.NoVersion, nil
			}
		} else {
			ver, err2 := s.CAS(ctx, op.Key, old, op.Value)
			if err2 == nil {
				return ver, nil
			}
			err = err2
		}
		if !errors.Is(err, backend.ErrConflict) && !errors.Is(err, backend.ErrNotFound) {
			return backend.NoVersion, err
		}
		if op.Old != backend.AnyVersion {
			return backend.NoVersion, conflict(op.Key)
		}
		// AnyVersion raced with another writer: look again.
	}
}

// attempt runs the protocol once. It returns errAborted if another client
// aborted the transaction before its commit.
func (s *Store) attempt(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	// Lock in key order, so that transactions waiting for each other's
	// locks cannot wait in a cycle.
	order := make([]int, 0, len(ops))
	for i, op := range ops {
		if op.Check && op.Old == backend.AnyVersion {
			continue // no condition, no write
		}
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(ops[a].Key, ops[b].Key) })
	keys := make([]string, 0, len(order))
	for _, i := range order {
		keys = append(keys, ops[i].Key)
	}
	vers := make([]backend.Version, len(ops))
	if len(order) == 0 {
		return vers, nil
	}

	// 1. Read every key; a plain value that fails its condition ends the
	// commit before it writes anything.
	items, err := backend.GetMulti(ctx, s.inner, keys)
	if err != nil {
		return nil, err
	}
	slots := make([]*slot, len(ops))
	for _, i := range order {
		sl := slot{kind: slotAbsent}
		if it, ok := items[ops[i].Key]; ok {
			if sl, err = decode(it.Value, it.Version); err != nil {
				return nil, fmt.Errorf("txn: %q: %w", ops[i].Key, err)
			}
		}
		if sl.kind != slotLock && !sl.view().matches(ops[i].Old) {
			return nil, conflict(ops[i].Key)
		}
		slots[i] = &sl
	}

	// 2. Lock every key, the primary first: its lock is the transaction's
	// record, pending.
	var id [idLen]byte
	_, _ = rand.Read(id[:])
	base := lock{primary: keys[0], id: string(id[:])}
	locked := make([]slot, len(ops))
	for n, i := range order {
		l := base
		if n == 0 {
			l.state, l.keys = statePending, keys
		}
		sl, err := s.lockKey(ctx, l, ops[i], slots[i])
		if err != nil {
			// Only this client commits, and it will not: nothing applies
			// whatever happens next.
			if n > 0 {
				s.giveUp(ctx, ops, order[:n], locked)
			} else if !errors.Is(err, backend.ErrConflict) {
				s.giveUpUnknown(ctx, base)
			}
			return nil, err
		}
		locked[i] = sl
	}

	// 3. Commit: one CAS of the primary lock from pending to committed.
	prim, err := s.commitPrimary(ctx, locked[order[0]])
	if err != nil {
		if errors.Is(err, errAborted) {
			s.rollback(ctx, ops, order, locked, prim)
		}
		return nil, err
	}
	locked[order[0]] = prim

	// 4. Release the locks, the primary last. The commit has happened:
	// failures here only leave locks that readers resolve.
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := true
	for _, i := range order[1:] {
		release := func() {
			v, ok := s.release(ctx, ops[i], locked[i])
			mu.Lock()
			vers[i] = v
			done = done && ok
			mu.Unlock()
		}
		if s.sequential {
			release()
		} else {
			wg.Go(release)
		}
	}
	wg.Wait()
	if !done {
		// The primary must stay until every other lock is released.
		i := order[0]
		if !ops[i].Delete && !ops[i].Check {
			vers[i] = prim.lock.commitVer
		}
		return vers, nil
	}
	vers[order[0]], _ = s.release(ctx, ops[order[0]], prim)
	return vers, nil
}

// lockKey replaces op's key with the lock l (completed with op and the
// key's pre-image), if the key satisfies op's condition, and returns the
// lock as stored. sl is the key's slot as last read.
func (s *Store) lockKey(ctx context.Context, l lock, op backend.Op, sl *slot) (slot, error) {
	limit := backend.MaxValueSize(s.inner)
	for {
		if sl != nil && sl.kind == slotLock && sl.lock.primary == l.primary && sl.lock.id == l.id {
			// An earlier try that reported failure was applied. If it
			// placed the primary, another client may have aborted the
			// transaction since: it is then rolling the other keys back,
			// and committing would apply only part of it.
			if sl.lock.state == stateAborted {
				return slot{}, errAborted
			}
			return *sl, nil
		}
		c, err := s.current(ctx, op.Key, sl, func(v view) bool { return v.matches(op.Old) })
		if err != nil {
			return slot{}, err
		}
		if !c.v.matches(op.Old) {
			return slot{}, conflict(op.Key)
		}
		l.preExists, l.preVer, l.pre = c.v.exists, c.v.ver, c.v.value
		switch {
		case op.Check:
			l.kind = kindCheck
		case op.Delete:
			l.kind = kindDelete
		default:
			l.kind, l.value = kindPut, op.Value
		}
		enc := l.encode()
		if limit > 0 && len(enc) > limit {
			return slot{}, fmt.Errorf("txn: commit %q: %w: the lock (old and new value) takes %d bytes, limit %d",
				op.Key, backend.ErrTooLarge, len(enc), limit)
		}
		ver, err := s.inner.CAS(ctx, op.Key, c.sl.phys, enc)
		switch {
		case err == nil:
			return slot{kind: slotLock, phys: ver, lock: l}, nil
		case errors.Is(err, backend.ErrTooLarge), errors.Is(err, backend.ErrInvalidKey), errors.Is(err, backend.ErrClosed),
			errors.Is(err, backend.ErrNoSpace):
			return slot{}, err
		}
		// A conflict, or an unknown outcome: look again.
		x, rerr := s.read(ctx, op.Key)
		if rerr != nil {
			if errors.Is(err, backend.ErrConflict) {
				err = rerr // a conflict with a lock, maybe: unknown
			}
			return slot{}, err
		}
		sl = &x
	}
}

// commitPrimary moves the primary lock from pending to committed and
// returns it as stored, or errAborted (with the primary as found) if
// another client aborted the transaction first.
func (s *Store) commitPrimary(ctx context.Context, prim slot) (slot, error) {
	if prim.lock.state != statePending {
		return prim, errAborted // never commit a record another client aborted
	}
	l := prim.lock
	l.state = stateCommitted
	for {
		l.commitVer = prim.phys
		nv, err := s.inner.CAS(ctx, l.primary, prim.phys, l.encode())
		if err == nil {
			return slot{kind: slotLock, phys: nv, lock: l}, nil
		}
		x, rerr := s.read(ctx, l.primary)
		if rerr != nil {
			if errors.Is(err, backend.ErrConflict) {
				err = rerr
			}
			return slot{}, err // outcome unknown
		}
		if x.kind != slotLock || x.lock.id != l.id {
			if !errors.Is(err, backend.ErrConflict) {
				// Our CAS may have applied, and another client rolled
				// the transaction forward and released its locks since:
				// the outcome is unknown, not an abort.
				return slot{}, err
			}
			return slot{kind: slotAbsent}, errAborted // aborted and released
		}
		switch x.lock.state {
		case stateCommitted:
			return x, nil // the unknown outcome was a success
		case stateAborted:
			return x, errAborted
		}
		prim = x // still pending: the CAS did not apply
	}
}

// giveUp aborts a transaction its owner will not commit and releases the
// locks it took (those of the ops in order), best effort: other clients
// finish what it leaves.
func (s *Store) giveUp(ctx context.Context, ops []backend.Op, order []int, locked []slot) {
	if prim, err := s.abort(ctx, locked[order[0]]); err == nil {
		s.rollback(ctx, ops, order, locked, prim)
	}
}

// rollback releases the locks of an aborted attempt (those of the ops in
// order), the primary (as last read) last.
func (s *Store) rollback(ctx context.Context, ops []backend.Op, order []int, locked []slot, prim slot) {
	for _, i := range order[1:] {
		if s.finish(ctx, ops[i].Key, locked[i], stateAborted) != nil {
			return
		}
	}
	if prim.kind == slotLock && prim.lock.state == stateAborted {
		_ = s.finish(ctx, prim.lock.primary, prim, stateAborted)
	}
	s.forget(locked[order[0]].lock.txn())
}

// giveUpUnknown gives up a transaction whose primary lock may or may not
// have been placed.
func (s *Store) giveUpUnknown(ctx context.Context, base lock) {
	x, err := s.read(ctx, base.primary)
	if err == nil && x.kind == slotLock && x.lock.id == base.id {
		if prim, err := s.abort(ctx, x); err == nil {
			_ = s.cleanup(ctx, prim)
		}
	}
}

// release replaces a committed op's lock l with the op's result. It
// returns the key's new version (NoVersion for deletes and checks) and
// whether the lock is known to be gone.
func (s *Store) release(ctx context.Context, op backend.Op, l slot) (backend.Version, bool) {
	if op.Delete || op.Check {
		return backend.NoVersion, s.finish(ctx, op.Key, l, stateCommitted) == nil
	}
	ver, err := s.inner.CAS(ctx, op.Key, l.phys, encodePlain(op.Value))
	if err == nil {
		return ver, true
	}
	// Someone else released it, keeping the lock's logical version as the
	// value's (or the outcome is unknown, and the lock may still stand).
	return l.lock.logical(l.phys, stateCommitted).ver, errors.Is(err, backend.ErrConflict)
}
