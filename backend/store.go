// Package backend defines the key-value store contract that voldfs keeps every
// byte of a filesystem behind, and the optional capabilities a store may offer.
//
// A store needs only three operations: Get, compare-and-swap (CAS) and a
// conditional Delete. Everything else (batch reads, listing, blind puts, a value
// size limit) is an optional extension interface discovered by type assertion,
// each with a helper in this package that falls back to the core operations.
//
// # Keys
//
// Keys are printable ASCII (0x21..0x7e), contain no spaces and are at most
// MaxKeyLen (250) bytes long: memcached's rule, so that every store can take
// them as they are. Stores may reject other keys with ErrInvalidKey.
//
// # Values
//
// Values are arbitrary bytes, including the empty value (which is distinct from
// a missing key). A store never retains or modifies a slice passed to it, and a
// caller may modify a slice a store returns.
//
// # Versions
//
// Every stored value has a Version, an opaque non-zero number that changes each
// time the key is written (memcached's CAS unique, etcd's ModRevision, a counter
// in the embedded stores). The zero Version, NoVersion, means "absent": CAS with
// old == NoVersion creates the key only if it does not exist. A version is never
// reused for the same key while a client could still hold it, so a CAS with a
// stale version fails even after the key was deleted and re-created (no ABA).
//
// Conformance: package backend/backendtest holds the suite every store must pass.
package backend

import (
	"context"
	"errors"
	"fmt"
)

// Version identifies one written value of one key. See the package comment.
type Version uint64

// NoVersion is the version of an absent key. CAS with old == NoVersion creates
// the key only if it is absent.
const NoVersion Version = 0

// AnyVersion, passed to Delete, deletes whatever version the key holds. It is
// meant for write-once values (blocks) that no one updates.
const AnyVersion Version = ^Version(0)

// MaxKeyLen is the longest key a store must accept.
const MaxKeyLen = 250

// Errors returned by stores. Stores return them unwrapped or wrapped (so
// errors.Is works); any other error means the outcome is unknown (for CAS: the
// value may or may not have been stored).
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("backend: key not found")
	// ErrConflict: the key's current version is not the one the caller gave.
	ErrConflict = errors.New("backend: version conflict")
	// ErrTooLarge: the value exceeds the store's limit; nothing was stored.
	ErrTooLarge = errors.New("backend: value too large")
	// ErrInvalidKey: the key breaks the key rules; nothing was stored.
	ErrInvalidKey = errors.New("backend: invalid key")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("backend: store closed")
)

// Store is the contract voldfs needs from a key-value store. Implementations
// must be safe for concurrent use and must honour ctx: a cancelled or expired
// context makes the call return ctx.Err() (possibly wrapped) promptly.
type Store interface {
	// Get returns the value and version of key. A missing key is ErrNotFound
	// (with a nil value and NoVersion). An empty value is returned as a
	// non-nil empty slice with a non-zero version.
	Get(ctx context.Context, key string) ([]byte, Version, error)

	// CAS stores value under key only if the key's current version is old
	// (old == NoVersion: only if the key is absent) and returns the new
	// version. A mismatch is ErrConflict and changes nothing. A value over the
	// store's limit is ErrTooLarge and changes nothing.
	CAS(ctx context.Context, key string, old Version, value []byte) (Version, error)

	// Delete removes key only if its current version is old (or old is
	// AnyVersion). A missing key is ErrNotFound; a mismatch is ErrConflict.
	// Passing NoVersion is ErrConflict if the key exists and ErrNotFound if not.
	Delete(ctx context.Context, key string, old Version) error

	// Close releases the store's resources. Calls after Close return ErrClosed.
	Close() error
}

// BatchGetter is implemented by stores that can fetch many keys in one round
// trip (memcached's GetMulti). Missing keys are simply absent from the result.
type BatchGetter interface {
	GetMulti(ctx context.Context, keys []string) (map[string]Item, error)
}

// Item is a value with its version, as returned by GetMulti.
type Item struct {
	Value   []byte
	Version Version
}

// Lister is implemented by stores that can enumerate keys (for fsck and GC).
// List calls fn for every key with the prefix, in no particular order, until fn
// returns an error (which List returns) or the keys are exhausted.
type Lister interface {
	List(ctx context.Context, prefix string, fn func(key string) error) error
}

// Putter is implemented by stores that can write a value unconditionally more
// cheaply than CAS. voldfs uses it only for write-once values under fresh keys.
// Put returns the new version, or NoVersion when the store cannot learn it
// without another round trip (memcached); a caller that needs the version of
// a value it Put must Get it.
type Putter interface {
	Put(ctx context.Context, key string, value []byte) (Version, error)
}

// SizeLimiter is implemented by stores that limit the size of a value.
type SizeLimiter interface {
	// MaxValueSize returns the largest value length the store accepts.
	MaxValueSize() int
}

// GetMulti fetches keys with s's BatchGetter if it has one, else one Get per
// key. Missing keys are absent from the result.
func GetMulti(ctx context.Context, s Store, keys []string) (map[string]Item, error) {
	if b, ok := s.(BatchGetter); ok {
		return b.GetMulti(ctx, keys)
	}
	out := make(map[string]Item, len(keys))
	for _, k := range keys {
		v, ver, err := s.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[k] = Item{Value: v, Version: ver}
	}
	return out, nil
}

// Put writes value under a key the caller knows to be fresh (write-once): with
// s's Putter if it has one, else with a create-only CAS. The version may be
// NoVersion (see Putter).
func Put(ctx context.Context, s Store, key string, value []byte) (Version, error) {
	if p, ok := s.(Putter); ok {
		return p.Put(ctx, key, value)
	}
	return s.CAS(ctx, key, NoVersion, value)
}

// List enumerates keys with prefix if s is a Lister, else it returns
// errors.ErrUnsupported.
func List(ctx context.Context, s Store, prefix string, fn func(key string) error) error {
	if l, ok := s.(Lister); ok {
		return l.List(ctx, prefix, fn)
	}
	return errors.ErrUnsupported
}

// MaxValueSize returns s's value size limit, or 0 if it states none.
func MaxValueSize(s Store) int {
	if l, ok := s.(SizeLimiter); ok {
		return l.MaxValueSize()
	}
	return 0
}

// CheckKey returns what every store call checks before its request: the
// context's error, or ErrInvalidKey if key breaks the key rules.
func CheckKey(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !ValidKey(key) {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	return nil
}

// CheckValue returns an error wrapping ErrTooLarge if value is longer than
// limit (limit <= 0: no limit).
func CheckValue(value []byte, limit int) error {
	if limit > 0 && len(value) > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(value), limit)
	}
	return nil
}

// ValidKey reports whether key obeys the key rules in the package comment.
func ValidKey(key string) bool {
	if len(key) == 0 || len(key) > MaxKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}
