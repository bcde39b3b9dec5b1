package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
	"golang.org/x/sys/unix"

	"github.com/voldfs/voldfs/internal/testserver"
)

// Real programs and several processes through the kernel mount: what one
// process writes through one descriptor, another descriptor or process
// reads at once (the kernel's page cache is one per inode, and so is the
// library's open state); mmap writes are never lost; SQLite, git and
// go-fuse's posixtest suite run on the mount.

// needBinary returns the path of a program the test needs; in CI a missing
// one is a failure.
func needBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (CI)", name)
		}
		t.Skipf("no %s binary", name)
	}
	return p
}

// stores returns the store URLs the multi-store tests run on: bolt and
// memcached.
func stores(t *testing.T) map[string]func() string {
	return map[string]func() string{
		"bolt":      func() string { return "bolt:" + filepath.Join(t.TempDir(), "voldfs.db") },
		"memcached": func() string { return "memcache://" + testserver.Memcached(t) },
	}
}

// child runs this test binary as another process doing one of the helper
// actions of TestHelperProcess.
func child(t *testing.T, action string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "--")
	cmd.Env = append(os.Environ(), "VOLDFS_HELPER="+action, "VOLDFS_HELPER_ARGS="+strings.Join(args, "\x1f"))
	return cmd
}

// TestHelperProcess is the other process of the multi-process tests; it
// does nothing unless VOLDFS_HELPER names an action.
func TestHelperProcess(t *testing.T) {
	action := os.Getenv("VOLDFS_HELPER")
	if action == "" {
		return
	}
	args := strings.Split(os.Getenv("VOLDFS_HELPER_ARGS"), "\x1f")
	fail := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", a...)
		os.Exit(1)
	}
	switch action {
	case "read": // read FILE: print its content
		b, err := os.ReadFile(args[0])
		if err != nil {
			fail("read: %v", err)
		}
		os.Stdout.Write(b)
	case "write": // write FILE DATA: replace the content with DATA and keep the file open until stdin closes
		f, err := os.OpenFile(args[0], os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			fail("open: %v", err)
		}
		if _, err := f.WriteAt([]byte(args[1]), 0); err != nil {
			fail("write: %v", err)
		}
		fmt.Println("written")
		buf := make([]byte, 1)
		os.Stdin.Read(buf)
		if err := f.Close(); err != nil {
			fail("close: %v", err)
		}
	case "mmap": // mmap FILE SIZE: write through a shared mapping, then at each stdin line go on (see TestMmapShared)
		size, err := strconv.Atoi(args[1])
		if err != nil {
			fail("size: %v", err)
		}
		f, err := os.OpenFile(args[0], os.O_RDWR, 0)
		if err != nil {
			fail("open: %v", err)
		}
		m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			fail("mmap: %v", err)
		}
		for i := 0; i < size; i += 1000 {
			copy(m[i:], "mmap!")
		}
		in := bufio.NewReader(os.Stdin)
		fmt.Println("written")
		in.ReadString('\n')
		copy(m[5000:], "second")
		if err := unix.Msync(m, unix.MS_SYNC); err != nil {
			fail("msync: %v", err)
		}
		fmt.Println("synced")
		in.ReadString('\n')
		if err := unix.Munmap(m); err != nil {
			fail("munmap: %v", err)
		}
		if err := f.Close(); err != nil {
			fail("close: %v", err)
		}
	default:
		fail("unknown helper action %q", action)
	}
	os.Exit(0)
}

