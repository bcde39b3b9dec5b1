package voldfs

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

func TestStatfs(t *testing.T) {
	f, _ := newMemFS(t)
	st0, err := f.Statfs()
	require.NoError(t, err)
	assert.True(t, st0.Known)
	assert.Equal(t, uint64(1), st0.UsedInodes, "the root")
	assert.Equal(t, uint32(4096), st0.Bsize)
	assert.Equal(t, uint32(255), st0.NameMax)
	writeFile(t, f, "a", make([]byte, 10*4096)) // 10 data blocks, 1 index node
	require.NoError(t, f.Mkdir("d", 0o755))
	f.WaitFrees()
	st, err := f.Inodes().Statfs(context.Background())
	require.NoError(t, err)
	assert.Equal(t, st0.UsedInodes+2, st.UsedInodes)
	assert.Equal(t, st0.UsedBlocks+11, st.UsedBlocks)
	assert.Equal(t, st.UsedBlocks*4096, st.UsedBytes)
	assert.Equal(t, st.UsedBlocks+st.Bfree, st.Blocks)
	assert.Equal(t, st.UsedInodes+st.Ffree, st.Files)
	require.NoError(t, f.Remove("a"))
	f.WaitFrees()
	st, err = f.Statfs()
	require.NoError(t, err)
	assert.Equal(t, st0.UsedBlocks, st.UsedBlocks)
	assert.Equal(t, st0.UsedInodes+1, st.UsedInodes)
}

// spaceStore is a memory store that reports a fixed capacity.
type spaceStore struct {
	*memory.Store
	sp  backend.Space
	err error
}

func (s *spaceStore) Space(context.Context) (backend.Space, error) { return s.sp, s.err }

// TestStatfsSpace: a store that reports its capacity (backend.SpaceReporter)
// gives statfs real total and free figures; one that cannot tell
// (ErrUnsupported) leaves them nominal; another error is statfs's error.
func TestStatfsSpace(t *testing.T) {
	s := &spaceStore{Store: memory.New(), sp: backend.Space{Total: 1 << 30, Free: 256 << 20}}
	f, err := Format(context.Background(), s, &Options{BlockSize: 4096})
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Statfs()
	require.NoError(t, err)
	assert.True(t, st.SpaceKnown)
	assert.Equal(t, uint64(1<<30/4096), st.Blocks)
	assert.Equal(t, uint64(256<<20/4096), st.Bfree)
	assert.Equal(t, st.Bfree, st.Bavail)

	s.err = fmt.Errorf("no figures: %w", errors.ErrUnsupported)
	st, err = f.Statfs()
	require.NoError(t, err)
	assert.False(t, st.SpaceKnown)
	assert.Equal(t, st.UsedBlocks+st.Bfree, st.Blocks)

	s.err = errors.New("stats failed")
	_, err = f.Statfs()
	assert.ErrorContains(t, err, "stats failed")
}
