package voldfs

import (
	"bytes"
	"context"
	"testing"

	"github.com/voldfs/voldfs/backend/memory"
)

func zzFS(b *testing.B) *FS {
	f, err := Format(context.Background(), memory.New(), &Options{BlockSize: 64 << 10})
	if err != nil {
		b.Fatal(err)
	}
	if err := f.MkdirAll("d", 0o755); err != nil {
		b.Fatal(err)
	}
	if err := f.WriteFile("d/f", bytes.Repeat([]byte("z"), 1<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	return f
}

func BenchmarkZZStatHot(b *testing.B) {
	f := zzFS(b)
	f.Stat("d/f")
	b.ResetTimer()
	for range b.N {
		if _, err := f.Stat("d/f"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkZZReadAtCached(b *testing.B) {
	f := zzFS(b)
	file, err := f.OpenFile("d/f", 0, 0)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4096)
	for off := int64(0); off < 1<<20; off += 4096 {
		file.ReadAt(buf, off)
	}
	b.SetBytes(4096)
	b.ResetTimer()
	for i := range b.N {
		if _, err := file.ReadAt(buf, int64(i%256)*4096); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkZZWriteAtBuffered(b *testing.B) {
	f := zzFS(b)
	file, err := f.OpenFile("d/f", 2, 0)
	if err != nil {
		b.Fatal(err)
	}
	buf := bytes.Repeat([]byte("w"), 4096)
	b.SetBytes(4096)
	b.ResetTimer()
	for i := range b.N {
		if _, err := file.WriteAt(buf, int64(i%16)*4096); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkZZCreateClose(b *testing.B) {
	f := zzFS(b)
	b.ResetTimer()
	for i := range b.N {
		file, err := f.Create("d/c")
		if err != nil {
			b.Fatal(err)
		}
		file.Write([]byte("x"))
		file.Close()
		_ = i
	}
}
