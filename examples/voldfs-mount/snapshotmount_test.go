package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend/bolt"
)

// TestSnapshotMount: -snapshot mounts a snapshot read-only: it shows the
// tree as it was, and writes fail with EROFS.
func TestSnapshotMount(t *testing.T) {
	requireFUSE(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fs.db")
	s, err := bolt.Open(path, &bolt.Options{NoSync: true})
	require.NoError(t, err)
	f, err := voldfs.Format(ctx, s, nil)
	require.NoError(t, err)
	require.NoError(t, f.MkdirAll("dir/sub", 0o755))
	require.NoError(t, f.WriteFile("dir/sub/file", []byte("before"), 0o644))
	require.NoError(t, f.Snapshot(ctx, "snap1"))
	require.NoError(t, f.WriteFile("dir/sub/file", []byte("after!"), 0o644))
	require.NoError(t, f.WriteFile("dir/new", []byte("new"), 0o644))
	require.NoError(t, f.Close())
	require.NoError(t, s.Close())

	_, mp := testMount(t, "bolt:"+path, func(c *config) { c.snapshot = "snap1" })
	b, err := os.ReadFile(filepath.Join(mp, "dir/sub/file"))
	require.NoError(t, err)
	assert.Equal(t, "before", string(b))
	_, err = os.Stat(filepath.Join(mp, "dir/new"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "dir/new: %v", err)
	err = os.WriteFile(filepath.Join(mp, "dir/sub/file"), []byte("x"), 0o644)
	assert.ErrorIs(t, err, syscall.EROFS)
	err = os.Mkdir(filepath.Join(mp, "d2"), 0o755)
	assert.ErrorIs(t, err, syscall.EROFS)
	ents, err := os.ReadDir(filepath.Join(mp, "dir"))
	require.NoError(t, err)
	require.Len(t, ents, 1)
	assert.Equal(t, "sub", ents[0].Name())
}