// TestMmapShared: a shared mapping written in one process is read by
// another process that opens the file, and after msync and munmap nothing
// is lost. The mapping lives in a child: a page fault of the FUSE server's
// own process on its own mount can wait for a request that a stopped world
// (the Go garbage collector) never serves, and hang the test.
func TestMmapShared(t *testing.T) {
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			_, mp := testMount(t, store())
			p := filepath.Join(mp, "mapped")
			const size = 3 * 4096
			if err := os.WriteFile(p, bytes.Repeat([]byte{'.'}, size), 0o644); err != nil {
				t.Fatal(err)
			}
			want := bytes.Repeat([]byte{'.'}, size)
			for i := 0; i < size; i += 1000 {
				copy(want[i:], "mmap!")
			}
			w := child(t, "mmap", p, strconv.Itoa(size))
			stdin, err := w.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := w.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			w.Stderr = os.Stderr
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			defer w.Wait()
			defer stdin.Close()
			lines := bufio.NewReader(stdout)
			step := func(want string) {
				t.Helper()
				if got, err := lines.ReadString('\n'); err != nil || strings.TrimSpace(got) != want {
					t.Fatalf("mapping process: %q, %v; want %q", got, err, want)
				}
			}
			step("written")
			out, err := child(t, "read", p).Output()
			if err != nil || !bytes.Equal(out, want) {
				t.Errorf("another process reads the mapped file before msync: %d bytes, equal %v, %v", len(out), bytes.Equal(out, want), err)
			}
			if out, err := exec.Command("cat", p).Output(); err != nil || !bytes.Equal(out, want) {
				t.Errorf("cat reads the mapped file before msync: equal %v, %v", bytes.Equal(out, want), err)
			}
			// More writes after the other processes opened and read.
			copy(want[5000:], "second")
			fmt.Fprintln(stdin)
			step("synced")
			if out, err := exec.Command("cat", p).Output(); err != nil || !bytes.Equal(out, want) {
				t.Errorf("cat after msync: equal %v, %v", bytes.Equal(out, want), err)
			}
			fmt.Fprintln(stdin)
			if err := w.Wait(); err != nil {
				t.Fatalf("mapping process: %v", err)
			}
			if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, want) {
				t.Errorf("after munmap and close: equal %v, %v", bytes.Equal(b, want), err)
			}
		})
	}
}

// Features voldfs does not have yet, with what the kernel returns for them.
// Each has its own issue; the test checks they fail with that error rather
// than pretend to work.
var posixUnsupported = map[string]string{
	"Tmpfile": "O_TMPFILE is not implemented: EOPNOTSUPP",
	// The test takes a write lock through one descriptor and expects a read
	// lock through another of the same process to fail. That holds for
	// open-file-description locks (its loopback filesystem takes OFD locks
	// underneath), not for the POSIX record locks fcntl(F_SETLK) asks for:
	// a process never conflicts with its own locks. The mount forwards
	// locks to the library, which keeps POSIX semantics; checked below.
	"FcntlFlockLocksFile": "POSIX locks of one process do not conflict (the test assumes OFD semantics)",
}

// TestPosixtest runs go-fuse's posixtest suite against the mount, each
// test in a fresh directory; the unsupported features are checked for the
// error they must give.
func TestPosixtest(t *testing.T) { forStores(t, posixtestOn) }

func posixtestOn(t *testing.T, store string) {
	_, mp := testMount(t, store)
	var names []string
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := posixUnsupported[name]; ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(mp, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			posixtest.All[name](t, dir)
		})
	}

	dir := filepath.Join(mp, "unsupported")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "file")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("data"))
	wantNotSup := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, syscall.EOPNOTSUPP) {
			t.Errorf("%s: got %v, want EOPNOTSUPP", what, err)
		}
	}
	wantNotSup("fallocate COLLAPSE_RANGE", unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, 4096))
	wantNotSup("fallocate PUNCH_HOLE without KEEP_SIZE", unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE, 0, 4096))
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR, 0o600)
	if err == nil {
		unix.Close(fd)
	}
	wantNotSup("O_TMPFILE", err)
	// POSIX record locks: this process's own locks never conflict
	// (TestSQLite relies on other processes' locks conflicting).
	wlk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &wlk); err != nil {
		t.Fatalf("F_SETLK write lock: %v", err)
	}
	g, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	rlk := unix.Flock_t{Type: unix.F_RDLCK}
	if err := unix.FcntlFlock(g.Fd(), unix.F_SETLK, &rlk); err != nil {
		t.Errorf("F_SETLK read lock of the same process: %v, want success (POSIX)", err)
	}
}

