package voldfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// The multi-inode commit loop. A namespace change (create, link, unlink,
// rmdir, rename, exchange) reads the inodes it needs through an mtx, changes
// private copies of some, and publishes them all with one backend.Commit:
// puts conditioned on the versions read, Check ops on the inodes it only read
// (a directory move's ancestor chain) and create-only puts for new inodes
// (an inode whose last link goes is deleted after the commit). On a conflict it runs again from the latest versions, with the
// rebase rules of update (cas.go).

// mtx is one attempt of a multi-inode commit.
type mtx struct {
	*tx
	c     *core
	ctx   context.Context
	fresh bool // read every inode from the store (after a conflict)
	order []uint64
	read  map[uint64]*mread
	news  []*inode // created inodes (create-only puts)
}

// mread is an inode an attempt read: the version read, and the working
// copy if the attempt changes it.
type mread struct {
	ci *cachedInode
	n  *inode // working copy; nil if only read (a Check op)
}

// get returns a working copy of inode ino that the commit writes back (a put
// conditioned on the version read). Two gets of one inode return the same
// copy. A missing inode is ENOENT.
func (t *mtx) get(ino uint64) (*inode, error) {
	r, err := t.load(ino)
	if err != nil {
		return nil, err
	}
	if r.n == nil {
		r.n = r.ci.n.clone()
	}
	return r.n, nil
}

// peek returns inode ino as read, unchanged: the commit only checks that its
// version is still current. Do not modify the result.
func (t *mtx) peek(ino uint64) (*inode, error) {
	r, err := t.load(ino)
	if err != nil {
		return nil, err
	}
	if r.n != nil {
		return r.n, nil
	}
	return r.ci.n, nil
}

// create adds a new inode to the commit, written only if its key is absent.
func (t *mtx) create(n *inode) { t.news = append(t.news, n) }

func (t *mtx) load(ino uint64) (*mread, error) {
	if r := t.read[ino]; r != nil {
		return r, nil
	}
	age := time.Duration(-1) // any age: the commit checks the version
	if t.fresh {
		age = 0
	}
	ci, err := t.c.getInode(t.ctx, ino, age)
	if err != nil {
		return nil, err
	}
	r := &mread{ci: ci}
	t.read[ino] = r
	t.order = append(t.order, ino)
	return r, nil
}

// stale reports whether any inode the attempt read has a newer version in
// the store (reading each again), so that a refusal judged on it must be
// judged again.
func (t *mtx) stale(ctx context.Context) (bool, error) {
	for _, ino := range t.order {
		ci, err := t.c.getInode(ctx, ino, 0)
		if errors.Is(err, syscall.ENOENT) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if ci.ver != t.read[ino].ci.ver {
			return true, nil
		}
	}
	return false, nil
}

// ops returns the attempt's commit. The fence (snapshot.go) stamps the
// records and adds its ops after the inodes' (preserved records, the
// snapshot table's check).
func (t *mtx) ops(f fence) []backend.Op {
	ops := make([]backend.Op, 0, len(t.order)+len(t.news))
	var snapOps []backend.Op
	for _, ino := range t.order {
		r := t.read[ino]
		op := backend.Op{Key: t.c.inodeKey(ino), Old: r.ci.ver}
		if r.n != nil {
			snapOps = append(snapOps, f.stamp(t.c, r.ci.n, r.n)...)
			op.Value = encodeInode(r.n)
		} else {
			op.Check = true
		}
		ops = append(ops, op)
	}
	for _, n := range t.news {
		snapOps = append(snapOps, f.stamp(t.c, nil, n)...)
		ops = append(ops, backend.Op{Key: t.c.inodeKey(n.ino), Old: backend.NoVersion, Value: encodeInode(n)})
	}
	ops = append(ops, t.refOps()...) // after the inodes: vers is indexed by them
	if f.on && len(ops) > 0 {
		ops = append(append(ops, snapOps...), f.check(t.c))
	}
	return ops
}

// maxStamp is the highest snapshot stamp of the inodes the attempt read.
func (t *mtx) maxStamp() uint64 {
	var m uint64
	for _, r := range t.read {
		m = max(m, r.ci.n.stamp)
	}
	return m
}

