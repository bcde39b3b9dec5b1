// Package redis is a voldfs store kept in Redis: a standalone server, a
// Sentinel-managed primary, or a Redis Cluster, through go-redis's
// UniversalClient.
//
// # Layout
//
// Every voldfs key is one Redis hash, named by the store's prefix followed by
// the key, with two fields: "d" holds the value and "v" its version as a
// decimal string. CAS, Put and the conditional Delete are each one Lua script
// (EVALSHA, falling back to EVAL), so the comparison of versions and the write
// are one atomic step on the server.
//
// # Versions
//
// A version must never be handed out twice for a key, not even after the key
// was deleted and created again (no ABA), so it cannot live only in the key's
// hash. Each of Redis Cluster's 16384 hash slots has a version counter key,
// "voldfs version {T}", where T is a short tag chosen so that the counter is in
// that slot. A script writing a key also touches the counter of the key's slot
// (both keys of the script are in one slot, as Cluster requires) and takes as
// the new version the largest of
//
//   - the counter plus one,
//   - the key's current version plus one, and
//   - the server's clock (TIME) in microseconds,
//
// then stores it in the counter. Within one server the counter makes versions
// strictly increasing per slot, so a re-created key never gets an old version
// back. The clock is a second line of defence for the cases where a counter
// goes back: it was deleted (FLUSHALL, a careless DEL), or a failover promoted a
// replica that had not received the latest writes. Versions issued after such
// an event are still above any issued before it as long as the counters did
// not run ahead of the clock (a slot would need more than a million writes a
// second) and the clocks of the servers agree to within the failover time.
// The counters are 16384 small keys at most and never expire; spreading them
// over every slot keeps writes spread over every master (this is not a hash-tag
// funnel).
//
// The scripts read TIME before they write, which needs Redis 5.0 or later
// (script effects replication); Debian's 7.0 is what the tests run.
//
// The versions exceed neither 2^53 (Lua's numbers are doubles) nor, until the
// year 2255, the clock's microseconds.
//
// # Commit
//
// A multi-key Commit (backend.Committer) is one Lua script, which Redis runs
// atomically: it checks every op's version, then writes, each put drawing
// its version from its slot's counter as CAS does. Redis Cluster lets a
// script touch keys of one hash slot only, so in a Cluster a commit whose
// keys (with the prefix) span slots is refused with errors.ErrUnsupported,
// having changed nothing. The store does not fall back to the lock protocol
// of package backend/txn for those: its locks are safe only if every client
// reads and writes every key through txn.Wrap, and a native commit or a
// plain Get of the same keys would ignore them. A deployment that needs
// commits across slots either gives the keys that commit together a common
// hash tag, or wraps the whole store with txn.Wrap (which then never uses
// this Commit). A standalone or Sentinel-managed server commits any keys.
//
// # Durability
//
// Redis acknowledges a write when it is in memory. What survives a crash is
// decided by the server's configuration, not by this package:
//
//   - appendonly yes is required: without the append-only file, a restart
//     loses everything since the last RDB snapshot (or everything at all with
//     save ""), and voldfs loses inodes and blocks it believed committed.
//   - appendfsync always fsyncs the log before replying: an acknowledged write
//     survives a power loss. It is the only setting that makes the store as
//     durable as etcd, at the cost of an fsync per write.
//   - appendfsync everysec (Redis's default) fsyncs once a second: a crash of
//     the Redis process loses nothing the kernel has, but a power loss or
//     kernel crash loses up to about two seconds of acknowledged writes. A
//     filesystem that loses its last commits may find an inode pointing at
//     blocks that are gone.
//   - maxmemory-policy must be noeviction: any other policy lets Redis
//     silently drop keys, which voldfs sees as corruption.
//
// Replication, in Redis Cluster as in Sentinel setups, is asynchronous: a
// primary acknowledges a write before its replicas have it, and a failover can
// lose acknowledged writes (and, with them, the versions they produced). WAIT
// and WAITAOF narrow this window but this package does not issue them. Run
// Cluster with cluster-require-full-coverage yes (the default) so that a
// master without a replica fails requests instead of serving part of the
// key space.
//
// # Caveats
//
// go-redis ignores context deadlines for its network I/O unless the client's
// options set ContextTimeoutEnabled; set it, or a cancelled call waits for the
// client's ReadTimeout. The store checks the context before every request.
//
// An error that is not one of the backend sentinels leaves the outcome of a
// write unknown, as the backend contract says.
package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"
	"github.com/voldfs/voldfs/backend"
)

