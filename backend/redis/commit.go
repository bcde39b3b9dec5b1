package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"
	"github.com/voldfs/voldfs/backend"
)

// commitScript applies a multi-key commit atomically. KEYS[1..n] are the
// ops' hashes and KEYS[n+1..2n] their slots' version counters; ARGV holds,
// per op, its kind ("p" put, "d" delete, "c" check), its condition ("" any,
// "0" absent, else the version) and its value. It checks every condition
// first and returns -i if op i's fails; otherwise it writes, drawing each
// put's version as writeScript does, announces every write on its key's
// watch channel (see watch.go), and returns the versions as strings ("0"
// for deletes and checks).
var commitScript = goredis.NewScript(`
local n = #KEYS / 2
for i = 1, n do
  local old = ARGV[3*i - 1]
  local cur = redis.call('HGET', KEYS[i], 'v')
  if old == '0' then
    if cur then return -i end
  elseif old ~= '' then
    if cur ~= old then return -i end
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i = 1, n do
  local kind = ARGV[3*i - 2]
  out[i] = '0'
  if kind == 'p' then
    local cur = redis.call('HGET', KEYS[i], 'v')
    local nv = now
    local last = tonumber(redis.call('GET', KEYS[n + i]) or '0') + 1
    if last > nv then nv = last end
    if cur and tonumber(cur) + 1 > nv then nv = tonumber(cur) + 1 end
    local s = string.format('%.0f', nv)
    redis.call('SET', KEYS[n + i], s)
    redis.call('HSET', KEYS[i], 'd', ARGV[3*i], 'v', s)
    out[i] = s
  elseif kind == 'd' then
    redis.call('DEL', KEYS[i])
  end
  if kind ~= 'c' then
    redis.pcall('SPUBLISH', 'voldfs watch ' .. string.sub(KEYS[n + i], 16) .. KEYS[i], out[i])
  end
end
return out
`)

// Commit implements backend.Committer with one Lua script, which Redis runs
// atomically. In a Cluster, a script may only touch keys of one hash slot:
// a commit whose keys span slots is refused with errors.ErrUnsupported (see
// the package comment), and so is an empty commit, the probe by which a
// caller (voldfs, backendtest) asks whether any keys can be committed
// together: a voldfs filesystem on a Cluster therefore commits through
// backend/txn, whose per-key steps each stay in one slot.
func (s *Store) Commit(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("redis: commit: %w", backend.ErrClosed)
	}
	if err := backend.CheckOps(ctx, ops, s.maxValue); err != nil {
		return nil, fmt.Errorf("redis: commit: %w", err)
	}
	_, cluster := s.client.(*goredis.ClusterClient)
	vers := make([]backend.Version, len(ops))
	if len(ops) == 0 {
		if cluster {
			return nil, fmt.Errorf("redis: commit: keys of a Cluster span hash slots: %w", errors.ErrUnsupported)
		}
		return vers, nil
	}
	keys := make([]string, 2*len(ops))
	args := make([]any, 0, 3*len(ops))
	first := keySlot(s.prefix + ops[0].Key)
	for i, op := range ops {
		k := s.prefix + op.Key
		slot := keySlot(k)
		if cluster && slot != first {
			return nil, fmt.Errorf("redis: commit: %q and %q are in different cluster hash slots: %w",
				ops[0].Key, op.Key, errors.ErrUnsupported)
		}
		keys[i], keys[len(ops)+i] = k, counterKey(slot)
		kind, old := "p", strconv.FormatUint(uint64(op.Old), 10)
		switch {
		case op.Check:
			kind = "c"
		case op.Delete:
			kind = "d"
		}
		if op.Old == backend.AnyVersion {
			old = ""
		}
		args = append(args, kind, old, op.Value)
	}
	res, err := commitScript.Run(ctx, s.client, keys, args...).Result()
	if err != nil {
		return nil, s.fail(ctx, "commit", ops[0].Key, err)
	}
	switch r := res.(type) {
	case int64:
		if r < 0 && int(-r) <= len(ops) {
			return nil, fmt.Errorf("redis: commit: %w", &backend.ConflictError{Key: ops[-r-1].Key})
		}
	case []any:
		if len(r) == len(ops) {
			for i, v := range r {
				sv, _ := v.(string)
				n, err := strconv.ParseUint(sv, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("redis: commit: unexpected reply %v", res)
				}
				vers[i] = backend.Version(n)
			}
			return vers, nil
		}
	}
	return nil, fmt.Errorf("redis: commit: unexpected reply %v", res)
}
