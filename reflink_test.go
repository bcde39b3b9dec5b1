package voldfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/faulty"
	"github.com/voldfs/voldfs/backend/memory"
)

const cloneBS = 4096 // 128 entries per index node: 300 blocks make a tree of height 2

// cloneFS formats a filesystem on a memory store, seen through casOnly
// (no multi-key commits and no listing: the txn fallback) if perKey.
func cloneFS(t *testing.T, perKey bool) (*FS, *memory.Store) {
	t.Helper()
	s := memory.New()
	var st backend.Store = s
	if perKey {
		st = casOnly{s}
	}
	f, err := Format(context.Background(), st, &Options{BlockSize: cloneBS})
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f, s
}

// fsKeys returns the keys of f's store s under a kind prefix ("b/", "r/").
func fsKeys(t *testing.T, f *FS, s *memory.Store, kind string) []string {
	t.Helper()
	f.c.waitFrees()
	var keys []string
	require.NoError(t, s.List(context.Background(), f.c.prefix+kind, func(k string) error {
		keys = append(keys, strings.TrimPrefix(k, f.c.prefix))
		return nil
	}))
	return keys
}

// fileBlocks returns the refs of every block of a file's tree.
func fileBlocks(t *testing.T, f *FS, name string) map[blockRef]bool {
	t.Helper()
	ci, err := f.c.getInode(context.Background(), attr(t, f, name).Ino, 0)
	require.NoError(t, err)
	refs := map[blockRef]bool{}
	require.NoError(t, f.c.treeRefs(context.Background(), ci.n, func(r blockRef, _ byte) error { refs[r] = true; return nil }))
	return refs
}

func cloneFsck(t *testing.T, f *FS) *FsckReport {
	t.Helper()
	r, err := f.Fsck(context.Background(), FsckOptions{Grace: -1})
	require.NoError(t, err)
	assert.Empty(t, r.Problems)
	assert.Zero(t, r.GarbageBlocks, "garbage blocks")
	return r
}

