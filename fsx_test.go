package voldfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend/memory"
)

// TestFsx is an fsx-style exerciser: seeded random WriteAt, ReadAt,
// Truncate, Allocate (every mode), SEEK_DATA/SEEK_HOLE, Sync, Commit and
// close/reopen through two handles of one file, checked against a byte-slice
// model: every read, every size, and every hole reported. VOLDFS_FSX_OPS
// sets the number of operations, VOLDFS_SEED replays a run.
func TestFsx(t *testing.T) {
	ops := 100_000
	if testing.Short() || raceEnabled {
		ops = 20_000
	}
	if v := os.Getenv("VOLDFS_FSX_OPS"); v != "" {
		var err error
		ops, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("VOLDFS_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("fsx: %d operations, seed %d (replay with VOLDFS_SEED=%d)", ops, seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	ctx := context.Background()
	s := memory.New()
	const bs = 4096
	f, err := Format(ctx, s, &Options{BlockSize: bs})
	require.NoError(t, err)
	defer func() { f.Close() }()
	const maxLen = 96 * bs
	var model []byte
	var h [2]*File
	for i := range h {
		h[i], err = f.OpenFile("f", os.O_RDWR|os.O_CREATE, 0o644)
		require.NoError(t, err)
	}
	fail := func(op int, format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d, op %d: "+format, append([]any{seed, op}, args...)...)
	}
	zero := func(b []byte) bool { return !bytes.ContainsFunc(b, func(r rune) bool { return r != 0 }) }
	grow := func(n int) {
		if n > len(model) {
			model = append(model, make([]byte, n-len(model))...)
		}
	}
	buf := make([]byte, 3*bs)
	for op := 0; op < ops; op++ {
		fh := h[rng.IntN(2)]
		switch k := rng.IntN(100); {
		case k < 30: // write
			off, n := rng.IntN(maxLen), 1+rng.IntN(2*bs)
			p := buf[:n]
			for i := range p {
				p[i] = byte(rng.Uint32()) | 1
			}
			if _, err := fh.WriteAt(p, int64(off)); err != nil {
				fail(op, "WriteAt(%d, %d): %v", off, n, err)
			}
			grow(off + n)
			copy(model[off:], p)
		case k < 55: // read
			off, n := rng.IntN(len(model)+bs), 1+rng.IntN(3*bs)
			got, err := fh.ReadAt(buf[:n], int64(off))
			want := 0
			if off < len(model) {
				want = min(n, len(model)-off)
			}
			if got != want || (got < n) != errors.Is(err, io.EOF) || err != nil && !errors.Is(err, io.EOF) {
				fail(op, "ReadAt(%d, %d) of %d bytes: %d, %v; want %d", off, n, len(model), got, err, want)
			}
			if want > 0 && !bytes.Equal(buf[:got], model[off:off+want]) {
				fail(op, "ReadAt(%d, %d): content differs", off, n)
			}
		case k < 63: // truncate
			size := rng.IntN(maxLen)
			if rng.IntN(3) == 0 {
				size = rng.IntN(bs * 2)
			}
			if err := fh.Truncate(int64(size)); err != nil {
				fail(op, "Truncate(%d): %v", size, err)
			}
			if size < len(model) {
				model = model[:size]
			} else {
				grow(size)
			}
		case k < 78: // allocate
			modes := []int{0, FallocKeepSize, FallocPunchHole | FallocKeepSize, FallocZeroRange, FallocZeroRange | FallocKeepSize}
			mode := modes[rng.IntN(len(modes))]
			off, n := rng.IntN(maxLen), 1+rng.IntN(4*bs)
			if rng.IntN(2) == 0 { // block-aligned
				off, n = off/bs*bs, (n+bs-1)/bs*bs
			}
			if err := fh.Allocate(mode, int64(off), int64(n)); err != nil {
				fail(op, "Allocate(%#x, %d, %d): %v", mode, off, n, err)
			}
			end := off + n
			if mode&(FallocPunchHole|FallocZeroRange) != 0 && off < len(model) {
				clear(model[off:min(end, len(model))])
			}
			if mode&FallocKeepSize == 0 {
				grow(end)
			}
		case k < 85: // SEEK_DATA / SEEK_HOLE
			off := rng.IntN(len(model) + bs)
			whence := SeekData + rng.IntN(2)
			seek := fh.SeekData
			if whence == SeekHole {
				seek = fh.SeekHole
			}
			pos, err := seek(int64(off))
			if off >= len(model) {
				if !errors.Is(err, errENXIO) {
					fail(op, "Seek(%d, %d) past the end %d: %d, %v; want ENXIO", off, whence, len(model), pos, err)
				}
				break
			}
			if whence == SeekData && errors.Is(err, errENXIO) {
				if !zero(model[off:]) {
					fail(op, "SeekData(%d): ENXIO, but data follows", off)
				}
				break
			}
			if err != nil || pos < int64(off) || pos > int64(len(model)) {
				fail(op, "Seek(%d, %d) of %d bytes: %d, %v", off, whence, len(model), pos, err)
			}
			if whence == SeekData && !zero(model[off:pos]) {
				fail(op, "SeekData(%d) = %d skips data", off, pos)
			}
			if whence == SeekHole && pos < int64(len(model)) {
				if end := (int(pos)/bs + 1) * bs; pos != int64(off) && pos%bs != 0 || !zero(model[pos:min(end, len(model))]) {
					fail(op, "SeekHole(%d) = %d is not a zero block", off, pos)
				}
			}
		case k < 90: // stat
			fi, err := fh.Stat()
			if err != nil || fi.Size() != int64(len(model)) {
				fail(op, "Stat: %v, %v; want size %d", fi, err, len(model))
			}
		case k < 94:
			if err := fh.Sync(); err != nil {
				fail(op, "Sync: %v", err)
			}
		case k < 97:
			if err := fh.Commit(); err != nil {
				fail(op, "Commit: %v", err)
			}
		case k < 99: // close and reopen one handle
			i := rng.IntN(2)
			if err := h[i].Close(); err != nil {
				fail(op, "Close: %v", err)
			}
			if h[i], err = f.OpenFile("f", os.O_RDWR, 0); err != nil {
				fail(op, "OpenFile: %v", err)
			}
		default: // close both, reopen the FS, compare everything
			for i := range h {
				if err := h[i].Close(); err != nil {
					fail(op, "Close: %v", err)
				}
			}
			require.NoError(t, f.Close())
			if f, err = Open(ctx, s, nil); err != nil {
				fail(op, "Open: %v", err)
			}
			got, err := f.ReadFile("f")
			if err != nil || !bytes.Equal(got, model) {
				fail(op, "after reopen: %d bytes, %v; want %d", len(got), err, len(model))
			}
			for i := range h {
				if h[i], err = f.OpenFile("f", os.O_RDWR, 0); err != nil {
					fail(op, "OpenFile: %v", err)
				}
			}
		}
	}
	for i := range h {
		require.NoError(t, h[i].Close())
	}
	got, err := f.ReadFile("f")
	require.NoError(t, err)
	require.True(t, bytes.Equal(got, model), "final content: %d bytes, want %d", len(got), len(model))
	r, err := f.Fsck(ctx, FsckOptions{GC: true, Grace: -1})
	require.NoError(t, err)
	require.True(t, r.OK(), "%v", r.Problems)
	// On a store that never fails, every block no tree references was freed.
	require.Zero(t, r.GarbageBlocks, "seed %d: blocks leaked", seed)
}
