package voldfs

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// Lock sessions. Every lock names the session of the FS value (core) that
// holds it. A session is a record, prefix+"s/"+hex id, holding a heartbeat
// counter that a goroutine of the holder increments every timeout/4. A
// session is dead when an observer sees its counter unchanged for the
// session's timeout, measured on the observer's own clock: no machine trusts
// another's clock, only that clocks run at about the same rate. The observer
// breaks a dead session by deleting its record (conditionally on the version
// it watched, so a heartbeat in between wins) and then drops its locks. The
// holder fences itself: it refuses lock calls once its last successful
// heartbeat was sent longer than the timeout ago, and for good once it finds
// its record gone.

// DefaultLockTimeout is how long a lock session may miss heartbeats before
// other clients break its locks (see FS.SetLockTimeout).
const DefaultLockTimeout = 30 * time.Second

// recSession frames a session record.
const recSession byte = 'H'

// session is one core's lock session.
type session struct {
	c       *core
	id      uint64
	key     string
	timeout time.Duration

	// quit ends the heartbeat, and a beat in flight, at FS.Close; done
	// is closed when the heartbeat has returned.
	quit context.Context
	stop context.CancelFunc
	done chan struct{}

	mu      sync.Mutex
	ver     backend.Version // of the record as this session last wrote it
	counter uint64
	lastOK  int64 // nanotime when the last successful heartbeat was sent
	lost    error // set once the record was found broken
	paused  bool  // test hook: heartbeats are skipped (a hung client)

	held    map[uint64]bool   // inodes whose lock record may hold our locks
	fileIDs map[*File]uint64  // owner ids of Files (flock and OFD owners)
	nextID  uint64            // last File owner id given out
	seen    map[uint64]*watch // other sessions met holding a conflicting lock
	tables  map[uint64]lockTable
	inoMu   map[uint64]*inoMutex // serialise the session's tries per inode
}

// inoMutex is a session's lock on one inode's table, counted so that it is
// forgotten when unused.
type inoMutex struct {
	mu   sync.Mutex
	refs int
}

// lockIno takes the session's lock on inode ino's table and returns its
// release.
func (s *session) lockIno(ino uint64) func() {
	s.mu.Lock()
	m := s.inoMu[ino]
	if m == nil {
		m = &inoMutex{}
		s.inoMu[ino] = m
	}
	m.refs++
	s.mu.Unlock()
	m.mu.Lock()
	return func() {
		m.mu.Unlock()
		s.mu.Lock()
		if m.refs--; m.refs == 0 {
			delete(s.inoMu, ino)
		}
		s.mu.Unlock()
	}
}

// watch is what this core last observed of another session's record.
type watch struct {
	counter uint64
	ver     backend.Version
	since   int64 // nanotime when this counter and version were first seen
	checked int64 // nanotime of the last read of the record
	timeout time.Duration
}

// lockState is the per-core lock machinery, started by the first lock call.
type lockState struct {
	mu      sync.Mutex
	timeout time.Duration
	s       *session
}

// SetLockTimeout sets how long this FS's lock session may miss heartbeats
// before other clients break its locks; default DefaultLockTimeout. The
// timeout is stored in the session record, so each observer applies the
// holder's own value. It applies to a session started after the call (the
// first lock call of the FS starts one), so set it right after Open.
// Values under 100 ms are raised to 100 ms.
func (f *FS) SetLockTimeout(d time.Duration) {
	f.c.locks.mu.Lock()
	f.c.locks.timeout = max(d, 100*time.Millisecond)
	f.c.locks.mu.Unlock()
}

func (c *core) sessionKey(id uint64) string {
	return c.prefix + "s/" + strconv.FormatUint(id, 16)
}

func encodeSession(counter uint64, timeout time.Duration) []byte {
	e := enc{}
	e.uv(counter)
	e.uv(uint64(timeout))
	e.sv(time.Now().UnixNano()) // for humans reading the store only
	return seal(recSession, e.b)
}

