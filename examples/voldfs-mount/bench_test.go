package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBenchFUSE measures the mount against go-fuse's loopback example over
// tmpfs, in one run on one machine: sequential 1 GiB write and read (MB/s)
// and creating 10,000 small files (files/s). It runs only with
// VOLDFS_FUSE_BENCH=1 (it takes minutes and gigabytes):
//
//	VOLDFS_FUSE_BENCH=1 go test -run TestBenchFUSE -v -timeout 30m ./examples/voldfs-mount
//
// VOLDFS_FUSE_BENCH_STORES lists the voldfs stores to measure (default
// "bolt,mem,memcache"; memcache starts its own memcached).
func TestBenchFUSE(t *testing.T) {
	if os.Getenv("VOLDFS_FUSE_BENCH") == "" {
		t.Skip("set VOLDFS_FUSE_BENCH=1 to run the FUSE benchmark")
	}
	requireFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("the benchmark drops the page cache between write and read: run as root")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "voldfs-mount")
	loop := filepath.Join(dir, "loopback")
	for _, b := range [][]string{{"-o", bin, "."}, {"-o", loop, "github.com/hanwen/go-fuse/v2/example/loopback"}} {
		if out, err := exec.Command("go", append([]string{"build"}, b...)...).CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", b, err, out)
		}
	}
	stores := strings.Split(os.Getenv("VOLDFS_FUSE_BENCH_STORES"), ",")
	if stores[0] == "" {
		stores = []string{"bolt", "mem", "memcache"}
	}
	t.Logf("machine: %d CPUs, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	t.Logf("| mount | seq write 1 GiB (MB/s) | seq read 1 GiB (MB/s) | create 10,000 files (files/s) |")
	t.Logf("|---|---|---|---|")

	// go-fuse loopback over tmpfs.
	shm := filepath.Join(dir, "tmpfs")
	os.Mkdir(shm, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3g", "tmpfs", shm).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	defer exec.Command("umount", shm).Run()
	benchMount(t, "go-fuse loopback over tmpfs", dir, loop, "MNT", shm)
	for _, s := range stores {
		var url string
		switch s {
		case "bolt":
			url = "bolt:" + filepath.Join(dir, "bench.db")
		case "mem":
			url = "mem:"
		case "memcache":
			url = "memcache://" + benchMemcached(t)
		default:
			t.Fatalf("unknown store %q", s)
		}
		benchMount(t, "voldfs-mount "+s, dir, bin, "-store", url, "MNT")
	}
}

// benchMemcached starts a memcached big enough for the 1 GiB file.
func benchMemcached(t *testing.T) string {
	bin, err := exec.LookPath("memcached")
	if err != nil {
		t.Fatal("memcached not installed")
	}
	addr := "127.0.0.1:21299"
	cmd := exec.Command(bin, "-l", "127.0.0.1", "-p", "21299", "-U", "0", "-M", "-m", "4096", "-u", "root")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(300 * time.Millisecond)
	return addr
}

// benchMount runs bin with args (MNT replaced by a fresh mountpoint) and
// measures the three workloads on the mount.
func benchMount(t *testing.T, label, dir, bin string, args ...string) {
	mp, err := os.MkdirTemp(dir, "mnt")
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range args {
		if a == "MNT" {
			args[i] = mp
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Unmount(mp, 0)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	if !waitMounted(mp, true) {
		t.Fatalf("%s: not mounted", label)
	}
	const size, chunk = 1 << 30, 1 << 20
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i*7 + i>>8)
	}
	name := filepath.Join(mp, "big")

	start := time.Now()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < size; n += chunk {
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	write := time.Since(start)

	os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
	start = time.Now()
	f, err = os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for {
		n, err := f.Read(buf)
		total += n
		if err != nil || n == 0 {
			break
		}
	}
	f.Close()
	read := time.Since(start)
	if total != size {
		t.Fatalf("%s: read %d bytes, want %d", label, total, size)
	}
	os.Remove(name)

	small := make([]byte, 1024)
	start = time.Now()
	for d := 0; d < 10; d++ {
		sub := filepath.Join(mp, fmt.Sprint("d", d))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 1000; i++ {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprint("f", i)), small, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	create := time.Since(start)
	t.Logf("| %s | %.0f | %.0f | %.0f |", label, size/1e6/write.Seconds(), size/1e6/read.Seconds(), 10000/create.Seconds())
}

// TestBenchSmallFiles measures small-file work through the mount beside the
// local disk, in one run: extracting a tar of a Go source tree (src/net by
// default; VOLDFS_FUSE_BENCH_TREE=src for the whole of it) and touch of
// 10,000 new files, on bolt with group commit (the default), bolt with an
// fsync per commit, the memory store, and a directory of the local disk.
// VOLDFS_FUSE_BENCH_TARGETS picks some of local, mem, bolt and bolt-always.
// It runs only with VOLDFS_FUSE_BENCH_SMALL=1:
//
//	VOLDFS_FUSE_BENCH_SMALL=1 go test -run TestBenchSmallFiles -v -timeout 30m ./examples/voldfs-mount
func TestBenchSmallFiles(t *testing.T) {
	if os.Getenv("VOLDFS_FUSE_BENCH_SMALL") == "" {
		t.Skip("set VOLDFS_FUSE_BENCH_SMALL=1 to run the small-file FUSE benchmark")
	}
	requireFUSE(t)
	tree := "src/" + os.Getenv("VOLDFS_FUSE_BENCH_TREE") // under GOROOT
	if tree == "src/" {
		tree = "src/net"
	} else if tree == "src/src" {
		tree = "src"
	}
	dir := t.TempDir()
	tarball := filepath.Join(dir, "tree.tar")
	src := runtime.GOROOT()
	if out, err := exec.Command("tar", "-C", src, "-cf", tarball, tree).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	n := 0
	filepath.WalkDir(filepath.Join(src, tree), func(_ string, d os.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			n++
		}
		return nil
	})
	t.Logf("machine: %d CPUs, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	t.Logf("| target | untar %s (%d files) | touch 10,000 files |", tree, n)
	t.Logf("|---|---|---|")
	targets := []struct{ key, label, store string }{
		{"local", "local disk", ""},
		{"mem", "voldfs-mount mem", "mem:"},
		{"bolt", "voldfs-mount bolt (group commit)", "bolt:" + filepath.Join(dir, "group.db")},
		{"bolt-always", "voldfs-mount bolt sync=always", "bolt:" + filepath.Join(dir, "always.db") + "?sync=always"},
	}
	only := os.Getenv("VOLDFS_FUSE_BENCH_TARGETS") // e.g. "local,bolt"; empty: all
	for _, tg := range targets {
		if only != "" && !slices.Contains(strings.Split(only, ","), tg.key) {
			continue
		}
		m, root := benchRoot(t, dir, tg.store)
		run := func(name string, args ...string) time.Duration {
			t.Helper()
			return timedIn(t, tg.label, root, name, args...)
		}
		untar := run("tar", "-xf", tarball)
		if err := os.Mkdir(filepath.Join(root, "touch"), 0o755); err != nil {
			t.Fatal(err)
		}
		touch := run("sh", "-c", "cd touch && seq -f f%05g 10000 | xargs touch")
		if ents, err := os.ReadDir(filepath.Join(root, "touch")); err != nil || len(ents) != 10000 {
			t.Fatalf("%s: touch made %d files: %v", tg.label, len(ents), err)
		}
		t.Logf("| %s | %.2f s | %.2f s |", tg.label, untar.Seconds(), touch.Seconds())
		if m != nil {
			unmountT(t, m)
		}
	}
}

// TestBenchBolt measures, through the mount on bolt (group commit, the
// default) beside the memory store and a directory of the local disk, in
// one run: rm -rf of extracted Go source trees (src/net and the whole of
// src; their untar is timed too), a sequential write of 1 GiB with dd
// bs=1M conv=fsync, and a cold read of it with dd bs=1M. Before the cold
// read the page cache is dropped, and the bolt mount is remounted (the
// memory store cannot be: its read is cold only in the kernel's cache).
// VOLDFS_FUSE_BENCH_TARGETS picks some of local, mem, bolt and
// bolt-always; VOLDFS_FUSE_BENCH_TREES the trees under GOROOT/src (default
// "net,."). It runs only with VOLDFS_FUSE_BENCH_BOLT=1, as root:
//
//	VOLDFS_FUSE_BENCH_BOLT=1 go test -run TestBenchBolt -v -timeout 30m ./examples/voldfs-mount
func TestBenchBolt(t *testing.T) {
	if os.Getenv("VOLDFS_FUSE_BENCH_BOLT") == "" {
		t.Skip("set VOLDFS_FUSE_BENCH_BOLT=1 to run the bolt FUSE benchmark")
	}
	requireFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("the benchmark drops the page cache before the cold read: run as root")
	}
	dir := t.TempDir()
	trees := strings.Split(os.Getenv("VOLDFS_FUSE_BENCH_TREES"), ",")
	if trees[0] == "" {
		trees = []string{"net", "."}
	}
	var tarballs, labels []string
	for i, tr := range trees {
		tb := filepath.Join(dir, fmt.Sprint("tree", i, ".tar"))
		if out, err := exec.Command("tar", "-C", filepath.Join(runtime.GOROOT(), "src"), "-cf", tb, tr).CombinedOutput(); err != nil {
			t.Fatalf("tar %s: %v\n%s", tr, err, out)
		}
		n := 0
		filepath.WalkDir(filepath.Join(runtime.GOROOT(), "src", tr), func(_ string, d os.DirEntry, _ error) error {
			if d != nil && !d.IsDir() {
				n++
			}
			return nil
		})
		tarballs = append(tarballs, tb)
		labels = append(labels, fmt.Sprintf("%s (%d files)", filepath.Join("src", tr), n))
	}
	// The 1 GiB source: pseudo-random bytes on tmpfs, which drop_caches
	// leaves alone.
	src, err := os.CreateTemp("/dev/shm", "voldfs-bench")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(src.Name())
	r := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for i := 0; i < 1024; i++ {
		r.Read(buf)
		if _, err := src.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}

	t.Logf("machine: %d CPUs, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	head := "| target |"
	for _, l := range labels {
		head += fmt.Sprintf(" untar %s | rm -rf it |", l)
	}
	t.Log(head + " dd write 1 GiB conv=fsync | cold dd read 1 GiB |")
	t.Log("|---|" + strings.Repeat("---:|", 2*len(labels)+2))
	targets := []struct{ key, label, store string }{
		{"local", "local disk", ""},
		{"mem", "voldfs-mount mem", "mem:"},
		{"bolt", "voldfs-mount bolt (group commit)", "bolt:" + filepath.Join(dir, "group.db")},
		{"bolt-always", "voldfs-mount bolt sync=always", "bolt:" + filepath.Join(dir, "always.db") + "?sync=always"},
	}
	only := os.Getenv("VOLDFS_FUSE_BENCH_TARGETS")
	if only == "" {
		only = "local,mem,bolt"
	}
	for _, tg := range targets {
		if !slices.Contains(strings.Split(only, ","), tg.key) {
			continue
		}
		m, root := benchRoot(t, dir, tg.store)
		run := func(name string, args ...string) time.Duration {
			t.Helper()
			return timedIn(t, tg.label, root, name, args...)
		}
		row := "| " + tg.label + " |"
		for i, tb := range tarballs {
			sub := fmt.Sprint("t", i)
			if err := os.Mkdir(filepath.Join(root, sub), 0o755); err != nil {
				t.Fatal(err)
			}
			untar := run("tar", "-C", sub, "-xf", tb)
			run("sync")
			rm := run("rm", "-rf", sub)
			row += fmt.Sprintf(" %.2f s | %.2f s |", untar.Seconds(), rm.Seconds())
		}
		write := run("dd", "if="+src.Name(), "of=big", "bs=1M", "conv=fsync")
		if m != nil && tg.key != "mem" {
			unmountT(t, m)
			m = remount(t, tg.store, root)
		}
		run("sync")
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
			t.Fatal(err)
		}
		read := run("dd", "if=big", "of=/dev/null", "bs=1M")
		if fi, err := os.Stat(filepath.Join(root, "big")); err != nil || fi.Size() != 1<<30 {
			t.Fatalf("%s: big: %v, %v", tg.label, fi, err)
		}
		os.Remove(filepath.Join(root, "big"))
		const gib = 1 << 30
		row += fmt.Sprintf(" %.0f MB/s (%.2f s) | %.0f MB/s (%.2f s) |", gib/1e6/write.Seconds(), write.Seconds(), gib/1e6/read.Seconds(), read.Seconds())
		t.Log(row)
		if m != nil {
			unmountT(t, m)
		}
	}
}

// benchRoot returns where a benchmark target works: a fresh directory on
// the local disk for an empty store URL, else a fresh mount of store.
func benchRoot(t *testing.T, dir, store string) (*mounted, string) {
	t.Helper()
	if store != "" {
		return testMount(t, store)
	}
	root := filepath.Join(dir, "local")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return nil, root
}

// timedIn runs a program in directory root and returns how long it took.
// The child enters root after exec (sh cd), never between fork and exec:
// this process is the FUSE server, and a child that touches the mount while
// the server holds the fork lock hangs.
func timedIn(t *testing.T, label, root, name string, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("sh", append([]string{"-c", `cd "$0" && exec "$@"`, root, name}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %s %v: %v\n%s", label, name, args, err, out)
	}
	return time.Since(start)
}
