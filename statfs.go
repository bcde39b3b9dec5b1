package voldfs

import (
	"context"
	"errors"
	"io/fs"
	"strings"

	"github.com/voldfs/voldfs/backend"
)

// Statfs is what statfs(2) reports about an FS, for df and a FUSE server's
// statfs.
//
// The used figures are estimated by listing the store's keys, not kept in a
// counter: a counter every create and write had to update would be one key
// all clients CAS, a hot spot that serialises the whole filesystem. Listing
// costs a pass over the keys (no values are read, nothing is written), so a
// caller asking often (a FUSE server answering df) should cache the result
// for some seconds.
type Statfs struct {
	Bsize   uint32 // the data block size
	Blocks  uint64 // total, in Bsize units: used plus Bfree
	Bfree   uint64 // free, in Bsize units (see SpaceKnown)
	Bavail  uint64 // as Bfree: there is no reserve
	Files   uint64 // inodes: used plus Ffree
	Ffree   uint64 // free inodes (nominal)
	NameMax uint32 // longest name: 255

	// UsedBlocks is the number of stored blocks (data, index and
	// directory nodes, extended attribute sets); UsedBytes is UsedBlocks
	// times Bsize, an upper bound, since a file's last block and tree
	// nodes are usually shorter. UsedInodes is the number of inodes.
	UsedBlocks, UsedBytes, UsedInodes uint64

	// Known is false when the store cannot list its keys (it is no
	// backend.Lister): the used figures are then 0.
	Known bool

	// SpaceKnown is true when the block store reported its capacity
	// (backend.SpaceReporter: memcached's memory limit, the disk of a bolt
	// file): Blocks and Bfree are then its total and free bytes in Bsize
	// units, so df's "used" is what the store holds in all (for bolt, the
	// whole disk's use). Otherwise they are UsedBlocks plus a nominal
	// 1 PiB free. The inode figures are always UsedInodes plus a nominal
	// 2^32 free: inodes take no reserved space.
	SpaceKnown bool
}

const (
	statfsFreeBytes  = 1 << 50
	statfsFreeInodes = 1 << 32
)

// Statfs returns the filesystem's usage estimate (see Statfs). It is not
// confined to a Sub view's subtree.
func (f *FS) Statfs() (*Statfs, error) {
	if f.c.closed.Load() {
		return nil, &fs.PathError{Op: "statfs", Path: ".", Err: fs.ErrClosed}
	}
	ctx, cancel := f.op()
	defer cancel()
	st, err := f.c.statfs(ctx)
	return st, pathErr("statfs", ".", err)
}

// Statfs is FS.Statfs under ctx.
func (in *Inodes) Statfs(ctx context.Context) (*Statfs, error) {
	ctx, cancel, err := in.begin(ctx, "statfs", inoPath(RootIno), nil)
	if err != nil {
		return nil, err
	}
	defer cancel()
	st, err := in.fs.c.statfs(ctx)
	return st, pathErr("statfs", inoPath(RootIno), err)
}

func (c *core) statfs(ctx context.Context) (*Statfs, error) {
	bs := uint64(c.blockSize)
	st := &Statfs{Bsize: uint32(bs), NameMax: maxName, Known: true}
	count := func(s backend.Store, prefix string, n *uint64) error {
		return backend.List(ctx, s, prefix, func(key string) error {
			if !strings.ContainsRune(key[len(prefix):], '/') {
				*n++
			}
			return nil
		})
	}
	err := count(c.blocks, c.prefix+"b/", &st.UsedBlocks)
	if err == nil {
		err = count(c.inodes, c.prefix+"i/", &st.UsedInodes)
	}
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		st.Known, st.UsedBlocks, st.UsedInodes = false, 0, 0
	case err != nil:
		return nil, err
	}
	st.UsedBytes = st.UsedBlocks * bs
	st.Bfree = statfsFreeBytes / bs
	st.Blocks = st.UsedBlocks + st.Bfree
	if sr, ok := uncounted(c.blocks).(backend.SpaceReporter); ok {
		sp, err := sr.Space(ctx)
		switch {
		case err == nil && sp.Total > 0:
			st.SpaceKnown = true
			st.Blocks, st.Bfree = sp.Total/bs, min(sp.Free, sp.Total)/bs
		case err != nil && !errors.Is(err, errors.ErrUnsupported):
			return nil, err
		}
	}
	st.Bavail = st.Bfree
	st.Ffree = statfsFreeInodes
	st.Files = st.UsedInodes + st.Ffree
	return st, nil
}
