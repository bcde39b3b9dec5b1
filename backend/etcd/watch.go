package etcd

import (
	"context"
	"fmt"

	"github.com/voldfs/voldfs/backend"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var _ backend.Watcher = (*Store)(nil)

// WaitChange implements backend.Watcher with an etcd watch on key. It
// first reads the key (keys only): a ModRevision other than ver (or a key
// present when ver is NoVersion) is a change and returns at once. Otherwise
// it watches from the revision after that read's, so every write or delete
// of the key after the read, even one made before the watch is set up, is
// reported (etcd replays it). Watching from ver+1 instead would save the
// read but make the watch "unsynced" whenever other keys were written since
// ver, and etcd delivers the events of unsynced watches only every 100 ms.
// A watch whose start revision was compacted away reports the compaction,
// which counts as a (possibly spurious) change.
func (s *Store) WaitChange(ctx context.Context, key string, ver backend.Version) error {
	if err := s.check(ctx, key); err != nil {
		return fmt.Errorf("etcd: watch %q: %w", key, err)
	}
	k := s.prefix + key
	resp, err := s.cli.Get(ctx, k, clientv3.WithKeysOnly())
	if err != nil {
		return s.fail(ctx, "watch", key, err)
	}
	var cur int64
	if len(resp.Kvs) > 0 {
		cur = resp.Kvs[0].ModRevision
	}
	if backend.Version(cur) != ver {
		return nil
	}
	rev := resp.Header.Revision + 1
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel() // closes the watch
	for resp := range s.cli.Watch(wctx, k, clientv3.WithRev(rev)) {
		if err := resp.Err(); err != nil {
			if resp.CompactRevision != 0 {
				return nil // events from rev on are gone: re-read
			}
			return s.fail(ctx, "watch", key, err)
		}
		if len(resp.Events) > 0 {
			return nil
		}
	}
	// The channel closes when ctx is done or the client closes.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("etcd: watch %q: %w", key, err)
	}
	return s.fail(ctx, "watch", key, fmt.Errorf("watch closed"))
}
