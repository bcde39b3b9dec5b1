package voldfs

import (
	"bytes"
	"context"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs/backend/memory"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	f, err := Format(ctx, memory.New(), &Options{BlockSize: 4096})
	require.NoError(t, err)
	require.NoError(t, f.MkdirAll("a/b/c", 0o755))
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096*3)
	require.NoError(t, f.WriteFile("a/b/big", big, 0o644))
	require.NoError(t, f.WriteFile("a/small", []byte("hello"), 0o644))
	require.NoError(t, f.WriteFile("empty", nil, 0o644))
	require.NoError(t, f.Symlink("b/big", "a/link"))
	got, err := f.ReadFile("a/link")
	require.NoError(t, err, "read big")
	require.True(t, bytes.Equal(got, big), "read big: %d bytes", len(got))
	require.NoError(t, fstest.TestFS(f, "a/b/big", "a/small", "empty", "a/link", "a/b/c"))
}
