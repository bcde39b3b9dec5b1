// Package etcd is a voldfs store kept in an etcd v3 cluster.
//
// Every key is stored as one etcd key (the store's prefix followed by the
// voldfs key) whose value is the voldfs value. The version of a value is the
// key's ModRevision: the cluster-wide revision of the write that produced it.
// Revisions only ever grow, so a version is never handed out twice, not even
// after the key is deleted and created again (no ABA).
//
// CAS is a single etcd transaction: If(ModRevision(key) == old) Then(Put), or
// If(CreateRevision(key) == 0) Then(Put) to create. Conditional Delete is the
// same with a delete. Every operation is linearizable: etcd serves reads and
// writes through the raft leader, and the client does not use serializable
// (possibly stale) reads.
//
// # Limits
//
// etcd rejects requests larger than its --max-request-bytes (1.5 MiB by
// default). The store subtracts room for the key and the transaction framing
// from that and reports the rest as its MaxValueSize; a larger value is
// backend.ErrTooLarge without a round trip. If the cluster runs with another
// limit, tell the store with WithMaxRequestBytes. etcd keeps the whole key
// space in memory-mapped bbolt files bounded by --quota-backend-bytes (2 GiB
// by default) and keeps old revisions until compaction: run etcd with
// --auto-compaction-retention and defragment it, or the quota fills up.
//
// # Commit
//
// A multi-key Commit (backend.Committer) is one etcd transaction: a compare
// per op's condition (ModRevision, or CreateRevision == 0 for an absent
// key), then the puts and deletes, and in the else branch a read of every
// compared key, so that a conflict names its key in the same round trip.
// The puts all get the transaction's revision. One Commit is limited to
// --max-txn-ops ops (128 by default; WithMaxTxnOps) and, keys and values
// together, to --max-request-bytes: beyond either it is backend.ErrTooLarge.
//
// # Caveats
//
// An error that is not one of the backend sentinels (a timeout, a lost
// connection, a leader change) leaves the outcome of a CAS or Delete unknown,
// as the backend contract says: the request may still be applied.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/voldfs/voldfs/backend"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultMaxRequestBytes is etcd's default --max-request-bytes (1.5 MiB).
const DefaultMaxRequestBytes = 1536 * 1024

// DefaultMaxTxnOps is etcd's default --max-txn-ops: the most compares, and
// the most puts and deletes, one transaction may hold.
const DefaultMaxTxnOps = 128

// requestOverhead is the room kept in a request for everything but the value:
// a CAS transaction names the key up to three times (compare, put, and the
// read in its else branch), plus protobuf framing and the raft request header.
const requestOverhead = 4096

// listPageSize is how many keys List fetches per round trip, so that a huge
// key space is listed in bounded memory.
const listPageSize = 1000

// batchSize is how many reads GetMulti puts into one transaction. etcd's
// --max-txn-ops defaults to 128; staying well below it also bounds the size
// of one response.
const batchSize = 64

// Store is a backend.Store kept in etcd. It is safe for concurrent use.
type Store struct {
	cli        *clientv3.Client
	prefix     string
	maxValue   int
	maxRequest int
	maxTxnOps  int
	closed     atomic.Bool
}

var (
	_ backend.Store       = (*Store)(nil)
	_ backend.BatchGetter = (*Store)(nil)
	_ backend.Lister      = (*Store)(nil)
	_ backend.Putter      = (*Store)(nil)
	_ backend.SizeLimiter = (*Store)(nil)
	_ backend.Committer   = (*Store)(nil)
)

// Option configures a Store.
type Option func(*options)

type options struct {
	prefix          string
	maxRequestBytes int
	maxTxnOps       int
}

// WithPrefix puts every key of the store under prefix in etcd, so that one
// cluster can hold several stores (and other data).
func WithPrefix(prefix string) Option {
	return func(o *options) { o.prefix = prefix }
}

// WithMaxRequestBytes tells the store the cluster's --max-request-bytes, from
// which it derives its MaxValueSize. The default is DefaultMaxRequestBytes.
func WithMaxRequestBytes(n int) Option {
	return func(o *options) { o.maxRequestBytes = n }
}

// WithMaxTxnOps tells the store the cluster's --max-txn-ops, the most ops
// one Commit may have. The default is DefaultMaxTxnOps.
func WithMaxTxnOps(n int) Option {
	return func(o *options) { o.maxTxnOps = n }
}

