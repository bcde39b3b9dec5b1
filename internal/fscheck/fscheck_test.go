package fscheck

import (
	"context"
	"testing"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend/memory"
)

func TestRunOnMemory(t *testing.T) {
	s := memory.New()
	f, err := voldfs.Format(context.Background(), s, &voldfs.Options{BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	Run(t, f, func() (*voldfs.FS, error) { return voldfs.Open(context.Background(), s, nil) })
}
