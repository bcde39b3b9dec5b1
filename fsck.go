package voldfs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// FsckOptions configure FS.Fsck.
type FsckOptions struct {
	// Repair fixes what it can: dangling entries are removed, wrong link
	// and subdirectory counts are set, orphaned inodes older than the grace
	// period are moved to /lost+found (linked) or deleted (unlinked).
	Repair bool
	// GC deletes blocks that no inode references and that are older than
	// the grace period. It needs a store that can list keys.
	GC bool
	// Grace protects objects younger than this from repair and GC, since a
	// live client may be about to link them (a create in flight, a commit
	// being published). Default 1 hour. With GC beside live clients it
	// must exceed MaxUnpublished plus the clients' clock skew; a negative
	// Grace judges everything at once (for a filesystem no client uses).
	Grace time.Duration
	// Progress, if set, is called with the run's progress at most a few
	// times a second, and once at the end (Phase "done"); with GC, after
	// the garbage blocks are deleted. It runs on Fsck's goroutine.
	Progress func(FsckProgress)
}

// MaxUnpublished bounds the age of a block when a commit publishes it. A
// block is uploaded before the commit that references it (a full block of
// a file being written goes at once, and the file may stay open for
// hours), and GC deletes unreferenced blocks older than its grace period:
// so a commit uploads again, under a new name, any block of its own older
// than MaxUnpublished (by its clock) instead of publishing it.
const MaxUnpublished = 10 * time.Minute

// Problem is one inconsistency Fsck found.
type Problem struct {
	Kind   string // "dangling-entry", "nlink", "subdirs", "parent", "orphan", "corrupt", "type", "intent"
	Ino    uint64
	Detail string
}

func (p Problem) String() string { return fmt.Sprintf("%s: inode %d: %s", p.Kind, p.Ino, p.Detail) }

// FsckReport is what Fsck found and did.
type FsckReport struct {
	Dirs, Files, Symlinks int   // reachable inodes by type
	Blocks                int   // blocks referenced by inodes
	Bytes                 int64 // logical bytes of reachable files
	Problems              []Problem
	Repaired              int
	Listed                bool // the store could list keys: orphans and garbage were checked
	GarbageBlocks         int  // unreferenced blocks older than the grace period (deleted with GC)
	GarbageInodes         int  // orphaned inodes found
	// Unsettled counts checks and repairs left alone because what they
	// were judged on changed while Fsck ran (live clients): run it again.
	Unsettled int

	// Snapshots is what each snapshot holds (snapshotfsck.go).
	Snapshots SnapshotsReport
}

// OK reports whether Fsck found no problems.
func (r *FsckReport) OK() bool { return len(r.Problems) == 0 }

func (r *FsckReport) problem(kind string, ino uint64, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{kind, ino, fmt.Sprintf(format, args...)})
}