// DefaultMaxValueSize is the value size limit of a store made without
// WithMaxValueSize: far below Redis's proto-max-bulk-len (512 MB), and small
// enough that a script copying the value does not stall the server for long.
const DefaultMaxValueSize = 16 << 20

// scanCount is the COUNT hint of each SCAN call of List.
const scanCount = 1000

// batchSize is how many keys GetMulti sends in one pipeline.
const batchSize = 256

// Store is a backend.Store kept in Redis. It is safe for concurrent use.
type Store struct {
	client   goredis.UniversalClient
	prefix   string
	maxValue int
	closed   atomic.Bool
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
type Option func(*Store)

// WithPrefix puts every key of the store under prefix in Redis, so that one
// server or cluster can hold several stores (and other data). A prefix with a
// hash tag ("{fs1}/") puts the whole store in one Cluster slot: avoid that.
func WithPrefix(prefix string) Option {
	return func(s *Store) { s.prefix = prefix }
}

// WithMaxValueSize sets the store's value size limit (DefaultMaxValueSize by
// default). It must stay below the server's proto-max-bulk-len.
func WithMaxValueSize(n int) Option {
	return func(s *Store) { s.maxValue = n }
}

// New returns a store using client, which may be a *goredis.Client, a
// *goredis.ClusterClient or a failover client. The store owns the client and
// closes it in Close. See the package comment for the server settings voldfs
// needs and for ContextTimeoutEnabled.
func New(client goredis.UniversalClient, opts ...Option) *Store {
	s := &Store{client: client, maxValue: DefaultMaxValueSize}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// MaxValueSize returns the store's value size limit.
func (s *Store) MaxValueSize() int { return s.maxValue }

// Close closes the client. Calls after Close return backend.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return backend.ErrClosed
	}
	if err := s.client.Close(); err != nil {
		return fmt.Errorf("redis: close: %w", err)
	}
	return nil
}

// Get returns the value and version of key.
func (s *Store) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	if err := s.check(ctx, key); err != nil {
		return nil, backend.NoVersion, fmt.Errorf("redis: get %q: %w", key, err)
	}
	vals, err := s.client.HMGet(ctx, s.prefix+key, "d", "v").Result()
	if err != nil {
		return nil, backend.NoVersion, s.fail(ctx, "get", key, err)
	}
	value, ver, err := decodeItem(vals)
	if err != nil {
		return nil, backend.NoVersion, fmt.Errorf("redis: get %q: %w", key, err)
	}
	return value, ver, nil
}

// decodeItem turns an HMGET d v reply into a value and version; a missing
// version is a missing key.
func decodeItem(vals []any) ([]byte, backend.Version, error) {
	if len(vals) != 2 || vals[1] == nil {
		return nil, backend.NoVersion, backend.ErrNotFound
	}
	vs, ok1 := vals[1].(string)
	d, ok2 := vals[0].(string)
	ver, err := strconv.ParseUint(vs, 10, 64)
	if !ok1 || !ok2 || err != nil || ver == 0 {
		return nil, backend.NoVersion, fmt.Errorf("not a voldfs record (fields d=%v v=%v)", vals[0], vals[1])
	}
	return []byte(d), backend.Version(ver), nil
}

// writeScript writes ARGV[2] to hash KEYS[1] if its version is ARGV[1] ("0":
// if it is absent; "": whatever it is), drawing the new version from the slot
// counter KEYS[2] as the package comment describes, and announces the new
// version on the key's watch channel (see watch.go). It returns the new
// version, or 0 on a version mismatch.
var writeScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'v')
local old = ARGV[1]
if old == '0' then
  if cur then return 0 end
