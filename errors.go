package voldfs

import (
	"errors"
	"fmt"
)

// Sentinel errors of package voldfs. Errors returned by FS and File methods are
// *fs.PathError or *os.LinkError values that wrap one of these, an fs.Err*
// sentinel or a syscall.Errno, so errors.Is works on all of them.
var (
	// ErrCorrupt: a store value failed its checksum or could not be decoded.
	// The error text names the key.
	ErrCorrupt = errors.New("voldfs: corrupt store value")
	// ErrNotFormatted: the store holds no filesystem under the given name.
	ErrNotFormatted = errors.New("voldfs: no filesystem in store")
	// ErrFormatVersion: the filesystem was written by an unknown format version.
	ErrFormatVersion = errors.New("voldfs: unknown format version")
	// ErrWrongStore: the blocks store given to Open is not the one the
	// filesystem was formatted with.
	ErrWrongStore = errors.New("voldfs: wrong store pairing")
	// ErrStale: an inode vanished while a handle still referred to it.
	ErrStale = errors.New("voldfs: stale file handle")
)

// corruptf returns an error wrapping ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}
