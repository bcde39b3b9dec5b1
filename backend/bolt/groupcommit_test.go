package bolt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
)

// manual writes batches only on Sync, Close or a full batch, so that a test
// decides where a crash cuts.
var manual = &bolt.Options{Interval: -1}

// contents reads every key of s.
func contents(t *testing.T, s *bolt.Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	err := s.List(ctx, "", func(k string) error {
		v, ver, err := s.Get(ctx, k)
		if err != nil {
			return err
		}
		out[k] = fmt.Sprintf("%s@%d", v, ver)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustCAS(t *testing.T, s backend.Store, key string, old backend.Version, value string) backend.Version {
	t.Helper()
	v, err := s.CAS(context.Background(), key, old, []byte(value))
	if err != nil {
		t.Fatalf("CAS %s: %v", key, err)
	}
	return v
}

func TestCrashKeepsSynced(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "voldfs.db")
	s := open(t, path, manual)
	a := mustCAS(t, s, "a", backend.NoVersion, "a1")
	gone := mustCAS(t, s, "gone", backend.NoVersion, "x")
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	synced := contents(t, s)
	a2 := mustCAS(t, s, "a", a, "a2")
	mustCAS(t, s, "b", backend.NoVersion, "b1")
	if err := s.Delete(ctx, "gone", gone); err != nil {
		t.Fatal(err)
	}
	// Acknowledged writes are visible before they are in the file.
	if got, ver, err := s.Get(ctx, "a"); err != nil || string(got) != "a2" || ver != a2 {
		t.Fatalf("Get a = %q@%d, %v before the crash; want a2@%d", got, ver, err, a2)
	}
	if err := s.Crash(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "a"); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Get after Crash: %v, want ErrClosed", err)
	}

	s = open(t, path, manual)
	defer s.Close()
	if got := contents(t, s); !maps.Equal(got, synced) {
		t.Errorf("after the crash the file holds %v, want what was synced: %v", got, synced)
	}
	// The version of the lost write is never handed out again: a CAS
	// holding it fails, and new versions are above it.
	if _, err := s.CAS(ctx, "a", a2, []byte("stale")); !errors.Is(err, backend.ErrConflict) {
		t.Errorf("CAS with a lost version: %v, want ErrConflict", err)
	}
	if v := mustCAS(t, s, "a", a, "a3"); v <= a2 {
		t.Errorf("version after the crash %d not above the lost one %d", v, a2)
	}
}

func TestCloseFlushes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "voldfs.db")
	s := open(t, path, manual)
	v := mustCAS(t, s, "k", backend.NoVersion, "v")
	if _, err := s.Put(ctx, "p", []byte("put")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Sync after Close: %v, want ErrClosed", err)
	}
	s = open(t, path, nil)
	defer s.Close()
	if got, ver, err := s.Get(ctx, "k"); err != nil || string(got) != "v" || ver != v {
		t.Errorf("after Close and reopen Get = %q@%d, %v; want v@%d", got, ver, err, v)
	}
	if got, _, err := s.Get(ctx, "p"); err != nil || string(got) != "put" {
		t.Errorf("after Close and reopen Get p = %q, %v", got, err)
	}
}

// TestSyncAlways: a write is in the file when it is acknowledged.
func TestSyncAlways(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "voldfs.db")
	s := open(t, path, &bolt.Options{Durability: bolt.SyncAlways, Interval: -1})
	v := mustCAS(t, s, "k", backend.NoVersion, "v")
	vers, err := s.Commit(ctx, []backend.Op{{Key: "x", Value: []byte("x")}, {Key: "y", Value: []byte("y")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Crash(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, nil)
	defer s.Close()
	want := map[string]string{"k": fmt.Sprintf("v@%d", v), "x": fmt.Sprintf("x@%d", vers[0]), "y": fmt.Sprintf("y@%d", vers[1])}
	if got := contents(t, s); !maps.Equal(got, want) {
		t.Errorf("after a crash the file holds %v, want every acknowledged write %v", got, want)
	}
}

// TestIntervalFlushes: without Sync, a write reaches the file within about
// the interval.
func TestIntervalFlushes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "voldfs.db")
	s := open(t, path, &bolt.Options{Interval: 10 * time.Millisecond})
	v := mustCAS(t, s, "k", backend.NoVersion, "v")
	time.Sleep(500 * time.Millisecond) // generous: the machine may be busy
	if err := s.Crash(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, nil)
	defer s.Close()
	if got := contents(t, s); got["k"] != fmt.Sprintf("v@%d", v) {
		t.Errorf("500 ms after a write with a 10 ms interval the file holds %v", got)
	}
}