// updateMany runs fn until one commit publishes what it changed. fn must
// derive everything from the inodes it reads through t: it runs again on a
// conflict. An error from fn ends the update (a refusal judged on cached
// copies is judged again on the latest versions); errNoChange ends it
// successfully without a write. A commit whose outcome is unknown is
// settled by reading (settle); an error wrapping errOutcomeUnknown means it
// could not be: the commit may or may not have been applied, and the
// caller must not undo or guess.
func (c *core) updateMany(ctx context.Context, fn func(t *mtx) error) error {
	fresh := false
	missing := 0
	var lastVers map[uint64]backend.Version // versions behind the last block-missing failure
	for attempt := 0; ; attempt++ {
		t := &mtx{tx: &tx{}, c: c, ctx: ctx, fresh: fresh, read: map[uint64]*mread{}}
		err := fn(t)
		if err != nil {
			c.freeBlocks(ctx, t.written)
			if errors.Is(err, errBlockMissing) {
				if !retryMissing(err, missing) {
					return err
				}
				vers := t.versions()
				if sameVersions(vers, lastVers) {
					missing++
				}
				lastVers = vers
				fresh = true
				if err := c.backoff(ctx, attempt+1); err != nil {
					return err
				}
				continue
			}
			// A refusal (or "nothing to do") stands only if the inodes
			// it was judged on were all current at one instant: read
			// again, each still has the version read (versions are never
			// reused), so all held them when the last first read was
			// made. Else (cached copies, or a change between two reads)
			// judge it again on fresh ones. No commit checks this for
			// us, as none is made.
			stale, serr := t.stale(ctx)
			if serr != nil {
				return serr
			}
			if stale {
				if fresh {
					if err := c.backoff(ctx, attempt+1); err != nil {
						return err
					}
				}
				fresh = true
				continue
			}
			if errors.Is(err, errNoChange) {
				return nil
			}
			return err
		}
		if c.snap.view {
			c.freeBlocks(ctx, t.written)
			return syscall.EROFS
		}
		f, err := c.fence(ctx, t.maxStamp())
		if err != nil {
			c.freeBlocks(ctx, t.written)
			return err
		}
		ops := t.ops(f)
		if len(ops) == 0 {
			return nil
		}
		vers, err := backend.Commit(ctx, c.inodes, ops)
		if err == nil {
			for i, ino := range t.order {
				r := t.read[ino]
				if r.n != nil {
					c.putInode(r.n, vers[i])
				}
			}
			for i, n := range t.news {
				c.putInode(n, vers[len(t.order)+i])
			}
			c.freeBlocks(ctx, t.freed)
			return nil
		}
		if !errors.Is(err, backend.ErrConflict) {
			for _, ino := range t.order {
				c.dropInode(ino)
			}
			for _, n := range t.news {
				c.dropInode(n.ino)
			}
			switch {
			case errors.Is(err, backend.ErrTooLarge):
				c.freeBlocks(ctx, t.written)
				return fmt.Errorf("commit: %w", syscall.EFBIG)
			case errors.Is(err, backend.ErrNoSpace):
				c.freeBlocks(ctx, t.written)
				return fmt.Errorf("commit: %w (%w)", syscall.ENOSPC, err)
			case errors.Is(err, backend.ErrInvalidKey), errors.Is(err, errors.ErrUnsupported), errors.Is(err, backend.ErrClosed):
				c.freeBlocks(ctx, t.written)
				return fmt.Errorf("commit: %w", err)
			}
			// The outcome is unknown: settle it by reading and, if the
			// commit is not there, by sending it again as it is.
			if c.settle(ctx, ops) {
				for _, ino := range t.order {
					c.dropInode(ino)
				}
				c.freeBlocks(ctx, t.freed)
				return nil
			}
			// Still unknown: blocks the attempt wrote may be live. Leave
			// them (GC finds them if not).
			return fmt.Errorf("commit: %w (%w)", err, errOutcomeUnknown)
		}
		c.stats.conflicts.Add(1)
		c.freeBlocks(ctx, t.written)
		c.noteConflict(err)
		var ce *backend.ConflictError
		if errors.As(err, &ce) {
			for _, n := range t.news {
				if c.inodeKey(n.ino) == ce.Key {
					c.dropInode(n.ino) // a number collision: fn draws another
				}
			}
		}
		if err := c.backoff(ctx, attempt); err != nil {
			return err
		}
		fresh = true
	}
}

func (t *mtx) versions() map[uint64]backend.Version {
	m := make(map[uint64]backend.Version, len(t.read))
	for ino, r := range t.read {
		m[ino] = r.ci.ver
	}
	return m
}

func sameVersions(a, b map[uint64]backend.Version) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// outcomeUnknown reports whether err leaves a commit's outcome unknown.
func outcomeUnknown(err error) bool { return errors.Is(err, errOutcomeUnknown) }

// settle resolves a commit whose outcome is unknown (a lost reply, a
// reset connection, a timeout): it reports true only when the store shows
// the commit applied. The commit's first put carries bytes no other commit
// writes (its times are this attempt's), so finding them under the key
// proves it applied; if they are not there, the same ops are sent again.
// Both sends carry the same conditions, so at most one applies, whichever
// it is, and the effect is the same: a send that arrives late (a request
// still in flight when the error came) conflicts. A conflict on the resend
// without the bytes in place leaves the outcome unknown: the first send may
// have applied and been overwritten since. It never plans the operation
// again: a second plan could apply a non-idempotent change (an exchange)
// twice.
func (c *core) settle(ctx context.Context, ops []backend.Op) bool {
	probe := -1
	for i, op := range ops {
		if !op.Check && !op.Delete {
			probe = i
			break
		}
	}
	if probe < 0 {
		return false
	}
	there := func() (bool, error) {
		v, _, err := c.inodes.Get(ctx, ops[probe].Key)
		if errors.Is(err, backend.ErrNotFound) {
			return false, nil
		}
		return err == nil && bytes.Equal(v, ops[probe].Value), err
	}
	for attempt := 0; attempt < 4; attempt++ {
		if err := c.backoff(ctx, attempt); err != nil {
			return false
		}
		ok, err := there()
		if err != nil {
			continue
		}
		if ok {
			return true
		}
		_, err = backend.Commit(ctx, c.inodes, ops)
		switch {
		case err == nil:
			return true
		case errors.Is(err, backend.ErrConflict):
			ok, err := there()
			return err == nil && ok
		case errors.Is(err, backend.ErrTooLarge), errors.Is(err, backend.ErrNoSpace),
			errors.Is(err, backend.ErrInvalidKey), errors.Is(err, errors.ErrUnsupported), errors.Is(err, backend.ErrClosed):
			return false
		}
	}
	return false
}