elseif old ~= '' then
  if cur ~= old then return 0 end
end
local t = redis.call('TIME')
local nv = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0') + 1
if last > nv then nv = last end
if cur and tonumber(cur) + 1 > nv then nv = tonumber(cur) + 1 end
local s = string.format('%.0f', nv)
redis.call('SET', KEYS[2], s)
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'v', s)
redis.pcall('SPUBLISH', 'voldfs watch ' .. string.sub(KEYS[2], 16) .. KEYS[1], s)
return nv
`)

// deleteScript deletes hash KEYS[1] if its version is ARGV[1] ("": whatever it
// is), announcing it on the watch channel ARGV[2]. It returns 1 if it deleted the key, 0 if the key is absent and -1 on a
// version mismatch.
var deleteScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'v')
if not cur then return 0 end
if ARGV[1] ~= '' and cur ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1])
redis.pcall('SPUBLISH', ARGV[2], '0')
return 1
`)

// CAS writes value if key's version is old (or, for backend.NoVersion, if key
// is absent) with one script, and returns the new version.
func (s *Store) CAS(ctx context.Context, key string, old backend.Version, value []byte) (backend.Version, error) {
	if err := s.checkWrite(ctx, key, value); err != nil {
		return backend.NoVersion, fmt.Errorf("redis: cas %q: %w", key, err)
	}
	return s.write(ctx, "cas", key, strconv.FormatUint(uint64(old), 10), value)
}

// Put writes value whatever key holds and returns the new version. voldfs
// uses it only for write-once keys.
func (s *Store) Put(ctx context.Context, key string, value []byte) (backend.Version, error) {
	if err := s.checkWrite(ctx, key, value); err != nil {
		return backend.NoVersion, fmt.Errorf("redis: put %q: %w", key, err)
	}
	return s.write(ctx, "put", key, "", value)
}

func (s *Store) write(ctx context.Context, op, key, old string, value []byte) (backend.Version, error) {
	k := s.prefix + key
	ver, err := writeScript.Run(ctx, s.client, []string{k, counterKey(keySlot(k))}, old, value).Int64()
	if err != nil {
		return backend.NoVersion, s.fail(ctx, op, key, err)
	}
	if ver <= 0 {
		return backend.NoVersion, fmt.Errorf("redis: %s %q: %w", op, key, backend.ErrConflict)
	}
	return backend.Version(ver), nil
}

// Delete removes key if its version is old, or whatever it holds if old is
// backend.AnyVersion.
func (s *Store) Delete(ctx context.Context, key string, old backend.Version) error {
	if err := s.check(ctx, key); err != nil {
		return fmt.Errorf("redis: delete %q: %w", key, err)
	}
	arg := strconv.FormatUint(uint64(old), 10) // "0" matches no stored version
	if old == backend.AnyVersion {
		arg = ""
	}
	k := s.prefix + key
	res, err := deleteScript.Run(ctx, s.client, []string{k}, arg, watchChannel(k)).Int64()
	if err != nil {
		return s.fail(ctx, "delete", key, err)
	}
	switch res {
	case 1:
		return nil
	case 0:
		return fmt.Errorf("redis: delete %q: %w", key, backend.ErrNotFound)
	default:
		return fmt.Errorf("redis: delete %q: %w", key, backend.ErrConflict)
	}
}

