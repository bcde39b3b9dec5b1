package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Several descriptors and processes on one file: the library's one open
// state per inode makes a write through any descriptor readable through
// every other at once, which SQLite (two writers, a reader) and git rely on.

// TestTwoDescriptors: a write through one descriptor is read through
// another at once, while the first is still open, in one process and from
// another process, both ways.
func TestTwoDescriptors(t *testing.T) {
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
				want = "NEW againnt, long+tail"
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

// TestSQLite runs two writer processes (BEGIN IMMEDIATE; a statement
// refused with SQLITE_BUSY after the 5 s busy timeout is retried) and a
// reader process counting rows, in rollback-journal and WAL modes: the
// reader's counts only grow, the final count is exact, and
// integrity_check is ok.
func TestSQLite(t *testing.T) {
	bin := needBinary(t, "sqlite3")
	_, mp := testMount(t, "bolt:"+filepath.Join(t.TempDir(), "voldfs.db"))
	for _, mode := range []string{"delete", "wal"} {
		t.Run(mode, func(t *testing.T) {
			db := filepath.Join(mp, "test-"+mode+".db")
			setup, err := startSQLite(bin, db)
			if err != nil {
				t.Fatal(err)
			}
			if out, err := setup.do("PRAGMA journal_mode=" + mode + ";"); err != nil || out != mode {
				t.Fatalf("journal_mode=%s: %q, %v", mode, out, err)
			}
			if err := setup.must("CREATE TABLE t(id INTEGER PRIMARY KEY, w INTEGER, n INTEGER, pad TEXT);"); err != nil {
				t.Fatal(err)
			}
			if err := setup.close(); err != nil {
				t.Fatal(err)
			}

			const perWriter = 80
			start := time.Now()
			var wg sync.WaitGroup
			defer wg.Wait() // the writers report to t: they end first
			done := make(chan struct{})
			retries := make([]int, 2)
			for w := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, err := sqliteWriter(bin, db, w, perWriter, 0)
					retries[w] += n
					if err != nil {
						t.Errorf("writer %d: %v", w, err)
					}
				}()
			}
			go func() { wg.Wait(); close(done) }()
			r, err := startSQLite(bin, db)
			if err != nil {
				t.Fatal(err)
			}
			defer r.close()
			prev, reads := -1, 0
			for finished := false; !finished; {
				select {
				case <-done:
					finished = true
				case <-time.After(time.Millisecond):
				}
				out, err := r.do("SELECT count(*) FROM t;")
				for err == nil && busy(out) {
					out, err = r.do("SELECT count(*) FROM t;")
				}
				n, aerr := strconv.Atoi(out)
				if err != nil || aerr != nil {
					t.Fatalf("reader: %q, %v", out, err)
				}
				if n < prev {
					t.Errorf("reader: count went from %d to %d", prev, n)
				}
				prev, reads = n, reads+1
			}
			if out, err := r.do("PRAGMA integrity_check;"); err != nil || out != "ok" {
				t.Errorf("integrity_check: %q, %v", out, err)
			}
			want := fmt.Sprintf("%d|%d", 2*perWriter, 2*perWriter)
			if out, err := r.do("SELECT count(*), count(DISTINCT w || '-' || n) FROM t;"); err != nil || out != want {
				t.Errorf("final count: %q, %v; want %q", out, err, want)
			}
			t.Logf("%s: 2 writers x %d transactions (%v retries after SQLITE_BUSY) and %d counts: %v",
				mode, perWriter, retries, reads, time.Since(start).Round(time.Millisecond))
		})
	}
}

// sqliteProc is a sqlite3 shell driven one statement at a time.
type sqliteProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

const sqliteEnd = "@@end@@"

func startSQLite(bin, db string) (*sqliteProc, error) {
	cmd := exec.Command(bin, "-batch", db)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, err
	}
	p := &sqliteProc{cmd: cmd, in: in, out: bufio.NewScanner(pr)}
	return p, p.must(".timeout 5000")
}

// do runs one statement and returns its output (errors included).
func (p *sqliteProc) do(stmt string) (string, error) {
	if _, err := fmt.Fprintf(p.in, "%s\n.print %s\n", stmt, sqliteEnd); err != nil {
		return "", fmt.Errorf("sqlite3 %q: %v", stmt, err)
	}
	var lines []string
	for p.out.Scan() {
		if p.out.Text() == sqliteEnd {
			return strings.Join(lines, "\n"), nil
		}
		lines = append(lines, p.out.Text())
	}
	return "", fmt.Errorf("sqlite3 %q: exited: %v %q", stmt, p.out.Err(), lines)
}

// must runs a statement that must print nothing.
func (p *sqliteProc) must(stmt string) error {
	out, err := p.do(stmt)
	if err == nil && out != "" {
		err = fmt.Errorf("sqlite3 %q: %s", stmt, out)
	}
	return err
}

// retry runs a statement that prints nothing until it is not refused as
// busy, and returns how many times it was.
func (p *sqliteProc) retry(stmt string) (int, error) {
	for n := 0; ; n++ {
		out, err := p.do(stmt)
		if err != nil || !busy(out) {
			if err == nil && out != "" {
				err = fmt.Errorf("sqlite3 %q: %s", stmt, out)
			}
			return n, err
		}
		time.Sleep(time.Duration(1+n%10) * time.Millisecond)
	}
}

func busy(out string) bool {
	return strings.Contains(out, "database is locked") || strings.Contains(out, "database is busy")
}

func (p *sqliteProc) close() error {
	p.in.Close()
	return p.cmd.Wait()
}

// TestGitClone clones a repository of a few hundred commits and files into
// the mount and checks it with git fsck --full.
func TestGitClone(t *testing.T) {
	gitBin := needBinary(t, "git")
	home := t.TempDir()
	git := func(dir string, args ...string) string {
		t.Helper()
		// -C, not cmd.Dir: a child must not enter the mount before exec
		// (this process, the FUSE server, holds the fork lock until then).
		cmd := exec.Command(gitBin, append([]string{"-C", dir, "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"}, args...)...)
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
	cmd := exec.Command(gitBin, "-C", src, "fast-import", "--quiet")
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

// sqliteWriter runs n transactions of writer w on db with sqlite3 (bin),
// each BEGIN IMMEDIATE; INSERT; COMMIT with the busy ones retried, pausing
// pause after each commit, and returns how many statements were retried.
func sqliteWriter(bin, db string, w, n int, pause time.Duration) (retries int, err error) {
	p, err := startSQLite(bin, db)
	if err != nil {
		return 0, err
	}
	// sqlite3 exits 1 after any failed statement, the busy ones retried
	// here included.
	defer p.close()
	for i := 0; i < n; i++ {
		k, err := p.retry("BEGIN IMMEDIATE;")
		retries += k
		if err != nil {
			return retries, err
		}
		// Each insert reads the table first, so a writer working from
		// stale pages of another process's (or mount's) commits would
		// reuse an id and fail (or corrupt the file, which
		// integrity_check finds).
		if err := p.must(fmt.Sprintf("INSERT INTO t(w, n, pad) VALUES(%d, %d, hex(randomblob(%d)));", w, i, 50+i%400)); err != nil {
			return retries, err
		}
		k, err = p.retry("COMMIT;")
		retries += k
		if err != nil {
			return retries, err
		}
		time.Sleep(pause)
	}
	return retries, nil
}
