package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
)

// TestNoSpace: a Redis at its maxmemory (policy noeviction) refuses
// creates, CASes, puts and commits with backend.ErrNoSpace; what it
// stored before reads back, and deletes still work and make room again.
func TestNoSpace(t *testing.T) {
	addr := startStandalone(t)
	ctx := context.Background()
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.ConfigSet(ctx, "maxmemory", "4mb").Err())
	s := New(newClient([]string{addr}, false), WithPrefix("nospace/"))
	t.Cleanup(func() { s.Close() })
	val := bytes.Repeat([]byte("v"), 100<<10)
	var stored []string
	var vers []backend.Version
	var full error
	for i := 0; i < 1000; i++ {
		key := fmt.Sprintf("k%d", i)
		var v backend.Version
		if v, full = s.CAS(ctx, key, backend.NoVersion, val); full != nil {
			break
		}
		stored = append(stored, key)
		vers = append(vers, v)
	}
	require.ErrorIs(t, full, backend.ErrNoSpace, "after %d values", len(stored))
	require.NotEmpty(t, stored)
	t.Logf("%d values of 100 KiB, then: %v", len(stored), full)
	_, err := s.Put(ctx, "put", val)
	assert.ErrorIs(t, err, backend.ErrNoSpace, "Put")
	_, err = s.CAS(ctx, stored[0], vers[0], val)
	assert.ErrorIs(t, err, backend.ErrNoSpace, "CAS over a value")
	_, err = s.Commit(ctx, []backend.Op{{Key: "c1", Value: val}, {Key: "c2", Value: val}})
	assert.ErrorIs(t, err, backend.ErrNoSpace, "Commit")
	for _, k := range []string{"put", "c1", "c2"} {
		_, _, err := s.Get(ctx, k)
		assert.ErrorIs(t, err, backend.ErrNotFound, "%s: a refused write stored nothing", k)
	}
	for i, k := range stored {
		got, v, err := s.Get(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, vers[i], v)
		assert.True(t, bytes.Equal(val, got), "%s intact", k)
	}
	// Deleting makes room.
	for i, k := range stored[:len(stored)/2] {
		require.NoError(t, s.Delete(ctx, k, vers[i]), "delete %s when full", k)
	}
	_, err = s.CAS(ctx, "after", backend.NoVersion, val)
	assert.NoError(t, err, "a write fits after deletes")
	assert.False(t, errors.Is(err, backend.ErrConflict))
}
