package voldfs

import (
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

func TestFSMemory(t *testing.T) {
	runFSSuite(t, func(t *testing.T) backend.Store {
		s := memory.New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}
