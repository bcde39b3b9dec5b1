package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/voldfs/voldfs"
)

// TestReflinkMount: FICLONE cannot reach a FUSE server (the kernel's VFS
// answers it), so cp --reflink=always fails; cp --reflink=auto copies
// with copy_file_range, which the mount answers by sharing blocks: the
// copy stores no data block, writing it copies only what it changes, and
// the original stays as it was.
func TestReflinkMount(t *testing.T) {
	forStores(t, reflinkMount)
}

func reflinkMount(t *testing.T, store string) {
	m, mp := testMount(t, store)
	cp := needBinary(t, "cp")
	bs := m.vfs.BlockSize()
	data := make([]byte, 16*bs+1234)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	a, b, c := filepath.Join(mp, "a"), filepath.Join(mp, "b"), filepath.Join(mp, "c")
	require.NoError(t, os.WriteFile(a, data, 0o644))
	// Stored blocks, where the store can count them (memcached cannot:
	// then 0, and the checks below hold trivially).
	used := func() uint64 {
		t.Helper()
		m.vfs.WaitFrees()
		st, err := m.vfs.Statfs()
		require.NoError(t, err)
		return st.UsedBlocks
	}
	before := used()

	// FICLONE: the kernel refuses it before FUSE sees it.
	src, err := os.Open(a)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.Create(b)
	require.NoError(t, err)
	err = unix.IoctlFileClone(int(dst.Fd()), int(src.Fd()))
	require.Error(t, err, "FICLONE through FUSE")
	t.Logf("FICLONE through the mount: %v", err)
	require.NoError(t, dst.Close())
	out, err := exec.Command(cp, "--reflink=always", a, b).CombinedOutput()
	assert.Error(t, err, "cp --reflink=always cannot work on FUSE: %s", out)
	t.Logf("cp --reflink=always: %s", bytes.TrimSpace(out))

	// cp --reflink=auto: copy_file_range, answered by sharing blocks.
	out, err = exec.Command(cp, "--reflink=auto", a, c).CombinedOutput()
	require.NoError(t, err, "%s", out)
	got, err := os.ReadFile(c)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "the copy reads as the original")
	assert.LessOrEqual(t, used(), before+1, "the copy stored no data block (17 blocks of data)")

	// Writing the copy changes it alone and stores about one block.
	f, err := os.OpenFile(c, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("written"), int64(3*bs+10))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	want := bytes.Clone(data)
	copy(want[3*bs+10:], "written")
	got, err = os.ReadFile(c)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "the copy has the write")
	got, err = os.ReadFile(a)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(data, got), "the original is unchanged")
	assert.LessOrEqual(t, used(), before+3, "the write stored one data block and the copy's index node")

	// copy_file_range at offsets that are not block-aligned: the bytes
	// to the next boundary are copied, the whole blocks shared.
	d := filepath.Join(mp, "d")
	require.NoError(t, os.WriteFile(d, nil, 0o644))
	df, err := os.OpenFile(d, os.O_RDWR, 0)
	require.NoError(t, err)
	offIn, offOut := int64(bs+100), int64(100)
	total := 0
	for total < 5*bs {
		n, err := unix.CopyFileRange(int(src.Fd()), &offIn, int(df.Fd()), &offOut, 5*bs-total, 0)
		require.NoError(t, err)
		require.NotZero(t, n)
		total += n
	}
	require.NoError(t, df.Close())
	got, err = os.ReadFile(d)
	require.NoError(t, err)
	wantD := append(make([]byte, 100), data[bs+100:6*bs+100]...)
	assert.True(t, bytes.Equal(wantD, got), "copy_file_range at unaligned offsets")

	// Removing the original leaves the copies whole; the counts check.
	require.NoError(t, src.Close())
	require.NoError(t, os.Remove(a))
	got, err = os.ReadFile(c)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "the copy outlives the original")
	r, err := m.vfs.Fsck(context.Background(), voldfs.FsckOptions{Grace: -1})
	require.NoError(t, err)
	assert.Empty(t, r.Problems)
	assert.Zero(t, r.GarbageBlocks)
}
