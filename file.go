package voldfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
)

// File is an open file of an FS. It is safe for concurrent use.
//
// Writes are buffered (write-back) in a state every open File of the inode
// in the same FS shares (see openInode): a read through any of them sees
// every write made through any other at once, and so do Stat and the
// inode API. The buffer is committed, one inode CAS per commit, by Sync,
// Commit or Close of any of them, by Truncate, or when it passes
// Options.WriteBuffer (which bounds all the handles' buffers together); with
// O_SYNC or O_DSYNC, by every write. Other FS values see the writes
// after the commit (close-to-open).
type File struct {
	fs   *FS
	c    *core
	o    *openInode // shared with the inode's other handles
	name string
	ino  uint64
	flag int

	// mu guards the handle's own state below. It is taken before o.mu,
	// which reads release while they fetch blocks, so that readers of one
	// inode through different handles wait for the store in parallel.
	mu       sync.Mutex
	closed   bool
	off      int64
	lastRead int64 // end of the previous read, to detect sequential reads
	raNext   int64 // block index up to which readahead was started
	dir      *Dir  // set when the file is a directory
}

// syncFlags are the open flags that make every write durable before it
// returns.
const syncFlags = os.O_SYNC | oDSYNC

// lock takes the handle's lock and then the inode's shared one.
func (f *File) lock() {
	f.mu.Lock()
	f.o.mu.Lock()
}

func (f *File) unlock() {
	f.o.mu.Unlock()
	f.mu.Unlock()
}

func (f *File) ctx() (context.Context, context.CancelFunc) { return f.fs.op() }

// bg is the context of work a File leaves running in the background.
func (f *File) bg() context.Context { return context.WithoutCancel(f.fs.ctx) }

func (f *File) pathErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: f.name, Err: err}
}

// Name returns the name the file was opened with.
func (f *File) Name() string { return f.name }

// Ino returns the file's inode number.
func (f *File) Ino() uint64 { return f.ino }

func (f *File) check(op string, write bool) error {
	f.c.stats.op(op)
	if f.closed {
		return f.pathErr(op, fs.ErrClosed)
	}
	if write && f.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return f.pathErr(op, syscall.EBADF)
	}
	if f.dir != nil && op != "readdir" && op != "close" && op != "stat" && op != "seek" && op != "sync" && op != "commit" {
		return f.pathErr(op, syscall.EISDIR)
	}
	return nil
}

// readable fails unless the file is open and opened for reading.
func (f *File) readable() error {
	if err := f.check("read", false); err != nil {
		return err
	}
	if f.flag&os.O_WRONLY != 0 {
		return f.pathErr("read", syscall.EBADF)
	}
	return nil
}

// Read reads up to len(p) bytes at the current offset.
func (f *File) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.readable(); err != nil {
		return 0, err
	}
	n, err := f.readAt(p, f.off)
	f.off += int64(n)
	f.c.stats.bytesRead.Add(int64(n))
	return n, err
}

// ReadAt reads len(p) bytes at off; fewer only at the end of the file (with
// io.EOF) or on error.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.readable(); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, f.pathErr("read", syscall.EINVAL)
	}
	n, err := f.readAt(p, off)
	f.c.stats.bytesRead.Add(int64(n))
	return n, err
}

// Write writes p at the current offset (at the end of the file with
// O_APPEND, placed when it is committed, so appenders in other FS values
// never overwrite each other).
func (f *File) Write(p []byte) (int, error) {
	f.lock()
	defer f.unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	ctx, cancel := f.ctx()
	defer cancel()
	if f.flag&os.O_APPEND != 0 {
		if err := f.o.appendWrite(ctx, p); err != nil {
			return 0, f.pathErr("write", err)
		}
		f.off = int64(f.o.size)
		f.c.stats.bytesWritten.Add(int64(len(p)))
		return len(p), f.pathErr("write", f.syncWrite(ctx))
	}
	n, err := f.o.writeAt(ctx, f.bg(), p, f.off)
	f.off += int64(n)
	f.c.stats.bytesWritten.Add(int64(n))
	if err == nil {
		err = f.syncWrite(ctx)
	}
	return n, f.pathErr("write", err)
}

// WriteAt writes p at off. On a file opened with O_APPEND it is EINVAL, as
// the offset would be ignored (pwrite(2) on Linux appends anyway; os.File
// refuses too).
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	f.lock()
	defer f.unlock()
	if err := f.check("write", true); err != nil {
		return 0, err
	}
	if f.flag&os.O_APPEND != 0 {
		return 0, f.pathErr("write", syscall.EINVAL)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	n, err := f.o.writeAt(ctx, f.bg(), p, off)
	f.c.stats.bytesWritten.Add(int64(n))
	if err == nil {
		err = f.syncWrite(ctx)
	}
	return n, f.pathErr("write", err)
}

// syncWrite makes a write durable before it returns on a file opened with
// O_SYNC or O_DSYNC.
func (f *File) syncWrite(ctx context.Context) error {
	if f.flag&syncFlags == 0 {
		return nil
	}
	return f.sync(ctx)
}

