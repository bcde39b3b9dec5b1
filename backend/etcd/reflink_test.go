package etcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs"
)

// TestReflinkTxnOps: the first write under a shared index node commits a
// count for each of the node's children. With etcd's default 128 ops per
// transaction, a clone of a file of 200 blocks (a node of 128 children)
// cannot take that write (EFBIG, and nothing changes); with the cluster's
// --max-txn-ops raised and the store told (WithMaxTxnOps), it can.
func TestReflinkTxnOps(t *testing.T) {
	c := startCluster(t, 1)
	m := c.members[0]
	c.kill(m)
	m.args = append(m.args, "--max-txn-ops", "1024")
	c.start(m)
	c.waitHealthy(30 * time.Second)
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 200*4096/16)
	for _, ops := range []int{DefaultMaxTxnOps, 1024} {
		s, err := New(c.config(), WithPrefix(fmt.Sprintf("reflink%d/", ops)), WithMaxTxnOps(ops))
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		f, err := voldfs.Format(ctx, s, &voldfs.Options{BlockSize: 4096})
		require.NoError(t, err)
		require.NoError(t, f.WriteFile("a", data, 0o644))
		require.NoError(t, f.Clone("a", "b"))
		h, err := f.OpenFile("b", os.O_RDWR, 0)
		require.NoError(t, err)
		_, err = h.WriteAt([]byte("changed"), 10)
		require.NoError(t, err)
		err = h.Close()
		if ops == DefaultMaxTxnOps {
			assert.True(t, errors.Is(err, syscall.EFBIG), "with %d ops per transaction: %v, want EFBIG", ops, err)
		} else {
			require.NoError(t, err, "with %d ops per transaction", ops)
			got, err := f.ReadFile("b")
			require.NoError(t, err)
			assert.Equal(t, "changed", string(got[10:17]))
		}
		got, err := f.ReadFile("a")
		require.NoError(t, err)
		assert.True(t, bytes.Equal(data, got), "the original is unchanged")
		r, err := f.Fsck(ctx, voldfs.FsckOptions{Grace: -1})
		require.NoError(t, err)
		assert.Empty(t, r.Problems)
		require.NoError(t, f.Close())
	}
}
