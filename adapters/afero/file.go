package voldafero

import (
	"io"
	"io/fs"
	"os"

	"github.com/spf13/afero"
	"github.com/voldfs/voldfs"
)

// File is an open file or directory of an Fs: an afero.File over a
// *voldfs.File. Its errors name the path it was opened with. It is safe for
// concurrent use.
type File struct {
	f    *voldfs.File
	name string
}

var (
	_ afero.File      = (*File)(nil)
	_ fs.ReadDirFile  = (*File)(nil)
	_ io.StringWriter = (*File)(nil)
)

// VoldFile returns the voldfs file under f, for the calls afero has no
// interface for (locks, Allocate, SeekData).
func (f *File) VoldFile() *voldfs.File { return f.f }

func (f *File) err(err error) error { return renamePath(err, f.name) }

// Name returns the name the file was opened with, as os.File.Name does.
func (f *File) Name() string { return f.name }

// Close commits the file's buffered writes and releases it. A second Close
// returns an error wrapping fs.ErrClosed.
func (f *File) Close() error { return f.err(f.f.Close()) }

// Read reads up to len(p) bytes at the current offset. As with os.File,
// a read that returns bytes returns no error: io.EOF comes from the next one.
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

// Seek sets the offset of the next Read or Write. A directory can only be
// rewound (Seek(0, io.SeekStart)), which restarts its listing.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	n, err := f.f.Seek(offset, whence)
	return n, f.err(err)
}

// Write writes p at the current offset (at the end with O_APPEND).
func (f *File) Write(p []byte) (int, error) {
	n, err := f.f.Write(p)
	return n, f.err(err)
}

// WriteAt writes p at off. On a file opened with O_APPEND it is EINVAL, as
// with os.File.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(p, off)
	return n, f.err(err)
}

// WriteString writes s at the current offset.
func (f *File) WriteString(s string) (int, error) { return f.Write([]byte(s)) }

// Stat returns the file's attributes, including writes not yet committed.
func (f *File) Stat() (os.FileInfo, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return nil, f.err(err)
	}
	return withName(fi, f.name), nil
}

// Sync commits the file's buffered writes and waits until the stores hold
// them durably (fsync).
func (f *File) Sync() error { return f.err(f.f.Sync()) }

// Truncate changes the file's size.
func (f *File) Truncate(size int64) error { return f.err(f.f.Truncate(size)) }

// ReadDir returns the next n entries of a directory (n <= 0: all remaining,
// with a nil error; with n > 0, io.EOF at the end), as os.File.ReadDir. The
// entries come in the directory's own order (a hash order), not sorted.
func (f *File) ReadDir(n int) ([]fs.DirEntry, error) {
	ents, err := f.f.ReadDir(n)
	return ents, f.err(err)
}

// Readdir is ReadDir with each entry's attributes (Lstat's, so a symlink is
// described as a link), as os.File.Readdir: one inode lookup per entry,
// answered from the attribute cache where it can.
func (f *File) Readdir(n int) ([]os.FileInfo, error) {
	ents, err := f.ReadDir(n)
	infos := make([]os.FileInfo, 0, len(ents))
	for _, e := range ents {
		fi, ierr := e.Info()
		if ierr != nil {
			if os.IsNotExist(ierr) {
				continue // removed since the listing: os.File.Readdir skips it too
			}
			return infos, f.err(ierr)
		}
		infos = append(infos, fi)
	}
	return infos, err
}

// Readdirnames is ReadDir returning only the names, as os.File.Readdirnames.
func (f *File) Readdirnames(n int) ([]string, error) {
	ents, err := f.ReadDir(n)
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, err
}

// Chmod changes the file's permission bits.
func (f *File) Chmod(mode os.FileMode) error { return f.err(f.f.Chmod(mode)) }

// Chown changes the file's owner and group; a -1 leaves that id unchanged.
func (f *File) Chown(uid, gid int) error { return f.err(f.f.Chown(uid, gid)) }
