package voldfs

import (
	"context"

	"github.com/voldfs/voldfs/backend"
)

// Owner is the identity a new inode is created with: the caller of a
// FUSE-style server (the kernel's uid and gid), or the FS's default
// (Options.Uid and Options.Gid) when none is given.
type Owner struct {
	Uid, Gid uint32
}

type ownerKey struct{}

// withOwner returns ctx carrying the identity new inodes are created with.
func withOwner(ctx context.Context, o Owner) context.Context {
	return context.WithValue(ctx, ownerKey{}, o)
}

// owner returns the identity new inodes are created with under ctx.
func (c *core) owner(ctx context.Context) (uid, gid uint32) {
	if o, ok := ctx.Value(ownerKey{}).(Owner); ok {
		return o.Uid, o.Gid
	}
	return c.uid, c.gid
}

// syncStores returns once every store write acknowledged before the call is
// durable (backend.Syncer; a no-op on stores durable on acknowledgement).
func (c *core) syncStores(ctx context.Context) error {
	if err := backend.Sync(ctx, c.inodes); err != nil {
		return err
	}
	if c.split { // else c.inodes may be c.blocks behind the txn wrapper
		return backend.Sync(ctx, c.blocks)
	}
	return nil
}
