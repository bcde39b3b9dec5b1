//go:build linux || darwin

package bolt

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSpace: a bolt store reports the filesystem its file is on.
func TestSpace(t *testing.T) {
	s, path := openT(t, nil)
	sp, err := s.Space(context.Background())
	require.NoError(t, err)
	var st syscall.Statfs_t
	require.NoError(t, syscall.Statfs(filepath.Dir(path), &st))
	assert.Equal(t, uint64(st.Blocks)*uint64(st.Bsize), sp.Total)
	avail := uint64(st.Bavail) * uint64(st.Bsize)
	assert.InDelta(t, float64(avail), float64(sp.Free), float64(sp.Total/50+64<<20), "free space, within what other writers on the disk change meanwhile")
	assert.LessOrEqual(t, sp.Free, sp.Total)
}
