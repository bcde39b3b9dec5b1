package redis

import (
	"testing"

	"github.com/voldfs/voldfs/backend/backendtest"
)

func TestWatchStandalone(t *testing.T) {
	addr := startStandalone(t)
	backendtest.RunWatchTests(t, newStoreFunc([]string{addr}, false))
}

func TestWatchCluster(t *testing.T) {
	addrs := startCluster(t, 3)
	backendtest.RunWatchTests(t, newStoreFunc(addrs, true))
}
