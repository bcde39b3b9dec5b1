package voldfs

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