// TestCrashPrefix runs random writes (with random Syncs, and a small
// pending bound so that batches are also written when full, at points the
// test does not choose), crashes, and checks that the file holds the state
// after some prefix of the acknowledged writes, no shorter than the last
// Sync, and that no version is handed out twice across the crash.
// VOLDFS_SEED replays a seed.
func TestCrashPrefix(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("VOLDFS_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (replay with VOLDFS_SEED=%d)", seed, seed)
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	r := rand.New(rand.NewPCG(seed, 0))
	for round := range rounds {
		crashPrefixRound(t, r, round)
		if t.Failed() {
			return
		}
	}
}

func crashPrefixRound(t *testing.T, r *rand.Rand, round int) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "voldfs.db")
	s := open(t, path, &bolt.Options{NoSync: true, Interval: -1, MaxPending: 200 + r.IntN(2000)})
	model := map[string]string{} // key -> value@version
	vers := map[string]backend.Version{}
	var history []map[string]string // history[i]: the state after i writes
	history = append(history, maps.Clone(model))
	synced, highest := 0, backend.NoVersion
	ops := 50 + r.IntN(300)
	for range ops {
		k := "k" + strconv.Itoa(r.IntN(8))
		val := fmt.Sprintf("%d-%d", round, r.Uint32())
		var err error
		switch p := r.IntN(10); {
		case p < 5:
			var v backend.Version
			v, err = s.CAS(ctx, k, vers[k], []byte(val))
			if err == nil {
				vers[k], model[k] = v, fmt.Sprintf("%s@%d", val, v)
				highest = max(highest, v)
			}
		case p < 7:
			if vers[k] == backend.NoVersion {
				continue
			}
			if err = s.Delete(ctx, k, vers[k]); err == nil {
				delete(vers, k)
				delete(model, k)
			}
		case p < 9:
			k2 := "k" + strconv.Itoa(r.IntN(8))
			if k2 == k {
				continue
			}
			var vs []backend.Version
			vs, err = s.Commit(ctx, []backend.Op{
				{Key: k, Old: vers[k], Value: []byte(val)},
				{Key: k2, Old: vers[k2], Delete: vers[k2] != backend.NoVersion, Check: vers[k2] == backend.NoVersion},
			})
			if err == nil {
				vers[k], model[k] = vs[0], fmt.Sprintf("%s@%d", val, vs[0])
				highest = max(highest, vs[0])
				delete(vers, k2)
				delete(model, k2)
			}
		default:
			if err = s.Sync(ctx); err == nil {
				synced = len(history) - 1
			}
			continue
		}
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		history = append(history, maps.Clone(model))
	}
	if err := s.Crash(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, nil)
	defer s.Close()
	got := contents(t, s)
	at := -1
	for i := len(history) - 1; i >= synced; i-- {
		if maps.Equal(got, history[i]) {
			at = i
			break
		}
	}
	if at < 0 {
		t.Errorf("round %d: after the crash the file holds %v: the state after no prefix of %d writes at least %d long (synced: %v, all: %v)",
			round, got, len(history)-1, synced, history[synced], history[len(history)-1])
		return
	}
	// No version handed out before the crash comes again.
	if v := mustCAS(t, s, "fresh", backend.NoVersion, "x"); v <= highest {
		t.Errorf("round %d: version %d after the crash, not above %d handed out before it", round, v, highest)
	}
	t.Logf("round %d: %d writes, synced up to %d, the file kept %d", round, len(history)-1, synced, at)
}

// TestBigValues reads values big enough to be read with pread(2) from the
// file, from the overlay and from the file, across the file's growth.
func TestBigValues(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "voldfs.db")
	s := open(t, path, &bolt.Options{NoSync: true})
	want := map[string][]byte{}
	for i := range 40 {
		v := make([]byte, 60<<10+i*23<<10)
		for j := range v {
			v[j] = byte(i*7 + j*13 + j>>10)
		}
		k := fmt.Sprintf("big/%02d", i)
		want[k] = v
		if _, err := s.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			if err := s.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(when string) {
		t.Helper()
		keys := slices.Sorted(maps.Keys(want))
		items, err := s.GetMulti(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			got, _, err := s.Get(ctx, k)
			if err != nil || !bytes.Equal(got, want[k]) {
				t.Errorf("%s: Get %s: %d bytes, %v; want %d bytes", when, k, len(got), err, len(want[k]))
			}
			if !bytes.Equal(items[k].Value, want[k]) {
				t.Errorf("%s: GetMulti %s: %d bytes; want %d", when, k, len(items[k].Value), len(want[k]))
			}
		}
	}
	check("before reopen")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, nil)
	defer s.Close()
	check("after reopen")
}
