package voldfs

import (
	"context"
	"errors"
	"io/fs"
	"syscall"
)

// Advisory locks shared by every client of a filesystem: flock(2) locks
// and byte-range locks, both POSIX (fcntl F_SETLK, owned by a process) and
// open file description ones (F_OFD_SETLK, owned by an open file). They
// live in the store (see lock.go), so two machines exclude each other.
// Holders are lock sessions (see session.go): the locks of a client that
// stops heart-beating are broken after its lock timeout, and that client's
// lock calls then fail with ENOLCK.
//
// Lock boundaries are cache boundaries, as with NFS: acquiring a lock
// re-reads the file's attributes (so reads see the previous holder's
// commits), releasing one commits the file's buffered writes first.

// LockKind says which family a lock belongs to.
type LockKind uint8

const (
	// PosixLock is a byte-range lock owned by a process (fcntl F_SETLK):
	// Lock.Owner names the owner (FUSE's lock owner). All of an owner's
	// locks on a file go when it closes any descriptor of the file: the
	// caller does that with ReleaseLocks.
	PosixLock LockKind = iota + 1
	// OFDLock is a byte-range lock owned by an open file (F_OFD_SETLK). It
	// conflicts with POSIX locks of other owners.
	OFDLock
	// FlockLock is a whole-file flock(2) lock owned by an open file. It
	// never conflicts with byte-range locks (as on Linux).
	FlockLock
)

// LockType is the type of a lock, or of a request.
type LockType uint8

const (
	// ReadLock is a shared lock (F_RDLCK, LOCK_SH).
	ReadLock LockType = iota + 1
	// WriteLock is an exclusive lock (F_WRLCK, LOCK_EX).
	WriteLock
	// UnlockLock releases (F_UNLCK, LOCK_UN); from GetLock: no conflict.
	UnlockLock
)

// Lock describes a lock, a lock request, or (from GetLock) the lock that
// conflicts with one.
type Lock struct {
	Kind LockKind
	Type LockType
	// Start and Len give the byte range; Len 0 runs to the end of the file
	// however it grows. Ignored for FlockLock.
	Start, Len int64
	// Owner is the lock owner within this FS: for PosixLock the caller's
	// (process) owner id; for OFDLock and FlockLock the open file's id
	// (the File methods fill it in).
	Owner uint64
	// Pid is the process to report to GetLock callers.
	Pid uint32
	// Remote, from GetLock, is set when the lock is held through another
	// FS value (usually another machine): Owner and Pid are its.
	Remote bool
}

// entry validates l and makes it a table entry of session s.
func (l *Lock) entry(s *session) (lockEnt, error) {
	e := lockEnt{kind: l.Kind, typ: l.Type, sess: s.id, owner: l.Owner, pid: l.Pid}
	if l.Kind < PosixLock || l.Kind > FlockLock || l.Type < ReadLock || l.Type > UnlockLock {
		return e, syscall.EINVAL
	}
	if l.Kind == FlockLock {
		e.start, e.end = 0, lockEOF
		return e, nil
	}
	start, n := l.Start, l.Len
	if n < 0 { // POSIX: the range before Start
		start, n = start+n, -n
	}
	if start < 0 {
		return e, syscall.EINVAL
	}
	e.start, e.end = uint64(start), lockEOF
	if n > 0 {
		if uint64(n) > lockEOF-e.start {
			return e, syscall.EOVERFLOW
		}
		e.end = e.start + uint64(n)
	}
	return e, nil
}

// lockOf reports table entry e as a Lock, seen by session s.
func lockOf(s *session, e lockEnt) Lock {
	l := Lock{Kind: e.kind, Type: e.typ, Start: int64(e.start), Owner: e.owner, Pid: e.pid, Remote: e.sess != s.id}
	if e.end != lockEOF {
		l.Len = int64(e.end - e.start)
	}
	return l
}

