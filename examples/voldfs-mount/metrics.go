package main

// What the mount reports of its work: the library's counters (voldfs.Stats)
// served over HTTP with -metrics ADDR, a one-line summary on SIGUSR1 and at
// unmount, and progress lines of a long -fsck.
//
// The HTTP server answers /metrics in the Prometheus text format (0.0.4),
// which every common scraper reads (Prometheus, VictoriaMetrics, the
// OpenTelemetry collector, Datadog), and /debug/vars in expvar's JSON, for
// a look with curl. The text format is a few lines of code, so neither
// needs a dependency.

import (
	"expvar"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/voldfs/voldfs"
)

// addMetricsFlag registers -metrics.
func addMetricsFlag(fl *flag.FlagSet, c *config) {
	fl.StringVar(&c.metrics, "metrics", "", "serve the mount's counters over HTTP on `ADDR` (host:port): Prometheus text at /metrics, expvar JSON at /debug/vars")
}

// statsReporter serves and prints one mount's counters.
type statsReporter struct {
	stderr io.Writer
	ln     net.Listener // nil without -metrics
	srv    *http.Server
	vfs    atomic.Pointer[voldfs.FS]
	sigs   chan os.Signal
	done   chan struct{}
	once   sync.Once
	start  time.Time
}

// newStatsReporter listens on addr, if set, before anything is mounted, so
// that a bad address fails the command with nothing left behind.
func newStatsReporter(addr string, stderr io.Writer) (*statsReporter, error) {
	r := &statsReporter{stderr: stderr, done: make(chan struct{})}
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("-metrics: %w", err)
		}
		r.ln = ln
	}
	return r, nil
}

// run starts serving vfs's counters and printing a summary on SIGUSR1.
func (r *statsReporter) run(vfs *voldfs.FS) {
	r.vfs.Store(vfs)
	r.start = time.Now()
	if r.ln != nil {
		publishExpvar(r)
		mux := http.NewServeMux()
		mux.HandleFunc("/metrics", r.serveMetrics)
		mux.Handle("/debug/vars", expvar.Handler())
		r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go r.srv.Serve(r.ln)
		fmt.Fprintf(r.stderr, "voldfs-mount: metrics on http://%s/metrics\n", r.ln.Addr())
	}
	r.sigs = make(chan os.Signal, 1)
	signal.Notify(r.sigs, syscall.SIGUSR1)
	go func() {
		for {
			select {
			case <-r.sigs:
				fmt.Fprintf(r.stderr, "voldfs-mount: %s\n", statsLine(vfs.Stats(), time.Since(r.start)))
			case <-r.done:
				return
			}
		}
	}()
}

// close stops serving and, if the mount ran, prints the summary of its
// whole run. Later calls do nothing.
func (r *statsReporter) close() {
	r.once.Do(func() {
		close(r.done)
		if r.sigs != nil {
			signal.Stop(r.sigs)
		}
		if r.srv != nil {
			r.srv.Close()
		} else if r.ln != nil {
			r.ln.Close()
		}
		if vfs := r.vfs.Load(); vfs != nil {
			fmt.Fprintf(r.stderr, "voldfs-mount: at unmount: %s\n", statsLine(vfs.Stats(), time.Since(r.start)))
		}
	})
}

// current is the FS that /debug/vars reports (expvar's names are global to
// the process, so one published function reads it).
var (
	current     atomic.Pointer[statsReporter]
	publishOnce sync.Once
)

func publishExpvar(r *statsReporter) {
	current.Store(r)
	publishOnce.Do(func() {
		expvar.Publish("voldfs", expvar.Func(func() any {
			if r := current.Load(); r != nil {
				if vfs := r.vfs.Load(); vfs != nil {
					return vfs.Stats()
				}
			}
			return nil
		}))
	})
}

func (r *statsReporter) serveMetrics(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	writePrometheus(w, r.vfs.Load().Stats())
}

