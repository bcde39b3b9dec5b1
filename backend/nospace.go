package backend

import (
	"context"
	"errors"
)

// ErrNoSpace: the store is full; nothing was stored. Like ErrTooLarge it
// is a definite refusal, so a caller need not read back to learn whether a
// write applied. A store returns it only when it knows the write did not
// apply (memcached's "out of memory" reply when it runs with -M, a disk
// full during a bolt transaction that then rolled back); voldfs reports it
// as ENOSPC.
var ErrNoSpace = errors.New("backend: no space left in the store")

// SpaceReporter is implemented by stores that can tell how much they hold
// and how much more they can take, so that statfs (df) reports real free
// space: memcached's memory limit (stats limit_maxbytes and bytes), the
// free space of the filesystem of a bolt file. Figures are estimates in
// bytes; a store that cannot tell returns an error wrapping
// errors.ErrUnsupported.
type SpaceReporter interface {
	Space(ctx context.Context) (Space, error)
}

// Space is a store's capacity as SpaceReporter reports it.
type Space struct {
	Total uint64 // bytes the store can hold in all
	Free  uint64 // bytes it can still take
}