// setlk is Setlk for callers of both APIs. An unlock by a core that holds
// no lock on the inode costs no store round trip, so releasing on every
// close is free for files never locked.
func (c *core) setlk(ctx context.Context, ino uint64, l Lock, wait bool) error {
	if l.Type == UnlockLock {
		s := c.currentSession()
		if s == nil || !s.holds(ino) {
			if _, err := (&l).entry(&session{}); err != nil {
				return err
			}
			return nil
		}
		e, err := l.entry(s)
		if err != nil {
			return err
		}
		berr := c.lockBoundary(ctx, ino, false)
		return errors.Join(c.setLock(ctx, s, ino, e, false), berr)
	}
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	e, err := l.entry(s)
	if err != nil {
		return err
	}
	// A downgrade lets others in: what was written under the lock goes
	// first. (Without buffered writes this costs nothing.)
	if err := c.lockBoundary(ctx, ino, false); err != nil {
		return err
	}
	if err := c.setLock(ctx, s, ino, e, wait); err != nil {
		return err
	}
	return c.lockBoundary(ctx, ino, true)
}

// getlk is GetLock for callers of both APIs.
func (c *core) getlk(ctx context.Context, ino uint64, l Lock) (Lock, error) {
	if l.Type == UnlockLock {
		return l, syscall.EINVAL
	}
	s, err := c.session(ctx)
	if err != nil {
		return l, err
	}
	if err := s.check(); err != nil {
		return l, err
	}
	e, err := l.entry(s)
	if err != nil {
		return l, err
	}
	got, ok, err := c.getLock(ctx, s, ino, e)
	if err != nil || !ok {
		l.Type = UnlockLock
		return l, err
	}
	return lockOf(s, got), nil
}

// Setlk sets, changes or releases a lock on inode ino (fcntl F_SETLK, or
// F_SETLKW with wait; flock(2) for Kind FlockLock). A conflict without wait
// is EAGAIN; a wait cancelled by ctx is EINTR. A client that could not renew
// its lock session for most of its lock timeout gets ENOLCK from requests
// until it renews; one whose session was broken (others saw it miss
// heartbeats for the timeout and dropped its locks) gets ENOLCK for good,
// until the FS is opened again. An unlock always removes the caller's
// locks, then reports such a loss. The errors are *fs.PathError values.
func (in *Inodes) Setlk(ctx context.Context, ino uint64, l Lock, wait bool) error {
	ctx, cancel := in.fs.lockCtx(ctx)
	defer cancel()
	return lockPathErr("setlk", inoPath(ino), in.fs.c.setlk(ctx, ino, l, wait))
}

// Getlk returns the first lock on inode ino that conflicts with l (fcntl
// F_GETLK), or l with Type UnlockLock if there is none.
func (in *Inodes) Getlk(ctx context.Context, ino uint64, l Lock) (Lock, error) {
	ctx, cancel := in.fs.lockCtx(ctx)
	defer cancel()
	got, err := in.fs.c.getlk(ctx, ino, l)
	return got, lockPathErr("getlk", inoPath(ino), err)
}

// ReleaseLocks releases every lock of the given kind and owner on inode
// ino: for PosixLock what closing any descriptor of the file does to its
// process's locks (FUSE's flush and release carry the lock owner); for
// FlockLock and OFDLock what the last close of the open file does. It
// costs no store round trip when this FS holds no lock on the inode.
func (in *Inodes) ReleaseLocks(ctx context.Context, ino uint64, kind LockKind, owner uint64) error {
	ctx, cancel := in.fs.lockCtx(ctx)
	defer cancel()
	l := Lock{Kind: kind, Type: UnlockLock, Owner: owner}
	return lockPathErr("unlock", inoPath(ino), in.fs.c.setlk(ctx, ino, l, false))
}

