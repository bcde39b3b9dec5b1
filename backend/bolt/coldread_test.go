package bolt_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/voldfs/voldfs/backend/bolt"
)

// TestColdRead measures reading 512 KiB values from a bolt file whose pages
// are not in the page cache, beside reading the file itself, to see what
// limits a cold read: bbolt serves values from a memory map, so a cold read
// is a stream of page faults. It runs only with VOLDFS_BOLT_COLDREAD=1, as
// root (it drops the page cache); VOLDFS_BOLT_COLDREAD_MIB sizes it (256):
//
//	VOLDFS_BOLT_COLDREAD=1 go test -run TestColdRead -v ./backend/bolt
func TestColdRead(t *testing.T) {
	if os.Getenv("VOLDFS_BOLT_COLDREAD") == "" {
		t.Skip("set VOLDFS_BOLT_COLDREAD=1 to measure cold reads")
	}
	if os.Geteuid() != 0 {
		t.Skip("drops the page cache: run as root")
	}
	ctx := context.Background()
	mib := 256
	fmt.Sscan(os.Getenv("VOLDFS_BOLT_COLDREAD_MIB"), &mib)
	const size = 512 << 10
	n := mib << 20 / size
	path := filepath.Join(t.TempDir(), "cold.db")
	s := open(t, path, &bolt.Options{NoSync: true})
	val := make([]byte, size)
	for i := range n {
		for j := range val {
			val[j] = byte(i + j)
		}
		if _, err := s.Put(ctx, fmt.Sprintf("b/%06d", i), val); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	drop := func() {
		syscall.Sync()
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
			t.Fatal(err)
		}
	}
	rate := func(d time.Duration) string { return fmt.Sprintf("%.0f MB/s", float64(n*size)/1e6/d.Seconds()) }

	drop()
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for {
		if k, err := f.Read(buf); k == 0 || err != nil {
			break
		}
	}
	f.Close()
	t.Logf("file read(2), 1 MiB calls: %s", rate(time.Since(start)))

	for _, tc := range []struct {
		name string
		opts bolt.Options
		par  int
	}{
		{"bolt Get, default mmap", bolt.Options{}, 1},
		{"bolt Get, default mmap, 8 in parallel", bolt.Options{}, 8},
		{"bolt Get, MAP_POPULATE (whole file read at open)", bolt.Options{MmapFlags: syscall.MAP_POPULATE}, 1},
	} {
		drop()
		start := time.Now()
		s := open(t, path, &tc.opts)
		g, _ := errgroup.WithContext(ctx)
		g.SetLimit(tc.par)
		for i := range n {
			g.Go(func() error {
				v, _, err := s.Get(ctx, fmt.Sprintf("b/%06d", i))
				if err == nil && len(v) != size {
					err = fmt.Errorf("value %d: %d bytes", i, len(v))
				}
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s", tc.name, rate(time.Since(start)))
		s.Close()
	}
}
