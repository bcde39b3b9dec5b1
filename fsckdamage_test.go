package voldfs

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

// TestDamagedRecordsNotFatal (issue #12, item 4): a damaged rename intent
// of an older client and a damaged lock of the txn fallback on an inode
// key stop neither Open nor Fsck; Fsck reports them.
func TestDamagedRecordsNotFatal(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	f0, err := Format(ctx, casOnly{s}, nil) // through the txn fallback
	require.NoError(t, err)
	require.NoError(t, f0.Mkdir("d", 0o755))
	writeFile(t, f0, "d/f", []byte("f"))
	writeFile(t, f0, "g", []byte("g"))
	ino := inoOf(t, f0, "d/f")
	// A damaged intent record, and a lock form (0xC1 'L') that does not
	// decode under the file's inode key.
	_, err = s.CAS(ctx, f0.c.leaseKey(), backend.NoVersion, []byte("R\x01garbage"))
	require.NoError(t, err)
	_, ver, err := s.Get(ctx, f0.c.inodeKey(ino))
	require.NoError(t, err)
	_, err = s.CAS(ctx, f0.c.inodeKey(ino), ver, []byte("\xc1Lgarbage"))
	require.NoError(t, err)

	f, err := Open(ctx, casOnly{s}, &Options{AttrTimeout: -1})
	require.NoError(t, err, "a damaged intent or lock stops Open")
	wantContent(t, f, "g", []byte("g"))
	r, err := f.Fsck(ctx, FsckOptions{Repair: true, Grace: -1})
	require.NoError(t, err, "a damaged intent or lock stops Fsck")
	kinds := map[string]int{}
	for _, p := range r.Problems {
		kinds[p.Kind]++
	}
	assert.Equal(t, 1, kinds["intent"], "%v", r.Problems)
	assert.Equal(t, 1, kinds["corrupt"], "%v", r.Problems)
	assert.Zero(t, r.GarbageInodes, "an unreadable inode is no orphan")
	_, err = f.Stat("d")
	assert.NoError(t, err, "the directory naming the damaged inode stays")
}