// GetMulti reads keys with pipelined HMGETs, batchSize keys per pipeline. A
// cluster client splits each pipeline by node. The reads are not one
// snapshot.
func (s *Store) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	for _, key := range keys {
		if err := s.check(ctx, key); err != nil {
			return nil, fmt.Errorf("redis: getmulti %q: %w", key, err)
		}
	}
	out := make(map[string]backend.Item, len(keys))
	cmds := make([]*goredis.SliceCmd, 0, min(len(keys), batchSize))
	for start := 0; start < len(keys); start += batchSize {
		chunk := keys[start:min(start+batchSize, len(keys))]
		cmds = cmds[:0]
		_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, key := range chunk {
				cmds = append(cmds, p.HMGet(ctx, s.prefix+key, "d", "v"))
			}
			return nil
		})
		if err != nil {
			return nil, s.fail(ctx, "getmulti", chunk[0], err)
		}
		for i, cmd := range cmds {
			value, ver, err := decodeItem(cmd.Val())
			if errors.Is(err, backend.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("redis: getmulti %q: %w", chunk[i], err)
			}
			out[chunk[i]] = backend.Item{Value: value, Version: ver}
		}
	}
	return out, nil
}

// List calls fn for every key with prefix, scanning every master of a
// cluster in turn with SCAN MATCH. As SCAN promises, keys present throughout
// the listing are reported, keys created or deleted during it may or may not
// be, and a key may be reported twice if the server resizes its table
// meanwhile.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string) error) error {
	if s.closed.Load() {
		return fmt.Errorf("redis: list %q: %w", prefix, backend.ErrClosed)
	}
	nodes, err := s.scanNodes(ctx)
	if err != nil {
		return s.fail(ctx, "list", prefix, err)
	}
	match := globEscape(s.prefix+prefix) + "*"
	for _, node := range nodes {
		var cursor uint64
		for {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("redis: list %q: %w", prefix, err)
			}
			keys, next, err := node.Scan(ctx, cursor, match, scanCount).Result()
			if err != nil {
				return s.fail(ctx, "list", prefix, err)
			}
			for _, k := range keys {
				key, ok := strings.CutPrefix(k, s.prefix)
				if !ok || !backend.ValidKey(key) {
					continue // a version counter, or not written by a Store
				}
				if err := fn(key); err != nil {
					return err
				}
			}
			if next == 0 {
				break
			}
			cursor = next
		}
	}
	return nil
}

// scanner is the part of a client List needs.
type scanner interface {
	Scan(ctx context.Context, cursor uint64, match string, count int64) *goredis.ScanCmd
}

// scanNodes returns the clients of the servers that hold the key space: every
// master of a cluster, every shard of a ring, else the client itself.
func (s *Store) scanNodes(ctx context.Context) ([]scanner, error) {
	var (
		mu    sync.Mutex
		nodes []scanner
	)
	collect := func(_ context.Context, c *goredis.Client) error {
		mu.Lock()
		nodes = append(nodes, c)
		mu.Unlock()
		return nil
	}
	switch c := s.client.(type) {
	case *goredis.ClusterClient:
		if err := c.ForEachMaster(ctx, collect); err != nil {
			return nil, err
		}
	case *goredis.Ring:
		if err := c.ForEachShard(ctx, collect); err != nil {
			return nil, err
		}
	default:
		nodes = append(nodes, s.client)
	}
	return nodes, nil
}

// globEscape escapes the characters SCAN's MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
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

// fail wraps an error from the client, turning a closed store and a done
// context into the errors the backend contract asks for.
func (s *Store) fail(ctx context.Context, op, key string, err error) error {
	switch {
	case s.closed.Load() || errors.Is(err, goredis.ErrClosed):
		err = backend.ErrClosed
	case ctx.Err() != nil:
		err = ctx.Err()
	case isOOM(err):
		err = fmt.Errorf("%w: %w", backend.ErrNoSpace, err)
	}
	return fmt.Errorf("redis: %s %q: %w", op, key, err)
}

// isOOM reports whether err is the server's refusal of a write above
// maxmemory (with the noeviction policy): "OOM command not allowed when
// used memory > 'maxmemory'", also when a script's first write meets it. A
// script is refused at its first write or runs whole, so nothing was
// stored: a definite refusal.
func isOOM(err error) bool {
	var re goredis.Error
	return errors.As(err, &re) && strings.Contains(err.Error(), "OOM command not allowed")
}
