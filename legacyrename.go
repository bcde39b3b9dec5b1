package voldfs

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// Older clients ran cross-directory renames as a sequence of CASes under a
// filesystem-wide lease key holding the rename's intent. This version never
// takes the lease (a rename is one commit, rename.go), but a filesystem may
// still hold an intent a crashed older client left: Open (recoverRename)
// rolls it forward once its lease has expired, with the older client's
// idempotent steps below. Mixing older and newer clients on one filesystem
// is not supported: the older ones would not see the newer ones' renames
// as serialised.

const renameLease = 10 * time.Second

type intent struct {
	at           int64
	odir, ndir   uint64
	oname, nname string
	ino, target  uint64
	typ          uint8
	exchange     bool  // RenameExchange: target moves to odir/oname
	ttyp         uint8 // the target's type (exchange only)
}

func (c *core) leaseKey() string { return c.prefix + "rename" }

func encodeIntent(in *intent) []byte {
	e := enc{}
	if in == nil {
		e.u8(0)
		return seal(recIntent, e.b)
	}
	if in.exchange {
		e.u8(2)
	} else {
		e.u8(1)
	}
	e.sv(in.at)
	e.uv(in.odir)
	e.bytes([]byte(in.oname))
	e.uv(in.ndir)
	e.bytes([]byte(in.nname))
	e.uv(in.ino)
	e.uv(in.target)
	e.u8(in.typ)
	if in.exchange {
		e.u8(in.ttyp)
	}
	return seal(recIntent, e.b)
}

func decodeIntent(key string, b []byte) (*intent, error) {
	p, err := unseal(recIntent, key, b)
	if err != nil {
		return nil, err
	}
	d := dec{b: p, key: key}
	kind := d.u8()
	if kind == 0 {
		return nil, d.done()
	}
	if kind > 2 {
		return nil, corruptf("%s: intent kind %d", key, kind)
	}
	in := &intent{exchange: kind == 2}
	in.at = d.sv()
	in.odir = d.uv()
	in.oname = string(d.bytes(maxName))
	in.ndir = d.uv()
	in.nname = string(d.bytes(maxName))
	in.ino = d.uv()
	in.target = d.uv()
	in.typ = d.u8()
	if in.exchange {
		in.ttyp = d.u8()
	}
	return in, d.done()
}