// sync commits the inode's buffered writes and waits until the stores hold
// them durably.
func (f *File) sync(ctx context.Context) error {
	if err := f.o.commit(ctx); err != nil {
		return err
	}
	return f.c.syncStores(ctx)
}

// Commit publishes the buffered writes of every handle of the file in this
// FS with one inode CAS, as Close does, so other FS values see them; unlike
// Sync it does not wait for the stores to make them durable (close(2) as
// against fsync(2)).
func (f *File) Commit() error {
	f.lock()
	defer f.unlock()
	if err := f.check("commit", false); err != nil {
		return err
	}
	ctx, cancel := f.ctx()
	defer cancel()
	return f.pathErr("commit", f.o.commit(ctx))
}

// Sync commits the buffered writes of every handle of the file in this FS
// and returns once the stores hold them durably (fsync).
func (f *File) Sync() error {
	f.lock()
	defer f.unlock()
	if err := f.check("sync", false); err != nil {
		return err
	}
	ctx, cancel := f.ctx()
	defer cancel()
	return f.pathErr("sync", f.sync(ctx))
}

// Seek sets the offset for the next Read or Write. A resulting negative
// offset is EINVAL. Whence may also be SeekData or SeekHole, as with
// lseek(2) (see File.SeekData and File.SeekHole).
func (f *File) Seek(offset int64, whence int) (int64, error) {
	if whence == SeekData || whence == SeekHole {
		return f.seekHole(offset, whence)
	}
	f.lock()
	defer f.unlock()
	if f.closed {
		return 0, f.pathErr("seek", fs.ErrClosed)
	}
	if f.dir != nil {
		if offset != 0 || whence != io.SeekStart {
			return 0, f.pathErr("seek", syscall.EINVAL)
		}
		f.dir.rewind()
		return 0, nil
	}
	var pos int64
	switch whence {
	case io.SeekStart:
		pos = offset
	case io.SeekCurrent:
		pos = f.off + offset
	case io.SeekEnd:
		pos = int64(f.o.size) + offset
	default:
		return 0, f.pathErr("seek", syscall.EINVAL)
	}
	if pos < 0 { // a negative result, or an int64 overflow past 2^63
		return 0, f.pathErr("seek", syscall.EINVAL)
	}
	f.off = pos
	return pos, nil
}

// Stat returns the file's attributes, including the size and times of
// writes not yet committed.
func (f *File) Stat() (fs.FileInfo, error) {
	f.lock()
	defer f.unlock()
	o := f.o
	f.c.stats.op("stat")
	if f.closed {
		return nil, f.pathErr("stat", fs.ErrClosed)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	if err := o.refresh(ctx, false); err != nil {
		return nil, f.pathErr("stat", err)
	}
	fi := &fileInfo{name: baseName(f.name)}
	f.c.fillAttr(&fi.attr, o.n)
	if o.n.isReg() {
		o.overlay(&fi.attr)
	}
	return fi, nil
}

// Truncate commits buffered writes and changes the file's size. Shrinking
// frees the blocks past the end; growing again reads zeros. Every handle of
// the file sees the new size.
func (f *File) Truncate(size int64) error {
	f.lock()
	defer f.unlock()
	if err := f.check("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return f.pathErr("truncate", syscall.EINVAL)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	_, err := f.o.setattr(ctx, &SetAttr{Size: &size})
	return f.pathErr("truncate", err)
}

// Chmod changes the file's permission bits.
func (f *File) Chmod(mode fs.FileMode) error {
	return f.setattr("chmod", &SetAttr{Mode: &mode})
}

// Chown changes the file's owner and group. A -1 leaves that id unchanged.
func (f *File) Chown(uid, gid int) error {
	return f.setattr("chown", chownAttr(uid, gid))
}

func (f *File) setattr(op string, a *SetAttr) error {
	f.lock()
	defer f.unlock()
	f.c.stats.op(op)
	if f.closed {
		return f.pathErr(op, fs.ErrClosed)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	_, err := f.o.setattr(ctx, a)
	return f.pathErr(op, err)
}

// ReadDir reads the entries of a directory opened as a File; see Dir.ReadDir.
func (f *File) ReadDir(n int) ([]fs.DirEntry, error) {
	f.lock()
	defer f.unlock()
	if f.closed {
		return nil, f.pathErr("readdir", fs.ErrClosed)
	}
	if f.dir == nil {
		return nil, f.pathErr("readdir", syscall.ENOTDIR)
	}
	return f.dir.ReadDir(n)
}

// Close commits the buffered writes of the file's handles in this FS and
// releases the file; after the last Close of an inode unlinked while open,
// the inode is freed. A second Close returns an error wrapping fs.ErrClosed.
func (f *File) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.c.stats.op("close")
	if f.closed {
		return f.pathErr("close", fs.ErrClosed)
	}
	ctx, cancel := f.ctx()
	defer cancel()
	o := f.o
	o.mu.Lock()
	err := o.commit(ctx)
	o.mu.Unlock()
	err = errors.Join(err, f.releaseOwn(ctx))
	f.closed = true
	f.c.release(ctx, o)
	return f.pathErr("close", err)
}

func baseName(name string) string {
	if name == "." || name == "" {
		return "."
	}
	_, b := split(name)
	return b
}
