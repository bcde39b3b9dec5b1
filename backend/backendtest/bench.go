package backendtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/voldfs/voldfs/backend"
)

// BenchSizes are the value sizes RunBenchmarks measures: a small value (an
// inode) and a default voldfs block (512 KiB).
var BenchSizes = []int{1 << 10, 512 << 10}

// RunBenchmarks measures s: Get and CAS of one key, serially and from
// b.RunParallel goroutines (each on its own key for CAS), at each of
// BenchSizes. Throughput is reported through b.SetBytes (MB/s). s is not
// closed; its keys are left behind under a random prefix.
func RunBenchmarks(b *testing.B, s backend.Store) {
	prefix := randomPrefix()
	for _, size := range BenchSizes {
		name := sizeName(size)
		val := make([]byte, size)
		_, _ = rand.Read(val)
		b.Run("Get/"+name, func(b *testing.B) {
			k := prefix + "get" + name
			benchCreate(b, s, k, val)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.Get(context.Background(), k); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("CAS/"+name, func(b *testing.B) {
			k := prefix + "cas" + name
			v := benchCreate(b, s, k, val)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if v, err = s.CAS(context.Background(), k, v, val); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("GetParallel/"+name, func(b *testing.B) {
			k := prefix + "pget" + name
			benchCreate(b, s, k, val)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := s.Get(context.Background(), k); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		var n atomic.Int64 // numbers keys across the reruns of the function
		b.Run("CASParallel/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				k := fmt.Sprintf("%spcas%s/%d", prefix, name, n.Add(1))
				v := backend.NoVersion
				for pb.Next() {
					var err error
					if v, err = s.CAS(context.Background(), k, v, val); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// benchCreate stores val under k, replacing whatever is there, and returns
// its version.
func benchCreate(b *testing.B, s backend.Store, k string, val []byte) backend.Version {
	b.Helper()
	ctx := context.Background()
	_ = s.Delete(ctx, k, backend.AnyVersion) // b.Run may run the function again
	v, err := s.CAS(ctx, k, backend.NoVersion, val)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

func sizeName(n int) string {
	if n >= 1<<10 && n%(1<<10) == 0 {
		return fmt.Sprint(n>>10, "KiB")
	}
	return fmt.Sprint(n, "B")
}