func decodeSession(key string, b []byte) (counter uint64, timeout time.Duration, err error) {
	p, err := unseal(recSession, key, b)
	if err != nil {
		return 0, 0, err
	}
	d := dec{b: p, key: key}
	counter, timeout = d.uv(), time.Duration(d.uv())
	d.sv()
	return counter, timeout, d.done()
}

// errLockLost is the error of lock calls of a session that was broken or
// that could not renew itself in time.
func errLockLost(why string) error {
	return fmt.Errorf("voldfs: lock session %s: %w", why, syscall.ENOLCK)
}

// session returns the core's lock session, starting it if need be.
func (c *core) session(ctx context.Context) (*session, error) {
	l := &c.locks
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.closed.Load() {
		return nil, errLockLost("closed")
	}
	if l.s != nil {
		return l.s, nil
	}
	timeout := l.timeout
	if timeout == 0 {
		timeout = DefaultLockTimeout
	}
	s := &session{c: c, timeout: timeout, done: make(chan struct{}),
		held: map[uint64]bool{}, fileIDs: map[*File]uint64{}, seen: map[uint64]*watch{}, tables: map[uint64]lockTable{}, inoMu: map[uint64]*inoMutex{}}
	for {
		var b [8]byte
		rand.Read(b[:])
		s.id = binary.BigEndian.Uint64(b[:]) | 1
		s.key = c.sessionKey(s.id)
		sent := nanotime()
		sctx, cancel := c.step(ctx)
		ver, err := c.inodes.CAS(sctx, s.key, backend.NoVersion, encodeSession(0, timeout))
		cancel()
		if errors.Is(err, backend.ErrConflict) {
			continue // an id in use: draw again
		}
		if err != nil {
			// A record we may have created and never heartbeat is broken
			// by the first observer: nothing to resolve.
			return nil, fmt.Errorf("voldfs: start lock session: %w", err)
		}
		s.ver, s.lastOK = ver, sent
		break
	}
	l.s = s
	s.quit, s.stop = context.WithCancel(context.Background())
	go s.heartbeat()
	return s, nil
}

// current returns the core's session if one was started, else nil.
func (c *core) currentSession() *session {
	c.locks.mu.Lock()
	defer c.locks.mu.Unlock()
	return c.locks.s
}

// check returns an error wrapping ENOLCK unless the session may still
// believe it holds its locks. The holder gives up a little before the
// timeout, as a margin for clock rates.
func (s *session) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkLocked()
}

func (s *session) checkLocked() error {
	if s.lost != nil {
		return s.lost
	}
	if nanotime()-s.lastOK > int64(s.timeout)*9/10 {
		return errLockLost("missed its heartbeats (store unreachable?)")
	}
	return nil
}

// lostErr returns the error of a session broken by another client, or nil.
func (s *session) lostErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost
}

// heartbeat renews the session record every timeout/4 until stopped.
func (s *session) heartbeat() {
	defer close(s.done)
	tk := time.NewTicker(s.timeout / 4)
	defer tk.Stop()
	for {
		select {
		case <-s.quit.Done():
			return
		case <-tk.C:
		}
		s.beat()
		s.mu.Lock()
		lost := s.lost != nil
		s.mu.Unlock()
		if lost {
			return
		}
	}
}

