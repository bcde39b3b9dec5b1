package etcd

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
)

// TestNoSpace: an etcd at its --quota-backend-bytes refuses creates, puts
// and commits with backend.ErrNoSpace ("database space exceeded"), and
// what it stored before reads back. (etcd then takes only reads and
// deletes until an operator compacts, defragments and disarms its NOSPACE
// alarm.)
func TestNoSpace(t *testing.T) {
	c := startCluster(t, 1)
	m := c.members[0]
	c.kill(m)
	m.args = append(m.args, "--quota-backend-bytes", fmt.Sprint(4<<20))
	c.start(m)
	c.waitHealthy(30 * time.Second)
	s, err := New(c.config(), WithPrefix("nospace/"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	val := bytes.Repeat([]byte("v"), 200<<10)
	var stored []string
	var vers []backend.Version
	var full error
	for i := 0; i < 200; i++ {
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
	t.Logf("%d values of 200 KiB, then: %v", len(stored), full)
	_, err = s.Put(ctx, "put", val)
	assert.ErrorIs(t, err, backend.ErrNoSpace, "Put")
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
	assert.NoError(t, s.Delete(ctx, stored[0], vers[0]), "a delete is still taken")
}
