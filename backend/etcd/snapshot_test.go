package etcd

import (
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/internal/snaptest"
)

// TestSnapshots runs the snapshot and clone scenario on etcd.
func TestSnapshots(t *testing.T) {
	newEtcd := newStoreFunc(startCluster(t, 1))
	snaptest.Run(t, func(t *testing.T) backend.Store {
		s := newEtcd(t)
		t.Cleanup(func() { s.Close() })
		return s
	})
}
