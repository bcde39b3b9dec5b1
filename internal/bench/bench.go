// Package bench holds the workloads of voldfs's benchmarks, shared by the
// go test benchmarks and the examples/voldfs-bench program. Each workload is
// measured through the library and beside the raw store doing the fewest
// round trips for the same bytes, in the same run.
package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
)

// Row is one measured workload.
type Row struct {
	Name       string
	Ops        int           // operations through the library
	Bytes      int64         // bytes moved (0 for metadata workloads)
	Lib        time.Duration // time through the library
	Raw        time.Duration // time of the raw-store baseline
	RawWhat    string        // what the baseline does
	RoundTrips int64         // store requests the library issued
}

// PerOp returns the library's time per operation.
func (r Row) PerOp() time.Duration { return r.Lib / time.Duration(max(r.Ops, 1)) }

// Ratio is library throughput over raw throughput (1.0: as fast as the raw
// store; the targets are stated against it).
func (r Row) Ratio() float64 {
	if r.Lib <= 0 {
		return 0
	}
	return r.Raw.Seconds() / r.Lib.Seconds()
}

// String formats the row as a Markdown table line.
func (r Row) String() string {
	rate := fmt.Sprintf("%.0f ops/s", float64(r.Ops)/r.Lib.Seconds())
	raw := fmt.Sprintf("%.0f ops/s", float64(r.Ops)/r.Raw.Seconds())
	if r.Bytes > 0 {
		rate = fmt.Sprintf("%.1f MB/s", float64(r.Bytes)/r.Lib.Seconds()/1e6)
		raw = fmt.Sprintf("%.1f MB/s", float64(r.Bytes)/r.Raw.Seconds()/1e6)
	}
	return fmt.Sprintf("| %s | %s | %s (%s) | %.2fx | %.2f |", r.Name, rate, raw, r.RawWhat, r.Ratio(),
		float64(r.RoundTrips)/float64(max(r.Ops, 1)))
}

// Header is the Markdown table header for Rows.
const Header = "| workload | voldfs | raw store (baseline) | ratio | store round trips/op |\n|---|---|---|---|---|"

// Config sizes the workloads.
type Config struct {
	SeqBytes  int64 // sequential write/read size (256 MiB)
	Files     int   // small files to create and stat (10,000)
	DirEnts   int   // entries to list in one directory (100,000)
	RandReads int   // random 4 KiB reads (10,000)
}

// Env is one store and a way to open fresh FS values on it.
type Env struct {
	Store backend.Store
	Open  func() (*voldfs.FS, error) // a new client on the formatted store (cold caches)
}

func rawPar(ctx context.Context, par, n int, fn func(i int) error) error {
	g, _ := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for i := 0; i < n; i++ {
		g.Go(func() error { return fn(i) })
	}
	return g.Wait()
}

func rtts(f *voldfs.FS) int64 { return f.Stats().RoundTrips() }

// SeqWrite writes total bytes to a new file in calls of size call. The
// baseline puts the same number of block-sized values, with the library's
// parallelism.
func SeqWrite(ctx context.Context, e Env, f *voldfs.FS, total int64, call int) (Row, error) {
	r := Row{Name: fmt.Sprintf("seq write %d MiB, %d KiB calls", total>>20, call>>10), Bytes: total, Ops: int(total / int64(call))}
	// Both sides send the same bytes from the same memory: a source as big
	// as the file, so neither enjoys a buffer that stays in CPU cache.
	src := make([]byte, total)
	rand.NewChaCha8([32]byte{}).Read(src)
	name := "seq-" + strconv.Itoa(call)
	rt := rtts(f)
	start := time.Now()
	w, err := f.Create(name)
	if err != nil {
		return r, err
	}
	for n := int64(0); n < total; n += int64(call) {
		if _, err := w.Write(src[n : n+int64(call)]); err != nil {
			return r, err
		}
	}
	if err := w.Close(); err != nil {
		return r, err
	}
	r.Lib = time.Since(start)
	r.RoundTrips = rtts(f) - rt
	bs := f.BlockSize()
	nb := int(total / int64(bs))
	r.RawWhat = fmt.Sprintf("%d puts of %d KiB", nb, bs>>10)
	start = time.Now()
	err = rawPar(ctx, 8, nb, func(i int) error {
		_, err := backend.Put(ctx, e.Store, fmt.Sprintf("bench-raw/%d/%d", call, i), src[i*bs:(i+1)*bs])
		return err
	})
	r.Raw = time.Since(start)
	for i := 0; i < nb; i++ {
		_ = e.Store.Delete(ctx, fmt.Sprintf("bench-raw/%d/%d", call, i), backend.AnyVersion)
	}
	return r, err
}

