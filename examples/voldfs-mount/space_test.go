package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/voldfs/voldfs/internal/testserver"
)

// TestFallocateMount runs fallocate(2)'s modes through the kernel: mode 0
// extends the size, KEEP_SIZE keeps it, PUNCH_HOLE|KEEP_SIZE reads zeros
// and leaves a hole SEEK_HOLE finds, ZERO_RANGE zeroes (and extends).
func TestFallocateMount(t *testing.T) { forStores(t, fallocateMount) }

func fallocateMount(t *testing.T, store string) {
	_, mp := testMount(t, store)
	p := filepath.Join(mp, "f")
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(p)
		require.NoError(t, err)
		return fi.Size()
	}

	// fallocate(1), the program.
	fa := needBinary(t, "fallocate")
	out, err := exec.Command(fa, "-l", "10000", p).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, int64(10000), size(), "fallocate -l extends")
	out, err = exec.Command(fa, "-n", "-l", "50000", p).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, int64(10000), size(), "fallocate -n (KEEP_SIZE) keeps the size")

	f, err := os.OpenFile(p, os.O_RDWR, 0)
	require.NoError(t, err)
	defer f.Close()
	fd := int(f.Fd())
	bs := blockSize(t, fd)
	data := bytes.Repeat([]byte{'x'}, int(8*bs))
	_, err = f.WriteAt(data, 0)
	require.NoError(t, err)
	require.NoError(t, f.Sync())

	require.NoError(t, unix.Fallocate(fd, 0, 0, 12*bs))
	assert.Equal(t, int64(12*bs), size(), "mode 0 extends")
	require.NoError(t, unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 0, 20*bs))
	assert.Equal(t, int64(12*bs), size(), "KEEP_SIZE keeps the size")

	// Punch blocks 2 and 3.
	require.NoError(t, unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 2*bs, 2*bs))
	assert.Equal(t, int64(12*bs), size(), "a punch keeps the size")
	got := make([]byte, 8*bs)
	_, err = f.ReadAt(got, 0)
	require.NoError(t, err)
	want := bytes.Clone(data)
	clear(want[2*bs : 4*bs])
	assert.True(t, bytes.Equal(want, got), "the punched range reads as zeros, the rest as written")
	hole, err := unix.Seek(fd, 0, unix.SEEK_HOLE)
	require.NoError(t, err)
	assert.Equal(t, int64(2*bs), hole, "SEEK_HOLE finds the punched hole")
	next, err := unix.Seek(fd, 2*bs, unix.SEEK_DATA)
	require.NoError(t, err)
	assert.Equal(t, int64(4*bs), next, "SEEK_DATA finds the data after it")

	// Zero part of block 5 and all of 6; then zero past the end (extends).
	require.NoError(t, unix.Fallocate(fd, unix.FALLOC_FL_ZERO_RANGE, 5*bs+100, 2*bs-100))
	_, err = f.ReadAt(got, 0)
	require.NoError(t, err)
	clear(want[5*bs+100 : 7*bs])
	assert.True(t, bytes.Equal(want, got), "ZERO_RANGE reads as zeros, the rest as written")
	require.NoError(t, unix.Fallocate(fd, unix.FALLOC_FL_ZERO_RANGE, 12*bs, 3*bs))
	assert.Equal(t, int64(15*bs), size(), "ZERO_RANGE without KEEP_SIZE extends")

	assert.ErrorIs(t, unix.Fallocate(fd, unix.FALLOC_FL_INSERT_RANGE, 0, bs), unix.EOPNOTSUPP)
	r, err := os.Open(p)
	require.NoError(t, err)
	defer r.Close()
	assert.ErrorIs(t, unix.Fallocate(int(r.Fd()), 0, 0, 100*bs), unix.EBADF, "a read-only descriptor")
}

// blockSize is the file's block size (the filesystem's): holes are
// whole blocks.
func blockSize(t *testing.T, fd int) int64 {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Fstat(fd, &st))
	require.NotZero(t, st.Blksize)
	return int64(st.Blksize)
}

// TestSeekHoleMount: lseek(2)'s SEEK_DATA and SEEK_HOLE on a sparse file
// written through the mount, including data not yet committed.
func TestSeekHoleMount(t *testing.T) { forStores(t, seekHoleMount) }

func seekHoleMount(t *testing.T, store string) {
	_, mp := testMount(t, store)
	f, err := os.Create(filepath.Join(mp, "sparse"))
	require.NoError(t, err)
	defer f.Close()
	fd := int(f.Fd())
	bs := blockSize(t, fd)
	// Data at blocks 0, 4-5 and 10 (the last, partial); holes between.
	for _, off := range []int64{0, 4 * bs, 5 * bs, 10 * bs} {
		_, err := f.WriteAt(bytes.Repeat([]byte{'d'}, int(bs/2)), off)
		require.NoError(t, err)
	}
	end := int64(10*bs + bs/2)
	for _, c := range []struct {
		off    int64
		whence int
		want   int64
	}{
		{0, unix.SEEK_DATA, 0},
		{0, unix.SEEK_HOLE, bs},
		{bs, unix.SEEK_DATA, 4 * bs},
		{4*bs + 10, unix.SEEK_HOLE, 6 * bs},
		{6 * bs, unix.SEEK_DATA, 10 * bs},
		{10 * bs, unix.SEEK_HOLE, end}, // the end counts as a hole
	} {
		got, err := unix.Seek(fd, c.off, c.whence)
		if assert.NoError(t, err, "lseek(%d, %d)", c.off, c.whence) {
			assert.Equal(t, c.want, got, "lseek(%d, %d)", c.off, c.whence)
		}
	}
	_, err = unix.Seek(fd, end, unix.SEEK_DATA)
	assert.ErrorIs(t, err, unix.ENXIO, "SEEK_DATA at the end")
	_, err = unix.Seek(fd, end+bs, unix.SEEK_HOLE)
	assert.ErrorIs(t, err, unix.ENXIO, "SEEK_HOLE past the end")
}

