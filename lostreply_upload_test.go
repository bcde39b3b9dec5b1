package voldfs

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend/faulty"
	"github.com/voldfs/voldfs/backend/memory"
)

// TestLostReplyThenUploadFails: a commit whose reply is lost (it was
// applied), then a retry whose upload fails: the blocks of the committed
// tree must survive (issue #12, item 5). The retry used to free every
// upload of the failed attempt, the ones the live tree held included
// ("block missing" for every reader). Found by review.
func TestLostReplyThenUploadFails(t *testing.T) {
	for failPut := int32(1); failPut <= 3; failPut++ {
		lostReplyThenUploadFails(t, failPut)
	}
}

// lostReplyThenUploadFails runs the scenario with the failPut-th block
// upload of the retry failing.
func lostReplyThenUploadFails(t *testing.T, failPut int32) {
	ctx := context.Background()
	m := memory.New()
	_, err := Format(ctx, m, &Options{BlockSize: 4096})
	require.NoError(t, err)
	var mode atomic.Int32
	var puts atomic.Int32
	fs := faulty.Wrap(m, faulty.InjectorFunc(func(op faulty.Op, key string) error {
		switch mode.Load() {
		case 1:
			if (op == faulty.OpCAS || op == faulty.OpCommit) && strings.Contains(key, "/i/") {
				mode.Store(0)
				return faulty.ErrReplyLost
			}
		case 2:
			if op == faulty.OpPut && strings.Contains(key, "/b/") && puts.Add(1) == failPut {
				return faulty.ErrInjected
			}
		}
		return nil
	}))
	f, err := Open(ctx, fs, &Options{AttrTimeout: -1})
	require.NoError(t, err)
	w, err := f.Create("x")
	require.NoError(t, err)
	require.NoError(t, w.Commit())
	data := bytes.Repeat([]byte("0123456789abcdef"), 2*4096/16)
	_, err = w.Write(data)
	require.NoError(t, err)
	mode.Store(1)
	err = w.Commit()
	require.Error(t, err, "the first commit's reply is lost")
	mode.Store(2)
	err = w.Commit()
	t.Logf("second commit (an upload fails): %v", err)
	mode.Store(0)
	f.WaitFrees()
	g, err := Open(ctx, m, &Options{AttrTimeout: -1})
	require.NoError(t, err)
	got, err := g.ReadFile("x")
	require.NoError(t, err, "upload %d of the retry failed", failPut)
	require.Equal(t, data, got)
	require.NoError(t, w.Close())
	f.WaitFrees()
	wantFsckClean(t, g)
}