// SeqRead reads the file SeqWrite wrote, with a fresh client (cold cache),
// in calls of size call. The baseline gets the same blocks.
func SeqRead(ctx context.Context, e Env, total int64, call int) (Row, error) {
	r := Row{Name: fmt.Sprintf("seq read %d MiB, %d KiB calls (cold)", total>>20, call>>10), Bytes: total, Ops: int(total / int64(call))}
	f, err := e.Open()
	if err != nil {
		return r, err
	}
	bs := f.BlockSize()
	nb := int(total / int64(bs))
	keys := make([]string, nb)
	blk := make([]byte, bs)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench-raw-read/%d", i)
		if _, err := backend.Put(ctx, e.Store, keys[i], blk); err != nil {
			return r, err
		}
	}
	name := "seq-" + strconv.Itoa(call)
	rt := rtts(f)
	start := time.Now()
	file, err := f.Open(name)
	if err != nil {
		return r, err
	}
	buf := make([]byte, call)
	var n int64
	for {
		k, err := file.Read(buf)
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return r, err
		}
	}
	file.Close()
	r.Lib = time.Since(start)
	r.RoundTrips = rtts(f) - rt
	if n != total {
		return r, fmt.Errorf("read %d bytes, want %d", n, total)
	}
	r.RawWhat = fmt.Sprintf("%d gets of %d KiB", nb, bs>>10)
	start = time.Now()
	err = rawPar(ctx, 8, nb, func(i int) error {
		_, _, err := e.Store.Get(ctx, keys[i])
		return err
	})
	r.Raw = time.Since(start)
	for _, k := range keys {
		_ = e.Store.Delete(ctx, k, backend.AnyVersion)
	}
	return r, err
}

// RandRead reads 4 KiB at random offsets of the file SeqWrite wrote with
// 1 MiB calls, through one client whose cache warms as it goes. The baseline
// gets a block-sized value per read, what a cache miss costs.
func RandRead(ctx context.Context, e Env, total int64, n int) (Row, error) {
	r := Row{Name: fmt.Sprintf("random 4 KiB reads over %d MiB", total>>20), Ops: n, Bytes: int64(n) * 4096}
	f, err := e.Open()
	if err != nil {
		return r, err
	}
	file, err := f.OpenFile("seq-"+strconv.Itoa(1<<20), os.O_RDONLY, 0)
	if err != nil {
		return r, err
	}
	defer file.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4096)
	rt := rtts(f)
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := file.ReadAt(buf, rng.Int64N(total-4096)); err != nil {
			return r, err
		}
	}
	r.Lib = time.Since(start)
	r.RoundTrips = rtts(f) - rt
	key := "bench-raw-rand"
	if _, err := backend.Put(ctx, e.Store, key, make([]byte, f.BlockSize())); err != nil {
		return r, err
	}
	r.RawWhat = fmt.Sprintf("gets of %d KiB", f.BlockSize()>>10)
	start = time.Now()
	for i := 0; i < n; i++ {
		if _, _, err := e.Store.Get(ctx, key); err != nil {
			return r, err
		}
	}
	r.Raw = time.Since(start)
	_ = e.Store.Delete(ctx, key, backend.AnyVersion)
	return r, nil
}

// CreateSmall creates, writes (4 KiB) and closes n files in one directory.
// The baseline is one put of 4 KiB per file.
func CreateSmall(ctx context.Context, e Env, f *voldfs.FS, n int) (Row, error) {
	r := Row{Name: fmt.Sprintf("create+write 4 KiB+close, %d files", n), Ops: n}
	if err := f.Mkdir("small", 0o755); err != nil {
		return r, err
	}
	data := make([]byte, 4096)
	rt := rtts(f)
	start := time.Now()
	for i := 0; i < n; i++ {
		w, err := f.Create("small/f" + strconv.Itoa(i))
		if err != nil {
			return r, err
		}
		if _, err := w.Write(data); err != nil {
			return r, err
		}
		if err := w.Close(); err != nil {
			return r, err
		}
	}
	r.Lib = time.Since(start)
	r.RoundTrips = rtts(f) - rt
	r.RawWhat = "one 4 KiB put per file"
	start = time.Now()
	for i := 0; i < n; i++ {
		if _, err := backend.Put(ctx, e.Store, "bench-raw-small/"+strconv.Itoa(i), data); err != nil {
			return r, err
		}
	}
	r.Raw = time.Since(start)
	for i := 0; i < n; i++ {
		_ = e.Store.Delete(ctx, "bench-raw-small/"+strconv.Itoa(i), backend.AnyVersion)
	}
	return r, nil
}

// Stat stats the n files CreateSmall made: hot (through f, whose caches
// hold them) or cold (a fresh client). The baseline is one get of an
// inode-sized value per stat.
func Stat(ctx context.Context, e Env, f *voldfs.FS, n int, hot bool) (Row, error) {
	r := Row{Name: fmt.Sprintf("stat %d files (cold)", n), Ops: n}
	if hot {
		r.Name = fmt.Sprintf("stat %d files (hot)", n)
		for i := 0; i < n; i++ { // warm
			if _, err := f.Stat("small/f" + strconv.Itoa(i)); err != nil {
				return r, err
			}
		}
	} else {
		var err error
		if f, err = e.Open(); err != nil {
			return r, err
		}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = "small/f" + strconv.Itoa(i)
	}
	rt := rtts(f)
	start := time.Now()
	for _, name := range names {
		if _, err := f.Stat(name); err != nil {
			return r, err
		}
	}
	r.Lib = time.Since(start)
	r.RoundTrips = rtts(f) - rt
	key := "bench-raw-inode"
	if _, err := backend.Put(ctx, e.Store, key, make([]byte, 80)); err != nil {
		return r, err
	}
	r.RawWhat = "one get of an 80-byte value per stat"
	start = time.Now()
	for i := 0; i < n; i++ {
		if _, _, err := e.Store.Get(ctx, key); err != nil {
			return r, err
		}
	}
	r.Raw = time.Since(start)
	_ = e.Store.Delete(ctx, key, backend.AnyVersion)
	return r, nil
}

