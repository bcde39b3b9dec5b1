package s3_test

import (
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/internal/snaptest"
)

// TestSnapshots runs the snapshot and clone scenario on S3 (the txn
// fallback: per-key conditional writes only).
func TestSnapshots(t *testing.T) {
	endpoint := startServer(t)
	snaptest.Run(t, func(t *testing.T) backend.Store { return openStore(t, endpoint) })
}
