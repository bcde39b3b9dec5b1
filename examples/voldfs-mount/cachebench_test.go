package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/voldfs/voldfs/internal/testserver"
)

// BenchmarkMountCache measures what the kernel's page cache saves across
// opens: 4 KiB random reads (each round opens the file, reads 256 random
// 4 KiB pieces, closes it) and a whole re-read of a file read before, on
// the memory store and on memcached:
//
//	go test -run xxx -bench MountCache ./examples/voldfs-mount
func BenchmarkMountCache(b *testing.B) {
	for _, st := range []struct {
		name  string
		store func() string
	}{
		{"mem", func() string { return "mem:" }},
		{"memcached", func() string { return "memcache://" + testserver.Memcached(b) }},
	} {
		b.Run(st.name, func(b *testing.B) {
			_, mp := testMount(b, st.store())
			const size = 16 << 20
			p := filepath.Join(mp, "f")
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i * 31 >> 7)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
			b.Run("random4k", func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 2))
				buf := make([]byte, 4<<10)
				b.SetBytes(256 * 4 << 10)
				for i := 0; i < b.N; i++ {
					f, err := os.Open(p)
					if err != nil {
						b.Fatal(err)
					}
					for j := 0; j < 256; j++ {
						off := int64(r.IntN(size/len(buf))) * int64(len(buf))
						if _, err := f.ReadAt(buf, off); err != nil {
							b.Fatal(err)
						}
					}
					f.Close()
				}
			})
			b.Run("reread", func(b *testing.B) {
				b.SetBytes(size)
				for i := 0; i < b.N; i++ {
					got, err := os.ReadFile(p)
					if err != nil || len(got) != size {
						b.Fatalf("read %d bytes, %v", len(got), err)
					}
				}
			})
		})
	}
}