// Readdir fills one directory with n entries (empty files) and lists it
// with a fresh client. The baseline gets as many values, of the average node
// size, as the listing made round trips.
func Readdir(ctx context.Context, e Env, f *voldfs.FS, n int) (Row, error) {
	r := Row{Name: fmt.Sprintf("readdir of %d entries (cold)", n), Ops: n}
	if err := f.Mkdir("big", 0o755); err != nil {
		return r, err
	}
	for i := 0; i < n; i++ {
		w, err := f.OpenFile("big/entry-"+strconv.Itoa(i), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
		if err != nil {
			return r, err
		}
		w.Close()
	}
	g, err := e.Open()
	if err != nil {
		return r, err
	}
	rt := rtts(g)
	start := time.Now()
	ents, err := g.ReadDir("big")
	if err != nil {
		return r, err
	}
	r.Lib = time.Since(start)
	r.RoundTrips = rtts(g) - rt
	if len(ents) != n {
		return r, fmt.Errorf("listed %d entries, want %d", len(ents), n)
	}
	// The raw store reads the same bytes (~32 bytes an entry) in as many
	// requests as the listing needed.
	trips := max(int(r.RoundTrips), 1)
	val := make([]byte, n*32/trips)
	key := "bench-raw-dir"
	if _, err := backend.Put(ctx, e.Store, key, val); err != nil {
		return r, err
	}
	r.RawWhat = fmt.Sprintf("%d gets of %d KiB", trips, len(val)>>10)
	start = time.Now()
	for i := 0; i < trips; i++ {
		if _, _, err := e.Store.Get(ctx, key); err != nil {
			return r, err
		}
	}
	r.Raw = time.Since(start)
	_ = e.Store.Delete(ctx, key, backend.AnyVersion)
	r.Ops = n
	return r, nil
}

// PeakHeap writes total bytes to one file through f in 128 KiB calls and
// returns the peak live heap (a collection is forced every 100 ms and the
// heap still allocated after it is sampled: the client's retained memory) and
// the peak heap in use (live plus garbage not yet collected) between them.
func PeakHeap(ctx context.Context, f *voldfs.FS, total int64) (live, inuse uint64, err error) {
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			if i%10 == 0 {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				live = max(live, ms.HeapAlloc)
			}
			runtime.ReadMemStats(&ms)
			inuse = max(inuse, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	w, err := f.Create("big-heap")
	if err == nil {
		buf := make([]byte, 128<<10)
		for n := int64(0); n < total && err == nil; n += int64(len(buf)) {
			_, err = w.Write(buf)
		}
		if cerr := w.Close(); err == nil {
			err = cerr
		}
	}
	close(done)
	<-sampled
	return live, inuse, err
}

// Metadata formats a filesystem named name in s and runs the small-file
// rows on it: files creates, then hot and cold stats of them.
func Metadata(ctx context.Context, s backend.Store, name string, files int) ([]Row, error) {
	opts := &voldfs.Options{Name: name}
	f, err := voldfs.Format(ctx, s, opts)
	if err != nil {
		return nil, err
	}
	e := Env{Store: s, Open: func() (*voldfs.FS, error) { return voldfs.Open(ctx, s, opts) }}
	var rows []Row
	for _, run := range []func() (Row, error){
		func() (Row, error) { return CreateSmall(ctx, e, f, files) },
		func() (Row, error) { return Stat(ctx, e, f, files, true) },
		func() (Row, error) { return Stat(ctx, e, f, files, false) },
	} {
		r, err := run()
		if err != nil {
			return rows, fmt.Errorf("%s: %w", r.Name, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// Discard is a store that keeps nothing: writes succeed and reads find
// nothing. As the blocks store of a split filesystem it lets a benchmark
// measure the client's own memory while writing far more than fits in RAM.
type Discard struct{ n atomic.Uint64 }

var _ backend.Store = (*Discard)(nil)

func (d *Discard) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	return nil, 0, backend.ErrNotFound
}

func (d *Discard) CAS(ctx context.Context, key string, old backend.Version, value []byte) (backend.Version, error) {
	return backend.Version(d.n.Add(1)), nil
}

func (d *Discard) Delete(ctx context.Context, key string, old backend.Version) error { return nil }
func (d *Discard) Close() error                                                      { return nil }
