// Command voldfs-bench measures voldfs against the raw store it runs on:
// sequential writes and reads with 4 KiB, 128 KiB and 1 MiB calls, random
// 4 KiB reads, small-file creates, hot and cold stats and a large readdir.
// Each row is printed beside the raw store doing the fewest round trips for
// the same bytes, in the same run, with the ratio and the store round trips
// the library issued per operation.
//
//	go run ./examples/voldfs-bench -store mem:
//	go run ./examples/voldfs-bench -store memcache://127.0.0.1:11211
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/bench"
)

func main() {
	storeURL := flag.String("store", "mem:", "store: mem: or memcache://HOST:PORT[,HOST:PORT...]")
	seq := flag.Int64("seq", 256<<20, "bytes for the sequential write and read rows")
	files := flag.Int("files", 10000, "small files to create and stat")
	dirents := flag.Int("dirents", 100000, "entries in the readdir row")
	rand := flag.Int("randreads", 10000, "random 4 KiB reads")
	heap := flag.Int64("heap", 4<<30, "bytes to write while sampling client memory (0: skip)")
	flag.Parse()
	if err := run(*storeURL, bench.Config{SeqBytes: *seq, Files: *files, DirEnts: *dirents, RandReads: *rand}, *heap); err != nil {
		fmt.Fprintln(os.Stderr, "voldfs-bench:", err)
		os.Exit(1)
	}
}

func openStore(url string) (backend.Store, error) {
	switch {
	case url == "mem:":
		return memory.New(), nil
	case strings.HasPrefix(url, "memcache://"):
		return memcache.New(strings.Split(strings.TrimPrefix(url, "memcache://"), ",")...)
	}
	return nil, fmt.Errorf("unknown store %q (want mem: or memcache://HOST:PORT)", url)
}

func run(url string, cfg bench.Config, heap int64) error {
	ctx := context.Background()
	s, err := openStore(url)
	if err != nil {
		return err
	}
	defer s.Close()
	name := fmt.Sprintf("bench%d", time.Now().UnixNano())
	opts := &voldfs.Options{Name: name}
	f, err := voldfs.Format(ctx, s, opts)
	if err != nil {
		return err
	}
	e := bench.Env{Store: s, Open: func() (*voldfs.FS, error) { return voldfs.Open(ctx, s, opts) }}
	fmt.Printf("voldfs-bench: store %s, block size %d KiB, %s, %d CPUs, %s\n\n", url, f.BlockSize()>>10, runtime.Version(), runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	// Memory first, before the other workloads fill this process's heap
	// (the memory store lives in it).
	if heap > 0 {
		// Blocks go to a store that keeps nothing, so the heap measured is
		// the client's own: write-back buffers, caches and trees.
		cache := int64(64 << 20)
		g, err := voldfs.Format(ctx, memory.New(), &voldfs.Options{Blocks: &bench.Discard{}, CacheSize: cache})
		if err != nil {
			return err
		}
		live, inuse, err := bench.PeakHeap(ctx, g, heap)
		if err != nil {
			return fmt.Errorf("heap: %w", err)
		}
		fmt.Printf("client memory while writing %d MiB (block cache %d MiB, target below %d MiB): peak live heap (after a forced GC every 100 ms) %d MiB, peak heap in use (with uncollected garbage) %d MiB\n",
			heap>>20, cache>>20, (cache>>20)+64, live>>20, inuse>>20)
		fmt.Println()
	}
	fmt.Println(bench.Header)
	print := func(r bench.Row, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", r.Name, err)
		}
		fmt.Println(r)
		return nil
	}
	for _, call := range []int{4 << 10, 128 << 10, 1 << 20} {
		if err := print(bench.SeqWrite(ctx, e, f, cfg.SeqBytes, call)); err != nil {
			return err
		}
	}
	for _, call := range []int{4 << 10, 128 << 10, 1 << 20} {
		if err := print(bench.SeqRead(ctx, e, cfg.SeqBytes, call)); err != nil {
			return err
		}
	}
	if err := print(bench.RandRead(ctx, e, cfg.SeqBytes, cfg.RandReads)); err != nil {
		return err
	}
	for _, call := range []int{4 << 10, 128 << 10, 1 << 20} {
		_ = f.Remove(fmt.Sprintf("seq-%d", call))
	}
	if err := print(bench.CreateSmall(ctx, e, f, cfg.Files)); err != nil {
		return err
	}
	if err := print(bench.Stat(ctx, e, f, cfg.Files, true)); err != nil {
		return err
	}
	if err := print(bench.Stat(ctx, e, f, cfg.Files, false)); err != nil {
		return err
	}
	if err := print(bench.Readdir(ctx, e, f, cfg.DirEnts)); err != nil {
		return err
	}
	return nil
}
