package backend

import "errors"

// ErrNoSpace: the store is full; nothing was stored. Like ErrTooLarge it
// is a definite refusal, so a caller need not read back to learn whether a
// write applied. A store returns it only when it knows the write did not
// apply (memcached's "out of memory" reply when it runs with -M, a disk
// full during a bolt transaction that then rolled back); voldfs reports it
// as ENOSPC.
var ErrNoSpace = errors.New("backend: no space left in the store")
