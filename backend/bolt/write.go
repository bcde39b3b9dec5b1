package bolt

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/voldfs/voldfs/backend"
)

// recordOverhead is what lockForWrite counts for a pending record beside its
// key and value bytes (map entry, slice header, version).
const recordOverhead = 64

// writable returns why the Store takes no write that needs nver new
// versions, or nil. s.mu must be held. While the disk is full (s.full) a
// delete (no new version) is taken, and a refused write asks the flusher
// to try the failed batch again, so the Store takes writes again as soon
// as there is room.
func (s *Store) writable(nver int) error {
	switch {
	case s.closed:
		return backend.ErrClosed
	case s.full && nver == 0:
		return nil
	case s.full:
		s.kickLocked()
		return fmt.Errorf("%w: the disk is full: %w", backend.ErrNoSpace, s.err)
	case s.err != nil && errors.Is(s.err, syscall.ENOSPC):
		// The disk is full: a definite refusal of this write (the one
		// acknowledged in the failed batch got s.err itself from Sync).
		return fmt.Errorf("%w: an earlier batch found the disk full, so the store takes no more writes: %w", backend.ErrNoSpace, s.err)
	case s.err != nil:
		return fmt.Errorf("an earlier batch failed to reach the file, so the store takes no more writes: %w", s.err)
	}
	return nil
}

// lockForWrite waits until a write of size bytes that needs nver new
// versions may be applied, and returns with s.mu held for it. It waits for
// the flusher when the pending batch is full or the versions reserved in the
// file are used up.
func (s *Store) lockForWrite(ctx context.Context, size, nver int) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.Lock()
		if err := s.writable(nver); err != nil {
			s.mu.Unlock()
			return err
		}
		full := s.pendingBytes > 0 && s.pendingBytes+size > s.maxPending
		short := s.reserved-(s.next-1) < backend.Version(nver)
		if !full && !short {
			return nil
		}
		s.wantReserve = s.wantReserve || short
		ch := s.changed
		s.kickLocked()
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// current returns key's version as the Store's writes have left it.
// s.mu must be held: only the flusher writes the file, and only keys in
// the overlay, so the file's version of a key outside it is current.
func (s *Store) current(key string) (backend.Version, error) {
	if raw, ok := s.overlay(key); ok {
		return recordVersion(raw), nil
	}
	var v backend.Version
	err := s.db.View(func(tx *bbolt.Tx) error {
		v = recordVersion(tx.Bucket(bucket).Get([]byte(key)))
		return nil
	})
	return v, dbErr(err)
}

// setLocked puts value (nil: a delete) into the pending batch and returns
// the version it got (NoVersion for a delete). s.mu must be held by a
// lockForWrite that counted the version.
func (s *Store) setLocked(key string, value []byte, del bool) backend.Version {
	var raw []byte
	v := backend.NoVersion
	if !del {
		v = s.next
		s.next++
		raw = record(v, value)
	}
	if old, ok := s.pending[key]; ok {
		s.pendingBytes -= len(key) + len(old) + recordOverhead
	}
	if len(s.pending) == 0 {
		s.pendingSince = time.Now()
		select {
		case s.dirty <- struct{}{}:
		default:
		}
	}
	s.pending[key] = raw
	s.pendingBytes += len(key) + len(raw) + recordOverhead
	return v
}

// unlockAfterWrite releases s.mu after a write was applied and, under
// SyncAlways, waits until its batch is in the file. It nudges the flusher
// early when the pending batch is a quarter full, so that the disk keeps
// busy before writers have to wait.
func (s *Store) unlockAfterWrite(ctx context.Context) error {
	if s.pendingBytes >= s.maxPending/4 {
		s.kickLocked()
	}
	if s.durability != SyncAlways {
		s.mu.Unlock()
		return nil
	}
	return s.waitDurableLocked(ctx, s.latestLocked())
}

func checkValue(value []byte) error {
	if len(value) > maxValueSize {
		return fmt.Errorf("%d-byte value: %w", len(value), backend.ErrTooLarge)
	}
	return nil
}

