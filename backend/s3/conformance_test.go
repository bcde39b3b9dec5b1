package s3_test

import (
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/backendtest"
)

func TestConformance(t *testing.T) {
	endpoint := startServer(t)
	backendtest.RunConformanceTests(t, func(t *testing.T) backend.Store { return openStore(t, endpoint) })
}

// TestCommit runs the multi-key commit tests through the fallback
// (backend/txn), with its crash and lost-reply sweep: S3 has no
// multi-object transaction.
func TestCommit(t *testing.T) {
	endpoint := startServer(t)
	backendtest.RunCommitTests(t, func(t *testing.T) backend.Store { return openStore(t, endpoint) })
}
