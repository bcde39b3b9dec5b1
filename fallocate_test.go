package voldfs

import (
	"context"
	"io"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errENXIO = syscall.ENXIO

func TestAllocateModes(t *testing.T) {
	f, _ := newMemFS(t)
	w, err := f.Create("a")
	require.NoError(t, err)
	defer w.Close()
	size := func() int64 {
		fi, err := w.Stat()
		require.NoError(t, err)
		return fi.Size()
	}
	require.NoError(t, w.Allocate(0, 100, 900))
	assert.Equal(t, int64(1000), size())
	require.NoError(t, w.Allocate(0, 0, 10)) // within: no change
	assert.Equal(t, int64(1000), size())
	require.NoError(t, w.Allocate(FallocKeepSize, 0, 1<<20))
	assert.Equal(t, int64(1000), size())
	require.NoError(t, w.Allocate(FallocZeroRange|FallocKeepSize, 0, 1<<20))
	assert.Equal(t, int64(1000), size())
	require.NoError(t, w.Allocate(FallocZeroRange, 500, 1000))
	assert.Equal(t, int64(1500), size())

	for _, tc := range []struct {
		mode   int
		off, n int64
		want   error
	}{
		{FallocPunchHole, 0, 1, syscall.EOPNOTSUPP},
		{FallocPunchHole | FallocZeroRange | FallocKeepSize, 0, 1, syscall.EOPNOTSUPP},
		{0x08, 0, 1, syscall.EOPNOTSUPP}, // collapse range
		{0, -1, 1, syscall.EINVAL},
		{0, 0, 0, syscall.EINVAL},
		{0, 1 << 62, 1 << 62, syscall.EFBIG},
	} {
		isErrno(t, w.Allocate(tc.mode, tc.off, tc.n), tc.want.(syscall.Errno))
	}
	r, err := f.Open("a")
	require.NoError(t, err)
	defer r.Close()
	isErrno(t, r.(*File).Allocate(0, 0, 1), syscall.EBADF)
}

// TestPunchHole checks that a punch through one handle shows in the other
// at once, zeroes partial blocks, frees whole ones, and that SEEK_DATA and
// SEEK_HOLE report the holes, buffered blocks counting as data.
func TestPunchHole(t *testing.T) {
	const bs = 4096
	f, s := newMemFS(t)
	data := pattern(16*bs, 3)
	for i := range data {
		data[i] |= 1
	}
	w, err := f.Create("a")
	require.NoError(t, err)
	defer w.Close()
	_, err = w.Write(data)
	require.NoError(t, err)
	r, err := f.OpenFile("a", os.O_RDWR, 0)
	require.NoError(t, err)
	defer r.Close()
	blocks := func() int {
		f.WaitFrees()
		return countKinds(storeKeys(t, s, DefaultName+"/"))["b"]
	}
	require.NoError(t, w.Sync())
	before := blocks()
	// Blocks 2..9 whole, plus half of 1 and of 10 (buffered in r first).
	_, err = r.WriteAt([]byte("xyz"), 10*bs+5)
	require.NoError(t, err)
	copy(data[10*bs+5:], "xyz")
	require.NoError(t, w.Allocate(FallocPunchHole|FallocKeepSize, bs+bs/2, 9*bs))
	clear(data[bs+bs/2 : 10*bs+bs/2])
	got := make([]byte, len(data))
	_, err = r.ReadAt(got, 0)
	require.NoError(t, err)
	assert.Equal(t, data, got)
	// 8 data blocks freed, 2 rewritten (the old ones freed), the index
	// node replaced.
	assert.Equal(t, before-8, blocks())

	seek := func(h *File, off int64, whence int) int64 {
		t.Helper()
		seek := h.SeekData
		if whence == SeekHole {
			seek = h.SeekHole
		}
		pos, err := seek(off)
		require.NoError(t, err)
		return pos
	}
	assert.Equal(t, int64(2*bs), seek(r, 0, SeekHole))
	assert.Equal(t, int64(2*bs), seek(r, bs+100, SeekHole))
	assert.Equal(t, int64(10*bs), seek(r, 2*bs, SeekData))
	assert.Equal(t, int64(10*bs+7), seek(r, 10*bs+7, SeekData))
	assert.Equal(t, int64(16*bs), seek(r, 10*bs, SeekHole), "the end is a hole")
	_, err = r.SeekData(16 * bs)
	isErrno(t, err, syscall.ENXIO)
	_, err = r.SeekHole(16 * bs)
	isErrno(t, err, syscall.ENXIO)
	// A buffered write fills a hole.
	_, err = w.WriteAt([]byte("q"), 5*bs)
	require.NoError(t, err)
	assert.Equal(t, int64(5*bs), seek(r, 2*bs, SeekData))
	assert.Equal(t, int64(6*bs), seek(r, 5*bs, SeekHole))
	cur, err := r.Seek(0, io.SeekCurrent)
	require.NoError(t, err)
	assert.Equal(t, int64(6*bs), cur, "SeekHole moved the offset")

	// Punching to the end of a sparse file leaves it all holes.
	require.NoError(t, w.Allocate(FallocPunchHole|FallocKeepSize, 0, 1<<30))
	assert.Equal(t, int64(0), seek(r, 0, SeekHole))
	_, err = r.SeekData(0)
	isErrno(t, err, syscall.ENXIO)
	require.NoError(t, w.Sync())
	assert.Zero(t, blocks(), "every block freed, the index node too")
	fi, err := r.Stat()
	require.NoError(t, err)
	assert.Equal(t, int64(16*bs), fi.Size())
	r2, err := f.Fsck(context.Background(), FsckOptions{GC: true, Grace: -1})
	require.NoError(t, err)
	assert.True(t, r2.OK(), "%v", r2.Problems)
	assert.Zero(t, r2.GarbageBlocks)
}

// TestPunchInline punches inside a file small enough to be inline.
func TestPunchInline(t *testing.T) {
	f, _ := newMemFS(t)
	writeFile(t, f, "a", []byte("hello world"))
	w, err := f.OpenFile("a", os.O_RDWR, 0)
	require.NoError(t, err)
	require.NoError(t, w.Allocate(FallocPunchHole|FallocKeepSize, 2, 3))
	require.NoError(t, w.Close())
	wantContent(t, f, "a", []byte("he\x00\x00\x00 world"))
}
