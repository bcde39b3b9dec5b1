package bolt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/voldfs/voldfs/backend"
)

// reserveBlock is how many versions one reservation in the file covers (a
// variable for tests).
var reserveBlock backend.Version = 1 << 20

// kickLocked asks the flusher to write the pending batch now. s.mu must be
// held.
func (s *Store) kickLocked() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// signalLocked wakes everyone waiting on s.changed. s.mu must be held.
func (s *Store) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// flusher writes batches to the file, one at a time, in order: at most
// s.interval after the first write of a batch, or when kicked. On stop it
// writes the last batch (unless the Store crashed) and exits.
func (s *Store) flusher() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			s.flushLast()
			return
		case <-s.kick:
		case <-s.dirty:
			if s.interval < 0 {
				continue // only when asked
			}
			s.mu.RLock()
			wait := s.interval - time.Since(s.pendingSince)
			s.mu.RUnlock()
			if wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-s.kick:
				case <-s.stop:
					t.Stop()
					s.flushLast()
					return
				}
				t.Stop()
			}
		}
		s.flush()
	}
}

func (s *Store) flushLast() {
	s.mu.RLock()
	crashed := s.crashed
	s.mu.RUnlock()
	if !crashed {
		s.flush()
	}
}

// flush swaps the pending batch out and writes it, with a new version
// reservation if one is due, in one transaction. The batch stays visible to
// readers (as s.flushing) until the transaction has committed.
func (s *Store) flush() {
	s.mu.Lock()
	if s.full {
		s.retryFull()
		return
	}
	if s.err != nil || s.flushing != nil {
		s.mu.Unlock()
		return
	}
	// Reserve the next block while half of this one is left, so that
	// writers rarely wait for it.
	var ceiling backend.Version
	if s.wantReserve || s.reserved-(s.next-1) < reserveBlock/2 {
		ceiling = s.next - 1 + reserveBlock
		if ceiling < s.reserved || ceiling >= backend.AnyVersion {
			s.err = fmt.Errorf("bolt: versions exhausted")
			s.signalLocked()
			s.mu.Unlock()
			return
		}
	}
	if len(s.pending) == 0 && ceiling == 0 {
		s.mu.Unlock()
		return
	}
	batch, n := s.pending, s.batch
	s.flushing = batch
	s.pending, s.pendingBytes, s.pendingSince = map[string][]byte{}, 0, time.Time{}
	s.batch++
	s.wantReserve = false
	s.signalLocked() // room for writers waiting on a full batch
	s.mu.Unlock()

	err := s.write(batch, ceiling)

	s.mu.Lock()
	if err != nil {
		// The batch stays in the overlay: it was acknowledged, and reads
		// keep answering it; writes are refused from now on (until it
		// fits, if the disk was full).
		s.err = fmt.Errorf("bolt: writing a batch of %d keys: %w", len(batch), dbErr(err))
		s.full = errors.Is(err, syscall.ENOSPC)
		s.retryNext = time.Now().Add(retryFullEvery)
	} else {
		s.flushing = nil
		s.durable = n
		s.reserved = max(s.reserved, ceiling)
	}
	s.signalLocked()
	s.mu.Unlock()
}

// write writes batch (and the new version ceiling, if not 0) to the file in
// one transaction, keys in order (bbolt inserts sorted keys fastest).
func (s *Store) write(batch map[string][]byte, ceiling backend.Version) error {
	keys := make([]string, 0, len(batch))
	for k := range batch {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, k := range keys {
			var err error
			if raw := batch[k]; raw == nil {
				err = b.Delete([]byte(k))
			} else {
				err = b.Put([]byte(k), raw)
			}
			if err != nil {
				return err
			}
		}
		if ceiling != 0 {
			return b.SetSequence(uint64(ceiling))
		}
		return nil
	})
}

// latestLocked returns the number of the batch that holds the latest
// write. s.mu must be held.
func (s *Store) latestLocked() uint64 {
	if len(s.pending) == 0 {
		return s.batch - 1 // the batch being written, or the last written
	}
	return s.batch
}

// waitDurableLocked releases s.mu and waits until batch n is in the file.
// s.mu must be held.
func (s *Store) waitDurableLocked(ctx context.Context, n uint64) error {
	for {
		if s.durable >= n {
			s.mu.Unlock()
			return nil
		}
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return err
		}
		if s.closed && s.crashed {
			s.mu.Unlock()
			return backend.ErrClosed
		}
		ch := s.changed
		if n == s.batch { // still pending, not yet being written
			s.kickLocked()
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
}

// Sync implements backend.Syncer: it returns once every write acknowledged
// before the call is in the file, or the error that kept a batch from it.
func (s *Store) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed && s.err == nil {
		s.mu.Unlock()
		return backend.ErrClosed
	}
	if err := s.waitDurableLocked(ctx, s.latestLocked()); err != nil {
		return fmt.Errorf("bolt: sync: %w", err)
	}
	return nil
}

// retryFullEvery bounds how often a batch that met a full disk is tried
// again.
var retryFullEvery = 100 * time.Millisecond

// retryFull writes the batch that met a full disk again, with the writes
// (deletes only) taken since merged in: one transaction, as the two
// batches in order would have left the file. If it fits, the Store takes
// writes again. s.mu must be held; retryFull releases it.
func (s *Store) retryFull() {
	if wait := time.Until(s.retryNext); wait > 0 {
		// Only the flusher writes: let it wait, so that a kick within
		// the interval still leads to a try.
		s.mu.Unlock()
		time.Sleep(wait)
		s.mu.Lock()
		if !s.full {
			s.mu.Unlock()
			return
		}
	}
	batch := make(map[string][]byte, len(s.flushing)+len(s.pending))
	for k, v := range s.flushing {
		batch[k] = v
	}
	for k, v := range s.pending {
		batch[k] = v
	}
	n := s.batch
	s.flushing = batch
	s.pending, s.pendingBytes, s.pendingSince = map[string][]byte{}, 0, time.Time{}
	s.batch++
	s.mu.Unlock()

	err := s.write(batch, 0)

	s.mu.Lock()
	if err != nil {
		s.err = fmt.Errorf("bolt: writing a batch of %d keys: %w", len(batch), dbErr(err))
		s.full = errors.Is(err, syscall.ENOSPC)
		s.retryNext = time.Now().Add(retryFullEvery)
	} else {
		s.err, s.full = nil, false
		s.flushing = nil
		s.durable = n
	}
	s.signalLocked()
	s.mu.Unlock()
}
