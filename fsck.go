package voldfs

import (
	"context"
	"errors"
	"fmt"
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
	// being published). Default 1 hour.
	Grace time.Duration
	// Progress, if set, is called with the run's progress at most a few
	// times a second, and once at the end (Phase "done"); with GC, after
	// the garbage blocks are deleted. It runs on Fsck's goroutine.
	Progress func(FsckProgress)
}

// Problem is one inconsistency Fsck found.
type Problem struct {
	Kind   string // "dangling-entry", "nlink", "subdirs", "parent", "orphan", "corrupt", "type"
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
// cross-directory rename. It may run while other clients use the
// filesystem; objects younger than the grace period are left alone.
func (f *FS) Fsck(ctx context.Context, o FsckOptions) (*FsckReport, error) {
	c := f.c
	if o.Grace == 0 {
		o.Grace = time.Hour
	}
	cutoff := time.Now().Add(-o.Grace)
	c.waitFrees()
	if err := c.recoverRename(ctx); err != nil {
		return nil, fmt.Errorf("fsck: %w", err)
	}
	r := &FsckReport{}
	pm := newFsckMeter(o.Progress)
	type dirInfo struct {
		ino    uint64
		parent uint64
	}
	seen := map[uint64]int{}       // inode -> entries naming it
	subdirs := map[uint64]uint32{} // dir -> subdirectory entries
	live := map[blockRef]bool{}    // blocks referenced
	inodes := map[uint64]*inode{}  // reachable inodes
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
	// withLatest runs fn on n and, while fn meets a block that a concurrent
	// commit freed (retryMissing), again on n's latest version, which it
	// returns.
	withLatest := func(n *inode, fn func(n *inode) error) (*inode, error) {
		err := fn(n)
		for retries := 0; retryMissing(err, retries); retries++ {
			ci, gerr := c.getInode(ctx, n.ino, 0)
			if gerr != nil {
				return n, gerr
			}
			n = ci.n
			err = fn(n)
		}
		return n, err
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		ci, err := c.getInode(ctx, d.ino, 0)
		if err != nil {
			return nil, fmt.Errorf("fsck: directory %d: %w", d.ino, err)
		}
		dn := ci.n
		inodes[d.ino] = dn
		r.Dirs++
		if dn.parent != d.parent {
			r.problem("parent", d.ino, "'..' is %d, entry is in %d", dn.parent, d.parent)
			if o.Repair {
				if _, err := c.update(ctx, d.ino, func(t *tx, n *inode) error { n.parent = d.parent; return nil }); err == nil {
					r.Repaired++
				}
			}
		}
		if dn, err = withLatest(dn, addRefs); err != nil {
			r.problem("corrupt", d.ino, "directory tree: %v", err)
			continue
		}
		inodes[d.ino] = dn
		var ents []dirEntry
		dn, err = withLatest(dn, func(n *inode) error {
			var err error
			ents, _, err = dirList(ctx, dirNodes{c}, n.inline, 0, 0)
			return err
		})
		inodes[d.ino] = dn
		if err != nil {
			r.problem("corrupt", d.ino, "listing: %v", err)
			continue
		}
		for _, e := range ents {
			pm.tick("walk", r.Dirs+r.Files+r.Symlinks, len(live), 0)
			ci, err := c.getInode(ctx, e.ino, 0)
			dangling := errors.Is(err, syscall.ENOENT)
			if err != nil && !dangling {
				r.problem("corrupt", e.ino, "entry %q in %d: %v", e.name, d.ino, err)
				continue
			}
			if !dangling && ci.n.isDir() && ci.n.dead() {
				dangling = true
			}
			if dangling {
				r.problem("dangling-entry", d.ino, "entry %q names missing inode %d", e.name, e.ino)
				if o.Repair {
					if _, err := c.removeEntry(ctx, d.ino, e.name, e.ino, nil); err == nil {
						r.Repaired++
					}
				}
				continue
			}
			n := ci.n
			if n.dirType() != e.typ {
				r.problem("type", e.ino, "entry %q says type %d, inode is %d", e.name, e.typ, n.dirType())
			}
			seen[e.ino]++
			if n.isDir() {
				subdirs[d.ino]++
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
			inodes[e.ino] = n
			if n.isSymlink() {
				r.Symlinks++
			} else {
				r.Files++
				r.Bytes += int64(n.size)
			}
			if _, err := withLatest(n, addRefs); err != nil {
				r.problem("corrupt", e.ino, "file tree: %v", err)
			}
		}
	}
	for ino, n := range inodes {
		if n.isDir() {
			if n.subdir != subdirs[ino] {
				r.problem("subdirs", ino, "records %d subdirectories, has %d", n.subdir, subdirs[ino])
				want := subdirs[ino]
				if o.Repair {
					if _, err := c.update(ctx, ino, func(t *tx, n *inode) error { n.subdir = want; return nil }); err == nil {
						r.Repaired++
					}
				}
			}
			continue
		}
		if want := uint32(seen[ino]); n.nlink != want {
			r.problem("nlink", ino, "nlink %d, %d entries", n.nlink, want)
			if o.Repair {
				// Another client may link or unlink meanwhile: only fix a
				// count that is still the one we judged.
				old := n.nlink
				if _, err := c.update(ctx, ino, func(t *tx, n *inode) error {
					if n.nlink != old {
						return errNoChange
					}
					n.nlink = want
					return nil
				}); err == nil {
					r.Repaired++
				}
			}
		}
	}
	r.Blocks = len(live)
	if err := c.fsckShared(ctx, r, o, inodes); err != nil { // reflinkfsck.go
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
	checked := len(inodes)
	for _, ino := range allInodes {
		if _, ok := inodes[ino]; ok {
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
		if time.Unix(0, n.ctime).After(cutoff) {
			continue
		}
		r.GarbageInodes++
		r.problem("orphan", ino, "not reachable from the root (nlink %d)", n.nlink)
		if !o.Repair {
			continue
		}
		if n.dead() {
			if err := c.destroy(ctx, ino); err == nil {
				r.Repaired++
			}
			continue
		}
		if err := c.toLostFound(ctx, n); err == nil {
			r.Repaired++
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

// toLostFound links an orphaned inode into /lost+found as "#ino".
func (c *core) toLostFound(ctx context.Context, n *inode) error {
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
	if n.isDir() {
		if _, err := c.update(ctx, n.ino, func(t *tx, x *inode) error { x.parent = dir; return nil }); err != nil {
			return err
		}
	}
	return c.addEntry(ctx, dir, "#"+strconv.FormatUint(n.ino, 10), n)
}
