package redis

import (
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/internal/locktest"
)

// TestLockWaitWatch: a waiting lock on standalone Redis sleeps on a
// subscription to the lock record's channel instead of polling (see
// locktest.WaitWatch).
func TestLockWaitWatch(t *testing.T) {
	addr := startStandalone(t)
	locktest.WaitWatch(t, func(t *testing.T, prefix string) backend.Store {
		return New(newClient([]string{addr}, false), WithPrefix(prefix))
	})
}
