package redis

import (
	"testing"

	"github.com/voldfs/voldfs/backend/backendtest"
)

func TestConformanceStandalone(t *testing.T) {
	addr := startStandalone(t)
	backendtest.RunConformanceTests(t, newStoreFunc([]string{addr}, false))
}

func TestConformanceCluster(t *testing.T) {
	addrs := startCluster(t, 3)
	backendtest.RunConformanceTests(t, newStoreFunc(addrs, true))
	checkSpread(t, addrs)
}

func BenchmarkRedisStandalone(b *testing.B) {
	addr := startStandalone(b)
	s := New(newClient([]string{addr}, false), WithPrefix("voldfs-bench/"))
	defer s.Close()
	backendtest.RunBenchmarks(b, s)
}

func BenchmarkRedisCluster(b *testing.B) {
	addrs := startCluster(b, 3)
	s := New(newClient(addrs, true), WithPrefix("voldfs-bench/"))
	defer s.Close()
	backendtest.RunBenchmarks(b, s)
}