// Fsck checks the filesystem: it walks every directory from the root,
// verifies every record's checksum and every reference, and compares link
// counts with the entries found. On a store that can list keys it also finds
// orphaned inodes and unreferenced blocks. It first finishes an interrupted
// cross-directory rename of an older client.
//
// It may run, and repair, while other clients use the filesystem. Every
// repair is one conditional commit on exactly the state it was judged on:
// the inodes it changes and the directories whose entries it counted, at
// the versions read, so a repair that a concurrent change made wrong does
// not apply (Unsettled counts those). Counts that depend on the whole tree
// (link counts, orphans) are judged only when the walk saw one state: every
// directory walked still has the version it was listed at when the walk
// ends. Objects changed within the grace period are left alone. A damaged
// record (an inode, an intent of an older client, a lock of the txn
// fallback) is reported, never fatal.
func (f *FS) Fsck(ctx context.Context, o FsckOptions) (*FsckReport, error) {
	c := f.c
	if o.Grace == 0 {
		o.Grace = time.Hour
	}
	cutoff := time.Now().Add(-o.Grace)
	old := func(n *inode) bool { return !time.Unix(0, max(n.ctime, n.mtime)).After(cutoff) }
	c.waitFrees()
	r := &FsckReport{}
	if err := c.recoverRename(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fsck: %w", err)
		}
		r.problem("intent", 0, "an interrupted rename of an older client: %v", err)
	}
	if err := c.damagedIntent(ctx); err != nil {
		r.problem("intent", 0, "damaged rename intent: %v", err)
	}
	pm := newFsckMeter(o.Progress)
	type dirInfo struct {
		ino    uint64
		parent uint64
	}
	seen := map[uint64]int{}         // inode -> entries naming it
	subdirs := map[uint64]uint32{}   // dir -> subdirectory entries
	live := map[blockRef]bool{}      // blocks referenced
	inodes := map[uint64]*judged{}   // reachable inodes, as judged
	listed := map[uint64]*judged{}   // directories, as listed
	namedIn := map[uint64][]uint64{} // inode -> directories naming it
	complete := true                 // every directory and entry was read
	queue := []dirInfo{{RootIno, RootIno}}
	seen[RootIno] = 1
	addRefs := func(n *inode) error {
		if n.isDir() {
			if !n.xattrRef.isZero() {
				live[n.xattrRef] = true // files' are in treeRefs
			}
			return dirRefs(ctx, dirNodes{c}, n.inline, func(ref blockRef) error {
				live[ref] = true
				return nil
			})
		}
		return c.treeRefs(ctx, n, func(ref blockRef, kind byte) error {
			live[ref] = true
			if kind == recData {
				// Read it to verify its checksum.
				if _, err := c.getBlockNoCache(ctx, recData, ref); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// withLatest runs fn on j's inode and, while fn meets a block that a
	// concurrent commit freed (retryMissing), again on the latest version,
	// which it leaves in j.
	withLatest := func(j *judged, fn func(n *inode) error) error {
		err := fn(j.n)
		for retries := 0; retryMissing(err, retries); retries++ {
			ci, gerr := c.getInode(ctx, j.n.ino, 0)
			if gerr != nil {
				return gerr
			}
			j.n, j.ver = ci.n, ci.ver
			err = fn(j.n)
		}
		return err
	}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("fsck: %w", err)
		}
		d := queue[0]
		queue = queue[1:]
		ci, err := c.getInode(ctx, d.ino, 0)
		if err != nil {
			r.problem("corrupt", d.ino, "directory: %v", err)
			complete = false
			continue
		}
		dj := &judged{ci.n, ci.ver}
		r.Dirs++
		if d.ino != RootIno && dj.n.parent != d.parent {
			r.problem("parent", d.ino, "'..' is %d, entry is in %d", dj.n.parent, d.parent)
			if o.Repair && old(dj.n) {
				p := listed[d.parent]
				n := dj.n.clone()
				n.parent = d.parent
				if v := c.repair(ctx, r, []judged{{n, dj.ver}}, []judged{*p}, nil, nil); v != nil {
					dj.n, dj.ver = n, v[0]
				}
			}
		}
		if err := withLatest(dj, addRefs); err != nil {
			r.problem("corrupt", d.ino, "directory tree: %v", err)
			complete = false
			continue
		}
		var ents []dirEntry
		err = withLatest(dj, func(n *inode) error {
			var err error
			ents, _, err = dirList(ctx, dirNodes{c}, n.inline, 0, 0)
			return err
		})
		if err != nil {
			r.problem("corrupt", d.ino, "listing: %v", err)
			complete = false
			continue
		}
		listed[d.ino] = dj
		inodes[d.ino] = dj
		var dangling []dirEntry
		var absent []uint64
		var deadDirs []judged
		for _, e := range ents {
			pm.tick("walk", r.Dirs+r.Files+r.Symlinks, len(live), 0)
			if e.typ == typeDir {
				subdirs[d.ino]++ // as the entry says: the count is of entries
			}
			ci, err := c.getInode(ctx, e.ino, 0)
			gone := errors.Is(err, syscall.ENOENT)
			if err != nil && !gone {
				r.problem("corrupt", e.ino, "entry %q in %d: %v", e.name, d.ino, err)
				complete = false
				continue
			}
			if !gone && ci.n.isDir() && ci.n.dead() {
				deadDirs = append(deadDirs, judged{ci.n, ci.ver})
				gone = true
			} else if gone {
				absent = append(absent, e.ino)
			}
			if gone {
				r.problem("dangling-entry", d.ino, "entry %q names missing inode %d", e.name, e.ino)
				dangling = append(dangling, e)
				continue
			}
			n := ci.n
			if n.dirType() != e.typ {
				r.problem("type", e.ino, "entry %q says type %d, inode is %d", e.name, e.typ, n.dirType())
			}
			seen[e.ino]++
			namedIn[e.ino] = append(namedIn[e.ino], d.ino)
			if n.isDir() {
				if seen[e.ino] > 1 {
					r.problem("nlink", e.ino, "directory has %d entries", seen[e.ino])
					continue
				}
				queue = append(queue, dirInfo{e.ino, d.ino})
				continue
			}
			if seen[e.ino] > 1 {
				continue
			}
			j := &judged{n, ci.ver}
			inodes[e.ino] = j
			if n.isSymlink() {
				r.Symlinks++
			} else {
				r.Files++
				r.Bytes += int64(n.size)
			}
			if err := withLatest(j, addRefs); err != nil {
				r.problem("corrupt", e.ino, "file tree: %v", err)
			}
		}
		if len(dangling) > 0 && o.Repair && old(dj.n) {
			// One commit drops them all: on the directory as listed, and
			// only if each named inode is still missing or removed.
			if n, v := c.dropEntries(ctx, r, dj, dangling, absent, deadDirs); n != nil {
				dj.n, dj.ver = n, v // a change of ours: the walk still saw one state
			}
		}
	}
	// The walk saw one state if it read everything and no directory
	// changed since it was listed: then the entries counted are the names
	// every inode had when it ended, and an inode not reached had none.
	settled := complete
	for _, ino := range slices.Sorted(maps.Keys(listed)) { // sorted: the same reads each run
		dj := listed[ino]
		ci, err := c.getInode(ctx, ino, 0)
		if err != nil || ci.ver != dj.ver {
			settled = false
			break
		}
	}
	for _, ino := range slices.Sorted(maps.Keys(inodes)) {
		j := inodes[ino]
		n := j.n
		if n.isDir() {
			if ld := listed[ino]; ld != nil && n.subdir != subdirs[ino] {
				r.problem("subdirs", ino, "records %d subdirectories, has %d", n.subdir, subdirs[ino])
				if o.Repair && old(ld.n) {
					m := ld.n.clone()
					m.subdir = subdirs[ino]
					if v := c.repair(ctx, r, []judged{{m, ld.ver}}, nil, nil, nil); v != nil {
						ld.n, ld.ver = m, v[0]
					}
				}
			}
			continue
		}
		want := uint32(seen[ino])
		if n.nlink == want {
			continue
		}
		if !settled {
			r.Unsettled++ // perhaps a link or unlink between two listings
			continue
		}
		r.problem("nlink", ino, "nlink %d, %d entries", n.nlink, want)
		if o.Repair && old(n) {
			// On the inode as read: a link, unlink or rename of it since
			// changes its version (each writes it), so the count still
			// holds if the commit applies.
			m := n.clone()
			m.nlink = want
			c.repair(ctx, r, []judged{{m, j.ver}}, nil, nil, nil)
		}
	}
	r.Blocks = len(live)
	reach := make(map[uint64]*inode, len(inodes))
	for ino, j := range inodes {
		reach[ino] = j.n
	}
	if err := c.fsckShared(ctx, r, o, reach); err != nil { // reflinkfsck.go
		return nil, fmt.Errorf("fsck: reference counts: %w", err)
	}
	if err := c.fsckSnapshots(ctx, o, r, live); err != nil { // snapshotfsck.go
		return nil, fmt.Errorf("fsck: snapshots: %w", err)
	}

	// Orphans and garbage need the store's key listing.
	var allInodes []uint64
	err := backend.List(ctx, c.inodes, c.prefix+"i/", func(key string) error {
		ino, err := strconv.ParseUint(strings.TrimPrefix(key, c.prefix+"i/"), 16, 64)
		if err == nil {
			allInodes = append(allInodes, ino)
		}
		return nil
	})
	if errors.Is(err, errors.ErrUnsupported) {
		pm.done(r, len(inodes), 0)
		return r, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fsck: listing inodes: %w", err)
	}
	r.Listed = true
	slices.Sort(allInodes) // the same reads each run
	var orphans []judged
	checked := len(inodes)
	for _, ino := range allInodes {
		if _, ok := inodes[ino]; ok || seen[ino] > 0 {
			continue
		}
		checked++
		pm.tick("orphans", checked, len(live), 0)
		ci, err := c.getInode(ctx, ino, 0)
		if errors.Is(err, syscall.ENOENT) {
			continue
		}
		if err != nil {
			r.problem("corrupt", ino, "%v", err)
			continue
		}
		n := ci.n
		// Its blocks stay live whatever we decide: it may be a file moved
		// into a directory this walk had already passed.
		if err := addRefs(n); err != nil {
			r.problem("corrupt", ino, "orphan tree: %v", err)
		}
		if !old(n) {
			continue
		}
		orphans = append(orphans, judged{n, ci.ver})
	}
	if len(orphans) > 0 && settled {
		// Read after the orphans: an orphan read before the directories
		// were seen unchanged had no name then, and gets none without a
		// change of its version.
		for _, ino := range slices.Sorted(maps.Keys(listed)) {
			dj := listed[ino]
			ci, err := c.getInode(ctx, ino, 0)
			if err != nil || ci.ver != dj.ver {
				settled = false
				break
			}
		}
	}
	for _, j := range orphans {
		if !settled {
			r.Unsettled++
			continue
		}
		r.GarbageInodes++
		r.problem("orphan", j.n.ino, "not reachable from the root (nlink %d)", j.n.nlink)
		if !o.Repair {
			continue
		}
		if j.n.dead() {
			c.deleteOrphan(ctx, r, j)
			continue
		}
		if err := c.toLostFound(ctx, j); err == nil {
			r.Repaired++
		} else if errors.Is(err, errJudgedChanged) {
			r.Unsettled++
		}
	}
	r.Blocks = len(live)
	var garbage []blockRef
	err = backend.List(ctx, c.blocks, c.prefix+"b/", func(key string) error {
		var ref blockRef
		hexs := strings.TrimPrefix(key, c.prefix+"b/")
		if len(hexs) != 32 {
			return nil
		}
		for i := range ref {
			v, err := strconv.ParseUint(hexs[2*i:2*i+2], 16, 8)
			if err != nil {
				return nil
			}
			ref[i] = byte(v)
		}
		if !live[ref] && ref.born().Before(cutoff) {
			garbage = append(garbage, ref)
		}
		pm.tick("garbage", checked, len(live), len(garbage))
		return nil
	})
	if err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return nil, fmt.Errorf("fsck: listing blocks: %w", err)
	}
	r.GarbageBlocks = len(garbage)
	deleted := 0
	if o.GC {
		c.freeBlocks(ctx, garbage)
		if o.Progress != nil {
			c.waitFrees()
			deleted = len(garbage)
		}
	}
	pm.done(r, checked, deleted)
	return r, nil
}

