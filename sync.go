package voldfs

import "io/fs"

// Sync commits the writes every open File of f's filesystem buffered (as
// File.Commit does) and returns once everything f acknowledged before the
// call is durable: every store write its operations made is made durable
// with backend.Sync on the inode and block stores. Stores that commit in groups
// (bolt by default) acknowledge writes before they reach the disk; on the
// others Sync returns at once. Like syncfs(2), it covers the filesystem, not
// one file. Errors are *fs.PathError values for the root, ".".
func (f *FS) Sync() error {
	f.c.stats.op("sync")
	if f.c.closed.Load() {
		return &fs.PathError{Op: "sync", Path: ".", Err: fs.ErrClosed}
	}
	ctx, cancel := f.op()
	defer cancel()
	if err := f.c.commitOpen(ctx); err != nil {
		return err // *fs.PathError values naming the files
	}
	if err := f.c.syncStores(ctx); err != nil {
		return &fs.PathError{Op: "sync", Path: ".", Err: err}
	}
	return nil
}
