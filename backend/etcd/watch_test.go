package etcd

import (
	"testing"

	"github.com/voldfs/voldfs/backend/backendtest"
)

func TestWatch(t *testing.T) {
	c := startCluster(t, 1)
	backendtest.RunWatchTests(t, newStoreFunc(c))
}
