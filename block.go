package voldfs

import (
	"context"
	"encoding/hex"
)

// blockRef names a write-once block: 8 bytes of creation time (Unix
// nanoseconds, big-endian, so GC can judge a block's age from its key alone)
// followed by 8 random bytes. The zero blockRef means "no block" (a hole).
type blockRef [16]byte

func (r blockRef) isZero() bool { return r == blockRef{} }

func (r blockRef) String() string { return hex.EncodeToString(r[:]) }

// nodeStore reads and writes immutable tree nodes (directory trie nodes and
// file index nodes). getNode returns the payload of a block written by putNode;
// the returned slice is shared and must not be modified. putNode writes a new
// block and returns its ref. maxNode is the largest payload putNode accepts.
type nodeStore interface {
	getNode(ctx context.Context, ref blockRef) ([]byte, error)
	putNode(ctx context.Context, payload []byte) (blockRef, error)
	maxNode() int
}
