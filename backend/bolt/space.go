//go:build linux || darwin

package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/voldfs/voldfs/backend"
)

var _ backend.SpaceReporter = (*Store)(nil)

// Space implements backend.SpaceReporter: the size of the filesystem that
// holds the database file is the total; what it has free for an
// unprivileged writer (statfs's f_bavail) is free, plus the free pages
// inside the file, which bolt reuses before it grows it.
func (s *Store) Space(ctx context.Context) (backend.Space, error) {
	var st syscall.Statfs_t
	dir := filepath.Dir(s.db.Path())
	if err := syscall.Statfs(dir, &st); err != nil {
		return backend.Space{}, fmt.Errorf("bolt: statfs %s: %w", dir, err)
	}
	bsize := uint64(st.Bsize)
	return backend.Space{
		Total: uint64(st.Blocks) * bsize,
		Free:  uint64(st.Bavail)*bsize + uint64(s.db.Stats().FreeAlloc),
	}, nil
}
