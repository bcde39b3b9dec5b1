package etcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/internal/testserver"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// newStoreFunc returns a constructor of stores on cluster c, each under its
// own prefix, so stores of one test never see each other's keys. Whoever
// calls it closes the store (the conformance suite does).
func newStoreFunc(c *cluster) func(t *testing.T) backend.Store {
	var n atomic.Int64
	return func(t *testing.T) backend.Store {
		s, err := New(c.config(), WithPrefix(fmt.Sprintf("voldfs-test/%d/", n.Add(1))))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// TestEtcdSpecifics checks what the conformance suite cannot know about etcd:
// the limit really fits a request the cluster accepts, the paging of List and
// GetMulti, and that versions are revisions.
func TestEtcdSpecifics(t *testing.T) {
	c := startCluster(t, 3)
	newStore := newStoreFunc(c)
	ctx := context.Background()

	t.Run("LimitFitsCluster", func(t *testing.T) {
		s := newStore(t).(*Store)
		defer s.Close()
		key := strings.Repeat("k", backend.MaxKeyLen)
		big := bytes.Repeat([]byte{0xa5}, s.MaxValueSize())
		v1, err := s.CAS(ctx, key, backend.NoVersion, big)
		if err != nil {
			t.Fatalf("CAS of MaxValueSize (%d) bytes under a %d-byte key: %v", len(big), len(key), err)
		}
		if _, err := s.CAS(ctx, key, v1, big); err != nil {
			t.Fatalf("update of MaxValueSize bytes: %v", err)
		}
		got, _, err := s.Get(ctx, key)
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("Get after big CAS: len %d, err %v", len(got), err)
		}
		_, err = s.CAS(ctx, "other", backend.NoVersion, append(big, 0))
		if !errors.Is(err, backend.ErrTooLarge) {
			t.Fatalf("CAS of MaxValueSize+1 bytes: got %v, want ErrTooLarge", err)
		}
		if _, err := s.Put(ctx, "other", append(big, 0)); !errors.Is(err, backend.ErrTooLarge) {
			t.Fatalf("Put of MaxValueSize+1 bytes: got %v, want ErrTooLarge", err)
		}
		// A store told a larger limit than the cluster has still reports
		// ErrTooLarge, from the server.
		s2, err := New(c.config(), WithPrefix("voldfs-test/lying/"), WithMaxRequestBytes(4<<20))
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		_, err = s2.CAS(ctx, "big", backend.NoVersion, make([]byte, DefaultMaxRequestBytes+1))
		if !errors.Is(err, backend.ErrTooLarge) {
			t.Fatalf("CAS over the cluster's limit: got %v, want ErrTooLarge", err)
		}
	})

	t.Run("VersionsAreRevisions", func(t *testing.T) {
		s := newStore(t).(*Store)
		defer s.Close()
		v1, err := s.CAS(ctx, "a", backend.NoVersion, []byte("1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "a", v1); err != nil {
			t.Fatal(err)
		}
		v2, err := s.CAS(ctx, "a", backend.NoVersion, []byte("1"))
		if err != nil {
			t.Fatal(err)
		}
		if v2 <= v1 {
			t.Fatalf("re-created key got version %d, not above the deleted one's %d", v2, v1)
		}
		resp, err := s.cli.Get(ctx, s.prefix+"a")
		if err != nil {
			t.Fatal(err)
		}
		if got := backend.Version(resp.Kvs[0].ModRevision); got != v2 {
			t.Fatalf("ModRevision %d, CAS returned %d", got, v2)
		}
		if _, err := s.CAS(ctx, "a", v1, []byte("2")); !errors.Is(err, backend.ErrConflict) {
			t.Fatalf("CAS with the version of the deleted incarnation: got %v, want ErrConflict", err)
		}
	})

	t.Run("Paging", func(t *testing.T) {
		s := newStore(t).(*Store)
		defer s.Close()
		const n = listPageSize + batchSize + 7
		var g errgroup.Group
		g.SetLimit(16)
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("p/%05d", i)
			g.Go(func() error {
				_, err := s.Put(ctx, keys[i], []byte(keys[i]))
				return err
			})
		}
		if _, err := s.Put(ctx, "q/outside", nil); err != nil {
			t.Fatal(err)
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		if err := s.List(ctx, "p/", func(k string) error { seen[k]++; return nil }); err != nil {
			t.Fatal(err)
		}
		if len(seen) != n {
			t.Fatalf("List saw %d keys, want %d", len(seen), n)
		}
		for k, c := range seen {
			if c != 1 || !strings.HasPrefix(k, "p/") {
				t.Fatalf("List reported %q %d times", k, c)
			}
		}
		stop := errors.New("stop")
		calls := 0
		err := s.List(ctx, "", func(string) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("List with a failing fn: err %v after %d calls", err, calls)
		}
		items, err := s.GetMulti(ctx, append(keys[:batchSize*2+3:batchSize*2+3], "p/missing"))
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != batchSize*2+3 {
			t.Fatalf("GetMulti returned %d items, want %d", len(items), batchSize*2+3)
		}
		for _, k := range keys[:batchSize*2+3] {
			if string(items[k].Value) != k || items[k].Version == backend.NoVersion {
				t.Fatalf("GetMulti[%q] = %q version %d", k, items[k].Value, items[k].Version)
			}
		}
	})
}

// TestDeadline checks that a call to a server that never answers returns
// the context's error once its deadline passes, not after the client's own
// timeouts.
func TestDeadline(t *testing.T) {
	addr := testserver.Silent(t)
	s, err := New(clientv3.Config{Endpoints: []string{"http://" + addr}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, call := range map[string]func(ctx context.Context) error{
		"Get": func(ctx context.Context) error { _, _, err := s.Get(ctx, "k"); return err },
		"CAS": func(ctx context.Context) error { _, err := s.CAS(ctx, "k", backend.NoVersion, []byte("v")); return err },
		"Delete": func(ctx context.Context) error {
			return s.Delete(ctx, "k", backend.AnyVersion)
		},
		"List": func(ctx context.Context) error { return s.List(ctx, "", func(string) error { return nil }) },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		err := call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s against a silent server: %v, want context.DeadlineExceeded", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s returned %v after a 200ms deadline", name, d)
		}
	}
}