// New connects to the etcd cluster described by cfg. The store owns the
// client and closes it in Close. Like clientv3.New, New does not wait for a
// connection unless cfg.DialOptions ask it to; the first operation does.
func New(cfg clientv3.Config, opts ...Option) (*Store, error) {
	o := options{maxRequestBytes: DefaultMaxRequestBytes, maxTxnOps: DefaultMaxTxnOps}
	for _, opt := range opts {
		opt(&o)
	}
	maxValue := o.maxRequestBytes - requestOverhead - 3*(len(o.prefix)+backend.MaxKeyLen)
	if maxValue <= 0 {
		return nil, fmt.Errorf("etcd: max request bytes %d leaves no room for a value", o.maxRequestBytes)
	}
	if cfg.MaxCallSendMsgSize < o.maxRequestBytes+requestOverhead {
		// Let every request the store allows reach the server, which
		// enforces its own limit (the client's default is 2 MiB).
		cfg.MaxCallSendMsgSize = o.maxRequestBytes + requestOverhead
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd: connect: %w", err)
	}
	return &Store{cli: cli, prefix: o.prefix, maxValue: maxValue, maxRequest: o.maxRequestBytes, maxTxnOps: o.maxTxnOps}, nil
}

// MaxValueSize returns the largest value the store sends to etcd.
func (s *Store) MaxValueSize() int { return s.maxValue }

// Close closes the etcd client. Calls after Close return backend.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return backend.ErrClosed
	}
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("etcd: close: %w", err)
	}
	return nil
}

// Get returns the value and ModRevision of key.
func (s *Store) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	if err := s.check(ctx, key); err != nil {
		return nil, backend.NoVersion, fmt.Errorf("etcd: get %q: %w", key, err)
	}
	resp, err := s.cli.Get(ctx, s.prefix+key)
	if err != nil {
		return nil, backend.NoVersion, s.fail(ctx, "get", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, backend.NoVersion, fmt.Errorf("etcd: get %q: %w", key, backend.ErrNotFound)
	}
	kv := resp.Kvs[0]
	return nonNil(kv.Value), backend.Version(kv.ModRevision), nil
}

// CAS writes value if key's ModRevision is old (or, for backend.NoVersion, if
// key does not exist) in one transaction, and returns the new ModRevision.
func (s *Store) CAS(ctx context.Context, key string, old backend.Version, value []byte) (backend.Version, error) {
	if err := s.checkWrite(ctx, key, value); err != nil {
		return backend.NoVersion, fmt.Errorf("etcd: cas %q: %w", key, err)
	}
	k := s.prefix + key
	var cmp clientv3.Cmp
	switch {
	case old == backend.NoVersion:
		cmp = clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
	case old > backend.Version(1<<63-1):
		// No revision is that large (AnyVersion among them): it cannot match.
		return backend.NoVersion, fmt.Errorf("etcd: cas %q: %w", key, backend.ErrConflict)
	default:
		cmp = clientv3.Compare(clientv3.ModRevision(k), "=", int64(old))
	}
	resp, err := s.cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(k, string(value))).Commit()
	if err != nil {
		return backend.NoVersion, s.fail(ctx, "cas", key, err)
	}
	if !resp.Succeeded {
		return backend.NoVersion, fmt.Errorf("etcd: cas %q: %w", key, backend.ErrConflict)
	}
	// A transaction's header revision is the revision of its one write.
	return backend.Version(resp.Header.Revision), nil
}

// Put writes value unconditionally and returns its ModRevision. voldfs uses
// it only for write-once keys.
func (s *Store) Put(ctx context.Context, key string, value []byte) (backend.Version, error) {
	if err := s.checkWrite(ctx, key, value); err != nil {
		return backend.NoVersion, fmt.Errorf("etcd: put %q: %w", key, err)
	}
	resp, err := s.cli.Put(ctx, s.prefix+key, string(value))
	if err != nil {
		return backend.NoVersion, s.fail(ctx, "put", key, err)
	}
	return backend.Version(resp.Header.Revision), nil
}

// Delete removes key if its ModRevision is old, or whatever it holds if old is
// backend.AnyVersion.
func (s *Store) Delete(ctx context.Context, key string, old backend.Version) error {
	if err := s.check(ctx, key); err != nil {
		return fmt.Errorf("etcd: delete %q: %w", key, err)
	}
	k := s.prefix + key
	if old == backend.AnyVersion {
		resp, err := s.cli.Delete(ctx, k)
		if err != nil {
			return s.fail(ctx, "delete", key, err)
		}
		if resp.Deleted == 0 {
			return fmt.Errorf("etcd: delete %q: %w", key, backend.ErrNotFound)
		}
		return nil
	}
	// ModRevision is 0 for an absent key and never 0 for a present one, so
	// NoVersion matches nothing and the else branch tells the two failures
	// apart in the same round trip.
	rev := int64(old)
	if old > backend.Version(1<<63-1) {
		rev = 0
	}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(k), "=", rev), clientv3.Compare(clientv3.CreateRevision(k), "!=", 0)).
		Then(clientv3.OpDelete(k)).
		Else(clientv3.OpGet(k, clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return s.fail(ctx, "delete", key, err)
	}
	if resp.Succeeded {
		return nil
	}
	if resp.Responses[0].GetResponseRange().GetCount() == 0 {
		return fmt.Errorf("etcd: delete %q: %w", key, backend.ErrNotFound)
	}
	return fmt.Errorf("etcd: delete %q: %w", key, backend.ErrConflict)
}

