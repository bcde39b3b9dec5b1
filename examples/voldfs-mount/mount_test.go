package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/voldfs/voldfs/internal/testserver"
)

// The tests mount through the real kernel: the FUSE server runs in the test
// process and the test talks to the mount with ordinary system calls.

// requireFUSE skips the test when FUSE mounts are impossible here, and fails
// it in CI (CI set in the environment), where they must work.
func requireFUSE(t testing.TB) {
	t.Helper()
	why := ""
	if _, err := os.Stat("/dev/fuse"); err != nil {
		why = "no /dev/fuse"
	} else if os.Geteuid() != 0 {
		if _, err := exec.LookPath("fusermount3"); err != nil {
			why = "not root and no fusermount3"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("FUSE unavailable in CI: %s", why)
	}
	t.Skipf("FUSE unavailable (%s): these tests need a kernel mount", why)
}

// testMount mounts store on a fresh directory and returns the mount; it is
// unmounted when the test ends unless the test unmounts it first.
func testMount(t testing.TB, store string, extra ...func(*config)) (*mounted, string) {
	t.Helper()
	requireFUSE(t)
	dir := t.TempDir()
	mp := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	return remount(t, store, mp, extra...), mp
}

// remount mounts store on mp.
func remount(t testing.TB, store, mp string, extra ...func(*config)) *mounted {
	t.Helper()
	c := &config{store: store, name: "voldfs", attrTimeout: time.Second, mountpoint: mp}
	for _, f := range extra {
		f(c)
	}
	var stderr bytes.Buffer
	m, err := mount(c, &stderr)
	if err != nil {
		if os.Getenv("CI") == "" && strings.Contains(err.Error(), "fuse") {
			t.Skipf("cannot mount FUSE here: %v", err)
		}
		t.Fatalf("mount %s on %s: %v", store, mp, err)
	}
	t.Cleanup(func() { unmountT(t, m) })
	return m
}

// unmountT unmounts m and releases its store; a second call does nothing.
func unmountT(t testing.TB, m *mounted) {
	t.Helper()
	if m.store == nil {
		return
	}
	if err := m.unmount(); err != nil {
		t.Errorf("unmount: %v", err)
		return
	}
	m.server.Wait()
	if err := m.close(); err != nil {
		t.Errorf("close store: %v", err)
	}
	m.store = nil
}

// makeTree writes a seeded tree of files under root: nested directories,
// mostly small files, some spanning several 512 KiB blocks, varied modes.
func makeTree(t testing.TB, root string, files int, seed uint64) {
	t.Helper()
	t.Logf("tree seed %d", seed)
	r := rand.New(rand.NewPCG(seed, seed))
	dirs := []string{"."}
	for i := 0; i < files; i++ {
		if r.IntN(12) == 0 {
			d := filepath.Join(dirs[r.IntN(len(dirs))], fmt.Sprintf("dir%03d", i))
			if err := os.Mkdir(filepath.Join(root, d), []fs.FileMode{0o755, 0o750, 0o700}[r.IntN(3)]); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, d)
		}
		var size int
		switch k := r.IntN(100); {
		case k < 1:
			size = 512<<10*2 + r.IntN(600<<10) // three blocks or so
		case k < 4:
			size = 4<<10 + r.IntN(200<<10)
		case k < 10:
			size = 0
		default:
			size = r.IntN(6 << 10)
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		name := filepath.Join(root, dirs[r.IntN(len(dirs))], fmt.Sprintf("f%04d.dat", i))
		mode := []fs.FileMode{0o644, 0o600, 0o755, 0o444}[r.IntN(4)]
		if err := os.WriteFile(name, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(name, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// copyTree copies the tree at src into dst (which exists) with the os
// package: directories, regular files with their modes, symlinks.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case rel == ".":
			return nil
		case fi.IsDir():
			if err := os.Mkdir(to, 0o755); err != nil {
				return err
			}
			return os.Chmod(to, fi.Mode().Perm())
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		return os.Chmod(to, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}

// listing is the ls -lR of a tree plus a sha256 of every file: one line
// per entry, sorted.
func listing(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %d %x", fi.Size(), sha256.Sum256(b))
			if int64(len(b)) != fi.Size() {
				return fmt.Errorf("%s: read %d bytes, stat says %d", rel, len(b), fi.Size())
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", root, err)
	}
	slices.Sort(out)
	return out
}

func sameListing(t testing.TB, what string, want, got []string) {
	t.Helper()
	if slices.Equal(want, got) {
		return
	}
	n := 0
	for i := 0; i < max(len(want), len(got)) && n < 10; i++ {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		if w != g {
			t.Errorf("%s: entry %d: want %q, got %q", what, i, w, g)
			n++
		}
	}
	t.Fatalf("%s: listings differ (%d vs %d entries)", what, len(want), len(got))
}

// roundTrip is the ancestor's test: copy a tree in, unmount, remount, and
// compare every name, size, mode and sha256.
func roundTrip(t *testing.T, store string) {
	src := t.TempDir()
	makeTree(t, src, 1100, 1)
	want := listing(t, src)
	m, mp := testMount(t, store)
	copyTree(t, src, mp)
	sameListing(t, "before unmount", want, listing(t, mp))
	unmountT(t, m)
	if entries, err := os.ReadDir(mp); err != nil || len(entries) != 0 {
		t.Fatalf("mountpoint after unmount: %d entries, %v", len(entries), err)
	}
	remount(t, store, mp)
	sameListing(t, "after remount", want, listing(t, mp))
}

func TestTreeRoundTripBolt(t *testing.T) {
	roundTrip(t, "bolt:"+filepath.Join(t.TempDir(), "voldfs.db"))
}

func TestTreeRoundTripMemcached(t *testing.T) {
	roundTrip(t, "memcache://"+testserver.Memcached(t))
}

// TestTar extracts an archive into the mount and archives it again.
func TestTar(t *testing.T) {
	src := t.TempDir()
	makeTree(t, src, 200, 2)
	if err := os.WriteFile(filepath.Join(src, "top.dat"), []byte("top"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(src, "top.dat"), time.Time{}, time.Date(2011, 1, 2, 3, 4, 5, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("top.dat", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	want := listing(t, src)
	_, mp := testMount(t, "mem:")
	tarBin, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar binary") // archive/tar would test only the os package calls copyTree covers
	}
	work := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(tarBin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("tar %v: %v\n%s", args, err, out)
		}
	}
	run("-cf", filepath.Join(work, "in.tar"), "-C", src, ".")
	x := filepath.Join(mp, "x")
	if err := os.Mkdir(x, 0o755); err != nil {
		t.Fatal(err)
	}
	run("-xpf", filepath.Join(work, "in.tar"), "-C", x)
	sameListing(t, "extracted", want, listing(t, x))
	run("-cf", filepath.Join(mp, "out.tar"), "-C", x, ".")
	back := filepath.Join(work, "back")
	if err := os.Mkdir(back, 0o755); err != nil {
		t.Fatal(err)
	}
	run("-xpf", filepath.Join(mp, "out.tar"), "-C", back)
	sameListing(t, "re-created", want, listing(t, back))
	// mtimes survive extraction (tar sets them after writing).
	fi, err := os.Stat(filepath.Join(x, "top.dat"))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2011, 1, 2, 3, 4, 5, 0, time.UTC); !fi.ModTime().Equal(want) {
		t.Errorf("mtime after extract: %v, want %v", fi.ModTime(), want)
	}
}

// TestGit runs git init, add, commit and fsck inside the mount.
func TestGit(t *testing.T) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("git not installed")
		}
		t.Skip("no git binary")
	}
	_, mp := testMount(t, "mem:")
	repo := filepath.Join(mp, "repo")
	home := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		// -C, not cmd.Dir: a child must not enter the mount before exec
		// (this process, the FUSE server, holds the fork lock until then).
		cmd := exec.Command(gitBin, append([]string{"-C", repo, "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if err := os.Mkdir(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	git("init", "-q")
	makeTree(t, repo, 150, 3)
	if err := os.WriteFile(filepath.Join(repo, "README"), []byte("first\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "-A")
	git("commit", "-q", "-m", "first")
	if err := os.WriteFile(filepath.Join(repo, "README"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(repo, "README"), filepath.Join(repo, "README.txt")); err != nil {
		t.Fatal(err)
	}
	git("add", "-A")
	git("commit", "-q", "-m", "second")
	git("gc", "-q")
	git("fsck", "--full", "--strict")
	if st := git("status", "--porcelain"); st != "" {
		t.Errorf("git status after commit: %q", st)
	}
	if log := git("log", "--format=%s"); log != "second\nfirst\n" {
		t.Errorf("git log: %q", log)
	}
}

// wantErrno checks that err wraps errno.
func wantErrno(t *testing.T, what string, err error, errno syscall.Errno) {
	t.Helper()
	if !errors.Is(err, errno) {
		t.Errorf("%s: got %v, want %v", what, err, errno)
	}
}

// TestPOSIX checks namespace and attribute calls through the kernel.
func TestPOSIX(t *testing.T) {
	_, mp := testMount(t, "mem:")
	p := func(name string) string { return filepath.Join(mp, name) }
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(p(name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(p(name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("rename", func(t *testing.T) {
		write("r1", "one")
		write("r2", "two")
		if err := os.Rename(p("r1"), p("r2")); err != nil {
			t.Fatal(err)
		}
		if got := read("r2"); got != "one" {
			t.Errorf("rename over a file: content %q", got)
		}
		_, err := os.Stat(p("r1"))
		wantErrno(t, "stat renamed-away name", err, syscall.ENOENT)
		os.Mkdir(p("rd"), 0o755)
		if err := os.Rename(p("r2"), p("rd/r3")); err != nil {
			t.Fatal(err)
		}
		if got := read("rd/r3"); got != "one" {
			t.Errorf("rename across directories: content %q", got)
		}
		write("r4", "four")
		err = unix.Renameat2(unix.AT_FDCWD, p("r4"), unix.AT_FDCWD, p("rd/r3"), unix.RENAME_NOREPLACE)
		wantErrno(t, "RENAME_NOREPLACE onto an existing name", err, syscall.EEXIST)
		if err := unix.Renameat2(unix.AT_FDCWD, p("r4"), unix.AT_FDCWD, p("r5"), unix.RENAME_NOREPLACE); err != nil {
			t.Errorf("RENAME_NOREPLACE to a new name: %v", err)
		}
		r5, _ := os.ReadFile(p("r5"))
		r3, _ := os.ReadFile(p("rd/r3"))
		if err := unix.Renameat2(unix.AT_FDCWD, p("r5"), unix.AT_FDCWD, p("rd/r3"), unix.RENAME_EXCHANGE); err != nil {
			t.Errorf("RENAME_EXCHANGE: %v", err)
		}
		if a, _ := os.ReadFile(p("r5")); !bytes.Equal(a, r3) {
			t.Errorf("after RENAME_EXCHANGE r5 holds %q, want %q", a, r3)
		}
		if b, _ := os.ReadFile(p("rd/r3")); !bytes.Equal(b, r5) {
			t.Errorf("after RENAME_EXCHANGE rd/r3 holds %q, want %q", b, r5)
		}
		err = unix.Renameat2(unix.AT_FDCWD, p("r5"), unix.AT_FDCWD, p("nothere"), unix.RENAME_EXCHANGE)
		wantErrno(t, "RENAME_EXCHANGE with a missing target", err, syscall.ENOENT)
		os.Mkdir(p("rd/sub"), 0o755)
		err = os.Rename(p("rd"), p("rd/sub/x"))
		wantErrno(t, "rename a directory into itself", err, syscall.EINVAL)
		os.Mkdir(p("full"), 0o755)
		write("full/f", "x")
		// POSIX allows either errno.
		if err = os.Rename(p("rd/sub"), p("full")); !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			t.Errorf("rename onto a non-empty directory: got %v, want ENOTEMPTY or EEXIST", err)
		}
		err = os.Rename(p("nope"), p("nope2"))
		wantErrno(t, "rename a missing name", err, syscall.ENOENT)
	})

	t.Run("unlink", func(t *testing.T) {
		write("u", "data")
		f, err := os.Open(p("u"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(p("u")); err != nil {
			t.Fatal(err)
		}
		_, err = os.Stat(p("u"))
		wantErrno(t, "stat unlinked", err, syscall.ENOENT)
		b, err := io.ReadAll(f)
		if err != nil || string(b) != "data" {
			t.Errorf("read an open unlinked file: %q, %v", b, err)
		}
		f.Close()
		wantErrno(t, "unlink missing", syscall.Unlink(p("u")), syscall.ENOENT)
		os.Mkdir(p("ud"), 0o755)
		wantErrno(t, "unlink a directory", syscall.Unlink(p("ud")), syscall.EISDIR)
		write("ud/f", "x")
		wantErrno(t, "rmdir non-empty", syscall.Rmdir(p("ud")), syscall.ENOTEMPTY)
		wantErrno(t, "rmdir a file", syscall.Rmdir(p("ud/f")), syscall.ENOTDIR)
		os.Remove(p("ud/f"))
		if err := syscall.Rmdir(p("ud")); err != nil {
			t.Errorf("rmdir empty: %v", err)
		}
		wantErrno(t, "mkdir existing", os.Mkdir(p("rd"), 0o755), syscall.EEXIST)
		_, err = os.OpenFile(p("rd"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		wantErrno(t, "O_EXCL existing", err, syscall.EEXIST)
		_, err = os.Open(p("missing/x"))
		wantErrno(t, "open under a missing directory", err, syscall.ENOENT)
	})

	t.Run("truncate", func(t *testing.T) {
		big := bytes.Repeat([]byte("abcdefgh"), 200<<10) // 1.6 MB: four blocks
		if err := os.WriteFile(p("t"), big, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p("t"), 700<<10); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p("t"), 1<<20); err != nil {
			t.Fatal(err)
		}
		b := []byte(read("t"))
		want := append(bytes.Clone(big[:700<<10]), make([]byte, 1<<20-700<<10)...)
		if !bytes.Equal(b, want) {
			t.Errorf("truncate down then up: %d bytes, content differs", len(b))
		}
		// ftruncate on an open file with buffered writes.
		f, err := os.OpenFile(p("t"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte("XYZ"), 10)
		if err := f.Truncate(5); err != nil {
			t.Fatal(err)
		}
		if fi, err := f.Stat(); err != nil || fi.Size() != 5 {
			t.Errorf("fstat after ftruncate: %v, %v", fi, err)
		}
		f.Close()
		if got := read("t"); got != "abcde" {
			t.Errorf("after ftruncate: %q", got)
		}
		// O_TRUNC
		f, err = os.OpenFile(p("t"), os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if fi, _ := os.Stat(p("t")); fi.Size() != 0 {
			t.Errorf("size after O_TRUNC: %d", fi.Size())
		}
		os.Mkdir(p("td"), 0o755)
		wantErrno(t, "truncate a directory", os.Truncate(p("td"), 0), syscall.EISDIR)
	})

	t.Run("stat while writing", func(t *testing.T) {
		f, err := os.Create(p("w"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.Write(make([]byte, 12345))
		if fi, err := os.Stat(p("w")); err != nil || fi.Size() != 12345 {
			t.Errorf("stat of a file being written: %v, %v", fi, err)
		}
		f.Write([]byte("more"))
		if fi, err := f.Stat(); err != nil || fi.Size() != 12349 {
			t.Errorf("fstat of a file being written: %v, %v", fi, err)
		}
	})

	t.Run("chmod chown utimes", func(t *testing.T) {
		write("c", "x")
		for _, mode := range []fs.FileMode{0o600, 0o755, 0, 0o4755 | fs.ModeSetuid} {
			if err := os.Chmod(p("c"), mode); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(p("c"))
			if err != nil {
				t.Fatal(err)
			}
			want := mode.Perm() | mode&fs.ModeSetuid
			if got := fi.Mode() &^ fs.ModeType; got != want {
				t.Errorf("chmod %v: stat says %v", want, got)
			}
		}
		if err := os.Chown(p("c"), 1234, 5678); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p("c"))
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1234 || st.Gid != 5678 {
			t.Errorf("chown: uid %d gid %d", st.Uid, st.Gid)
		}
		when := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
		if err := os.Chtimes(p("c"), when, when); err != nil {
			t.Fatal(err)
		}
		fi, _ = os.Stat(p("c"))
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.ModTime().Equal(when) || time.Unix(st.Atim.Unix()).UTC() != when {
			t.Errorf("utimes: mtime %v atime %v, want %v", fi.ModTime(), time.Unix(st.Atim.Unix()), when)
		}
		before := time.Now().Add(-time.Second)
		now := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p("c"), now, 0); err != nil {
			t.Fatal(err)
		}
		fi, _ = os.Stat(p("c"))
		if fi.ModTime().Before(before) {
			t.Errorf("UTIME_NOW: mtime %v", fi.ModTime())
		}
	})

	t.Run("symlink", func(t *testing.T) {
		write("target", "pointed")
		if err := os.Symlink("target", p("sl")); err != nil {
			t.Fatal(err)
		}
		if got, err := os.Readlink(p("sl")); err != nil || got != "target" {
			t.Errorf("readlink: %q, %v", got, err)
		}
		if got := read("sl"); got != "pointed" {
			t.Errorf("read through symlink: %q", got)
		}
		fi, err := os.Lstat(p("sl"))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 || fi.Size() != int64(len("target")) {
			t.Errorf("lstat symlink: %v, %v", fi, err)
		}
		wantErrno(t, "symlink over existing", os.Symlink("x", p("sl")), syscall.EEXIST)
		_, err = os.Readlink(p("target"))
		wantErrno(t, "readlink a file", err, syscall.EINVAL)
		os.Symlink("nowhere", p("dangling"))
		_, err = os.Stat(p("dangling"))
		wantErrno(t, "stat dangling symlink", err, syscall.ENOENT)
	})

	t.Run("hard link", func(t *testing.T) {
		write("h1", "shared")
		if err := os.Link(p("h1"), p("rd/h2")); err != nil {
			t.Fatal(err)
		}
		a, _ := os.Stat(p("h1"))
		b, _ := os.Stat(p("rd/h2"))
		sa, sb := a.Sys().(*syscall.Stat_t), b.Sys().(*syscall.Stat_t)
		if sa.Ino != sb.Ino || sb.Nlink != 2 {
			t.Errorf("link: inodes %d %d, nlink %d", sa.Ino, sb.Ino, sb.Nlink)
		}
		f, err := os.OpenFile(p("rd/h2"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("+more"))
		f.Close()
		if got := read("h1"); got != "shared+more" {
			t.Errorf("write through one link, read the other: %q", got)
		}
		os.Remove(p("h1"))
		if fi, err := os.Stat(p("rd/h2")); err != nil || fi.Sys().(*syscall.Stat_t).Nlink != 1 {
			t.Errorf("nlink after unlinking one: %v, %v", fi, err)
		}
		wantErrno(t, "link a directory", os.Link(p("rd"), p("rdlink")), syscall.EPERM)
		wantErrno(t, "link onto existing", os.Link(p("rd/h2"), p("r5")), syscall.EEXIST)
	})

	t.Run("readdir", func(t *testing.T) {
		d := p("many")
		os.Mkdir(d, 0o755)
		want := map[string]bool{}
		for i := 0; i < 700; i++ {
			name := fmt.Sprintf("entry-%d-%s", i, strings.Repeat("n", i%40))
			want[name] = true
			if err := os.WriteFile(filepath.Join(d, name), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		f, err := os.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		got := map[string]int{}
		// Small batches: many getdents calls, each resuming at an offset.
		for {
			names, err := f.Readdirnames(7)
			for _, n := range names {
				got[n]++
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		for n := range want {
			if got[n] != 1 {
				t.Errorf("readdir: %q seen %d times", n, got[n])
			}
		}
		if len(got) != len(want) {
			t.Errorf("readdir: %d names, want %d", len(got), len(want))
		}
		// Seek back to the start and list again: same names.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		again, err := f.Readdirnames(-1)
		if err != nil || len(again) != len(want) {
			t.Errorf("readdir after rewind: %d names, %v", len(again), err)
		}
	})

	t.Run("statfs", func(t *testing.T) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(mp, &st); err != nil {
			t.Fatal(err)
		}
		if st.Bsize != 512<<10 || st.Bavail == 0 || st.Ffree == 0 || st.Namelen != 255 {
			t.Errorf("statfs: %+v", st)
		}
	})
}

// TestTwoMounts mounts one memcached filesystem twice: each sees the other's
// files once they are closed (close-to-open), even ones it read before.
func TestTwoMounts(t *testing.T) {
	store := "memcache://" + testserver.Memcached(t)
	_, a := testMount(t, store)
	_, b := testMount(t, store)
	if err := os.WriteFile(filepath.Join(a, "from-a"), []byte("hello from a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(b, "from-a")); err != nil || string(got) != "hello from a" {
		t.Fatalf("b reads a's file: %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(b, "from-b"), bytes.Repeat([]byte("b"), 600<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(a, "from-b")); err != nil || len(got) != 600<<10 {
		t.Fatalf("a reads b's file: %d bytes, %v", len(got), err)
	}
	// A rewrite in a shows in b at b's next open, though b has the old
	// content in its page cache and the size and mtime (restored, as
	// rsync or tar would) do not tell the kernel the data changed.
	fi, err := os.Stat(filepath.Join(a, "from-a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a, "from-a"), []byte("HELLO AGAIN!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(a, "from-a"), fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(b, "from-a")); err != nil || string(got) != "HELLO AGAIN!" {
		t.Errorf("b rereads a's rewritten file: %q, %v", got, err)
	}
	// Names removed in b go from a's listing once the entry window passes.
	if err := os.Remove(filepath.Join(b, "from-a")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(a, "from-a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a stats the file b removed: %v", err)
	}
	names, err := os.ReadDir(a)
	if err != nil || len(names) != 1 || names[0].Name() != "from-b" {
		t.Errorf("a lists: %v, %v", names, err)
	}
}

// TestSignal runs the binary and stops it with SIGINT and SIGTERM: it
// unmounts and exits 0, and the data stays in the store.
func TestSignal(t *testing.T) {
	requireFUSE(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "voldfs-mount")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	mp := filepath.Join(dir, "mnt")
	os.Mkdir(mp, 0o755)
	store := "bolt:" + filepath.Join(dir, "s.db")
	for i, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM} {
		stderr := &lockedBuffer{}
		cmd := exec.Command(bin, "-store", store, mp)
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if !waitMounted(mp, true) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("not mounted; stderr: %s", stderr.String())
		}
		if formatted := strings.Contains(stderr.String(), "formatted"); formatted != (i == 0) {
			t.Errorf("run %d: stderr %q", i, stderr.String())
		}
		name := filepath.Join(mp, fmt.Sprint("file", i))
		if err := os.WriteFile(name, []byte("kept"), 0o644); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if b, err := os.ReadFile(filepath.Join(mp, "file0")); err != nil || string(b) != "kept" {
				t.Errorf("file from the first mount: %q, %v", b, err)
			}
		}
		cmd.Process.Signal(sig)
		if err := cmd.Wait(); err != nil {
			t.Errorf("exit after %v: %v; stderr: %s", sig, err, stderr.String())
		}
		if waitMounted(mp, false) == false {
			t.Fatalf("still mounted after %v", sig)
		}
	}
}

// waitMounted waits up to 10 s for mp to be (or not be) a mount point.
func waitMounted(mp string, want bool) bool {
	for i := 0; i < 100; i++ {
		if (checkMountpoint(mp) != nil) == want {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// lockedBuffer is a bytes.Buffer a child process's output goroutine and
// the test can share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
