package main

import (
	"context"
	"fmt"
	"time"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
)

// snapshotView returns what to mount: the live filesystem, or with
// -snapshot the named snapshot of it, read-only. The live FS the view reads
// through stays open for the life of the process. -fsck checks the whole
// filesystem, snapshots included, and ignores -snapshot.
func snapshotView(c *config, vfs *voldfs.FS, store backend.Store) (*voldfs.FS, backend.Store, error) {
	if c.snapshot == "" || c.fsck {
		return vfs, store, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := vfs.OpenSnapshot(ctx, c.snapshot)
	if err != nil {
		vfs.Close()
		store.Close()
		return nil, nil, fmt.Errorf("snapshot %q: %w", c.snapshot, err)
	}
	c.readOnly = true
	return v, store, nil
}
