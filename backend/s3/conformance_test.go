package s3_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/backendtest"
)

// TestConformance runs the store suite with tombstone deletes (the
// default) and with conditional DELETEs (atomic_delete=true; versitygw's
// are not atomic against a racing PUT, which the suite does not race).
func TestConformance(t *testing.T) {
	endpoint := startServer(t)
	for _, tc := range []struct {
		name  string
		query []string
	}{
		{"tombstones", nil},
		{"atomic_delete", []string{"atomic_delete", "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backendtest.RunConformanceTests(t, func(t *testing.T) backend.Store { return openStore(t, endpoint, tc.query...) })
		})
	}
}

// TestCommit runs the multi-key commit tests through the fallback
// (backend/txn), with its crash and lost-reply sweep: S3 has no
// multi-object transaction.
func TestCommit(t *testing.T) {
	endpoint := startServer(t)
	backendtest.RunCommitTests(t, func(t *testing.T) backend.Store { return openStore(t, endpoint) })
}

// TestDeleteRacesCAS races a Delete and a CAS from the same version, and a
// create after each delete: exactly one of the first two wins, and what it
// wrote stays. (With atomic_delete=true on versitygw 1.8.0 both won in
// about 1 round in 30: its DELETE checks If-Match, then unlinks, outside
// the lock its conditional PUTs take.)
func TestDeleteRacesCAS(t *testing.T) {
	s := openStore(t, startServer(t))
	ctx := context.Background()
	rounds := 200
	if testing.Short() {
		rounds = 50
	}
	k := "race"
	for i := range rounds {
		v, err := s.CAS(ctx, k, backend.NoVersion, []byte("x"))
		require.NoError(t, err, "round %d: create", i)
		var (
			wg         sync.WaitGroup
			derr, cerr error
			cv         backend.Version
		)
		wg.Go(func() { derr = s.Delete(ctx, k, v) })
		wg.Go(func() { cv, cerr = s.CAS(ctx, k, v, []byte("y")) })
		wg.Wait()
		if derr == nil {
			require.ErrorIs(t, cerr, backend.ErrConflict, "round %d: the Delete won, so the CAS must conflict", i)
			_, _, err := s.Get(ctx, k)
			require.ErrorIs(t, err, backend.ErrNotFound, "round %d: after the Delete won", i)
			continue
		}
		require.ErrorIs(t, derr, backend.ErrConflict, "round %d: Delete", i)
		require.NoError(t, cerr, "round %d: the Delete conflicted, so the CAS must win", i)
		got, gv, err := s.Get(ctx, k)
		require.NoError(t, err, "round %d: the CAS's value must stay", i)
		assert.Equal(t, "y", string(got))
		assert.Equal(t, cv, gv)
		require.NoError(t, s.Delete(ctx, k, gv), "round %d", i)
	}
}

// TestTombstoneReuse has clients with stores of their own create and
// delete one key, as lock holders do: a create over a tombstone must be
// exclusive, so each holder's Delete with the version its create returned
// succeeds. (Found a lost create when the tombstone was told by a HEAD.)
func TestTombstoneReuse(t *testing.T) {
	endpoint := startServer(t)
	ctx := context.Background()
	const clients = 4
	rounds := 20
	if testing.Short() {
		rounds = 8
	}
	var wg sync.WaitGroup
	for c := range clients {
		s := openStoreAt(t, endpoint, "/reuse")
		wg.Go(func() {
			for r := 0; r < rounds; {
				v, err := s.CAS(ctx, "lock", backend.NoVersion, []byte(fmt.Sprint(c)))
				if errors.Is(err, backend.ErrConflict) {
					continue
				}
				if !assert.NoError(t, err, "client %d: create", c) {
					return
				}
				if !assert.NoError(t, s.Delete(ctx, "lock", v), "client %d: delete of the value its create wrote", c) {
					return
				}
				r++
			}
		})
	}
	wg.Wait()
	_, _, err := openStoreAt(t, endpoint, "/reuse").Get(ctx, "lock")
	assert.ErrorIs(t, err, backend.ErrNotFound)
}
