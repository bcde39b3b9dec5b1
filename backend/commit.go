package backend

import (
	"context"
	"errors"
	"fmt"
)

// Op is one key's part of a multi-key commit: a condition on the key's
// current version and, unless Check is set, a new value or a delete.
type Op struct {
	// Key is the key the op conditions and changes.
	Key string
	// Old is the version the key must have for the commit to apply
	// (NoVersion: the key must be absent). AnyVersion matches whatever the
	// key holds, present or absent.
	Old Version
	// Value is the key's new value, unless Delete or Check is set.
	Value []byte
	// Delete removes the key instead of writing it.
	Delete bool
	// Check makes the op a condition only: nothing is written.
	Check bool
}

// Committer is implemented by stores that can apply a conditional multi-key
// write atomically: either every op's condition holds and every put and
// delete is applied, or nothing changes. Commit returns the new version of
// each op's key, in op order (NoVersion for deletes and checks).
//
// A failed condition is an error wrapping ErrConflict (a *ConflictError
// naming the first key found to differ) and changes nothing. A store that
// cannot commit some keys together (Redis Cluster: keys in different hash
// slots) refuses with an error wrapping errors.ErrUnsupported and changes
// nothing. As with CAS, any error other than ErrConflict, ErrTooLarge,
// ErrInvalidKey, ErrNotFound, ErrClosed or errors.ErrUnsupported means the
// outcome is unknown. A key may appear in at most one op.
type Committer interface {
	Commit(ctx context.Context, ops []Op) ([]Version, error)
}

// ConflictError reports the key whose condition failed in a multi-key commit.
// It wraps ErrConflict.
type ConflictError struct{ Key string }

func (e *ConflictError) Error() string { return fmt.Sprintf("backend: version conflict on %q", e.Key) }

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// CheckOps returns what every Commit checks before applying anything: the
// context's error, valid and distinct keys, and values within limit
// (limit <= 0: no limit).
func CheckOps(ctx context.Context, ops []Op, limit int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	seen := make(map[string]struct{}, len(ops))
	for _, op := range ops {
		if !ValidKey(op.Key) {
			return fmt.Errorf("%w: %q", ErrInvalidKey, op.Key)
		}
		if _, dup := seen[op.Key]; dup {
			return fmt.Errorf("%w: key %q appears twice in one commit", ErrInvalidKey, op.Key)
		}
		seen[op.Key] = struct{}{}
		if !op.Delete && !op.Check {
			if err := CheckValue(op.Value, limit); err != nil {
				return err
			}
		}
	}
	return nil
}

// Commit applies ops atomically with s's Committer. A store without one gets
// errors.ErrUnsupported: wrap it with the fallback (package backend/txn),
// which builds multi-key commits on per-key CAS.
func Commit(ctx context.Context, s Store, ops []Op) ([]Version, error) {
	if c, ok := s.(Committer); ok {
		return c.Commit(ctx, ops)
	}
	return nil, errors.ErrUnsupported
}

// Syncer is implemented by stores that acknowledge writes before they are
// durable (group commit). Sync returns once every write acknowledged before
// the call is durable. Stores without it are durable on acknowledgement, or
// never (memory, memcached).
type Syncer interface {
	Sync(ctx context.Context) error
}

// Sync makes every write acknowledged before the call durable, if s is a
// Syncer; otherwise it returns nil at once.
func Sync(ctx context.Context, s Store) error {
	if y, ok := s.(Syncer); ok {
		return y.Sync(ctx)
	}
	return nil
}