func TestCloneSharesBlocks(t *testing.T) {
	f, s := cloneFS(t, false)
	data := pattern(300*cloneBS+123, 1)
	writeFile(t, f, "a", data)
	before := len(fsKeys(t, f, s, "b/"))
	require.NoError(t, f.Clone("a", "b"))
	wantContent(t, f, "b", data)
	assert.Equal(t, before, len(fsKeys(t, f, s, "b/")), "a clone writes no block")
	assert.Equal(t, []string{"r/" + rootOf(t, f, "a").String()}, fsKeys(t, f, s, "r/"), "one count: the shared root")
	assert.Equal(t, fileBlocks(t, f, "a"), fileBlocks(t, f, "b"))
	cloneFsck(t, f)

	// Writing the copy changes the copy only and copies only its path.
	h, err := f.OpenFile("b", os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = h.WriteAt([]byte("changed"), 200*cloneBS+5)
	require.NoError(t, err)
	require.NoError(t, h.Close())
	want := bytes.Clone(data)
	copy(want[200*cloneBS+5:], "changed")
	wantContent(t, f, "a", data)
	wantContent(t, f, "b", want)
	a, b := fileBlocks(t, f, "a"), fileBlocks(t, f, "b")
	common := 0
	for r := range a {
		if b[r] {
			common++
		}
	}
	assert.Equal(t, len(a)-3, common, "every block but the written path (root, index node, data block) is shared")
	assert.Equal(t, before+3, len(fsKeys(t, f, s, "b/")), "the write stored a data block and two index nodes")
	// Rodeh's increment: copying the shared root counted one more parent
	// for its 3 children (the root itself is back to 1: no record);
	// copying the shared index node on the path did so for its 128
	// children but the replaced one, and that node is back to 1.
	assert.Len(t, fsKeys(t, f, s, "r/"), 2+127, "count records after the first write")
	cloneFsck(t, f)

	// Deleting either side keeps the other whole; deleting both leaves nothing.
	require.NoError(t, f.Remove("a"))
	wantContent(t, f, "b", want)
	cloneFsck(t, f)
	assert.Empty(t, fsKeys(t, f, s, "r/"), "no block is shared any more")
	require.NoError(t, f.Remove("b"))
	r := cloneFsck(t, f)
	assert.Zero(t, r.Blocks)
	assert.Empty(t, fsKeys(t, f, s, "b/"))
	assert.Empty(t, fsKeys(t, f, s, "r/"))
}

// rootOf returns the root of a file's tree.
func rootOf(t *testing.T, f *FS, name string) blockRef {
	t.Helper()
	ci, err := f.c.getInode(context.Background(), attr(t, f, name).Ino, 0)
	require.NoError(t, err)
	return ci.n.root
}

// TestCloneModel interleaves seeded random clones (whole files and block
// ranges), writes, truncates, punched holes, zeroed ranges, removes and
// renames over a few files, checking every file against a byte-slice model,
// the reference counts with Fsck, and at the end that removing everything
// leaves no block and no count. VOLDFS_SEED replays a run,
// VOLDFS_CLONE_OPS sets the number of operations.
func TestCloneModel(t *testing.T) {
	ops := 1500
	if testing.Short() || raceEnabled {
		ops = 300
	}
	if v := os.Getenv("VOLDFS_CLONE_OPS"); v != "" {
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
	for _, perKey := range []bool{false, true} {
		t.Run(fmt.Sprintf("perKey=%v", perKey), func(t *testing.T) {
			n := ops
			if perKey {
				n /= 3
			}
			cloneModel(t, perKey, n, seed)
		})
	}
}

func cloneModel(t *testing.T, perKey bool, ops int, seed uint64) {
	t.Logf("clone model: %d operations, seed %d (replay with VOLDFS_SEED=%d)", ops, seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x51ed))
	f, s := cloneFS(t, perKey)
	const nfiles, maxBlocks = 5, 300
	model := map[string][]byte{}
	name := func() string { return "f" + strconv.Itoa(rng.IntN(nfiles)) }
	fail := func(op int, format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d, op %d: "+format, append([]any{seed, op}, args...)...)
	}
	open := func(op int, n string) *File {
		h, err := f.OpenFile(n, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			fail(op, "open %s: %v", n, err)
		}
		if _, ok := model[n]; !ok {
			model[n] = []byte{}
		}
		return h
	}
	for op := 0; op < ops; op++ {
		n := name()
		var what string
		switch k := rng.IntN(100); {
		case k < 30:
			h := open(op, n)
			off := rng.Int64N(maxBlocks * cloneBS)
			p := pattern(1+rng.IntN(3*cloneBS), byte(op))
			what = fmt.Sprintf("write %s [%d,+%d)", n, off, len(p))
			if _, err := h.WriteAt(p, off); err != nil {
				fail(op, "%s: %v", what, err)
			}
			m := model[n]
			if end := int(off) + len(p); end > len(m) {
				m = append(m, make([]byte, end-len(m))...)
			}
			copy(m[off:], p)
			model[n] = m
			must(t, h.Close())
		case k < 45:
			src := name()
			if _, ok := model[src]; !ok {
				continue
			}
			what = fmt.Sprintf("clone %s to %s", src, n)
			if err := f.Clone(src, n); err != nil {
				fail(op, "%s: %v", what, err)
			}
			model[n] = bytes.Clone(model[src])
		case k < 58:
			src := name()
			sm, ok := model[src]
			if !ok || len(sm) == 0 {
				continue
			}
			h, s := open(op, n), open(op, src)
			sb := rng.Int64N(int64(len(sm)+cloneBS-1) / cloneBS)
			db := rng.Int64N(maxBlocks)
			cnt := (1 + rng.Int64N(40)) * cloneBS
			what = fmt.Sprintf("clone range %s block %d to %s block %d, %d bytes", src, sb, n, db, cnt)
			err := h.CloneRange(s, sb*cloneBS, db*cloneBS, cnt)
			// The model: the range is cut at src's end; an unaligned end
			// must reach dst's end; one file's ranges must not overlap.
			so, do := sb*cloneBS, db*cloneBS
			c := min(cnt, int64(len(sm))-so)
			dm := model[n]
			ok = (so+c)%cloneBS == 0 || do+c >= int64(len(dm))
			if src == n && so < do+c && do < so+c {
				ok = false
			}
			if !ok {
				if !errors.Is(err, syscall.EINVAL) {
					fail(op, "%s: got %v, want EINVAL", what, err)
				}
			} else {
				if err != nil {
					fail(op, "%s: %v", what, err)
				}
				piece := bytes.Clone(sm[so : so+c])
				if end := int(do + c); end > len(dm) {
					dm = append(dm, make([]byte, end-len(dm))...)
				}
				copy(dm[do:], piece)
				model[n] = dm
			}
			must(t, h.Close())
			must(t, s.Close())
		case k < 68:
			h := open(op, n)
			size := rng.Int64N(maxBlocks * cloneBS)
			what = fmt.Sprintf("truncate %s to %d", n, size)
			if err := h.Truncate(size); err != nil {
				fail(op, "%s: %v", what, err)
			}
			m := model[n]
			if int(size) < len(m) {
				m = m[:size]
			} else {
				m = append(m, make([]byte, int(size)-len(m))...)
			}
			model[n] = m
			must(t, h.Close())
		case k < 80:
			h := open(op, n)
			off := rng.Int64N(maxBlocks * cloneBS)
			l := 1 + rng.Int64N(20*cloneBS)
			mode := FallocPunchHole | FallocKeepSize
			if rng.IntN(2) == 0 {
				mode = FallocZeroRange
			}
			what = fmt.Sprintf("fallocate %s mode %#x [%d,+%d)", n, mode, off, l)
			if err := h.Allocate(mode, off, l); err != nil {
				fail(op, "%s: %v", what, err)
			}
			m := model[n]
			if mode == FallocZeroRange && int(off+l) > len(m) {
				m = append(m, make([]byte, int(off+l)-len(m))...)
			}
			if int(off) < len(m) {
				clear(m[off:min(int(off+l), len(m))])
			}
			model[n] = m
			must(t, h.Close())
		case k < 90:
			if _, ok := model[n]; !ok {
				continue
			}
			what = "remove " + n
			if err := f.Remove(n); err != nil {
				fail(op, "%s: %v", what, err)
			}
			delete(model, n)
		default:
			to := name()
			if _, ok := model[n]; !ok || to == n {
				continue
			}
			what = fmt.Sprintf("rename %s over %s", n, to)
			if err := f.Rename(n, to); err != nil {
				fail(op, "%s: %v", what, err)
			}
			model[to] = model[n]
			delete(model, n)
		}
		for fn, m := range model {
			got, err := f.ReadFile(fn)
			if err != nil {
				fail(op, "after %s: read %s: %v", what, fn, err)
			}
			if !bytes.Equal(got, m) {
				i := 0
				for i < min(len(got), len(m)) && got[i] == m[i] {
					i++
				}
				fail(op, "after %s: %s: %d bytes, want %d; first difference at %d", what, fn, len(got), len(m), i)
			}
		}
		if op%100 == 99 {
			r, err := f.Fsck(context.Background(), FsckOptions{Grace: -1})
			require.NoError(t, err)
			if !r.OK() || r.GarbageBlocks != 0 {
				fail(op, "after %s: fsck: %v, %d garbage blocks", what, r.Problems, r.GarbageBlocks)
			}
		}
	}
	for fn := range model {
		must(t, f.Remove(fn))
	}
	r := cloneFsck(t, f)
	assert.Zero(t, r.Blocks)
	assert.Empty(t, fsKeys(t, f, s, "b/"), "blocks left")
	assert.Empty(t, fsKeys(t, f, s, "r/"), "counts left")
}

// TestCloneConcurrentWriters: clones of one file written at once by
// different clients (FS values on one store) contend on the counts of the
// blocks they share; every file must end as its own writer left it, with
// the counts right and nothing leaked once all are removed.
func TestCloneConcurrentWriters(t *testing.T) {
	for _, perKey := range []bool{false, true} {
		t.Run(fmt.Sprintf("perKey=%v", perKey), func(t *testing.T) {
			f, s := cloneFS(t, perKey)
			data := pattern(300*cloneBS, 3)
			writeFile(t, f, "f0", data)
			const files = 4
			for i := 1; i < files; i++ {
				require.NoError(t, f.Clone("f0", "f"+strconv.Itoa(i)))
			}
			var st backend.Store = s
			if perKey {
				st = casOnly{s}
			}
			models := make([][]byte, files)
			var wg sync.WaitGroup
			errs := make([]error, files)
			for i := range files {
				models[i] = bytes.Clone(data)
				g, err := Open(context.Background(), st, nil)
				require.NoError(t, err)
				t.Cleanup(func() { g.Close() })
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(i), 7))
					for k := 0; k < 30 && errs[i] == nil; k++ {
						h, err := g.OpenFile("f"+strconv.Itoa(i), os.O_RDWR, 0)
						if err != nil {
							errs[i] = err
							return
						}
						for j := 0; j < 3; j++ {
							off := rng.Int64N(int64(len(data)) - 100)
							p := pattern(1+rng.IntN(2*cloneBS), byte(k*3+j))
							p = p[:min(len(p), len(data)-int(off))]
							if _, err := h.WriteAt(p, off); err != nil {
								errs[i] = err
							}
							copy(models[i][off:], p)
						}
						if err := h.Close(); err != nil && errs[i] == nil {
							errs[i] = err
						}
					}
				}()
			}
			wg.Wait()
			for i := range files {
				require.NoError(t, errs[i], "writer %d", i)
				wantContent(t, f, "f"+strconv.Itoa(i), models[i])
			}
			cloneFsck(t, f)
			for i := range files {
				require.NoError(t, f.Remove("f"+strconv.Itoa(i)))
			}
			cloneFsck(t, f)
			assert.Empty(t, fsKeys(t, f, s, "b/"), "blocks left")
			assert.Empty(t, fsKeys(t, f, s, "r/"), "counts left")
		})
	}
}