// beat increments the session's counter once. An outcome-unknown write is
// resolved by reading the record.
func (s *session) beat() {
	s.mu.Lock()
	if s.paused || s.lost != nil {
		s.mu.Unlock()
		return
	}
	ver, next := s.ver, s.counter+1
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.quit, s.timeout/4)
	defer cancel()
	sent := nanotime()
	nv, err := s.c.inodes.CAS(ctx, s.key, ver, encodeSession(next, s.timeout))
	if err != nil && !errors.Is(err, backend.ErrConflict) && !errors.Is(err, backend.ErrNotFound) {
		b, gv, gerr := s.c.inodes.Get(ctx, s.key)
		switch {
		case errors.Is(gerr, backend.ErrNotFound):
			err = backend.ErrNotFound
		case gerr != nil:
			return // unknown; try again next tick (check fences by time)
		default:
			cnt, _, derr := decodeSession(s.key, b)
			if derr == nil && cnt == next {
				nv, err = gv, nil // it was applied
			} else if derr == nil && gv == ver {
				return // not applied; try again next tick
			} else {
				err = backend.ErrConflict
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lost = errLockLost("was broken by another client")
		return
	}
	s.ver, s.counter, s.lastOK = nv, next, sent
}

// setPaused is a test hook: a paused session stops heart-beating without
// releasing anything, as a hung or partitioned client would.
func (s *session) setPaused(p bool) {
	s.mu.Lock()
	s.paused = p
	s.mu.Unlock()
}

// alive reports whether session id, met holding a conflicting lock, still
// lives. A session seen with the same record for its whole timeout is
// broken here: its record is deleted (if it did not move meanwhile).
func (s *session) alive(ctx context.Context, id uint64) (bool, error) {
	if id == s.id {
		return true, nil
	}
	c := s.c
	key := c.sessionKey(id)
	// A session read recently is not read again on every try of a waiter:
	// it is alive until its timeout could have run out.
	s.mu.Lock()
	if w := s.seen[id]; w != nil {
		now := nanotime()
		if now-w.checked < int64(w.timeout/8) && now-w.since < int64(w.timeout) {
			s.mu.Unlock()
			return true, nil
		}
	}
	s.mu.Unlock()
	ctx, cancel := c.step(ctx)
	defer cancel()
	b, ver, err := c.inodes.Get(ctx, key)
	if errors.Is(err, backend.ErrNotFound) {
		s.forget(id)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	counter, timeout, err := decodeSession(key, b)
	if err != nil {
		return false, err
	}
	now := nanotime()
	s.mu.Lock()
	w := s.seen[id]
	if w == nil || w.counter != counter || w.ver != ver {
		s.seen[id] = &watch{counter: counter, ver: ver, since: now, checked: now, timeout: timeout}
		s.mu.Unlock()
		return true, nil
	}
	w.checked = now
	expired := now-w.since >= int64(timeout)
	s.mu.Unlock()
	if !expired {
		return true, nil
	}
	err = c.inodes.Delete(ctx, key, ver)
	switch {
	case err == nil, errors.Is(err, backend.ErrNotFound):
		s.forget(id)
		return false, nil
	case errors.Is(err, backend.ErrConflict):
		return true, nil // it beat just now
	default:
		return false, err
	}
}

func (s *session) forget(id uint64) {
	s.mu.Lock()
	delete(s.seen, id)
	s.mu.Unlock()
}

// fileOwner returns the owner id of f's flock and OFD locks.
func (s *session) fileOwner(f *File) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.fileIDs[f]
	if !ok {
		s.nextID++
		id = s.nextID
		s.fileIDs[f] = id
	}
	return id
}

// close stops the heartbeat, releases every lock of the session and deletes
// its record (FS.Close).
func (l *lockState) close() {
	l.mu.Lock()
	s := l.s
	l.mu.Unlock()
	if s == nil {
		return
	}
	s.stop()
	<-s.done
	// Releasing takes at most OpTimeout (10 s without one): what it
	// leaves, other clients break once the session's record goes stale.
	d := 10 * time.Second
	if s.c.opTimeout > 0 {
		d = s.c.opTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	s.mu.Lock()
	inos := make([]uint64, 0, len(s.held))
	for ino := range s.held {
		inos = append(inos, ino)
	}
	if s.lost == nil {
		s.lost = errLockLost("closed") // ends waiters at their next try
	}
	ver := s.ver
	s.mu.Unlock()
	// Even a broken session's leftovers go: the breaker cleaned only the
	// tables it met them in.
	for _, ino := range inos {
		_ = s.c.dropSession(ctx, s, ino)
	}
	if err := s.c.inodes.Delete(ctx, s.key, ver); errors.Is(err, backend.ErrConflict) {
		// The beat Close cancelled may have been applied: the record is
		// this session's alone, so delete it at the version it has.
		if _, v, err := s.c.inodes.Get(ctx, s.key); err == nil {
			_ = s.c.inodes.Delete(ctx, s.key, v)
		}
	}
}
