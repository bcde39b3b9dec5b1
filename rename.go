package voldfs

import (
	"context"
	"errors"
	"syscall"
)

// Rename flags, as in Linux renameat2(2).
const (
	// RenameNoReplace fails with EEXIST instead of replacing the target.
	RenameNoReplace uint32 = 1
	// RenameExchange swaps source and target, which must both exist.
	// Like every rename it is one atomic commit.
	RenameExchange uint32 = 2
)

// errRenameRace: the entries changed between planning a rename and its
// commit; the rename is planned again.
var errRenameRace = errors.New("voldfs: rename raced")

// A rename is one multi-inode commit (commit.go): both directory entries,
// a moved directory's "..", a replaced target's link count or dead mark and
// the parents' subdirectory counts change together or not at all. A
// directory move walks the destination's ancestors up to the root and puts
// a Check op on each one's version in the same commit, so a concurrent move
// of any ancestor conflicts and the move is judged again: no cycle can form,
// and no rename needs a filesystem-wide lock.

// rename moves oname in odir to nname in ndir with rename(2) semantics.
func (c *core) rename(ctx context.Context, odir uint64, oname string, ndir uint64, nname string, flags uint32) error {
	if err := checkName(oname); err != nil {
		return err
	}
	if err := checkName(nname); err != nil {
		return err
	}
	if flags&^(RenameNoReplace|RenameExchange) != 0 || flags == RenameNoReplace|RenameExchange {
		return syscall.EINVAL
	}
	var src, target dirEntry // what the last attempt moved and replaced
	var gone uint64          // an inode whose last link the rename removed
	var deadDir uint64       // a replaced directory, to delete
	exchange := flags&RenameExchange != 0
	err := c.updateMany(ctx, func(t *mtx) error {
		src, target, gone, deadDir = dirEntry{}, dirEntry{}, 0, 0
		if exchange {
			var err error
			src, target, err = c.exchangeIn(ctx, t, odir, oname, ndir, nname)
			return err
		}
		return c.renameIn(ctx, t, odir, oname, ndir, nname, flags, &src, &target, &gone, &deadDir)
	})
	if err != nil {
		return err
	}
	if deadDir != 0 {
		c.cleanup(c.destroy(ctx, deadDir))
	}
	if gone != 0 {
		c.cleanup(c.unlinked(ctx, gone))
	}
	return nil
}

// entryIn looks name up in directory d.
func (c *core) entryIn(ctx context.Context, d *inode, name string) (dirEntry, bool, error) {
	if !d.isDir() {
		return dirEntry{}, false, syscall.ENOTDIR
	}
	return dirLookup(ctx, dirNodes{c}, d.inline, name)
}

// notInside fails with EINVAL if directory dir is directory ino or inside
// it, walking up through ".." pointers; every ancestor read joins the commit
// as a Check (or as a put if the commit changes it), so a concurrent move of
// any of them makes the commit conflict.
func (c *core) notInside(t *mtx, ino, dir uint64) error {
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
		n, err := t.peek(p)
		if err != nil {
			return err
		}
		p = n.parent
	}
}

// renameIn plans a rename within attempt t.
func (c *core) renameIn(ctx context.Context, t *mtx, odir uint64, oname string, ndir uint64, nname string, flags uint32, src, target *dirEntry, gone, deadDir *uint64) error {
	od, err := t.get(odir)
	if err != nil {
		return err
	}
	se, found, err := c.entryIn(ctx, od, oname)
	if err != nil {
		return err
	}
	if !found {
		return syscall.ENOENT
	}
	nd, err := t.get(ndir)
	if err != nil {
		return err
	}
	if err := checkParent(nd); err != nil {
		return err
	}
	if odir == ndir && oname == nname {
		return errNoChange
	}
	isDir := se.typ == typeDir
	if isDir && odir != ndir {
		// Checked before the target, as Linux does: EINVAL wins over
		// ENOTEMPTY.
		if err := c.notInside(t, se.ino, ndir); err != nil {
			return err
		}
	}
	te, found, err := c.entryIn(ctx, nd, nname)
	if err != nil {
		return err
	}
	var tn *inode
	if found {
		switch {
		case flags&RenameNoReplace != 0:
			return syscall.EEXIST
		case te.ino == se.ino:
			return errNoChange // both names link one inode: rename(2) does nothing
		}
		if tn, err = t.get(te.ino); errors.Is(err, syscall.ENOENT) {
			tn = nil // a dangling entry: replaced without more ado
		} else if err != nil {
			return err
		}
	}
	if tn != nil {
		switch {
		case isDir && !tn.isDir():
			return syscall.ENOTDIR
		case !isDir && tn.isDir():
			return syscall.EISDIR
		case tn.isDir():
			if tn.dead() {
				tn = nil
				break
			}
			if !dirIsEmpty(tn.inline) {
				return syscall.ENOTEMPTY
			}
			tn.flags |= flagDead
			tn.nlink = 0
			tn.ctime = now()
			*deadDir = te.ino
		case tn.nlink > 0:
			tn.nlink--
			tn.ctime = now()
			if tn.nlink == 0 {
				*gone = te.ino
			}
		}
	}
	ns := dirNodes{c}
	oroot, _, _, err := dirRemove(ctx, t.tx, ns, od.inline, oname)
	if err != nil {
		return err
	}
	if odir == ndir {
		nd.inline = oroot // one directory: insert into the removal's result
	}
	moved := se
	moved.name = nname
	nroot, old, replaced, err := dirInsert(ctx, t.tx, ns, nd.inline, moved, true)
	if err != nil {
		return err
	}
	var gtyp uint8
	if replaced {
		gtyp = old.typ
	}
	if odir == ndir {
		nd.setEntries(nroot, gtyp, 0)
	} else {
		od.setEntries(oroot, se.typ, 0)
		nd.setEntries(nroot, gtyp, se.typ)
	}
	if err := moveInode(t, se, odir, ndir); err != nil {
		return err
	}
	*src, *target = se, te
	if !found {
		*target = dirEntry{}
	}
	return nil
}