// BenchmarkCloneWrite: a 4 KiB write and commit into a 64 MiB file (128
// blocks of 512 KiB under one index node) that was never cloned, and into
// a clone of one (after its first write copied the shared index node), on
// the memory store; store-ops/op counts the store calls of each.
func BenchmarkCloneWrite(b *testing.B) {
	for _, cloned := range []bool{false, true} {
		b.Run(fmt.Sprintf("cloned=%v", cloned), func(b *testing.B) {
			st := faulty.Wrap(memory.New(), nil)
			f, err := Format(context.Background(), st, nil)
			require.NoError(b, err)
			defer f.Close()
			require.NoError(b, f.WriteFile("a", make([]byte, 64<<20), 0o644))
			name := "a"
			if cloned {
				require.NoError(b, f.Clone("a", "b"))
				name = "b"
			}
			h, err := f.OpenFile(name, os.O_RDWR, 0)
			require.NoError(b, err)
			defer h.Close()
			p := make([]byte, 4096)
			rng := rand.New(rand.NewPCG(1, 1))
			_, err = h.WriteAt(p, 0)
			require.NoError(b, err)
			require.NoError(b, h.Commit()) // the first write under the shared node
			f.WaitFrees()
			ops := st.Ops()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := h.WriteAt(p, rng.Int64N(64<<20-4096)); err != nil {
					b.Fatal(err)
				}
				if err := h.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			f.WaitFrees()
			b.ReportMetric(float64(st.Ops()-ops)/float64(b.N), "store-ops/op")
		})
	}
}

