package voldfs

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend/memory"
)

// TestGCBesideLongOpenFile: a full block of a file being written is
// uploaded at once but published only when the file is committed, maybe
// hours later. GC beside it, with a grace period shorter than that, deletes
// the upload as garbage: the commit must upload the block again rather
// than publish a deleted one. (Scaled down: MaxUnpublished 50 ms, the
// upload 150 ms old, a GC grace of 100 ms.)
func TestGCBesideLongOpenFile(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	_, err := Format(ctx, s, &Options{BlockSize: 4096})
	require.NoError(t, err)
	f, err := Open(ctx, s, &Options{AttrTimeout: -1, maxUnpublished: 50 * time.Millisecond})
	require.NoError(t, err)
	w, err := f.Create("big")
	require.NoError(t, err)
	data := bytes.Repeat([]byte("0123456789abcdef"), 2*4096/16)
	_, err = w.Write(data[:4096]) // a full block: uploaded in the background
	require.NoError(t, err)
	require.NoError(t, w.Commit()) // published: the file exists with its first block
	_, err = w.Write(data[4096:])  // the second block, uploaded, not published
	require.NoError(t, err)
	time.Sleep(150 * time.Millisecond)

	g, err := Open(ctx, s, &Options{AttrTimeout: -1})
	require.NoError(t, err)
	r, err := g.Fsck(ctx, FsckOptions{GC: true, Grace: 100 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, 1, r.GarbageBlocks, "GC deleted the unpublished upload (the premise)")

	require.NoError(t, w.Close())
	got, err := g.ReadFile("big")
	require.NoError(t, err)
	require.Equal(t, data, got)
	f.WaitFrees()
	wantFsckClean(t, g)
}