// judged is an inode as Fsck read it, and the version it read.
type judged struct {
	n   *inode
	ver backend.Version
}

// errJudgedChanged: an inode changed since Fsck judged it; the repair is
// left alone.
var errJudgedChanged = errors.New("voldfs: fsck: changed since judged")

// repair publishes one repair as a conditional commit: puts of the changed
// copies at the versions they were judged at, checks of the inodes the
// judgement read, and checks that the absent inodes are still absent. A
// conflict means the state changed since: the repair is left alone. It
// returns the new versions of the puts if it applied and they are known.
func (c *core) repair(ctx context.Context, r *FsckReport, puts, checks []judged, absent []uint64, t *tx) []backend.Version {
	snapOps, err := c.repairFence(ctx, puts)
	if err != nil {
		if t != nil {
			c.freeBlocks(ctx, t.written)
		}
		r.Unsettled++
		return nil
	}
	ops := make([]backend.Op, 0, len(puts)+len(checks)+len(absent)+len(snapOps))
	for _, j := range puts {
		ops = append(ops, backend.Op{Key: c.inodeKey(j.n.ino), Old: j.ver, Value: encodeInode(j.n)})
	}
	for _, j := range checks {
		ops = append(ops, backend.Op{Key: c.inodeKey(j.n.ino), Old: j.ver, Check: true})
	}
	for _, ino := range absent {
		ops = append(ops, backend.Op{Key: c.inodeKey(ino), Old: backend.NoVersion, Check: true})
	}
	ops = append(ops, snapOps...) // after the puts: vers is indexed by them
	vers, err := backend.Commit(ctx, c.inodes, ops)
	if err != nil && !errors.Is(err, backend.ErrConflict) && c.settle(ctx, ops) {
		err, vers = nil, nil
	}
	if err != nil {
		if t != nil {
			c.freeBlocks(ctx, t.written)
		}
		for _, j := range puts {
			c.dropInode(j.n.ino)
		}
		if errors.Is(err, backend.ErrConflict) {
			r.Unsettled++
		}
		return nil
	}
	for i, j := range puts {
		if vers != nil {
			c.putInode(j.n, vers[i])
		} else {
			c.dropInode(j.n.ino)
		}
	}
	if t != nil {
		c.freeBlocks(ctx, t.freed)
	}
	r.Repaired++
	return vers
}