// recoverRename finishes an abandoned cross-directory rename, if any.
func (c *core) recoverRename(ctx context.Context) error {
	key := c.leaseKey()
	b, ver, err := c.inodes.Get(ctx, key)
	if errors.Is(err, backend.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	in, err := decodeIntent(key, b)
	if err != nil {
		return nil // damaged: Fsck reports it (damagedIntent); it stops nothing
	}
	if in == nil || time.Since(time.Unix(0, in.at)) < renameLease {
		return nil
	}
	if err := c.rollForward(ctx, in); err != nil && !errors.Is(err, syscall.ENOENT) {
		return err
	}
	_, err = c.inodes.CAS(ctx, key, ver, encodeIntent(nil))
	if errors.Is(err, backend.ErrConflict) {
		err = nil // someone else finished it
	}
	return err
}

// damagedIntent returns the decoding error of a damaged intent record, if
// the filesystem holds one.
func (c *core) damagedIntent(ctx context.Context) error {
	key := c.leaseKey()
	b, _, err := c.inodes.Get(ctx, key)
	if err != nil {
		return nil // absent, or unreadable now: nothing to report
	}
	_, err = decodeIntent(key, b)
	return err
}

// definiteErr reports whether a step (of a rename, create or link) failed
// without changing the store: a refusal (an errno) or a race detected before
// the CAS. Any other error (a store error) leaves the step's outcome unknown.
func definiteErr(err error) bool {
	if errors.Is(err, errOutcomeUnknown) {
		return false // a write's reply was lost, whatever errno it carries
	}
	var errno syscall.Errno
	return errors.As(err, &errno) || errors.Is(err, errRenameRace)
}

// applyRename performs (or, with recovering set, finishes) the steps of a
// cross-directory rename. Each step is idempotent; a step whose effect is
// already present is skipped. Where a crash leaves doubt, link counts err
// high (a leak fsck repairs), never low (a loss). It reports whether the
// target entry was replaced by this call.
func (c *core) applyRename(ctx context.Context, in *intent, recovering bool) (bool, error) {
	isDir := in.typ == typeDir
	if !recovering {
		// Under the lease no other cross-directory rename can move the
		// source, but a same-directory rename or an unlink may have taken
		// it since the rename was planned: plan again then.
		if err := c.stillNames(ctx, in.odir, in.oname, in.ino); err != nil {
			return false, err
		}
	}
	if isDir {
		if err := c.checkNotInside(ctx, in.ino, in.ndir); err != nil {
			return false, err
		}
	} else {
		// Hold an extra link while the inode has two entries, so that a
		// concurrent unlink of the old name cannot free it.
		if _, err := c.update(ctx, in.ino, func(t *tx, n *inode) error {
			if n.nlink == 0 {
				return syscall.ENOENT
			}
			n.nlink++
			return nil
		}); err != nil {
			return false, err
		}
	}
	replaced := false
	_, err := c.update(ctx, in.ndir, func(t *tx, d *inode) error {
		replaced = false
		if err := checkParent(d); err != nil {
			return err
		}
		ns := dirNodes{c}
		e, found, err := dirLookup(ctx, ns, d.inline, in.nname)
		if err != nil {
			return err
		}
		if found && e.ino == in.ino {
			if recovering {
				return errNoChange // applied before the crash
			}
			return errRenameRace // linked there meanwhile
		}
		if found != (in.target != 0) || found && e.ino != in.target {
			return errRenameRace
		}
		root, old, found, err := dirInsert(ctx, t, ns, d.inline, dirEntry{in.nname, in.ino, in.typ}, true)
		if err != nil {
			return err
		}
		var gone uint8
		if found {
			gone = old.typ // the replaced target
		}
		d.setEntries(root, gone, in.typ)
		replaced = found
		return nil
	})
	if err != nil {
		// Undo the extra link only if the entry surely was not added:
		// link counts err high, never low.
		if !isDir && definiteErr(err) {
			_ = c.dropLink(ctx, in.ino)
		}
		return false, err
	}
	removed := false
	_, err = c.removeEntry(ctx, in.odir, in.oname, in.ino, nil)
	switch {
	case err == nil:
		removed = true
	case errors.Is(err, syscall.ENOENT):
		// Removed before a crash, or by a concurrent unlink (which then
		// dropped its own link) or same-directory rename (the inode keeps
		// that entry and ours).
		err = nil
	default:
		return replaced, err
	}
	if isDir {
		_, err = c.update(ctx, in.ino, func(t *tx, n *inode) error {
			if n.parent == in.ndir {
				return errNoChange
			}
			n.parent = in.ndir
			n.ctime = now()
			return nil
		})
	} else if removed {
		err = c.dropLink(ctx, in.ino)
	}
	if recovering && replaced && in.target != 0 {
		if isDir {
			_ = c.destroy(ctx, in.target)
		} else {
			_ = c.dropLink(ctx, in.target)
		}
	}
	return replaced, err
}

// checkNotInside fails with EINVAL if dir is directory ino or inside it,
// walking up through ".." pointers read fresh from the store.
func (c *core) checkNotInside(ctx context.Context, ino, dir uint64) error {
	for p, depth := dir, 0; ; depth++ {
		if p == ino {
			return syscall.EINVAL
		}
		if p == RootIno {
			return nil
		}
		if depth > 1<<16 {
			return syscall.ELOOP
		}
		ci, err := c.getInode(ctx, p, 0)
		if err != nil {
			return err
		}
		p = ci.n.parent
	}
}

// rollForward finishes an abandoned intent.
func (c *core) rollForward(ctx context.Context, in *intent) error {
	if in.exchange {
		return c.applyExchange(ctx, in, true)
	}
	_, err := c.applyRename(ctx, in, true)
	return err
}

// applyExchange performs (or finishes) a cross-directory exchange: ndir's
// entry takes the source, then odir's entry takes the target, then moved
// directories get their new "..". Each step checks whether it was already
// applied. While the source has two entries it holds an extra link (as in
// applyRename); where a crash leaves doubt, counts err high.
func (c *core) applyExchange(ctx context.Context, in *intent, recovering bool) error {
	src := dirEntry{ino: in.ino, typ: in.typ}
	dst := dirEntry{ino: in.target, typ: in.ttyp}
	if !recovering {
		if err := c.stillNames(ctx, in.odir, in.oname, in.ino); err != nil {
			return err
		}
		if err := c.stillNames(ctx, in.ndir, in.nname, in.target); err != nil {
			return err
		}
	}
	if in.typ == typeDir {
		if err := c.checkNotInside(ctx, in.ino, in.ndir); err != nil {
			return err
		}
	}
	if in.ttyp == typeDir {
		if err := c.checkNotInside(ctx, in.target, in.odir); err != nil {
			return err
		}
	}
	if in.typ != typeDir {
		if _, err := c.update(ctx, in.ino, func(t *tx, n *inode) error {
			if n.nlink == 0 {
				return syscall.ENOENT
			}
			n.nlink++
			return nil
		}); err != nil {
			return err
		}
	}
	// step makes name in dir name put instead of was, keeping the parent's
	// subdirectory count; it reports whether this call changed the entry.
	step := func(dir uint64, name string, put, was dirEntry) (bool, error) {
		changed := false
		_, err := c.update(ctx, dir, func(t *tx, d *inode) error {
			changed = false
			if err := checkParent(d); err != nil {
				return err
			}
			e, found, err := dirLookup(ctx, dirNodes{c}, d.inline, name)
			if err != nil {
				return err
			}
			if found && e.ino == put.ino {
				return errNoChange // applied before a crash
			}
			if !found || e.ino != was.ino {
				return errRenameRace
			}
			put.name = name
			root, _, _, err := dirInsert(ctx, t, dirNodes{c}, d.inline, put, true)
			if err != nil {
				return err
			}
			d.setEntries(root, was.typ, put.typ)
			changed = true
			return nil
		})
		return changed, err
	}
	if _, err := step(in.ndir, in.nname, src, dst); err != nil {
		if in.typ != typeDir && definiteErr(err) {
			_ = c.dropLink(ctx, in.ino)
		}
		return err
	}
	// If the source left oname meanwhile (a same-directory rename or an
	// unlink), the target gets no entry (an orphan fsck links into
	// lost+found) and the source keeps the extra link for its other name.
	tookOld, err := step(in.odir, in.oname, dst, src)
	if err != nil && !errors.Is(err, errRenameRace) {
		return err
	}
	for _, mv := range []struct {
		e   dirEntry
		dir uint64
	}{{src, in.ndir}, {dst, in.odir}} {
		if mv.e.typ != typeDir {
			continue
		}
		if _, err := c.update(ctx, mv.e.ino, func(t *tx, n *inode) error {
			if n.parent == mv.dir {
				return errNoChange
			}
			n.parent = mv.dir
			n.ctime = now()
			return nil
		}); err != nil {
			return err
		}
	}
	if in.typ != typeDir && tookOld && !recovering {
		return c.dropLink(ctx, in.ino)
	}
	return nil
}

// freshLookup looks name up in directory dir read from the store.
func (c *core) freshLookup(ctx context.Context, dir uint64, name string) (dirEntry, *inode, error) {
	d, err := c.getInode(ctx, dir, 0)
	if err != nil {
		return dirEntry{}, nil, err
	}
	return c.lookup(ctx, d.n, name)
}

// stillNames checks that name in dir still names ino: errRenameRace if
// another operation took it since the rename was planned.
func (c *core) stillNames(ctx context.Context, dir uint64, name string, ino uint64) error {
	e, _, err := c.freshLookup(ctx, dir, name)
	if errors.Is(err, syscall.ENOENT) || err == nil && e.ino != ino {
		return errRenameRace
	}
	return err
}
