package etcd

import (
	"context"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
)

// fullStore is every interface a Store implements but backend.Watcher.
type fullStore interface {
	backend.Store
	backend.BatchGetter
	backend.Lister
	backend.Putter
	backend.SizeLimiter
	backend.Committer
}

// countedStore counts the Gets of a store and hides its Watcher.
type countedStore struct {
	fullStore
	gets *atomic.Int64
}

func (s countedStore) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	s.gets.Add(1)
	return s.fullStore.Get(ctx, key)
}

// watchedStore is a countedStore that watches, counting its waits (each
// reads the key once more, inside the store).
type watchedStore struct {
	countedStore
	w     backend.Watcher
	waits *atomic.Int64
}

func (s watchedStore) WaitChange(ctx context.Context, key string, ver backend.Version) error {
	s.waits.Add(1)
	return s.w.WaitChange(ctx, key, ver)
}

// TestLockWaitWatch: a waiting flock on a store that watches reads the
// store a few times a second at most, where polling reads it every 100 ms,
// and is granted soon after the holder unlocks. It logs the wake latency
// with and without the watch.
func TestLockWaitWatch(t *testing.T) {
	c := startCluster(t, 1)
	counts := map[bool]int64{}
	for _, watch := range []bool{false, true} {
		name := map[bool]string{false: "Poll", true: "Watch"}[watch]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var gets, waits atomic.Int64
			var fss []*voldfs.FS
			for i := range 2 {
				s, err := New(c.config(), WithPrefix("voldfs-lockwatch-"+name+"/"))
				require.NoError(t, err)
				var st backend.Store = countedStore{s, &gets}
				if watch {
					st = watchedStore{countedStore{s, &gets}, s, &waits}
				}
				var f *voldfs.FS
				if i == 0 {
					f, err = voldfs.Format(ctx, st, nil)
				} else {
					f, err = voldfs.Open(ctx, st, nil)
				}
				require.NoError(t, err)
				t.Cleanup(func() { f.Close(); s.Close() })
				fss = append(fss, f)
			}
			files := openAll(t, fss, "f")
			a, b := files[0], files[1]

			// Reads during one second of waiting.
			require.NoError(t, a.Flock(ctx, syscall.LOCK_EX))
			got := make(chan error, 1)
			go func() { got <- b.Flock(ctx, syscall.LOCK_EX) }()
			time.Sleep(50 * time.Millisecond)
			before, beforeWaits := gets.Load(), waits.Load()
			time.Sleep(time.Second)
			counts[watch] = gets.Load() - before
			t.Logf("%s: %d store reads and %d watches in 1 s of waiting", name, counts[watch], waits.Load()-beforeWaits)
			require.NoError(t, a.Flock(ctx, syscall.LOCK_UN))
			select {
			case err := <-got:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("LOCK_EX still waiting 10 s after the holder unlocked")
			}
			require.NoError(t, b.Flock(ctx, syscall.LOCK_UN))

			// Wake latency: the holder unlocks 150 ms into the wait.
			var lat []time.Duration
			for range 7 {
				require.NoError(t, a.Flock(ctx, syscall.LOCK_EX))
				got := make(chan time.Time, 1)
				go func() {
					err := b.Flock(ctx, syscall.LOCK_EX)
					assert.NoError(t, err)
					got <- time.Now()
				}()
				time.Sleep(150 * time.Millisecond)
				start := time.Now()
				require.NoError(t, a.Flock(ctx, syscall.LOCK_UN))
				select {
				case at := <-got:
					lat = append(lat, at.Sub(start))
				case <-time.After(10 * time.Second):
					t.Fatal("LOCK_EX still waiting 10 s after the holder unlocked")
				}
				require.NoError(t, b.Flock(ctx, syscall.LOCK_UN))
			}
			slices.Sort(lat)
			t.Logf("%s: wake latency after unlock: median %v, max %v (of %d)", name, lat[len(lat)/2], lat[len(lat)-1], len(lat))
		})
	}
	if t.Failed() {
		return
	}
	// Polling backs off to at most 100 ms (at least 50 ms with jitter): 10
	// to 20 reads a second, fewer when round trips are slow. Watching
	// re-tries every 0.5 to 1 s (and reads the holder's session every
	// eighth of its timeout).
	assert.GreaterOrEqual(t, counts[false], int64(8), "reads while polling")
	assert.LessOrEqual(t, counts[true], int64(4), "reads while watching")
}