// TestStatfsMount: df's used space grows by about 8 MiB after writing a
// file that big and falls back after deleting it. The mount reuses a
// reply for statfsWindow and the library frees blocks in the background,
// so the test polls. The store is the in-memory one, which reports no
// capacity, so the used figure is the library's count of blocks (a bolt
// store reports its disk's, where other programs write too).
func TestStatfsMount(t *testing.T) {
	_, mp := testMount(t, "mem:")
	var bs uint64
	used := func() (bytes, inodes uint64) {
		t.Helper()
		var st unix.Statfs_t
		require.NoError(t, unix.Statfs(mp, &st))
		bs = uint64(st.Bsize)
		return (st.Blocks - st.Bfree) * uint64(st.Bsize), st.Files - st.Ffree
	}
	waitFor := func(what string, ok func(b, i uint64) bool) (uint64, uint64) {
		t.Helper()
		deadline := time.Now().Add(statfsWindow + 5*time.Second)
		for {
			b, i := used()
			if ok(b, i) {
				return b, i
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: used %d bytes, %d inodes", what, b, i)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	b0, i0 := used()
	assert.NotZero(t, i0, "the root is an inode")
	const size = 8 << 20
	p := filepath.Join(mp, "big")
	require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte("0123456789abcdef"), size/16), 0o644))
	b1, i1 := waitFor("after writing 8 MiB", func(b, i uint64) bool { return b >= b0+size })
	t.Logf("used: %d bytes, %d inodes empty; %d, %d with 8 MiB", b0, i0, b1, i1)
	assert.LessOrEqual(t, b1, b0+size+bs, "8 MiB more and an index block")
	assert.Equal(t, i0+1, i1, "one inode more")
	out, err := exec.Command("df", "-B1", mp).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("df:\n%s", out)

	require.NoError(t, os.Remove(p))
	b2, i2 := waitFor("after deleting it", func(b, i uint64) bool { return b <= b0 && i == i0 })
	t.Logf("used after deleting: %d bytes, %d inodes", b2, i2)
}

// TestStatfsCapacityMount: df reports the store's capacity where the store
// can tell it: a memcached's memory limit (and its use, which grows by
// what a file stores), the size of the disk of a bolt file.
func TestStatfsCapacityMount(t *testing.T) {
	statfs := func(p string) unix.Statfs_t {
		t.Helper()
		var st unix.Statfs_t
		require.NoError(t, unix.Statfs(p, &st))
		return st
	}
	t.Run("memcached", func(t *testing.T) {
		_, mp := testMount(t, "memcache://"+testserver.MemcachedMemory(t, 64))
		st := statfs(mp)
		assert.Equal(t, uint64(64<<20), st.Blocks*uint64(st.Bsize), "the -m limit")
		free0 := st.Bfree * uint64(st.Bsize)
		require.NoError(t, os.WriteFile(filepath.Join(mp, "f"), bytes.Repeat([]byte("x"), 8<<20), 0o644))
		deadline := time.Now().Add(statfsWindow + 5*time.Second)
		for {
			st = statfs(mp)
			free := st.Bfree * uint64(st.Bsize)
			if free0-free >= 7<<20 {
				assert.LessOrEqual(t, free0-free, uint64(10<<20), "8 MiB stored")
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("free %d bytes after writing 8 MiB, %d before", free, free0)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	t.Run("bolt", func(t *testing.T) {
		dir := t.TempDir()
		_, mp := testMount(t, "bolt:"+filepath.Join(dir, "voldfs.db"))
		st, disk := statfs(mp), statfs(dir)
		assert.InDelta(t, float64(disk.Blocks*uint64(disk.Bsize)), float64(st.Blocks*uint64(st.Bsize)), float64(st.Bsize), "the disk's size, in whole blocks")
		assert.NotZero(t, st.Bfree)
	})
}

// TestNoSpaceMount: through the kernel, a memcached that is full (-M, a
// small -m) makes writing a file fail with ENOSPC, not EIO; the files
// written before read back intact, and after deleting some a new file fits.
func TestNoSpaceMount(t *testing.T) {
	_, mp := testMount(t, "memcache://"+testserver.MemcachedMemory(t, 16))
	content := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1<<20) }
	name := func(i int) string { return filepath.Join(mp, fmt.Sprintf("f%d", i)) }
	var n int
	var full error
	for ; n < 200; n++ {
		if full = os.WriteFile(name(n), content(n), 0o644); full != nil {
			break
		}
	}
	t.Logf("%d files of 1 MiB written, then: %v", n, full)
	require.Error(t, full, "16 MiB of memcached holds fewer than 200 MiB")
	assert.ErrorIs(t, full, unix.ENOSPC)
	require.NotZero(t, n)
	for i := range n {
		got, err := os.ReadFile(name(i))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(content(i), got), "f%d reads back", i)
	}
	for i := range n/2 + 1 {
		require.NoError(t, os.Remove(name(i)))
	}
	var err error
	for range 50 { // the library frees the blocks in the background
		if err = os.WriteFile(filepath.Join(mp, "again"), content(7), 0o644); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, err, "a write after deleting files")
	got, err := os.ReadFile(filepath.Join(mp, "again"))
	require.NoError(t, err)
	assert.True(t, bytes.Equal(content(7), got))
}