// dropEntries removes dangling entries from directory d as listed, in one
// commit conditioned on d's version, on the named inodes that were missing
// being still absent and on removed directories being unchanged.
// It returns the directory and its version if it applied.
func (c *core) dropEntries(ctx context.Context, r *FsckReport, d *judged, ents []dirEntry, absent []uint64, deadDirs []judged) (*inode, backend.Version) {
	t := &tx{}
	n := d.n.clone()
	for _, e := range ents {
		root, old, found, err := dirRemove(ctx, t, dirNodes{c}, n.inline, e.name)
		if err != nil || !found {
			c.freeBlocks(ctx, t.written)
			return nil, 0
		}
		n.setEntries(root, old.typ, 0)
	}
	if v := c.repair(ctx, r, []judged{{n, d.ver}}, deadDirs, absent, t); v != nil {
		return n, v[0]
	}
	return nil, 0
}

// deleteOrphan deletes an unreachable inode whose last link went, and its
// blocks, if it still has the version it was judged at.
func (c *core) deleteOrphan(ctx context.Context, r *FsckReport, j judged) {
	if j.n.flags&flagShared != 0 {
		// Its blocks may be shared: the delete and its count changes
		// are one commit, and only blocks no other file holds are freed.
		if err := c.destroyShared(ctx, &cachedInode{n: j.n, ver: j.ver}); err == nil {
			r.Repaired++
		}
		return
	}
	var refs []blockRef
	var werr error
	if j.n.isDir() {
		werr = dirRefs(ctx, dirNodes{c}, j.n.inline, func(ref blockRef) error { refs = append(refs, ref); return nil })
	} else {
		werr = c.treeRefs(ctx, j.n, func(ref blockRef, _ byte) error { refs = append(refs, ref); return nil })
	}
	// Fenced like any destroy: a snapshot that holds the inode keeps its
	// record (snapshot.go).
	err := c.deleteInode(ctx, c.inodeKey(j.n.ino), j.ver, j.n, nil)
	c.dropInode(j.n.ino)
	switch {
	case err == nil:
		r.Repaired++
		if werr == nil {
			c.freeBlocks(ctx, refs)
		}
	case errors.Is(err, backend.ErrConflict):
		r.Unsettled++
	}
}

