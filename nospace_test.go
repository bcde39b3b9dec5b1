package voldfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/internal/testserver"
)

// TestNoSpaceMemcached fills a memcached that refuses writes when full
// (-M, a few MiB of -m): a write that does not fit fails with ENOSPC (not
// EIO or the server's text), every file written before reads back intact,
// and once files are deleted writes succeed again.
func TestNoSpaceMemcached(t *testing.T) {
	s, err := memcache.New(testserver.MemcachedMemory(t, 8))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	fsys, err := voldfs.Format(ctx, s, &voldfs.Options{BlockSize: 64 << 10})
	require.NoError(t, err)
	t.Cleanup(func() { fsys.Close() })

	content := func(i int) []byte {
		b := make([]byte, 256<<10)
		r := rand.New(rand.NewPCG(uint64(i), 1))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		return b
	}
	write := func(name string, data []byte) error {
		f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		return errors.Join(err, f.Close())
	}
	var written []int
	var full error
	for i := 0; i < 1000 && full == nil; i++ {
		if err := write(fmt.Sprintf("f%d", i), content(i)); err != nil {
			full = err
			break
		}
		written = append(written, i)
	}
	require.Error(t, full, "8 MiB of memcached holds fewer than 1000 files of 256 KiB")
	t.Logf("%d files of 256 KiB written, then: %v", len(written), full)
	assert.ErrorIs(t, full, syscall.ENOSPC)
	assert.ErrorIs(t, full, backend.ErrNoSpace)
	require.NotEmpty(t, written)

	check := func(i int) {
		t.Helper()
		f, err := fsys.Open(fmt.Sprintf("f%d", i))
		require.NoError(t, err)
		defer f.Close()
		got, err := io.ReadAll(f)
		require.NoError(t, err)
		assert.True(t, bytes.Equal(content(i), got), "f%d reads back as written", i)
	}
	for _, i := range written {
		check(i)
	}

	// Free half the files: writes fit again.
	for _, i := range written[:len(written)/2+1] {
		require.NoError(t, fsys.Remove(fmt.Sprintf("f%d", i)))
	}
	fsys.WaitFrees()
	require.NoError(t, write("again", content(-1)), "a write after deleting files")
	f, err := fsys.Open("again")
	require.NoError(t, err)
	got, err := io.ReadAll(f)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	assert.True(t, bytes.Equal(content(-1), got))
	for _, i := range written[len(written)/2+1:] {
		check(i)
	}
}
