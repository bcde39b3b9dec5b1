package backendtest

import (
	"context"
	"fmt"
	"testing"

	"github.com/voldfs/voldfs/backend"
)

// BenchmarkCommit measures commits of n puts, each conditioned on the
// version the previous commit returned, on s (which must implement
// backend.Committer). calls, if not nil, counts the calls made to the store
// under s (a faulty.Store's Ops): the benchmark reports them per commit as
// "calls/op".
func BenchmarkCommit(b *testing.B, s backend.Store, n int, calls func() int64) {
	ctx := context.Background()
	c, ok := s.(backend.Committer)
	if !ok {
		b.Fatal("store does not implement backend.Committer")
	}
	prefix := randomPrefix()
	ops := make([]backend.Op, n)
	for i := range ops {
		ops[i] = backend.Op{Key: fmt.Sprintf("%sk%d", prefix, i), Old: backend.NoVersion, Value: make([]byte, 100)}
	}
	vers, err := c.Commit(ctx, ops)
	if err != nil {
		b.Fatal(err)
	}
	var start int64
	if calls != nil {
		start = calls()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range ops {
			ops[j].Old = vers[j]
			ops[j].Value[0] = byte(i)
		}
		if vers, err = c.Commit(ctx, ops); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if calls != nil {
		b.ReportMetric(float64(calls()-start)/float64(b.N), "calls/op")
	}
}
