package s3_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
)

// TestNoSpace serves S3 from a 1 MiB tmpfs: once it is full, writes are
// refused with backend.ErrNoSpace (versitygw's 507 InsufficientStorage),
// and what was stored before still reads back. It needs mount(8) and the
// right to mount, as root has; without them it is skipped.
func TestNoSpace(t *testing.T) {
	root := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", root).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", root).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", root, err, out)
		}
	})
	s := openStore(t, startServerIn(t, root))
	ctx := context.Background()
	val := make([]byte, 64<<10)
	first, err := s.CAS(ctx, "first", backend.NoVersion, []byte("small"))
	require.NoError(t, err)
	var full error
	for i := range 64 {
		if _, err := backend.Put(ctx, s, fmt.Sprint("b", i), val); err != nil {
			full = err
			break
		}
	}
	require.Error(t, full, "64 values of 64 KiB fit in a 1 MiB tmpfs")
	assert.ErrorIs(t, full, backend.ErrNoSpace)
	_, err = s.CAS(ctx, "first", first, val)
	assert.ErrorIs(t, err, backend.ErrNoSpace, "CAS on a full server")
	got, ver, err := s.Get(ctx, "first")
	require.NoError(t, err)
	assert.Equal(t, "small", string(got))
	assert.Equal(t, first, ver, "a refused CAS changed nothing")
	t.Logf("full: %v", full)
}
