package memcache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/internal/testserver"
)

// TestNoSpace: a full memcached (-M) refuses creates, CASes and puts with
// backend.ErrNoSpace, and what it stored before stays readable. memcached
// words the refusal of a large item differently ("Out of memory during
// read"), hence the two sizes.
func TestNoSpace(t *testing.T) {
	for _, size := range []int{100 << 10, 900 << 10} {
		t.Run(fmt.Sprintf("%dKiB", size>>10), func(t *testing.T) {
			s, err := memcache.New(testserver.MemcachedMemory(t, 4))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			ctx := context.Background()
			val := bytes.Repeat([]byte("v"), size)
			var stored []string
			var full error
			for i := 0; i < 1000; i++ {
				key := fmt.Sprintf("k%d", i)
				if _, full = s.CAS(ctx, key, backend.NoVersion, val); full != nil {
					break
				}
				stored = append(stored, key)
			}
			if !errors.Is(full, backend.ErrNoSpace) {
				t.Fatalf("after %d values: %v, want ErrNoSpace", len(stored), full)
			}
			t.Logf("%d values stored, then: %v", len(stored), full)
			if _, err := s.Put(ctx, "put", val); !errors.Is(err, backend.ErrNoSpace) {
				t.Errorf("put into a full server: %v, want ErrNoSpace", err)
			}
			if len(stored) == 0 {
				t.Fatal("nothing stored")
			}
			_, ver, err := s.Get(ctx, stored[0])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.CAS(ctx, stored[0], ver, append(val, 'x')); err != nil && !errors.Is(err, backend.ErrNoSpace) {
				t.Errorf("cas into a full server: %v, want success or ErrNoSpace", err)
			}
			for _, key := range stored[1:] {
				got, _, err := s.Get(ctx, key)
				if err != nil || !bytes.Equal(got, val) {
					t.Fatalf("%s after the refusals: %d bytes, %v", key, len(got), err)
				}
			}
		})
	}
}
