package voldfs

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend/memory"
)

// TestSeekWhenceDataHole: Seek with SEEK_DATA and SEEK_HOLE finds whole-block
// holes, as lseek(2) does, and refuses them on a directory.
func TestSeekWhenceDataHole(t *testing.T) {
	fsys, err := Format(context.Background(), memory.New(), &Options{BlockSize: 4096})
	require.NoError(t, err)
	t.Cleanup(func() { fsys.Close() })
	f, err := fsys.OpenFile("sparse", os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()
	// Data in block 0 and block 3; blocks 1 and 2 are a hole.
	_, err = f.WriteAt([]byte("a"), 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("b"), 3*4096)
	require.NoError(t, err)
	require.NoError(t, f.Sync())

	pos, err := f.Seek(10, SeekHole)
	require.NoError(t, err)
	assert.Equal(t, int64(4096), pos, "first hole after offset 10")
	pos, err = f.Seek(4096, SeekData)
	require.NoError(t, err)
	assert.Equal(t, int64(3*4096), pos, "next data after the hole")
	cur, err := f.Seek(0, 1)
	require.NoError(t, err)
	assert.Equal(t, pos, cur, "SEEK_DATA moves the offset")
	_, err = f.Seek(3*4096+1, SeekData)
	assert.ErrorIs(t, err, syscall.ENXIO, "SEEK_DATA at the end")

	d, err := fsys.OpenFile(".", os.O_RDONLY, 0)
	require.NoError(t, err)
	defer d.Close()
	_, err = d.Seek(0, SeekData)
	assert.ErrorIs(t, err, syscall.EINVAL, "SEEK_DATA on a directory")
}
