package memory_test

import (
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/backendtest"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/committest"
)

func TestConformance(t *testing.T) {
	backendtest.RunConformanceTests(t, func(*testing.T) backend.Store { return memory.New() })
}

func TestConformanceSmallLimit(t *testing.T) {
	backendtest.RunConformanceTests(t, func(*testing.T) backend.Store { return memory.NewWithLimit(1000) })
}

func BenchmarkStore(b *testing.B) {
	s := memory.New()
	defer s.Close()
	backendtest.RunBenchmarks(b, s)
}

func TestCommit(t *testing.T) {
	committest.Run(t, func(*testing.T) backend.Store { return memory.New() })
}
