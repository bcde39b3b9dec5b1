package etcd

import (
	"context"
	"fmt"

	"github.com/voldfs/voldfs/backend"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Commit implements backend.Committer with one etcd transaction (see the
// package comment).
func (s *Store) Commit(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("etcd: commit: %w", backend.ErrClosed)
	}
	if err := backend.CheckOps(ctx, ops, s.maxValue); err != nil {
		return nil, fmt.Errorf("etcd: commit: %w", err)
	}
	vers := make([]backend.Version, len(ops))
	if len(ops) == 0 {
		return vers, nil
	}
	if len(ops) > s.maxTxnOps {
		return nil, fmt.Errorf("etcd: commit of %d ops: %w (the cluster's --max-txn-ops is %d)", len(ops), backend.ErrTooLarge, s.maxTxnOps)
	}
	size := requestOverhead + 16*(len(ops)-1)
	var (
		cmps  []clientv3.Cmp
		then  []clientv3.Op
		reads []clientv3.Op // the else branch: one per compared op
		which []int         // the op of each read
	)
	for i, op := range ops {
		k := s.prefix + op.Key
		size += 3*len(k) + len(op.Value)
		switch {
		case op.Old == backend.AnyVersion:
		case op.Old == backend.NoVersion:
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		case op.Old > backend.Version(1<<63-1):
			// No revision is that large: it cannot match.
			return nil, fmt.Errorf("etcd: commit: %w", &backend.ConflictError{Key: op.Key})
		default:
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", int64(op.Old)))
		}
		if op.Old != backend.AnyVersion {
			reads = append(reads, clientv3.OpGet(k, clientv3.WithKeysOnly()))
			which = append(which, i)
		}
		switch {
		case op.Check:
		case op.Delete:
			then = append(then, clientv3.OpDelete(k))
		default:
			then = append(then, clientv3.OpPut(k, string(op.Value)))
		}
	}
	if size > s.maxRequest {
		return nil, fmt.Errorf("etcd: commit of %d ops: %w: about %d bytes, the request limit is %d", len(ops), backend.ErrTooLarge, size, s.maxRequest)
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(then...).Else(reads...).Commit()
	if err != nil {
		return nil, s.fail(ctx, "commit", ops[0].Key, err)
	}
	if !resp.Succeeded {
		// The else branch read every compared key in the same revision:
		// name the first whose condition failed.
		for j, r := range resp.Responses {
			op := ops[which[j]]
			var rev int64
			if kvs := r.GetResponseRange().GetKvs(); len(kvs) > 0 {
				rev = kvs[0].ModRevision
			}
			if backend.Version(rev) != op.Old {
				return nil, fmt.Errorf("etcd: commit: %w", &backend.ConflictError{Key: op.Key})
			}
		}
		return nil, fmt.Errorf("etcd: commit: %w", &backend.ConflictError{Key: ops[which[0]].Key})
	}
	// The transaction's header revision is the revision of its writes.
	for i, op := range ops {
		if !op.Check && !op.Delete {
			vers[i] = backend.Version(resp.Header.Revision)
		}
	}
	return vers, nil
}
