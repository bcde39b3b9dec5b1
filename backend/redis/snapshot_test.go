package redis

import (
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/internal/snaptest"
)

// TestSnapshots runs the snapshot and clone scenario on Redis, standalone
// (native commits) and Cluster (the txn fallback).
func TestSnapshots(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster bool
		start   func(t testing.TB) []string
	}{
		{"standalone", false, func(t testing.TB) []string { return []string{startStandalone(t)} }},
		{"cluster", true, func(t testing.TB) []string { return startCluster(t, 3) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newRedis := newStoreFunc(tc.start(t), tc.cluster)
			snaptest.Run(t, func(t *testing.T) backend.Store {
				s := newRedis(t)
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}
