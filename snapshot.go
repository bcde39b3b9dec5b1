package voldfs

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// Snapshots: the snapshot table, the commit fence, the preservation of
// inode records and the birth rule for blocks. doc.go ("Snapshots") has the
// design.

// errNoSnapshots refuses the first snapshot of a filesystem whose clients
// may commit unfenced.
var errNoSnapshots = fmt.Errorf("the store has no native multi-key commits and the filesystem was formatted without Options.Snapshots: %w", syscall.ENOTSUP)

// recSnaps frames the snapshot table.
const recSnaps byte = 'T'

// maxSnapshots bounds the live snapshots of one filesystem (the table is
// one value, read by every client after each change).
const maxSnapshots = 1000

// snapTable is the filesystem's epoch and its live snapshots, one value
// under "snaps". Records written under the epoch belong to no snapshot yet;
// snapshot s holds the records stamped <= s.
type snapTable struct {
	epoch uint64
	snaps []snapInfo // in id order
}

type snapInfo struct {
	name    string
	id      uint64
	created int64  // Unix nanoseconds
	nonce   uint64 // tells a retried take's own entry from another's
	clones  uint64 // writable clones made from it (snapshotclone.go)
}

func encodeSnapTable(t *snapTable) []byte {
	e := enc{}
	e.uv(t.epoch)
	e.uv(uint64(len(t.snaps)))
	for _, s := range t.snaps {
		e.bytes([]byte(s.name))
		e.uv(s.id)
		e.sv(s.created)
		e.uv(s.nonce)
		e.uv(s.clones)
	}
	return seal(recSnaps, e.b)
}

