package voldfs

import (
	"io"
	"io/fs"
	"sync"
	"syscall"
)

// Dir is an open directory. ReadDir walks the entries in cookie order: under
// concurrent inserts and removes no entry is returned twice and none present
// throughout is missed. It is safe for concurrent use.
type Dir struct {
	fs   *FS
	c    *core
	name string
	ino  uint64

	mu     sync.Mutex
	cookie uint64
	closed bool
}

// DirEntry is a directory entry as the inode-level API returns it.
type DirEntry struct {
	Name   string
	Ino    uint64
	Type   fs.FileMode // the type bits of the entry's mode: 0 for a regular file, fs.ModeDir, ...
	Cookie uint64      // resume a listing after this entry with it
}

func entryMode(typ uint8) fs.FileMode {
	switch typ {
	case typeDir:
		return fs.ModeDir
	case typeSymlink:
		return fs.ModeSymlink
	case typeFile:
		return 0
	case typeFIFO:
		return fs.ModeNamedPipe
	case typeSocket:
		return fs.ModeSocket
	case typeChar:
		return fs.ModeDevice | fs.ModeCharDevice
	case typeBlock:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}

// Name returns the name the directory was opened with.
func (d *Dir) Name() string { return d.name }

// Ino returns the directory's inode number.
func (d *Dir) Ino() uint64 { return d.ino }

func (d *Dir) rewind() {
	d.mu.Lock()
	d.cookie = 0
	d.mu.Unlock()
}

// Read fails: a directory has no bytes.
func (d *Dir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: syscall.EISDIR}
}

// Stat returns the directory's attributes.
func (d *Dir) Stat() (fs.FileInfo, error) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	d.c.stats.op("stat")
	if closed {
		return nil, &fs.PathError{Op: "stat", Path: d.name, Err: fs.ErrClosed}
	}
	ctx, cancel := d.fs.op()
	defer cancel()
	ci, err := d.c.getInode(ctx, d.ino, d.c.attrTTL)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: d.name, Err: err}
	}
	return d.c.info(baseName(d.name), ci.n), nil
}

// ReadDir returns the next n entries (n <= 0: all remaining, with a nil
// error). With n > 0 it returns io.EOF at the end.
func (d *Dir) ReadDir(n int) ([]fs.DirEntry, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.stats.op("readdir")
	if d.closed {
		return nil, &fs.PathError{Op: "readdir", Path: d.name, Err: fs.ErrClosed}
	}
	ents, err := d.fs.readDir(d.ino, d.cookie, n)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: d.name, Err: err}
	}
	out := make([]fs.DirEntry, len(ents))
	for i, e := range ents {
		out[i] = &dirEntryInfo{fs: d.fs, dir: d.name, e: e}
		d.cookie = e.Cookie
	}
	if n > 0 && len(out) == 0 {
		return out, io.EOF
	}
	return out, nil
}

// Close releases the directory. A second Close returns an error.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.c.stats.op("close")
	if d.closed {
		return &fs.PathError{Op: "close", Path: d.name, Err: fs.ErrClosed}
	}
	d.closed = true
	return nil
}

// dirEntryInfo is an fs.DirEntry whose Info is fetched on demand.
type dirEntryInfo struct {
	fs  *FS
	dir string
	e   DirEntry
}

func (de *dirEntryInfo) Name() string      { return de.e.Name }
func (de *dirEntryInfo) IsDir() bool       { return de.e.Type.IsDir() }
func (de *dirEntryInfo) Type() fs.FileMode { return de.e.Type }
func (de *dirEntryInfo) String() string    { return fs.FormatDirEntry(de) }
func (de *dirEntryInfo) Info() (fs.FileInfo, error) {
	ctx, cancel := de.fs.op()
	defer cancel()
	ci, err := de.fs.c.getInode(ctx, de.e.Ino, de.fs.c.attrTTL)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: joinPath(de.dir, de.e.Name), Err: err}
	}
	return de.fs.c.info(de.e.Name, ci.n), nil
}

func joinPath(dir, name string) string {
	if dir == "." || dir == "" {
		return name
	}
	return dir + "/" + name
}
