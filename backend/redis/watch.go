package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"
	"github.com/voldfs/voldfs/backend"
)

// Watching. Every script that writes a key (CAS, Put, Delete, Commit) ends
// with SPUBLISH of the new version ("0" for a delete) on the key's watch
// channel, "voldfs watch {T}" followed by the key's Redis name, where {T}
// is the hash tag of the key's version counter: the channel is in the
// key's hash slot, which a script in a Cluster may touch (and which
// declares no other slot). Sharded pub/sub (SPUBLISH, Redis 7.0) rather
// than PUBLISH because a Cluster broadcasts every PUBLISH to every node
// over its bus, whatever the channel, while a sharded message stays on the
// shard that owns the slot: a write costs one hash lookup when no one
// listens, and a message to the slot's master and replicas when someone
// does. Keyspace notifications would need notify-keyspace-events, a server
// setting a user's server may not have. The scripts call SPUBLISH with
// redis.pcall, so on a server without it (before 7.0) writes work as
// before and WaitChange fails its subscription (callers then poll).

var _ backend.Watcher = (*Store)(nil)

// watchChannel returns the watch channel of the Redis key k.
func watchChannel(k string) string {
	return "voldfs watch {" + slotTags()[keySlot(k)] + "}" + k
}

// WaitChange implements backend.Watcher: it subscribes to key's watch
// channel (SSUBSCRIBE, on its own connection), waits for the subscription
// to be confirmed, then reads the key's version: a version other than ver
// returns at once. Otherwise it waits for a message on the channel or for
// ctx. A write between the caller's read and the call is thus seen either
// by that read of the version (it happened before the subscription) or as
// a message (after it): none is missed. A slot that moves to another
// master ends the subscription, which counts as a change.
func (s *Store) WaitChange(ctx context.Context, key string, ver backend.Version) error {
	if err := s.check(ctx, key); err != nil {
		return fmt.Errorf("redis: watch %q: %w", key, err)
	}
	k := s.prefix + key
	ps := s.client.SSubscribe(ctx, watchChannel(k))
	defer ps.Close()
	subscribed := make(chan struct{})
	changed := make(chan error, 1)
	go func() {
		// Ends when ps is closed.
		confirmed := false
		for {
			msg, err := ps.Receive(context.Background())
			if err != nil {
				changed <- err
				return
			}
			switch m := msg.(type) {
			case *goredis.Subscription:
				if m.Kind == "ssubscribe" && !confirmed {
					confirmed = true
					close(subscribed)
				} else if m.Kind == "sunsubscribe" {
					changed <- nil // the slot moved
					return
				}
			case *goredis.Message:
				changed <- nil
				return
			}
		}
	}()
	select {
	case <-subscribed:
	case err := <-changed:
		if err == nil {
			return nil
		}
		return s.fail(ctx, "watch", key, err)
	case <-ctx.Done():
		return fmt.Errorf("redis: watch %q: %w", key, ctx.Err())
	}
	cur, err := s.client.HGet(ctx, k, "v").Result()
	switch {
	case errors.Is(err, goredis.Nil):
		if ver != backend.NoVersion {
			return nil // deleted
		}
	case err != nil:
		return s.fail(ctx, "watch", key, err)
	case cur != strconv.FormatUint(uint64(ver), 10):
		return nil // changed
	}
	select {
	case err := <-changed:
		if err == nil {
			return nil
		}
		return s.fail(ctx, "watch", key, err)
	case <-ctx.Done():
		return fmt.Errorf("redis: watch %q: %w", key, ctx.Err())
	}
}
