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

// TestConformance runs the store suite with the default tombstone deletes.
func TestConformance(t *testing.T) {
	endpoint := startServer(t)
	backendtest.RunConformanceTests(t, func(t *testing.T) backend.Store { return openStore(t, endpoint) })
}

// TestAtomicDelete checks Delete with atomic-delete=true (conditional
// DELETEs) against the contract; the rest of the Store is the same as in
// TestConformance. It does not race a Delete with a CAS: versitygw's
// conditional DELETE is not atomic (see TestDeleteRacesCAS).
func TestAtomicDelete(t *testing.T) {
	s := openStore(t, startServer(t), "atomic-delete", "true")
	ctx := context.Background()
	k := "k"
	require.ErrorIs(t, s.Delete(ctx, k, 12345), backend.ErrNotFound, "Delete(v) of a missing key")
	require.ErrorIs(t, s.Delete(ctx, k, backend.AnyVersion), backend.ErrNotFound, "Delete(AnyVersion) of a missing key")
	v1, err := s.CAS(ctx, k, backend.NoVersion, []byte("one"))
	require.NoError(t, err)
	v2, err := s.CAS(ctx, k, v1, []byte("two"))
	require.NoError(t, err)
	assert.ErrorIs(t, s.Delete(ctx, k, v1), backend.ErrConflict, "Delete with a stale version")
	assert.ErrorIs(t, s.Delete(ctx, k, backend.NoVersion), backend.ErrConflict, "Delete(NoVersion) of an existing key")
	require.NoError(t, s.Delete(ctx, k, v2), "Delete with the current version")
	_, _, err = s.Get(ctx, k)
	assert.ErrorIs(t, err, backend.ErrNotFound)
	assert.ErrorIs(t, s.Delete(ctx, k, v2), backend.ErrNotFound, "second Delete")
	v3, err := s.CAS(ctx, k, backend.NoVersion, []byte("one")) // same bytes as v1
	require.NoError(t, err, "create after delete")
	assert.NotEqual(t, v1, v3, "a re-created key got an old version")
	_, err = s.CAS(ctx, k, v1, []byte("x"))
	assert.ErrorIs(t, err, backend.ErrConflict, "CAS with a version from before the delete")
	n := 0
	require.NoError(t, s.(backend.Lister).List(ctx, "", func(string) error { n++; return nil }))
	assert.Equal(t, 1, n, "keys listed")
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
// wrote stays. (With atomic-delete=true on versitygw 1.8.0 both won in
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
