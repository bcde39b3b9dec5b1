package s3_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
)

// TestFsckGC: after files are written and removed, fsck with GC lists the
// bucket and finds nothing to collect, and the keys listed are exactly the
// live ones: the removed inodes' tombstones are not listed.
func TestFsckGC(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, startServer(t))
	f, err := voldfs.Format(ctx, s, &voldfs.Options{BlockSize: 4096})
	require.NoError(t, err)
	require.NoError(t, f.MkdirAll("d/e", 0o755))
	for i := range 20 {
		require.NoError(t, f.WriteFile(fmt.Sprintf("d/e/f%d", i), []byte(strings.Repeat(fmt.Sprint(i), 1+i*300)), 0o644))
	}
	require.NoError(t, f.WriteFile("keep", []byte(strings.Repeat("k", 10000)), 0o644))
	require.NoError(t, f.RemoveAll("d"))
	r, err := f.Fsck(ctx, voldfs.FsckOptions{GC: true, Repair: true, Grace: -1})
	require.NoError(t, err)
	assert.True(t, r.OK(), "fsck: %+v", r)
	assert.Zero(t, r.GarbageBlocks, "garbage blocks")
	assert.Zero(t, r.GarbageInodes, "garbage inodes")

	kinds := map[string]int{}
	require.NoError(t, s.(backend.Lister).List(ctx, voldfs.DefaultName+"/", func(k string) error {
		kind, _, _ := strings.Cut(strings.TrimPrefix(k, voldfs.DefaultName+"/"), "/")
		kinds[kind]++
		return nil
	}))
	// The root's and keep's inodes; keep's 3 data blocks and 1 index node.
	assert.Equal(t, 2, kinds["i"], "inodes listed: %v", kinds)
	assert.Equal(t, 4, kinds["b"], "blocks listed: %v", kinds)
	assert.Equal(t, 1, kinds["super"], "superblocks listed: %v", kinds)
	got, err := f.ReadFile("keep")
	require.NoError(t, err)
	assert.Len(t, got, 10000)
}