// toLostFound links an orphaned inode into /lost+found as "#ino", in one
// commit on the inode as judged (errJudgedChanged if it changed since).
func (c *core) toLostFound(ctx context.Context, j judged) error {
	root, err := c.getInode(ctx, RootIno, 0)
	if err != nil {
		return err
	}
	var dir uint64
	_, lf, err := c.lookup(ctx, root.n, "lost+found")
	switch {
	case err == nil && lf.isDir():
		dir = lf.ino
	case errors.Is(err, syscall.ENOENT):
		d, err := c.create(ctx, RootIno, "lost+found", sIFDIR|0o700, nil)
		if err != nil && !errors.Is(err, syscall.EEXIST) {
			return err
		}
		if d == nil {
			return syscall.EEXIST
		}
		dir = d.ino
	case err != nil:
		return err
	default:
		return syscall.ENOTDIR
	}
	ino := j.n.ino
	return c.updateMany(ctx, func(t *mtx) error {
		x, err := t.get(ino)
		if err != nil {
			return err
		}
		if t.read[ino].ci.ver != j.ver {
			return errJudgedChanged
		}
		d, err := t.get(dir)
		if err != nil {
			return err
		}
		if err := c.insertEntry(ctx, t.tx, d, dirEntry{name: "#" + strconv.FormatUint(ino, 10), ino: ino, typ: x.dirType()}); err != nil {
			return err
		}
		if x.isDir() {
			x.parent = dir
		} else {
			x.nlink = 1 // the one name it has now
		}
		x.ctime = now()
		return nil
	})
}

// repairFence fences a repair like any commit (snapshot.go): it reads the
// records the puts replace (they must still be at the judged versions),
// stamps the puts, and returns the ops that preserve what a snapshot needs
// and check the snapshot table. Without it a repair could change a record
// a snapshot still reads.
func (c *core) repairFence(ctx context.Context, puts []judged) ([]backend.Op, error) {
	olds := make([]*inode, len(puts))
	var maxStamp uint64
	for i, j := range puts {
		key := c.inodeKey(j.n.ino)
		b, v, err := c.inodes.Get(ctx, key)
		switch {
		case errors.Is(err, backend.ErrNotFound) && j.ver == backend.NoVersion:
			continue // a clone's inode still read from its origin
		case err != nil:
			return nil, err
		case v != j.ver:
			return nil, errJudgedChanged
		}
		if olds[i], err = decodeInode(key, b); err != nil {
			return nil, err
		}
		maxStamp = max(maxStamp, olds[i].stamp)
	}
	f, err := c.fence(ctx, maxStamp)
	if err != nil || !f.on {
		return nil, err
	}
	var ops []backend.Op
	for i, j := range puts {
		ops = append(ops, f.stamp(c, olds[i], j.n)...)
	}
	return append(ops, f.check(c)), nil
}
