package etcd

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/internal/locktest"
)

// TestLockWaitWatch: a waiting lock on etcd sleeps on a watch of the lock
// record instead of polling (see locktest.WaitWatch).
func TestLockWaitWatch(t *testing.T) {
	c := startCluster(t, 1)
	locktest.WaitWatch(t, func(t *testing.T, prefix string) backend.Store {
		s, err := New(c.config(), WithPrefix(prefix))
		require.NoError(t, err)
		return s
	})
}