// Flock applies or removes a flock(2) lock on the open file: how is
// syscall.LOCK_SH, LOCK_EX or LOCK_UN, optionally with LOCK_NB. The lock
// belongs to f: other Files, even of the same FS, conflict with it. As on
// Linux, converting a lock is not atomic: a conversion that must wait (or
// fails with LOCK_NB) has released the old lock. Release it before Close.
func (f *File) Flock(ctx context.Context, how int) error {
	l := Lock{Kind: FlockLock}
	switch how &^ syscall.LOCK_NB {
	case syscall.LOCK_SH:
		l.Type = ReadLock
	case syscall.LOCK_EX:
		l.Type = WriteLock
	case syscall.LOCK_UN:
		l.Type = UnlockLock
	default:
		return f.pathErr("flock", syscall.EINVAL)
	}
	return f.Lock(ctx, l, how&syscall.LOCK_NB == 0)
}

// Lock sets, changes or releases a lock on the file (see Inodes.Setlk).
// For OFDLock and FlockLock the owner is f itself and l.Owner is ignored.
func (f *File) Lock(ctx context.Context, l Lock, wait bool) error {
	if err := f.lockOwner(ctx, &l); err != nil {
		return f.pathErr("lock", err)
	}
	ctx, cancel := f.fs.lockCtx(ctx)
	defer cancel()
	return lockPathErr("lock", f.name, f.c.setlk(ctx, f.ino, l, wait))
}

// GetLock returns the first lock on the file that conflicts with l (see
// Inodes.Getlk).
func (f *File) GetLock(ctx context.Context, l Lock) (Lock, error) {
	if err := f.lockOwner(ctx, &l); err != nil {
		return l, f.pathErr("getlock", err)
	}
	ctx, cancel := f.fs.lockCtx(ctx)
	defer cancel()
	got, err := f.c.getlk(ctx, f.ino, l)
	return got, lockPathErr("getlock", f.name, err)
}

// ReleaseLocks releases what closing a descriptor does: the POSIX locks of
// owner on the file and, if release is set (the last close of f), f's own
// flock and OFD locks (File.Close releases f's own ones itself; FS.Close
// releases everything). An unlock goes ahead even
// for a lost session, and then reports ENOLCK.
func (f *File) ReleaseLocks(ctx context.Context, owner uint64, release bool) error {
	ctx, cancel := f.fs.lockCtx(ctx)
	defer cancel()
	err := f.c.setlk(ctx, f.ino, Lock{Kind: PosixLock, Type: UnlockLock, Owner: owner}, false)
	if release {
		err = errors.Join(err, f.releaseOwn(ctx))
	}
	return lockPathErr("unlock", f.name, err)
}

// releaseOwn releases f's own flock and OFD locks: what the last close of
// an open file does (File.Close calls it). It costs nothing for a File that
// never took one.
func (f *File) releaseOwn(ctx context.Context) error {
	s := f.c.currentSession()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	id, ok := s.fileIDs[f]
	delete(s.fileIDs, f)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	var err error
	for _, k := range []LockKind{FlockLock, OFDLock} {
		err = errors.Join(err, f.c.setlk(ctx, f.ino, Lock{Kind: k, Type: UnlockLock, Owner: id}, false))
	}
	return err
}

// lockOwner fills in f's owner id for the kinds f owns.
func (f *File) lockOwner(ctx context.Context, l *Lock) error {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return fs.ErrClosed
	}
	if l.Kind != FlockLock && l.Kind != OFDLock {
		return nil
	}
	s, err := f.c.session(ctx)
	if err != nil {
		return err
	}
	l.Owner = s.fileOwner(f)
	return nil
}

// lockCtx bounds a lock call by the FS's context as well as ctx (but not by
// OpTimeout, which a waiting lock would otherwise hit).
func (f *FS) lockCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	f.c.stats.op("lock")
	if ctx == nil {
		ctx = context.Background()
	}
	if f.ctx == nil || f.ctx.Done() == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(f.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

func lockPathErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return err
	}
	return &fs.PathError{Op: op, Path: path, Err: err}
}