func decodeSnapTable(key string, b []byte) (snapTable, error) {
	p, err := unseal(recSnaps, key, b)
	if err != nil {
		return snapTable{}, err
	}
	d := dec{b: p, key: key}
	t := snapTable{epoch: d.uv()}
	n := d.uv()
	if n > maxSnapshots {
		return snapTable{}, corruptf("%s: %d snapshots", key, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		s := snapInfo{name: string(d.bytes(64))}
		s.id = d.uv()
		s.created = d.sv()
		s.nonce = d.uv()
		s.clones = d.uv()
		if d.err == nil && s.id >= t.epoch {
			return snapTable{}, corruptf("%s: snapshot %q id %d not below epoch %d", key, s.name, s.id, t.epoch)
		}
		t.snaps = append(t.snaps, s)
	}
	if err := d.done(); err != nil {
		return snapTable{}, err
	}
	return t, nil
}

// find returns the live snapshot named name.
func (t *snapTable) find(name string) (snapInfo, bool) {
	for _, s := range t.snaps {
		if s.name == name {
			return s, true
		}
	}
	return snapInfo{}, false
}

// needs reports whether a live snapshot holds records stamped e: one with
// an id >= e (every id is below the epoch).
func (t *snapTable) needs(e uint64) bool {
	return len(t.snaps) > 0 && t.snaps[len(t.snaps)-1].id >= e
}

// snapState is a core's knowledge of the snapshot table, and for a
// snapshot view the snapshot it reads.
type snapState struct {
	native bool // the store commits natively: every commit is fenced
	fenced bool // formatted with Options.Snapshots: every commit is fenced

	mu     sync.Mutex
	loaded bool
	stale  bool // a commit conflicted on the table: read it again
	tab    snapTable
	ver    backend.Version // NoVersion: no table (no snapshot ever)

	view bool // a read-only snapshot view (OpenSnapshot)
	id   uint64

	// A writable clone: the view of the snapshot it was cloned from, which
	// serves the inodes it never wrote and the blocks born at or before
	// originID (snapshotclone.go).
	origin   *core
	originID uint64
}

func (c *core) snapKey() string { return c.prefix + "snaps" }

// presKey is where the record of inode ino stamped stamp is preserved.
func (c *core) presKey(ino, stamp uint64) string {
	return c.prefix + "v/" + strconv.FormatUint(ino, 16) + "/" + strconv.FormatUint(stamp, 16)
}

// goneKey holds the last record of a deleted inode whose chain a snapshot
// needs.
func (c *core) goneKey(ino uint64) string {
	return c.prefix + "v/" + strconv.FormatUint(ino, 16) + "/-"
}

// readSnaps reads the table from the store and caches it.
func (c *core) readSnaps(ctx context.Context) (snapTable, backend.Version, error) {
	b, ver, err := c.inodes.Get(ctx, c.snapKey())
	var t snapTable
	switch {
	case errors.Is(err, backend.ErrNotFound):
		ver = backend.NoVersion
	case err != nil:
		return snapTable{}, 0, fmt.Errorf("get %s: %w", c.snapKey(), err)
	default:
		if t, err = decodeSnapTable(c.snapKey(), b); err != nil {
			return snapTable{}, 0, err
		}
	}
	c.setSnaps(t, ver)
	return t, ver, nil
}

// setSnaps caches table t at version ver, unless the cache holds a later
// epoch (a read that raced a newer one).
func (c *core) setSnaps(t snapTable, ver backend.Version) {
	s := &c.snap
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded && !s.stale && s.tab.epoch > t.epoch {
		return
	}
	s.tab, s.ver, s.loaded, s.stale = t, ver, true, false
}

// fence is what a commit attempt knows of the table: the epoch it stamps
// and the version its check op names. A fence that is off adds nothing: a
// store without native commits, of a filesystem formatted without
// Options.Snapshots that never had a snapshot (one that has a table was
// snapshotted by an earlier version, which allowed it: fence it).
type fence struct {
	on  bool
	tab snapTable
	ver backend.Version
}

// fence returns the fence for a commit of records whose highest stamp is
// maxStamp. It reads the table once per core, after a commit conflicted on
// it, and when a record carries a newer epoch than the one known.
func (c *core) fence(ctx context.Context, maxStamp uint64) (fence, error) {
	s := &c.snap
	s.mu.Lock()
	ok := s.loaded && !s.stale && maxStamp <= s.tab.epoch
	f := fence{tab: s.tab, ver: s.ver}
	s.mu.Unlock()
	if !ok {
		var err error
		if f.tab, f.ver, err = c.readSnaps(ctx); err != nil {
			return fence{}, err
		}
	}
	f.on = s.native || s.fenced || f.ver != backend.NoVersion
	return f, nil
}

// stamp sets the snapshot fields of n, the new version of old (nil: a new
// inode), and returns the put that preserves old if a snapshot needs it.
func (f *fence) stamp(c *core, old, n *inode) []backend.Op {
	if !f.on {
		return nil
	}
	n.stamp = f.tab.epoch
	switch {
	case old == nil:
		n.prev = 0
	case old.stamp >= f.tab.epoch:
		// Same epoch (or a newer one: the check op fails the commit).
		n.prev = old.prev
	case f.tab.needs(old.stamp):
		n.prev = old.stamp + 1
		return []backend.Op{{Key: c.presKey(old.ino, old.stamp), Old: backend.AnyVersion, Value: encodeInode(old)}}
	case c.snap.origin != nil && old.stamp <= c.snap.originID:
		n.prev = 0 // the origin's chain: not under this filesystem's keys
	default:
		n.prev = old.prev
	}
	return nil
}

// check is the op that fails the commit if the table changed.
func (f *fence) check(c *core) backend.Op {
	return backend.Op{Key: c.snapKey(), Old: f.ver, Check: true}
}

// noteConflict marks the table stale if a commit failed on its check.
func (c *core) noteConflict(err error) {
	var ce *backend.ConflictError
	if errors.As(err, &ce) && ce.Key == c.snapKey() {
		c.snap.mu.Lock()
		c.snap.stale = true
		c.snap.mu.Unlock()
	}
}

// casInode publishes val, the new version of old, as inode key's value:
// with a plain CAS, or fenced, with a Commit that also checks the table
// and preserves old if a snapshot needs it. It stamps n before encoding.
func (c *core) casInode(ctx context.Context, key string, ver backend.Version, old, n *inode, extra []backend.Op) (backend.Version, error) {
	if c.snap.view {
		return 0, syscall.EROFS
	}
	f, err := c.fence(ctx, old.stamp)
	if err != nil {
		return 0, err
	}
	if !f.on && len(extra) == 0 {
		return c.inodes.CAS(ctx, key, ver, encodeInode(n))
	}
	ops := append([]backend.Op{{Key: key, Old: ver}}, extra...)
	if f.on {
		// stamp sets n's stamp and predecessor: encode n after it.
		ops = append(append(ops, f.stamp(c, old, n)...), f.check(c))
	}
	ops[0].Value = encodeInode(n)
	vers, err := backend.Commit(ctx, c.inodes, ops)
	if err != nil {
		c.noteConflict(err)
		return 0, err
	}
	return vers[0], nil
}

// deleteInode deletes the record n of inode key at version ver (destroy),
// fenced like a commit; if a snapshot needs the inode's chain, its last
// record moves to the gone key in the same commit.
//
// extra are ops that commit with it (a shared tree's count changes).
func (c *core) deleteInode(ctx context.Context, key string, ver backend.Version, n *inode, extra []backend.Op) error {
	if c.snap.view {
		return syscall.EROFS
	}
	f, err := c.fence(ctx, n.stamp)
	if err != nil {
		return err
	}
	if c.snap.origin != nil {
		// A clone: the origin's record would show through an absent key.
		tomb := n.clone()
		tomb.flags |= flagGone
		ops := append([]backend.Op{{Key: key, Old: ver}}, f.stamp(c, n, tomb)...)
		ops[0].Value = encodeInode(tomb)
		ops = append(ops, extra...)
		_, err = backend.Commit(ctx, c.inodes, append(ops, f.check(c)))
		c.noteConflict(err)
		return err
	}
	if !f.on && len(extra) == 0 {
		return c.inodes.Delete(ctx, key, ver)
	}
	ops := append([]backend.Op{{Key: key, Old: ver, Delete: true}}, extra...)
	if !f.on {
		_, err = backend.Commit(ctx, c.inodes, ops)
		return err
	}
	ops = append(ops, f.check(c))
	if n.prev != 0 || f.tab.needs(n.stamp) {
		ops = append(ops, backend.Op{Key: c.goneKey(n.ino), Old: backend.AnyVersion, Value: encodeInode(n)})
	}
	// A conflict on the table is an ErrConflict too: destroy reads the
	// inode again and retries with the new table.
	_, err = backend.Commit(ctx, c.inodes, ops)
	c.noteConflict(err)
	return err
}

// freeable returns the refs of refs that no live snapshot holds: those born
// after the newest live snapshot (the ZFS birth rule, on epochs).
func (c *core) freeable(refs []blockRef) []blockRef {
	s := &c.snap
	s.mu.Lock()
	var newest uint64
	any := len(s.tab.snaps) > 0
	if any {
		newest = s.tab.snaps[len(s.tab.snaps)-1].id
	}
	s.mu.Unlock()
	if s.origin != nil {
		// The origin's blocks (born at or before the snapshot cloned)
		// belong to it; the clone's own are born later.
		newest = max(newest, s.originID)
		any = true
	}
	if !any {
		return refs
	}
	out := refs[:0:0]
	for _, r := range refs {
		if r.birth() > newest {
			out = append(out, r)
		}
	}
	return out
}

// Birth ids in block refs: a ref written while the epoch is E > 0 keeps the
// creation time in its first 8 bytes at 16 ms resolution, with E in the low
// 24 bits and the top bit set. Earlier refs (and all refs of a filesystem
// that never had a snapshot) have birth 0, which is conservative: the
// birth of a ref is never later than the epoch of the first record that
// references it.
const (
	birthFlag = 1 << 63
	birthMask = 1<<24 - 1
)

// newRef returns a new block ref carrying the known epoch as its birth.
func (c *core) newRef() blockRef {
	r := newBlockRef()
	c.snap.mu.Lock()
	e := c.snap.tab.epoch
	c.snap.mu.Unlock()
	if c.snap.origin != nil {
		e = max(e, c.snap.originID+1) // never taken for an origin block
	}
	if e > 0 {
		v := binary.BigEndian.Uint64(r[:8])
		v = v&^birthMask | min(e, birthMask) | birthFlag
		binary.BigEndian.PutUint64(r[:8], v)
	}
	return r
}

// birth returns the epoch a block was written under (0 if unknown).
func (r blockRef) birth() uint64 {
	v := binary.BigEndian.Uint64(r[:8])
	if v&birthFlag == 0 {
		return 0
	}
	return v & birthMask
}

// bornNanos is the creation time in a ref, without a birth id.
func (r blockRef) bornNanos() int64 {
	v := binary.BigEndian.Uint64(r[:8])
	if v&birthFlag != 0 {
		v &^= birthFlag | birthMask
	}
	return int64(v)
}

// SnapshotInfo describes a snapshot.
type SnapshotInfo struct {
	// Name is the snapshot's name, unique in its filesystem.
	Name string
	// ID is the snapshot's id: the epoch it froze. Ids grow.
	ID uint64
	// Created is when the snapshot was taken (the taker's clock).
	Created time.Time
}

// Snapshot takes a read-only snapshot of the whole filesystem named name
// (1 to 64 bytes of [A-Za-z0-9._-]) in two store round trips, whatever the
// filesystem's size: one read and one CAS of the snapshot table. The
// snapshot holds every commit linearized before it, and no later one: a
// client that has not seen it fails its next commit on the table's version
// and commits after it. Writes not yet committed (open files' write-back
// buffers, this FS's included) are not in it: Sync first. A name in use is
// fs.ErrExist.
//
// On a store without native multi-key commits (memcached, a store through
// backend/txn) the filesystem must have been formatted with
// Options.Snapshots, so that every client fences its commits from Open on;
// otherwise Snapshot fails with syscall.ENOTSUP.
func (f *FS) Snapshot(ctx context.Context, name string) error {
	c := f.c
	if c.snap.view {
		return &fs.PathError{Op: "snapshot", Path: name, Err: syscall.EROFS}
	}
	if !validFSName(name) {
		return &fs.PathError{Op: "snapshot", Path: name, Err: fs.ErrInvalid}
	}
	if !c.snap.native && !c.snap.fenced {
		// Clients that opened without a table commit unfenced: a first
		// snapshot could not stop them committing into it. A table left
		// by an earlier version (which allowed this) keeps working.
		_, ver, err := c.readSnaps(ctx)
		if err != nil {
			return &fs.PathError{Op: "snapshot", Path: name, Err: err}
		}
		if ver == backend.NoVersion {
			return &fs.PathError{Op: "snapshot", Path: name, Err: errNoSnapshots}
		}
	}
	var nb [8]byte
	rand.Read(nb[:])
	nonce := binary.BigEndian.Uint64(nb[:])
	err := c.changeSnaps(ctx, func(t *snapTable) error {
		if _, ok := t.find(name); ok {
			return fs.ErrExist
		}
		if len(t.snaps) >= maxSnapshots {
			return syscall.ENOSPC
		}
		t.snaps = append(t.snaps, snapInfo{name: name, id: t.epoch, created: time.Now().UnixNano(), nonce: nonce})
		t.epoch++
		return nil
	}, func(t *snapTable) bool {
		s, ok := t.find(name)
		return ok && s.nonce == nonce
	})
	if err != nil {
		return &fs.PathError{Op: "snapshot", Path: name, Err: err}
	}
	return nil
}

// DeleteSnapshot deletes the named snapshot (fs.ErrNotExist if there is
// none; EBUSY while writable clones read through it) and frees what only
// it held: it walks the snapshot's namespace once, comparing each inode's
// record with the next holder's (snapshotdelete.go), so it costs reads in
// proportion to the snapshot's inodes, on any store. Views opened on it stop
// working. An error after the snapshot was removed from the table leaves
// its space to Fsck's GC.
func (f *FS) DeleteSnapshot(ctx context.Context, name string) error {
	c := f.c
	if c.snap.view {
		return &fs.PathError{Op: "deletesnapshot", Path: name, Err: syscall.EROFS}
	}
	var gone snapInfo
	err := c.changeSnaps(ctx, func(t *snapTable) error {
		i := slices.IndexFunc(t.snaps, func(s snapInfo) bool { return s.name == name })
		if i < 0 {
			return fs.ErrNotExist
		}
		if t.snaps[i].clones > 0 {
			return syscall.EBUSY // writable clones read through it
		}
		gone = t.snaps[i]
		t.snaps = slices.Delete(t.snaps, i, i+1)
		return nil
	}, func(t *snapTable) bool {
		_, ok := t.find(name)
		return !ok
	})
	if err != nil {
		return &fs.PathError{Op: "deletesnapshot", Path: name, Err: err}
	}
	if gone.name == "" {
		return nil // an unknown outcome resolved as applied
	}
	t, _, err := c.readSnaps(ctx)
	if err == nil {
		err = c.reclaim(ctx, gone, t)
	}
	if err != nil {
		return &fs.PathError{Op: "deletesnapshot", Path: name, Err: fmt.Errorf("deleted; freeing its space: %w", err)}
	}
	return nil
}

// changeSnaps applies fn to the latest table and publishes it with one
// CAS, retrying on conflicts. An unknown outcome is resolved by reading the
// table: applied reports whether it holds the change.
func (c *core) changeSnaps(ctx context.Context, fn func(t *snapTable) error, applied func(t *snapTable) bool) error {
	for attempt := 0; ; attempt++ {
		t, ver, err := c.readSnaps(ctx)
		if err != nil {
			return err
		}
		t.snaps = slices.Clone(t.snaps)
		if err := fn(&t); err != nil {
			return err
		}
		nv, err := c.inodes.CAS(ctx, c.snapKey(), ver, encodeSnapTable(&t))
		if err == nil {
			c.setSnaps(t, nv)
			return nil
		}
		if errors.Is(err, backend.ErrConflict) {
			if err := backoff(ctx, attempt+1); err != nil {
				return err
			}
			continue
		}
		if errors.Is(err, backend.ErrTooLarge) || errors.Is(err, backend.ErrNoSpace) || errors.Is(err, backend.ErrClosed) {
			return err
		}
		// Unknown outcome: read what happened.
		uerr := fmt.Errorf("cas %s: %w", c.snapKey(), err)
		return c.resolve(ctx, fmt.Errorf("%w (%w)", uerr, errOutcomeUnknown), func(ctx context.Context) (bool, error) {
			t, _, err := c.readSnaps(ctx)
			if err != nil {
				return false, err
			}
			return applied(&t), nil
		})
	}
}

// Snapshots returns the filesystem's snapshots, oldest first.
func (f *FS) Snapshots(ctx context.Context) ([]SnapshotInfo, error) {
	t, _, err := f.c.readSnaps(ctx)
	if err != nil {
		return nil, &fs.PathError{Op: "snapshots", Path: ".", Err: err}
	}
	out := make([]SnapshotInfo, len(t.snaps))
	for i, s := range t.snaps {
		out[i] = SnapshotInfo{Name: s.name, ID: s.id, Created: time.Unix(0, s.created)}
	}
	return out, nil
}

// resolve settles a snapshot-table CAS error: if the outcome is unknown and
// applied (read from the store) reports that the change is there, the
// operation succeeded; otherwise err stands (the change may still be
// applied: the caller reports the error, never undoes). The reads are
// bounded by ctx.
func (c *core) resolve(ctx context.Context, err error, applied func(ctx context.Context) (bool, error)) error {
	if err == nil || !outcomeUnknown(err) {
		return err
	}
	for attempt := 0; attempt < 4; attempt++ {
		ok, rerr := applied(ctx)
		if rerr == nil {
			if ok {
				return nil
			}
			return err
		}
		if berr := c.backoff(ctx, attempt+1); berr != nil {
			break
		}
	}
	return err
}
