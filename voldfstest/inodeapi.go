package voldfstest

import (
	"io/fs"

	"github.com/voldfs/voldfs"
)

// The suite's only uses of voldfs's inode-level API (the calls a FUSE server
// makes) and of FS.Flush, kept in this one file so that a change of that API
// touches nothing else.

// createAt creates and opens name in directory dir.
func createAt(f *voldfs.FS, dir uint64, name string, flag int, perm fs.FileMode) (*voldfs.File, error) {
	return f.CreateAt(dir, name, flag, perm)
}

// unlinkAt removes the non-directory name from directory dir.
func unlinkAt(f *voldfs.FS, dir uint64, name string) error {
	return f.UnlinkAt(dir, name)
}

// readDirIno lists up to n entries of directory dir after cookie.
func readDirIno(f *voldfs.FS, dir, cookie uint64, n int) ([]voldfs.DirEntry, error) {
	return f.ReadDirIno(dir, cookie, n)
}

// getAttr returns the attributes of inode ino.
func getAttr(f *voldfs.FS, ino uint64) (*voldfs.Attr, error) {
	return f.GetAttr(ino)
}

// lookup returns the attributes of name in directory dir.
func lookup(f *voldfs.FS, dir uint64, name string) (*voldfs.Attr, error) {
	return f.Lookup(dir, name)
}

// flush waits until the blocks freed so far are deleted from the store.
func flush(f *voldfs.FS) {
	f.Flush()
}
