package memcache_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/internal/testserver"
)

// TestSpace: the total is the server's -m limit, and storing values takes
// about their size off the free space.
func TestSpace(t *testing.T) {
	s, err := memcache.New(testserver.MemcachedMemory(t, 16))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	sp0, err := s.Space(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(16<<20), sp0.Total)
	assert.LessOrEqual(t, sp0.Free, sp0.Total)
	for i := range 8 {
		_, err := s.Put(ctx, "k"+string(rune('a'+i)), bytes.Repeat([]byte("v"), 256<<10))
		require.NoError(t, err)
	}
	sp, err := s.Space(ctx)
	require.NoError(t, err)
	assert.Equal(t, sp0.Total, sp.Total)
	assert.InDelta(t, float64(sp0.Free-2<<20), float64(sp.Free), 64<<10, "2 MiB stored: free %d, was %d", sp.Free, sp0.Free)
	var _ backend.SpaceReporter = s
}
