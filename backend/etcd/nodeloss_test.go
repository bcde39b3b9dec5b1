package etcd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// counterState is the value the node-loss workload increments: a count, and
// for every writer the sequence number of its last applied increment. Each
// successful CAS raises count and exactly one writer's sequence number by one,
// so count == sum(seq) as long as CAS is exclusive, and a writer can tell
// whether an increment whose CAS failed with an unknown error was applied.
type counterState struct {
	count uint64
	seq   []uint64
}

func (c counterState) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, c.count)
	for _, s := range c.seq {
		b = binary.BigEndian.AppendUint64(b, s)
	}
	return b
}

func decodeCounter(b []byte, writers int) (counterState, error) {
	if len(b) != 8*(writers+1) {
		return counterState{}, fmt.Errorf("counter value of %d bytes, want %d", len(b), 8*(writers+1))
	}
	c := counterState{count: binary.BigEndian.Uint64(b), seq: make([]uint64, writers)}
	for i := range c.seq {
		c.seq[i] = binary.BigEndian.Uint64(b[8*(i+1):])
	}
	return c, nil
}

// writerResult is what one writer of the workload knows at its end.
type writerResult struct {
	acked      uint64 // increments confirmed applied (CAS succeeded, or seen applied)
	pending    bool   // an attempt for increment acked+1 ended with an unknown error
	unknown    int    // CAS calls with an unknown outcome
	conflicts  int
	readErrors int
}

// TestNodeLoss kills the raft leader of a three-member cluster with SIGKILL
// while writers increment one counter by CAS, restarts it, and checks that no
// acknowledged increment was lost or applied twice and that the writers kept
// making progress with one member down.
func TestNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("node-loss test skipped in -short mode")
	}
	c := startCluster(t, 3)
	const writers = 4
	const key = "counter"
	ctx := context.Background()

	setup, err := New(c.config(), WithPrefix("voldfs-nodeloss/"))
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	if _, err := setup.CAS(ctx, key, backend.NoVersion, counterState{seq: make([]uint64, writers)}.encode()); err != nil {
		t.Fatal(err)
	}

	var (
		stop    atomic.Bool
		acked   atomic.Uint64 // all writers' confirmed increments, for progress checks
		wg      sync.WaitGroup
		results = make([]writerResult, writers)
		fatal   = make(chan error, writers)
	)
	for w := range writers {
		s, err := New(c.config(), WithPrefix("voldfs-nodeloss/"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[w]
			for seq := uint64(1); !stop.Load(); seq++ {
				r.pending = false
				for {
					if stop.Load() {
						return
					}
					opCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
					val, ver, err := s.Get(opCtx, key)
					if err != nil {
						cancel()
						r.readErrors++
						time.Sleep(10 * time.Millisecond)
						continue
					}
					st, err := decodeCounter(val, writers)
					if err != nil {
						cancel()
						fatal <- err
						return
					}
					if st.seq[w] >= seq {
						// An earlier attempt with an unknown outcome was applied.
						cancel()
						r.acked++
						acked.Add(1)
						break
					}
					st.seq[w] = seq
					st.count++
					_, err = s.CAS(opCtx, key, ver, st.encode())
					cancel()
					if err == nil {
						r.acked++
						acked.Add(1)
						break
					}
					if errors.Is(err, backend.ErrConflict) {
						r.conflicts++
						continue
					}
					// Unknown outcome: the write may still be applied later
					// (it is conditional on ver, so at most once). Re-read
					// and retry the same increment.
					r.pending = true
					r.unknown++
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}

	waitProgress := func(what string, from uint64, min uint64, within time.Duration) uint64 {
		t.Helper()
		deadline := time.Now().Add(within)
		for time.Now().Before(deadline) {
			if n := acked.Load(); n >= from+min {
				return n
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop.Store(true)
		wg.Wait()
		t.Fatalf("%s: only %d increments in %v (want %d)", what, acked.Load()-from, within, min)
		return 0
	}

	before := waitProgress("before the kill", 0, 50, 20*time.Second)
	victim := c.leader()
	c.kill(victim)
	killedAt := time.Now()
	t.Logf("killed leader %s after %d increments", victim.name, before)
	// The survivors elect a leader; then the writers must go on at a steady
	// pace with one member of three gone.
	elected := waitProgress("with the leader dead", before, 10, 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	during := waitProgress("with the leader dead", acked.Load(), 50, 20*time.Second)
	t.Logf("%d increments in %v with %s down (%d before the first after the kill)",
		during-before, time.Since(killedAt).Round(time.Millisecond), victim.name, elected-before)
	c.start(victim)
	c.waitHealthy(30 * time.Second)
	after := waitProgress("after the restart", during, 50, 20*time.Second)
	t.Logf("%d increments after %s came back", after-during, victim.name)
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-fatal:
		t.Fatal(err)
	default:
	}

	// Read the result through the restarted member alone, which also checks
	// that it caught up.
	cfg := c.config()
	cfg.Endpoints = []string{victim.clientURL}
	check, err := New(cfg, WithPrefix("voldfs-nodeloss/"))
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	val, _, err := check.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	final, err := decodeCounter(val, writers)
	if err != nil {
		t.Fatal(err)
	}
	var sum, ackedSum uint64
	for w, r := range results {
		t.Logf("writer %d: acked %d, applied %d, pending %v, unknown %d, conflicts %d, read errors %d",
			w, r.acked, final.seq[w], r.pending, r.unknown, r.conflicts, r.readErrors)
		sum += final.seq[w]
		ackedSum += r.acked
		maxApplied := r.acked
		if r.pending {
			maxApplied++
		}
		if final.seq[w] < r.acked || final.seq[w] > maxApplied {
			t.Errorf("writer %d: %d increments applied, but %d acknowledged (pending unknown outcome: %v)",
				w, final.seq[w], r.acked, r.pending)
		}
	}
	if final.count != sum {
		t.Errorf("counter is %d, but the writers' applied increments add up to %d: CAS was not exclusive", final.count, sum)
	}
	if final.count < ackedSum {
		t.Errorf("counter is %d, below the %d acknowledged increments", final.count, ackedSum)
	}
	t.Logf("final counter %d, acknowledged %d", final.count, ackedSum)
}
