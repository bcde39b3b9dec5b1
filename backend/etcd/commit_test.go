package etcd

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/backendtest"
)

// TestCommitLimits: what etcd refuses in one transaction is ErrTooLarge
// before anything is sent, and a commit's puts share its revision.
func TestCommitLimits(t *testing.T) {
	c := startCluster(t, 1)
	s := newStoreFunc(c)(t).(*Store)
	defer s.Close()
	ctx := context.Background()

	ops := make([]backend.Op, DefaultMaxTxnOps+1)
	for i := range ops {
		ops[i] = backend.Op{Key: fmt.Sprint("many/", i), Value: []byte("v")}
	}
	if _, err := s.Commit(ctx, ops); !errors.Is(err, backend.ErrTooLarge) {
		t.Fatalf("Commit of %d ops = %v, want ErrTooLarge", len(ops), err)
	}
	vers, err := s.Commit(ctx, ops[:DefaultMaxTxnOps])
	if err != nil {
		t.Fatalf("Commit of %d ops: %v", DefaultMaxTxnOps, err)
	}
	for i, v := range vers {
		if v != vers[0] {
			t.Fatalf("op %d got revision %d, op 0 %d: want one revision", i, v, vers[0])
		}
	}

	half := make([]byte, s.MaxValueSize()*2/3)
	big := []backend.Op{{Key: "big/a", Value: half}, {Key: "big/b", Value: half}}
	if _, err := s.Commit(ctx, big); !errors.Is(err, backend.ErrTooLarge) {
		t.Fatalf("Commit of two values of 2/3 of the limit each = %v, want ErrTooLarge", err)
	}
	if _, _, err := s.Get(ctx, "big/a"); !errors.Is(err, backend.ErrNotFound) {
		t.Fatalf("a refused Commit wrote: %v", err)
	}
	one := []backend.Op{{Key: "big/c", Value: make([]byte, s.MaxValueSize())}}
	if _, err := s.Commit(ctx, one); err != nil {
		t.Fatalf("Commit of one MaxValueSize value: %v", err)
	}
}

func BenchmarkCommit(b *testing.B) {
	c := startCluster(b, 3)
	s, err := New(c.config(), WithPrefix("voldfs-bench/"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, n := range []int{2, 3} {
		b.Run(fmt.Sprintf("native/%dkeys", n), func(b *testing.B) {
			backendtest.BenchmarkCommit(b, s, n, nil)
		})
	}
}