// TestCloneAPI: the errors of Clone, CloneFrom and CloneRange, small
// (inline) files, buffered writes of both sides, and ranges at the ends.
func TestCloneAPI(t *testing.T) {
	f, _ := cloneFS(t, false)
	big := pattern(10*cloneBS+50, 2)
	writeFile(t, f, "big", big)
	writeFile(t, f, "small", []byte("inline bytes"))
	require.NoError(t, f.Mkdir("dir", 0o755))
	require.NoError(t, f.Mknod("fifo", os.ModeNamedPipe|0o644, 0))

	wantErr(t, "clone missing", f.Clone("nope", "x"), fs.ErrNotExist, "link")
	wantErr(t, "clone a directory", f.Clone("dir", "x"), syscall.EISDIR, "link")
	wantErr(t, "clone onto a directory", f.Clone("big", "dir"), syscall.EISDIR, "link")
	wantErr(t, "clone a FIFO", f.Clone("fifo", "x"), syscall.ENXIO, "link")

	require.NoError(t, f.Clone("small", "small2"))
	wantContent(t, f, "small2", []byte("inline bytes"))
	writeFile(t, f, "empty", nil)
	require.NoError(t, f.Clone("empty", "big2"))
	wantContent(t, f, "big2", nil)
	require.NoError(t, f.Clone("big", "big2"))
	wantContent(t, f, "big2", big)
	assert.Equal(t, uint32(0o644), attr(t, f, "big2").Mode&0o777)

	open := func(name string, flag int) *File {
		t.Helper()
		h, err := f.OpenFile(name, flag|os.O_CREATE, 0o644)
		require.NoError(t, err)
		t.Cleanup(func() { h.Close() })
		return h
	}
	src, dst := open("big", os.O_RDWR), open("dst", os.O_RDWR)
	ro, wo := open("big", os.O_RDONLY), open("big", os.O_WRONLY)
	g, err := Open(context.Background(), f.c.inodes, nil)
	require.NoError(t, err)
	t.Cleanup(func() { g.Close() })
	other, err := g.OpenFile("big", os.O_RDONLY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	for _, c := range []struct {
		name              string
		dst, src          *File
		srcOff, dstOff, n int64
		want              error
	}{
		{"unaligned source", dst, src, 100, 0, cloneBS, syscall.EINVAL},
		{"unaligned destination", dst, src, 0, 100, cloneBS, syscall.EINVAL},
		{"unaligned length", dst, src, 0, 0, 100, syscall.EINVAL},
		{"source offset past the end", dst, src, 20 * cloneBS, 0, cloneBS, syscall.EINVAL},
		{"overlap in one file", src, src, 0, cloneBS, 2 * cloneBS, syscall.EINVAL},
		{"negative", dst, src, -cloneBS, 0, cloneBS, syscall.EINVAL},
		{"read-only destination", ro, src, 0, 0, cloneBS, syscall.EBADF},
		{"write-only source", dst, wo, 0, 0, cloneBS, syscall.EBADF},
		{"another FS", dst, other, 0, 0, cloneBS, syscall.EXDEV},
	} {
		wantErr(t, c.name, c.dst.CloneRange(c.src, c.srcOff, c.dstOff, c.n), c.want, "path")
	}

	// Buffered writes of both sides are committed first.
	_, err = src.WriteAt([]byte("buffered"), 3*cloneBS)
	require.NoError(t, err)
	_, err = dst.WriteAt(pattern(12*cloneBS, 9), 0)
	require.NoError(t, err)
	require.NoError(t, dst.CloneRange(src, 2*cloneBS, 5*cloneBS, 2*cloneBS))
	want := pattern(12*cloneBS, 9)
	bigNow := bytes.Clone(big)
	copy(bigNow[3*cloneBS:], "buffered")
	copy(want[5*cloneBS:], bigNow[2*cloneBS:4*cloneBS])
	wantContent(t, f, "dst", want)
	wantContent(t, f, "big", bigNow)

	// A range to the source's end (unaligned) must reach the destination's
	// end; n == 0 means to the end.
	wantErr(t, "unaligned end inside the destination", dst.CloneRange(src, 8*cloneBS, 0, 0), syscall.EINVAL, "path")
	require.NoError(t, dst.CloneRange(src, 8*cloneBS, 11*cloneBS, 0))
	want = append(want[:11*cloneBS], bigNow[8*cloneBS:]...)
	wantContent(t, f, "dst", want)

	// An inline source is copied.
	s2 := open("small", os.O_RDONLY)
	require.NoError(t, dst.CloneRange(s2, 0, cloneBS, 0))
	copy(want[cloneBS:], "inline bytes")
	wantContent(t, f, "dst", want)

	// CloneFrom replaces the whole content, buffered writes of src included.
	_, err = src.WriteAt([]byte("more"), 0)
	require.NoError(t, err)
	require.NoError(t, dst.CloneFrom(src))
	copy(bigNow, "more")
	wantContent(t, f, "dst", bigNow)
	fi, err := dst.Stat()
	require.NoError(t, err)
	assert.Equal(t, int64(len(bigNow)), fi.Size())
	cloneFsck(t, f)
}

// TestCloneWhileWritten: one client commits writes to a file (each commit
// sets blocks 0 and 5 to one byte value) while another clones it again
// and again: every clone holds one commit's state whole, and the counts
// stay right.
func TestCloneWhileWritten(t *testing.T) {
	for _, perKey := range []bool{false, true} {
		t.Run(fmt.Sprintf("perKey=%v", perKey), func(t *testing.T) {
			f, s := cloneFS(t, perKey)
			writeFile(t, f, "src", make([]byte, 8*cloneBS))
			var st backend.Store = s
			if perKey {
				st = casOnly{s}
			}
			g, err := Open(context.Background(), st, nil)
			require.NoError(t, err)
			t.Cleanup(func() { g.Close() })
			done := make(chan error, 1)
			go func() {
				h, err := g.OpenFile("src", os.O_RDWR, 0)
				if err != nil {
					done <- err
					return
				}
				for k := 1; k <= 40 && err == nil; k++ {
					p := bytes.Repeat([]byte{byte(k)}, cloneBS)
					if _, err = h.WriteAt(p, 0); err == nil {
						if _, err = h.WriteAt(p, 5*cloneBS); err == nil {
							err = h.Commit()
						}
					}
				}
				if cerr := h.Close(); err == nil {
					err = cerr
				}
				done <- err
			}()
			var clones []string
			for running := true; running; {
				select {
				case err := <-done:
					require.NoError(t, err)
					running = false
				default:
				}
				name := fmt.Sprintf("c%d", len(clones))
				require.NoError(t, f.Clone("src", name))
				clones = append(clones, name)
			}
			for _, name := range clones {
				b := readFile(t, f, name)
				require.Len(t, b, 8*cloneBS)
				assert.Equal(t, b[0], b[5*cloneBS], "%s: blocks 0 and 5 from one commit", name)
				assert.True(t, bytes.Equal(b[:cloneBS], bytes.Repeat(b[:1], cloneBS)), "%s: block 0 whole", name)
			}
			t.Logf("%d clones while 40 commits ran", len(clones))
			cloneFsck(t, f)
			for _, name := range append(clones, "src") {
				require.NoError(t, f.Remove(name))
			}
			cloneFsck(t, f)
			assert.Empty(t, fsKeys(t, f, s, "b/"), "blocks left")
			assert.Empty(t, fsKeys(t, f, s, "r/"), "counts left")
		})
	}
}