// writeOne runs one single-key write: checks, waits for room, then fn under
// s.mu, which returns the new version or a refusal.
func (s *Store) writeOne(ctx context.Context, what, key string, value []byte, nver int, fn func() (backend.Version, error)) (backend.Version, error) {
	if err := s.readable(ctx, key); err != nil {
		return backend.NoVersion, err
	}
	if err := checkValue(value); err != nil {
		return backend.NoVersion, fmt.Errorf("bolt: %s %q: %w", what, key, err)
	}
	if err := s.lockForWrite(ctx, len(key)+len(value)+versionLen+recordOverhead, nver); err != nil {
		return backend.NoVersion, fmt.Errorf("bolt: %s %q: %w", what, key, err)
	}
	v, err := fn()
	if err != nil {
		s.mu.Unlock()
		return backend.NoVersion, fmt.Errorf("bolt: %s %q: %w", what, key, err)
	}
	if err := s.unlockAfterWrite(ctx); err != nil {
		return backend.NoVersion, fmt.Errorf("bolt: %s %q: %w", what, key, err)
	}
	return v, nil
}

// CAS implements backend.Store.
func (s *Store) CAS(ctx context.Context, key string, old backend.Version, value []byte) (backend.Version, error) {
	return s.writeOne(ctx, "cas", key, value, 1, func() (backend.Version, error) {
		cur, err := s.current(key)
		if err != nil {
			return backend.NoVersion, err
		}
		if cur != old {
			return backend.NoVersion, backend.ErrConflict
		}
		return s.setLocked(key, value, false), nil
	})
}

// Put implements backend.Putter.
func (s *Store) Put(ctx context.Context, key string, value []byte) (backend.Version, error) {
	return s.writeOne(ctx, "put", key, value, 1, func() (backend.Version, error) {
		return s.setLocked(key, value, false), nil
	})
}

// Delete implements backend.Store.
func (s *Store) Delete(ctx context.Context, key string, old backend.Version) error {
	_, err := s.writeOne(ctx, "delete", key, nil, 0, func() (backend.Version, error) {
		cur, err := s.current(key)
		switch {
		case err != nil:
			return backend.NoVersion, err
		case cur == backend.NoVersion:
			return backend.NoVersion, backend.ErrNotFound
		case old != backend.AnyVersion && cur != old:
			return backend.NoVersion, backend.ErrConflict
		}
		return s.setLocked(key, nil, true), nil
	})
	return err
}

// Commit implements backend.Committer: every condition is checked and every
// write applied in one step under the Store's lock, so the ops land in the
// same batch and reach the file in one transaction. A delete of a key that
// is absent (allowed by Old NoVersion or AnyVersion) changes nothing.
func (s *Store) Commit(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	if err := backend.CheckOps(ctx, ops, maxValueSize); err != nil {
		return nil, fmt.Errorf("bolt: commit: %w", err)
	}
	size, nver := 0, 0
	for _, op := range ops {
		size += len(op.Key) + versionLen + recordOverhead
		if !op.Delete && !op.Check {
			size += len(op.Value)
			nver++
		}
	}
	if err := s.lockForWrite(ctx, size, nver); err != nil {
		return nil, fmt.Errorf("bolt: commit: %w", err)
	}
	curs := make([]backend.Version, len(ops))
	for i, op := range ops {
		cur, err := s.current(op.Key)
		if err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("bolt: commit: %w", err)
		}
		if op.Old != backend.AnyVersion && cur != op.Old {
			s.mu.Unlock()
			return nil, fmt.Errorf("bolt: commit: %w", &backend.ConflictError{Key: op.Key})
		}
		curs[i] = cur
	}
	vers := make([]backend.Version, len(ops))
	for i, op := range ops {
		switch {
		case op.Check:
		case op.Delete:
			if curs[i] != backend.NoVersion {
				s.setLocked(op.Key, nil, true)
			}
		default:
			vers[i] = s.setLocked(op.Key, op.Value, false)
		}
	}
	if err := s.unlockAfterWrite(ctx); err != nil {
		return nil, fmt.Errorf("bolt: commit: %w", err)
	}
	return vers, nil
}