// GetMulti reads keys in transactions of up to batchSize reads each; every
// transaction is one consistent snapshot, but separate transactions may see
// different revisions.
func (s *Store) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	for _, key := range keys {
		if err := s.check(ctx, key); err != nil {
			return nil, fmt.Errorf("etcd: getmulti %q: %w", key, err)
		}
	}
	out := make(map[string]backend.Item, len(keys))
	ops := make([]clientv3.Op, 0, min(len(keys), batchSize))
	for start := 0; start < len(keys); start += batchSize {
		chunk := keys[start:min(start+batchSize, len(keys))]
		ops = ops[:0]
		for _, key := range chunk {
			ops = append(ops, clientv3.OpGet(s.prefix+key))
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, s.fail(ctx, "getmulti", chunk[0], err)
		}
		for i, r := range resp.Responses {
			kvs := r.GetResponseRange().GetKvs()
			if len(kvs) == 0 {
				continue
			}
			out[chunk[i]] = backend.Item{Value: nonNil(kvs[0].Value), Version: backend.Version(kvs[0].ModRevision)}
		}
	}
	return out, nil
}

// List calls fn for every key with prefix, in key order, fetching listPageSize
// keys (names only) per round trip. Keys created or deleted during the listing
// may or may not be reported; keys present throughout are reported once.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string) error) error {
	if s.closed.Load() {
		return fmt.Errorf("etcd: list %q: %w", prefix, backend.ErrClosed)
	}
	full := s.prefix + prefix
	start, end := full, clientv3.GetPrefixRangeEnd(full)
	if full == "" {
		start, end = "\x00", "\x00" // the whole key space
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("etcd: list %q: %w", prefix, err)
		}
		resp, err := s.cli.Get(ctx, start,
			clientv3.WithRange(end), clientv3.WithKeysOnly(),
			clientv3.WithLimit(listPageSize),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
		if err != nil {
			return s.fail(ctx, "list", prefix, err)
		}
		for _, kv := range resp.Kvs {
			key := string(kv.Key[len(s.prefix):])
			if !backend.ValidKey(key) {
				continue // not written by a Store: skip it
			}
			if err := fn(key); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// check validates what every keyed call validates before a round trip.
func (s *Store) check(ctx context.Context, key string) error {
	if s.closed.Load() {
		return backend.ErrClosed
	}
	return backend.CheckKey(ctx, key)
}

func (s *Store) checkWrite(ctx context.Context, key string, value []byte) error {
	if err := s.check(ctx, key); err != nil {
		return err
	}
	return backend.CheckValue(value, s.maxValue)
}

// fail wraps an error from the client, turning the ones with a meaning in the
// backend contract into its sentinels.
func (s *Store) fail(ctx context.Context, op, key string, err error) error {
	switch {
	case s.closed.Load():
		err = backend.ErrClosed
	case ctx.Err() != nil:
		err = ctx.Err()
	case errors.Is(err, rpctypes.ErrRequestTooLarge) || errors.Is(err, rpctypes.ErrGRPCRequestTooLarge),
		errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrGRPCTooManyOps):
		// The cluster's limit is below what the store was told; nothing
		// was stored.
		err = fmt.Errorf("%w: %w", backend.ErrTooLarge, err)
	case errors.Is(err, rpctypes.ErrNoSpace) || errors.Is(err, rpctypes.ErrGRPCNoSpace):
		// "database space exceeded": the cluster is at its
		// --quota-backend-bytes and refuses writes (the quota is checked
		// before a request is proposed and again when it is applied; a
		// refused request changes nothing) until an operator compacts,
		// defragments and disarms the NOSPACE alarm.
		err = fmt.Errorf("%w: %w", backend.ErrNoSpace, err)
	}
	return fmt.Errorf("etcd: %s %q: %w", op, key, err)
}

// nonNil returns b, or an empty non-nil slice for an empty value (protobuf
// decodes an empty value as nil).
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
