package redis

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/backendtest"
)

// crossSlotKeys returns two keys in different hash slots under prefix.
func crossSlotKeys(prefix string) (string, string) {
	a := "x/a"
	for i := 0; ; i++ {
		b := fmt.Sprint("x/b", i)
		if keySlot(prefix+a) != keySlot(prefix+b) {
			return a, b
		}
	}
}

// TestCommitAcrossSlots: a standalone server commits keys of any slots; a
// Cluster refuses keys of different slots with ErrUnsupported, changing
// nothing, and commits keys sharing a hash tag.
func TestCommitAcrossSlots(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		addrs   func(t *testing.T) []string
		cluster bool
	}{
		{"Standalone", func(t *testing.T) []string { return []string{startStandalone(t)} }, false},
		{"Cluster", func(t *testing.T) []string { return startCluster(t, 3) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(newClient(tc.addrs(t), tc.cluster), WithPrefix("voldfs-commit/"))
			defer s.Close()
			a, b := crossSlotKeys("voldfs-commit/")
			va, err := s.CAS(ctx, a, backend.NoVersion, []byte("a0"))
			if err != nil {
				t.Fatal(err)
			}
			ops := []backend.Op{{Key: a, Old: va, Value: []byte("a1")}, {Key: b, Value: []byte("b1")}}
			vers, err := s.Commit(ctx, ops)
			if tc.cluster {
				if !errors.Is(err, errors.ErrUnsupported) {
					t.Fatalf("cross-slot Commit in a Cluster = %v, want ErrUnsupported", err)
				}
				if v, ver, err := s.Get(ctx, a); err != nil || string(v) != "a0" || ver != va {
					t.Fatalf("a refused Commit changed %q: %q, %d, %v", a, v, ver, err)
				}
				if _, _, err := s.Get(ctx, b); !errors.Is(err, backend.ErrNotFound) {
					t.Fatalf("a refused Commit created %q: %v", b, err)
				}
				// With a common hash tag, the keys commit together.
				ops = []backend.Op{{Key: "{t}" + a, Value: []byte("a1")}, {Key: "{t}" + b, Value: []byte("b1")}}
				if vers, err = s.Commit(ctx, ops); err != nil {
					t.Fatalf("Commit of keys with one hash tag: %v", err)
				}
			} else if err != nil {
				t.Fatalf("cross-slot Commit on a standalone server: %v", err)
			}
			for i, op := range ops {
				if v, ver, err := s.Get(ctx, op.Key); err != nil || string(v) != string(op.Value) || ver != vers[i] {
					t.Fatalf("after Commit, %q = %q, %d, %v; want %q, %d", op.Key, v, ver, err, op.Value, vers[i])
				}
			}
		})
	}
}

func BenchmarkCommit(b *testing.B) {
	addr := startStandalone(b)
	s := New(newClient([]string{addr}, false), WithPrefix("voldfs-bench/"))
	defer s.Close()
	for _, n := range []int{2, 3} {
		b.Run(fmt.Sprintf("native/%dkeys", n), func(b *testing.B) {
			backendtest.BenchmarkCommit(b, s, n, nil)
		})
	}
}