// exchangeIn plans a RenameExchange within attempt t and returns the two
// entries swapped.
func (c *core) exchangeIn(ctx context.Context, t *mtx, odir uint64, oname string, ndir uint64, nname string) (dirEntry, dirEntry, error) {
	od, err := t.get(odir)
	if err != nil {
		return dirEntry{}, dirEntry{}, err
	}
	se, found, err := c.entryIn(ctx, od, oname)
	if err != nil {
		return dirEntry{}, dirEntry{}, err
	}
	if !found {
		return dirEntry{}, dirEntry{}, syscall.ENOENT
	}
	nd, err := t.get(ndir)
	if err != nil {
		return dirEntry{}, dirEntry{}, err
	}
	te, found, err := c.entryIn(ctx, nd, nname)
	if err != nil {
		return dirEntry{}, dirEntry{}, err
	}
	if !found {
		return dirEntry{}, dirEntry{}, syscall.ENOENT
	}
	if se.ino == te.ino {
		return dirEntry{}, dirEntry{}, errNoChange
	}
	if err := checkParent(od); err != nil {
		return dirEntry{}, dirEntry{}, err
	}
	if err := checkParent(nd); err != nil {
		return dirEntry{}, dirEntry{}, err
	}
	if odir != ndir {
		if se.typ == typeDir {
			if err := c.notInside(t, se.ino, ndir); err != nil {
				return dirEntry{}, dirEntry{}, err
			}
		}
		if te.typ == typeDir {
			if err := c.notInside(t, te.ino, odir); err != nil {
				return dirEntry{}, dirEntry{}, err
			}
		}
	}
	ns := dirNodes{c}
	put := func(d *inode, name string, e dirEntry) ([]byte, error) {
		e.name = name
		root, _, _, err := dirInsert(ctx, t.tx, ns, d.inline, e, true)
		return root, err
	}
	oroot, err := put(od, oname, te)
	if err != nil {
		return dirEntry{}, dirEntry{}, err
	}
	if odir == ndir {
		od.inline = oroot
		root, err := put(od, nname, se)
		if err != nil {
			return dirEntry{}, dirEntry{}, err
		}
		od.setEntries(root, 0, 0) // a swap: the same entries
	} else {
		nroot, err := put(nd, nname, se)
		if err != nil {
			return dirEntry{}, dirEntry{}, err
		}
		od.setEntries(oroot, se.typ, te.typ)
		nd.setEntries(nroot, te.typ, se.typ)
	}
	if err := moveInode(t, se, odir, ndir); err != nil {
		return dirEntry{}, dirEntry{}, err
	}
	if err := moveInode(t, te, ndir, odir); err != nil {
		return dirEntry{}, dirEntry{}, err
	}
	return se, te, nil
}

// moveInode updates, within attempt t, the inode of entry e that a rename
// moves from directory from to directory to: its ctime, as Linux
// filesystems do for every renamed inode, and a directory's "..". The
// inode joins the commit, so the new ctime lands with the move. A dangling
// entry (a non-directory whose inode is gone) moves without more ado.
func moveInode(t *mtx, e dirEntry, from, to uint64) error {
	n, err := t.get(e.ino)
	if errors.Is(err, syscall.ENOENT) && e.typ != typeDir {
		return nil
	}
	if err != nil {
		return err
	}
	if e.typ == typeDir && from != to {
		n.parent = to
	}
	n.ctime = now()
	return nil
}