// writePrometheus writes s in the Prometheus text exposition format.
func writePrometheus(w io.Writer, s voldfs.Stats) {
	family := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	sample := func(name string, v int64, labels ...string) {
		var b strings.Builder
		b.WriteString(name)
		if len(labels) > 0 {
			b.WriteByte('{')
			for i := 0; i < len(labels); i += 2 {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%s=%q", labels[i], labels[i+1])
			}
			b.WriteByte('}')
		}
		fmt.Fprintf(w, "%s %d\n", b.String(), v)
	}
	family("voldfs_ops_total", "counter", "Calls of the filesystem API by kind.")
	for _, k := range voldfs.OpKinds() {
		sample("voldfs_ops_total", s.Ops[k], "op", k)
	}
	stores := []struct {
		name string
		st   voldfs.StoreStats
	}{{"inode", s.Inodes}, {"block", s.Blocks}}
	family("voldfs_store_requests_total", "counter", "Requests to the inode and block stores by kind.")
	for _, x := range stores {
		st := x.st
		for _, k := range []struct {
			kind string
			n    int64
		}{{"get", st.Gets}, {"getmulti", st.GetMultis}, {"cas", st.CASes}, {"put", st.Puts}, {"delete", st.Deletes},
			{"commit", st.Commits}, {"list", st.Lists}, {"sync", st.Syncs}, {"watch", st.Watches}} {
			sample("voldfs_store_requests_total", k.n, "store", x.name, "kind", k.kind)
		}
	}
	for _, f := range []struct {
		name, help string
		get        func(voldfs.StoreStats) int64
	}{
		{"voldfs_store_conflicts_total", "Store requests refused with a version conflict.", func(s voldfs.StoreStats) int64 { return s.Conflicts }},
		{"voldfs_store_errors_total", "Store requests that failed otherwise (not counting missing keys).", func(s voldfs.StoreStats) int64 { return s.Errors }},
		{"voldfs_store_read_bytes_total", "Value bytes read from the store.", func(s voldfs.StoreStats) int64 { return s.BytesIn }},
		{"voldfs_store_written_bytes_total", "Value bytes written to the store.", func(s voldfs.StoreStats) int64 { return s.BytesOut }},
	} {
		family(f.name, "counter", f.help)
		for _, x := range stores {
			sample(f.name, f.get(x.st), "store", x.name)
		}
	}
	family("voldfs_conflicts_total", "counter", "Inode commits that lost to another writer and were retried.")
	sample("voldfs_conflicts_total", s.Conflicts)
	family("voldfs_retries_total", "counter", "Backoffs before a retry (conflicts, blocks freed under a commit, unknown outcomes).")
	sample("voldfs_retries_total", s.Retries)
	caches := []struct {
		name         string
		hits, misses int64
	}{{"block", s.CacheHits, s.CacheMisses}, {"dir", s.DirCacheHits, s.DirCacheMisses}, {"attr", s.AttrCacheHits, s.AttrCacheMisses}}
	family("voldfs_cache_hits_total", "counter", "Cache lookups answered from the cache.")
	for _, c := range caches {
		sample("voldfs_cache_hits_total", c.hits, "cache", c.name)
	}
	family("voldfs_cache_misses_total", "counter", "Cache lookups that went to the store.")
	for _, c := range caches {
		sample("voldfs_cache_misses_total", c.misses, "cache", c.name)
	}
	family("voldfs_read_bytes_total", "counter", "Bytes read from files.")
	sample("voldfs_read_bytes_total", s.BytesRead)
	family("voldfs_written_bytes_total", "counter", "Bytes written to files.")
	sample("voldfs_written_bytes_total", s.BytesWritten)
	for _, g := range []struct {
		name, help string
		v          int64
	}{
		{"voldfs_uploads_in_flight", "Block uploads running in the background.", s.Uploads},
		{"voldfs_frees_pending", "Background batches of replaced blocks not yet deleted.", s.Frees},
		{"voldfs_dirty_bytes", "Bytes buffered for write-back, not yet committed.", s.DirtyBytes},
		{"voldfs_open_inodes", "Inodes with open files.", s.OpenInodes},
	} {
		family(g.name, "gauge", g.help)
		sample(g.name, g.v)
	}
}

// statsLine is the one-line account of s over d.
func statsLine(s voldfs.Stats, d time.Duration) string {
	var ops int64
	type kv struct {
		k string
		v int64
	}
	var kinds []kv
	for k, v := range s.Ops {
		ops += v
		if v > 0 {
			kinds = append(kinds, kv{k, v})
		}
	}
	sort.Slice(kinds, func(i, j int) bool {
		return kinds[i].v > kinds[j].v || kinds[i].v == kinds[j].v && kinds[i].k < kinds[j].k
	})
	var top []string
	for i, x := range kinds {
		if i == 5 {
			top = append(top, "...")
			break
		}
		top = append(top, fmt.Sprintf("%s %d", x.k, x.v))
	}
	ratio := func(h, m int64) string {
		if h+m == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f%%", 100*float64(h)/float64(h+m))
	}
	in, out := s.Inodes.BytesIn+s.Blocks.BytesIn, s.Inodes.BytesOut+s.Blocks.BytesOut
	return fmt.Sprintf("stats over %s: %d ops (%s), %d store requests (%d inode, %d block), %d conflicts, %d retries, %d store errors, "+
		"cache hits block %s attr %s dir %s, %s from the store, %s to it, in flight %d uploads %d frees %s buffered",
		d.Round(time.Second), ops, strings.Join(top, ", "), s.RoundTrips(), s.Inodes.RoundTrips(), s.Blocks.RoundTrips(),
		s.Conflicts, s.Retries, s.Inodes.Errors+s.Blocks.Errors,
		ratio(s.CacheHits, s.CacheMisses), ratio(s.AttrCacheHits, s.AttrCacheMisses), ratio(s.DirCacheHits, s.DirCacheMisses),
		sizeOf(in), sizeOf(out), s.Uploads, s.Frees, sizeOf(s.DirtyBytes))
}

// sizeOf renders a byte count for people.
func sizeOf(n int64) string {
	switch {
	case n >= 10<<30:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 10<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 10<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// fsckProgress returns a FsckOptions.Progress that prints a line at most
// every second (the final report follows the run, so the last call is not
// printed).
func fsckProgress(stderr io.Writer) func(voldfs.FsckProgress) {
	var last time.Duration
	return func(p voldfs.FsckProgress) {
		if p.Phase == "done" || p.Elapsed-last < time.Second {
			return
		}
		last = p.Elapsed
		fmt.Fprintf(stderr, "voldfs-mount: fsck: %s: %d inodes, %d blocks, %d garbage blocks so far (%s)\n",
			p.Phase, p.Inodes, p.Blocks, p.Garbage, p.Elapsed.Round(time.Second))
	}
}
