package voldbilly

import (
	"context"
	"io"
	"os"
	"syscall"

	"github.com/go-git/go-billy/v5"
	"github.com/voldfs/voldfs"
)

// File is an open file of a Filesystem: a billy.File over a *voldfs.File.
// It is safe for concurrent use.
type File struct {
	f    *voldfs.File
	name string // relative to the Filesystem's root, cleaned: Name
	path string // as the caller gave it, for errors
}

var (
	_ billy.File  = (*File)(nil)
	_ io.WriterAt = (*File)(nil)
)

// VoldFile returns the voldfs file under f, for the calls billy has no
// interface for (byte-range locks, Allocate, SeekData).
func (f *File) VoldFile() *voldfs.File { return f.f }

func (f *File) err(err error) error { return renamePath(err, f.path) }

// Name returns the file's path relative to the Filesystem's root, cleaned
// and without a leading slash ("bar/foo" for Create("/bar/foo")).
func (f *File) Name() string { return f.name }

// Read reads up to len(p) bytes at the current offset. As with os.File, a
// read that returns bytes returns no error: io.EOF comes from the next one.
func (f *File) Read(p []byte) (int, error) {
	n, err := f.f.Read(p)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, f.err(err)
}

// ReadAt reads len(p) bytes at off; fewer only at the end (with io.EOF).
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	return n, f.err(err)
}

// Write writes p at the current offset (at the end with O_APPEND).
func (f *File) Write(p []byte) (int, error) {
	n, err := f.f.Write(p)
	return n, f.err(err)
}

// WriteAt writes p at off (EINVAL on a file opened with O_APPEND).
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(p, off)
	return n, f.err(err)
}

// Seek sets the offset of the next Read or Write.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	n, err := f.f.Seek(offset, whence)
	return n, f.err(err)
}

// Close commits the file's buffered writes and releases it (and its flock
// lock). A second Close returns an error wrapping fs.ErrClosed.
func (f *File) Close() error { return f.err(f.f.Close()) }

// Lock takes an exclusive flock(2) lock on the file, waiting for it. The
// lock is held in the store, so it excludes Files of other voldfs.FS values
// (other processes and machines) too.
func (f *File) Lock() error {
	return f.err(f.f.Flock(context.Background(), syscall.LOCK_EX))
}

// Unlock releases the file's flock lock.
func (f *File) Unlock() error {
	return f.err(f.f.Flock(context.Background(), syscall.LOCK_UN))
}

// Truncate changes the file's size.
func (f *File) Truncate(size int64) error { return f.err(f.f.Truncate(size)) }

// Stat returns the file's attributes, including writes not yet committed.
func (f *File) Stat() (os.FileInfo, error) {
	fi, err := f.f.Stat()
	return fi, f.err(err)
}

// Sync commits the file's buffered writes and waits until the stores hold
// them durably (fsync).
func (f *File) Sync() error { return f.err(f.f.Sync()) }