// TestTwoMountsRewrite: 200 rounds of "rewrite longer in mount A, close,
// open and read in mount B at once": B reads exactly what A wrote, never a
// truncated or an older version, with the default attribute window. Then
// 50 rounds of rewrites that keep the size and restore the mtime (as rsync
// or tar do), which the kernel cannot tell from its cached attributes.
func TestTwoMountsRewrite(t *testing.T) {
	store := "memcache://" + testserver.Memcached(t)
	_, a := testMount(t, store)
	_, b := testMount(t, store)
	pa, pb := filepath.Join(a, "f"), filepath.Join(b, "f")
	if err := os.WriteFile(pa, []byte("v0"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(pb); err != nil {
		t.Fatal(err)
	}
	check := func(what string, rounds int, content func(i int) []byte, after func()) {
		truncated, stale := 0, 0
		for i := 1; i <= rounds; i++ {
			want := content(i)
			if err := os.WriteFile(pa, want, 0o644); err != nil {
				t.Fatal(err)
			}
			after()
			got, err := os.ReadFile(pb)
			switch {
			case err != nil:
				t.Fatalf("%s: round %d: read in B: %v", what, i, err)
			case bytes.Equal(got, want):
			case len(got) < len(want) && bytes.HasPrefix(want, got):
				truncated++
			default:
				stale++
			}
		}
		if truncated+stale > 0 {
			t.Errorf("%s: %d of %d rounds read wrong in B: %d truncated, %d stale or mixed", what, truncated+stale, rounds, truncated, stale)
		}
	}
	check("longer", 200, func(i int) []byte { return []byte(fmt.Sprintf("v%d:%s", i, strings.Repeat("x", i*10))) }, func() {})
	fi, err := os.Stat(pa)
	if err != nil {
		t.Fatal(err)
	}
	size := int(fi.Size())
	check("same size and mtime", 50, func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i%26)}, size) }, func() {
		if err := os.Chtimes(pa, fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestKeepCache: a file no one changed is read again from the kernel's
// page cache (the library serves no read), and one changed through this
// mount or another is read afresh.
func TestKeepCache(t *testing.T) {
	store := "memcache://" + testserver.Memcached(t)
	m, a := testMount(t, store)
	_, b := testMount(t, store)
	p := filepath.Join(a, "f")
	data := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	reads := func() int64 { s := m.vfs.Stats(); return s.BlockGets + s.CacheHits + s.CacheMisses }
	read := func(what string, want []byte) {
		t.Helper()
		if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: read %d bytes, equal %v, %v", what, len(got), bytes.Equal(got, want), err)
		}
	}
	read("first read", data)
	// The kernel may still refresh the attributes the write left (and drop
	// its pages once on seeing them change): let one more read settle that,
	// then an unchanged file must cost nothing.
	read("second read", data)
	before := reads()
	read("third read", data)
	if n := reads() - before; n != 0 {
		t.Errorf("re-reading an unchanged file: %d block reads in the library, want 0 (page cache kept)", n)
	}
	// Changed through this mount: read afresh and right.
	copy(data[100:], "through this mount")
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("through this mount"), 100)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	read("after a write here", data)
	// Changed through the other mount, same size and restored mtime.
	fi, _ := os.Stat(p)
	copy(data[5000:], "through the other mount")
	g, err := os.OpenFile(filepath.Join(b, "f"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.WriteAt([]byte("through the other mount"), 5000)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(b, "f"), fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	read("after a write in the other mount", data)
}

// TestCallerOwns: a file, directory and symlink made by another user
// belong to that user (one commit: the library creates them owned).
func TestCallerOwns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a program as another user")
	}
	// Other users reach a FUSE mount only with allow_other.
	_, mp := testMount(t, "mem:", func(c *config) { c.options = "allow_other" })
	// The other user must reach the mount point (t.TempDir is 0700).
	for d := filepath.Dir(mp); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	if err := os.Chmod(mp, 0o777); err != nil {
		t.Fatal(err)
	}
	// Not cmd.Dir = mp: the child would enter the mount between fork and
	// exec, while this process (the FUSE server) holds the fork lock.
	cmd := exec.Command("sh", "-c", `cd "$1" && touch f && mkdir d && ln -s f l`, "sh", mp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4321, Gid: 8765}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as uid 4321: %v: %s", err, out)
	}
	for _, name := range []string{"f", "d", "l"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(mp, name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != 4321 || st.Gid != 8765 {
			t.Errorf("%s: owned by %d:%d, want 4321:8765", name, st.Uid, st.Gid)
		}
	}
}
