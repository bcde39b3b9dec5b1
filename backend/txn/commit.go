package txn

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	for {
		vers, err := s.attempt(ctx, ops)
		if !errors.Is(err, errAborted) {
			return vers, err
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
// aborted the record before the commit.
func (s *Store) attempt(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	// Lock in key order, so that transactions waiting for each other's
	// locks cannot wait in a cycle.
	order := make([]int, 0, len(ops))
	keys := make([]string, 0, len(ops))
	for i, op := range ops {
		if op.Check && op.Old == backend.AnyVersion {
			continue // no condition, no write
		}
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case ops[a].Key < ops[b].Key:
			return -1
		case ops[a].Key > ops[b].Key:
			return 1
		}
		return 0
	})
	for _, i := range order {
		keys = append(keys, ops[i].Key)
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

	// 2. Create the record: the transaction exists, pending.
	rk := s.newRecordKey()
	rec := record{state: statePending, keys: keys}
	recVer, err := s.createRecord(ctx, rk, rec.encode())
	if err != nil {
		return nil, err
	}

	// 3. Lock every key.
	locked := make([]slot, len(ops))
	for _, i := range order {
		l, err := s.lockKey(ctx, rk, ops[i], slots[i])
		if err != nil {
			// Only this client commits the record, and it will not:
			// nothing applies whatever happens next.
			s.giveUp(ctx, rk, rec, recVer)
			return nil, err
		}
		locked[i] = l
	}

	// 4. Commit: one CAS of the record.
	committed := record{state: stateCommitted, keys: keys}
	recVer, err = s.commitRecord(ctx, rk, recVer, committed.encode())
	if err != nil {
		if errors.Is(err, errAborted) {
			s.cleanup(ctx, rk, record{state: stateAborted, keys: keys}, recVer)
		}
		return nil, err
	}

	// 5. Release the locks. The commit has happened: failures here only
	// leave locks that readers resolve, and a record for later cleanup.
	vers := make([]backend.Version, len(ops))
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := true
	for _, i := range order {
		wg.Go(func() {
			v, ok := s.release(ctx, ops[i], locked[i])
			vers[i] = v
			if !ok {
				mu.Lock()
				done = false
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if done {
		_ = s.inner.Delete(ctx, rk, recVer)
	}
	return vers, nil
}

// createRecord creates the pending record under a fresh key.
func (s *Store) createRecord(ctx context.Context, key string, value []byte) (backend.Version, error) {
	for {
		ver, err := s.inner.CAS(ctx, key, backend.NoVersion, value)
		if err == nil {
			return ver, nil
		}
		if errors.Is(err, backend.ErrTooLarge) || errors.Is(err, backend.ErrInvalidKey) || errors.Is(err, backend.ErrClosed) {
			return backend.NoVersion, err
		}
		// A conflict on a fresh random key means an earlier try of this
		// call was applied; so may an unknown outcome. Look.
		_, ver, rerr := s.readRecord(ctx, key)
		if rerr != nil {
			return backend.NoVersion, err
		}
		if ver != backend.NoVersion {
			return ver, nil
		}
		if errors.Is(err, backend.ErrConflict) {
			return backend.NoVersion, err
		}
	}
}

// lockKey replaces op's key with a lock naming the record rk, if the key
// satisfies op's condition, and returns the lock as stored. sl is the key's
// slot as last read.
func (s *Store) lockKey(ctx context.Context, rk string, op backend.Op, sl *slot) (slot, error) {
	limit := backend.MaxValueSize(s.inner)
	for {
		if sl != nil && sl.kind == slotLock && sl.lock.record == rk {
			return *sl, nil // an earlier try that reported failure was applied
		}
		c, err := s.current(ctx, op.Key, sl, func(v view) bool { return v.matches(op.Old) })
		if err != nil {
			return slot{}, err
		}
		if !c.v.matches(op.Old) {
			return slot{}, conflict(op.Key)
		}
		l := lock{record: rk, kind: kindPut, preExists: c.v.exists, preVer: c.v.ver, pre: c.v.value}
		switch {
		case op.Check:
			l.kind = kindCheck
		case op.Delete:
			l.kind = kindDelete
		default:
			l.value = op.Value
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
		case errors.Is(err, backend.ErrTooLarge), errors.Is(err, backend.ErrInvalidKey), errors.Is(err, backend.ErrClosed):
			return slot{}, err
		}
		// A conflict, or an unknown outcome: look again.
		x, rerr := s.read(ctx, op.Key)
		if rerr != nil {
			return slot{}, err
		}
		sl = &x
	}
}

// commitRecord moves the record from pending to committed and returns its
// new version, or errAborted if another client aborted it first.
func (s *Store) commitRecord(ctx context.Context, key string, ver backend.Version, value []byte) (backend.Version, error) {
	for {
		nv, err := s.inner.CAS(ctx, key, ver, value)
		if err == nil {
			return nv, nil
		}
		rec, rv, rerr := s.readRecord(ctx, key)
		if rerr != nil {
			return backend.NoVersion, err // outcome unknown
		}
		switch rec.state {
		case stateCommitted:
			return rv, nil // the unknown outcome was a success
		case stateAborted:
			return rv, errAborted
		}
		ver = rv // still pending: the CAS did not apply
	}
}

// giveUp aborts a record its owner will not commit and releases the locks
// taken so far, best effort: helpers finish what it leaves.
func (s *Store) giveUp(ctx context.Context, key string, rec record, ver backend.Version) {
	if rec, ver, err := s.abort(ctx, key, rec, ver); err == nil {
		s.cleanup(ctx, key, rec, ver)
	}
}

// release replaces a committed op's lock l with the op's result. It
// returns the key's new version (NoVersion for deletes and checks) and
// whether the lock is known to be gone.
func (s *Store) release(ctx context.Context, op backend.Op, l slot) (backend.Version, bool) {
	lv := l.phys
	if op.Delete || op.Check {
		return backend.NoVersion, s.finish(ctx, op.Key, l, stateCommitted) == nil
	}
	ver, err := s.inner.CAS(ctx, op.Key, lv, encodePlain(op.Value))
	if err == nil {
		return ver, true
	}
	// Someone else released it, keeping the lock's version as the value's
	// (or the outcome is unknown, and the lock may still stand at lv).
	return lv, errors.Is(err, backend.ErrConflict)
}
