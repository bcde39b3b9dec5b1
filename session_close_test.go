package voldfs

import (
	"context"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

// beatHangs applies a session heartbeat's CAS once armed, then gives no
// reply until the caller gives up: the beat FS.Close cancels.
type beatHangs struct {
	*memory.Store
	armed   atomic.Bool
	hanging chan struct{}
}

func (s *beatHangs) CAS(ctx context.Context, key string, old backend.Version, v []byte) (backend.Version, error) {
	ver, err := s.Store.CAS(ctx, key, old, v)
	if err == nil && strings.Contains(key, "/s/") && s.armed.CompareAndSwap(true, false) {
		close(s.hanging)
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return ver, err
}

// TestCloseDeletesSessionAfterCancelledBeat: FS.Close cancels a heartbeat
// in flight whose CAS was applied, so the session's record is not at the
// version the session knows; Close must still delete it (nothing else
// would: a record no lock table names is never broken).
func TestCloseDeletesSessionAfterCancelledBeat(t *testing.T) {
	ctx := context.Background()
	s := &beatHangs{Store: memory.New(), hanging: make(chan struct{})}
	_, err := Format(ctx, s, nil)
	require.NoError(t, err)
	f, err := Open(ctx, s, &Options{OpTimeout: time.Second})
	require.NoError(t, err)
	f.SetLockTimeout(40 * time.Millisecond) // a beat every 10 ms
	w, err := f.Create("l")
	require.NoError(t, err)
	require.NoError(t, w.Flock(ctx, syscall.LOCK_EX))
	s.armed.Store(true)
	select {
	case <-s.hanging:
	case <-time.After(5 * time.Second):
		t.Fatal("no heartbeat")
	}
	require.NoError(t, f.Close())
	n := 0
	require.NoError(t, s.List(ctx, DefaultName+"/s/", func(string) error { n++; return nil }))
	require.Zero(t, n, "session records left after Close")
}
