package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tests that fail until the library shares one open state among the
// handles of an inode (a read through any descriptor sees the writes made
// through every other): today a FUSE read through one handle does not see
// the writes buffered in another. They run with VOLDFS_PENDING=1.

func pending(t *testing.T) {
	t.Helper()
	if os.Getenv("VOLDFS_PENDING") == "" {
		t.Skip("pending the library's shared per-inode open state; run with VOLDFS_PENDING=1")
	}
}

// TestTwoDescriptors: a write through one descriptor is read through
// another at once, while the first is still open, in one process and from
// another process, both ways.
func TestTwoDescriptors(t *testing.T) {
	pending(t)
	for name, store := range stores(t) {
		t.Run(name, func(t *testing.T) {
			_, mp := testMount(t, store())
			p := filepath.Join(mp, "f")
			if err := os.WriteFile(p, []byte("old content, long"), 0o644); err != nil {
				t.Fatal(err)
			}

			t.Run("one process", func(t *testing.T) {
				w, err := os.OpenFile(p, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				if _, err := w.WriteAt([]byte("NEW"), 0); err != nil {
					t.Fatal(err)
				}
				if _, err := w.WriteAt([]byte("+tail"), 17); err != nil {
					t.Fatal(err)
				}
				// A descriptor opened after the write, and one opened
				// before it (r reads after the write too).
				r, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				want := "NEW content, long+tail"
				if b, err := os.ReadFile(p); err != nil || string(b) != want {
					t.Errorf("read through another descriptor while the writer is open: %q, %v; want %q", b, err, want)
				}
				if fi, err := r.Stat(); err != nil || fi.Size() != int64(len(want)) {
					t.Errorf("fstat of the other descriptor: %v, %v", fi, err)
				}
				if _, err := w.WriteAt([]byte("again"), 4); err != nil {
					t.Fatal(err)
				}
				want = "NEW again, long+tail"
				b := make([]byte, 64)
				n, _ := r.ReadAt(b, 0)
				if string(b[:n]) != want {
					t.Errorf("read through a descriptor opened before the write: %q, want %q", b[:n], want)
				}
			})

			t.Run("two processes", func(t *testing.T) {
				// This process writes and keeps the file open; the child reads.
				w, err := os.OpenFile(p, os.O_RDWR|os.O_TRUNC, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				if _, err := w.Write([]byte("from the parent")); err != nil {
					t.Fatal(err)
				}
				out, err := child(t, "read", p).Output()
				if err != nil || string(out) != "from the parent" {
					t.Errorf("child reads the parent's open file: %q, %v", out, err)
				}
				w.Close()

				// The child writes and keeps the file open; this process reads.
				cmd := child(t, "write", p, "FROM THE CHILD")
				stdin, _ := cmd.StdinPipe()
				stdout := &lockedBuffer{}
				cmd.Stdout, cmd.Stderr = stdout, stdout
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 500 && !strings.Contains(stdout.String(), "written"); i++ {
					time.Sleep(10 * time.Millisecond)
				}
				if b, err := os.ReadFile(p); err != nil || string(b) != "FROM THE CHILD" {
					t.Errorf("parent reads the child's open file: %q, %v", b, err)
				}
				stdin.Close()
				if err := cmd.Wait(); err != nil {
					t.Errorf("child: %v: %s", err, stdout.String())
				}
			})
		})
	}
}

// TestSQLite runs two writer processes (BEGIN IMMEDIATE, retried on
// SQLITE_BUSY by .timeout) and a reader counting rows, in rollback-journal
// and WAL modes: the reader's counts only grow, the final count is exact,
// and integrity_check is ok.
func TestSQLite(t *testing.T) {
	pending(t)
	sqlite := needBinary(t, "sqlite3")
	_, mp := testMount(t, "bolt:"+filepath.Join(t.TempDir(), "voldfs.db"))
	for _, mode := range []string{"delete", "wal"} {
		t.Run(mode, func(t *testing.T) {
			db := filepath.Join(mp, "test-"+mode+".db")
			sql := func(script string) (string, error) {
				cmd := exec.Command(sqlite, "-batch", db)
				cmd.Stdin = strings.NewReader(".timeout 5000\n" + script)
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			out, err := sql("PRAGMA journal_mode=" + mode + ";\nCREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, n INTEGER, pad TEXT);\n")
			if err != nil || !strings.Contains(out, mode) {
				t.Fatalf("create (journal_mode=%s): %q, %v", mode, out, err)
			}
			const perWriter = 150
			writer := func(w int) *exec.Cmd {
				var s strings.Builder
				s.WriteString(".timeout 5000\n")
				for i := 0; i < perWriter; i++ {
					fmt.Fprintf(&s, "BEGIN IMMEDIATE;\nINSERT INTO t(w, n, pad) VALUES(%d, %d, hex(randomblob(%d)));\nCOMMIT;\n", w, i, 50+i%400)
				}
				cmd := exec.Command(sqlite, "-batch", "-bail", db)
				cmd.Stdin = strings.NewReader(s.String())
				return cmd
			}
			var s strings.Builder
			s.WriteString(".timeout 5000\n")
			for i := 0; i < 300; i++ {
				s.WriteString("SELECT count(*) FROM t;\n")
			}
			reader := exec.Command(sqlite, "-batch", "-bail", db)
			reader.Stdin = strings.NewReader(s.String())
			var rout lockedBuffer
			reader.Stdout, reader.Stderr = &rout, &rout
			ws := []*exec.Cmd{writer(1), writer(2)}
			outs := []*lockedBuffer{{}, {}}
			start := time.Now()
			for i, w := range ws {
				w.Stdout, w.Stderr = outs[i], outs[i]
				if err := w.Start(); err != nil {
					t.Fatal(err)
				}
			}
			if err := reader.Start(); err != nil {
				t.Fatal(err)
			}
			for i, w := range ws {
				if err := w.Wait(); err != nil {
					t.Errorf("writer %d: %v: %s", i+1, err, outs[i].String())
				}
			}
			if err := reader.Wait(); err != nil {
				t.Errorf("reader: %v: %s", err, lastLines(rout.String(), 5))
			}
			t.Logf("%s: 2 writers x %d transactions with a reader: %v", mode, perWriter, time.Since(start).Round(time.Millisecond))
			prev := -1
			for _, line := range strings.Fields(rout.String()) {
				n, err := strconv.Atoi(line)
				if err != nil {
					t.Errorf("reader output %q", line)
					break
				}
				if n < prev {
					t.Errorf("reader: count went from %d to %d", prev, n)
				}
				prev = n
			}
			out, err = sql("PRAGMA integrity_check;\nSELECT count(*), count(DISTINCT w || '-' || n) FROM t;\n")
			if want := fmt.Sprintf("ok\n%d|%d\n", 2*perWriter, 2*perWriter); err != nil || out != want {
				t.Errorf("integrity_check and final count: %q, %v; want %q", out, err, want)
			}
		})
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestGitClone clones a repository of a few hundred commits and files into
// the mount and checks it with git fsck --full.
func TestGitClone(t *testing.T) {
	pending(t)
	gitBin := needBinary(t, "git")
	home := t.TempDir()
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command(gitBin, append([]string{"-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	git(src, "init", "-q")
	// 300 commits over 300 files, through fast-import (seconds, not minutes).
	var fi strings.Builder
	for c := 1; c <= 300; c++ {
		fmt.Fprintf(&fi, "commit refs/heads/main\ncommitter Test <test@example.com> %d +0000\ndata <<EOT\ncommit %d\nEOT\n", 1700000000+c, c)
		for k := 0; k < 3; k++ {
			f := (c*7 + k*101) % 300
			body := strings.Repeat(fmt.Sprintf("file %d line of commit %d\n", f, c), 1+f%40)
			fmt.Fprintf(&fi, "M 644 inline dir%d/file%03d.txt\ndata %d\n%s\n", f%10, f, len(body), body)
		}
	}
	cmd := exec.Command(gitBin, "fast-import", "--quiet")
	cmd.Dir = src
	cmd.Stdin = strings.NewReader(fi.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git fast-import: %v\n%s", err, out)
	}
	git(src, "checkout", "-q", "main")

	_, mp := testMount(t, "bolt:"+filepath.Join(t.TempDir(), "voldfs.db"))
	git(mp, "clone", "-q", "--no-hardlinks", "file://"+src, "clone")
	clone := filepath.Join(mp, "clone")
	git(clone, "fsck", "--full", "--strict")
	if n := strings.TrimSpace(git(clone, "rev-list", "--count", "HEAD")); n != "300" {
		t.Errorf("clone has %s commits, want 300", n)
	}
	if st := git(clone, "status", "--porcelain"); st != "" {
		t.Errorf("status of the fresh clone: %q", st)
	}
	want := git(src, "ls-files", "-s")
	if got := git(clone, "ls-files", "-s"); got != want {
		t.Errorf("index of the clone differs from the source's")
	}
	// Rewrite history in place (a repack writes and renames packs).
	git(clone, "gc", "-q", "--aggressive")
	git(clone, "fsck", "--full", "--strict")
}
