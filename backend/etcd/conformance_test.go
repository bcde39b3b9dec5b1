package etcd

import (
	"testing"

	"github.com/voldfs/voldfs/backend/backendtest"
)

func TestConformance(t *testing.T) {
	c := startCluster(t, 3)
	backendtest.RunConformanceTests(t, newStoreFunc(c))
}

func BenchmarkEtcd(b *testing.B) {
	c := startCluster(b, 3)
	s, err := New(c.config(), WithPrefix("voldfs-bench/"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	backendtest.RunBenchmarks(b, s)
}
