package voldfstest

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func testReadDir(t *testing.T, e *env) {
	f := e.fs
	require.NoError(t, f.Mkdir("d", 0o755))
	want := []string{}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		name := fmt.Sprintf("n%x-%d", rng.Uint32(), i)
		want = append(want, name)
		switch i % 3 {
		case 0:
			writeFile(t, f, "d/"+name, []byte(name))
		case 1:
			require.NoError(t, f.Mkdir("d/"+name, 0o700))
		case 2:
			require.NoError(t, f.Symlink(name, "d/"+name))
		}
	}
	slices.Sort(want)
	ents, err := f.ReadDir("d")
	require.NoError(t, err)
	if got := names(ents); !slices.Equal(got, want) {
		t.Fatalf("ReadDir: got %d names, want %d (sorted)", len(got), len(want))
	}
	for _, de := range ents {
		fi, err := de.Info()
		require.NoError(t, err)
		if fi.Name() != de.Name() || fi.Mode().Type() != de.Type() {
			t.Fatalf("%s: Info %v, entry type %v", de.Name(), fi.Mode(), de.Type())
		}
	}
	if a := attr(t, f, "d"); a.Nlink != 2+100 {
		t.Fatalf("nlink %d, want 102", a.Nlink)
	}
	ents, err = fs.ReadDir(f, "d")
	require.NoError(t, err)
	require.Len(t, ents, 300, "fs.ReadDir: %d", len(ents))
	writeFile(t, f, "file", nil)
	_, err = f.ReadDir("file")
	wantErr(t, "ReadDir file", err, syscall.ENOTDIR, "path")
	_, err = f.ReadDir("missing")
	wantErr(t, "ReadDir missing", err, fs.ErrNotExist, "path")
	ents, err = f.ReadDir(".")
	require.NoError(t, err)
	if got := names(ents); !slices.Equal(got, []string{"d", "file"}) {
		t.Fatalf("root: %v", got)
	}
}

func testDirReadDirN(t *testing.T, e *env) {
	f := e.fs
	require.NoError(t, f.Mkdir("d", 0o755))
	want := map[string]bool{}
	for i := range 250 {
		n := fmt.Sprintf("e%03d", i)
		writeFile(t, f, "d/"+n, nil)
		want[n] = true
	}
	for _, page := range []int{1, 7, 100, 250, 1000} {
		d, err := f.Open("d")
		require.NoError(t, err)
		rd := d.(fs.ReadDirFile)
		got := map[string]bool{}
		for {
			ents, err := rd.ReadDir(page)
			if err == io.EOF {
				require.Len(t, ents, 0, "page %d: io.EOF with %d entries", page, len(ents))
				break
			}
			require.NoError(t, err)
			if len(ents) == 0 || len(ents) > page {
				t.Fatalf("page %d: got %d entries with nil error", page, len(ents))
			}
			for _, e := range ents {
				if got[e.Name()] {
					t.Fatalf("page %d: %s twice", page, e.Name())
				}
				got[e.Name()] = true
			}
		}
		require.Len(t, got, len(want), "page %d: %d entries, want %d", page, len(got), len(want))
		// At the end, ReadDir(-1) returns nothing and no error.
		ents, err := rd.ReadDir(-1)
		if err != nil || len(ents) != 0 {
			t.Fatalf("ReadDir(-1) at end: %d %v", len(ents), err)
		}
		// Seek(0, 0) on a directory opened as a file rewinds it.
		require.NoError(t, d.Close())
	}
	file, err := f.OpenFile("d", os.O_RDONLY, 0)
	require.NoError(t, err)
	ents, err := file.ReadDir(-1)
	require.NoError(t, err)
	require.Len(t, ents, 250, "ReadDir(-1): %d", len(ents))
	_, err = file.Seek(0, io.SeekStart)
	require.NoError(t, err)
	ents, err = file.ReadDir(10)
	if err != nil || len(ents) != 10 {
		t.Fatalf("after rewind: %d %v", len(ents), err)
	}
	require.NoError(t, file.Close())
	// An empty directory: ReadDir(n>0) is io.EOF at once.
	require.NoError(t, f.Mkdir("empty", 0o755))
	d, err := f.Open("empty")
	require.NoError(t, err)
	ents, err = d.(fs.ReadDirFile).ReadDir(5)
	if err != io.EOF || len(ents) != 0 {
		t.Fatalf("empty dir: %v %v", ents, err)
	}
	require.NoError(t, d.Close())
}

func testBigDir(t *testing.T, e *env) {
	f := e.fs
	n := e.cfg.BigDir
	if testing.Short() {
		n /= 10
	} else if raceEnabled {
		// The race detector makes each create about ten times slower.
		n /= 5
	}
	t.Logf("%d entries", n)
	require.NoError(t, f.Mkdir("big", 0o755))
	dirIno := attr(t, f, "big").Ino
	// Create through the inode-level API from a few goroutines (the path API
	// would walk "big" each time, which measures nothing more).
	const workers = 4
	var g errgroupLite
	for w := range workers {
		g.Go(func() error {
			for i := w; i < n; i += workers {
				file, err := f.Inodes().Create(t.Context(), dirIno, fmt.Sprintf("entry-%07d", i), os.O_RDWR|os.O_EXCL, 0o644, nil)
				if err != nil {
					return err
				}
				if err := file.Close(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	for _, i := range []int{0, 1, n / 2, n - 1} {
		_, err := f.Stat(fmt.Sprintf("big/entry-%07d", i))
		require.NoError(t, err)
	}
	_, err := f.Stat(fmt.Sprintf("big/entry-%07d", n))
	wantErr(t, "Stat past the last", err, fs.ErrNotExist, "path")
	ents, err := f.ReadDir("big")
	require.NoError(t, err)
	require.Len(t, ents, n, "ReadDir: %d entries, want %d", len(ents), n)
	for i, e := range ents {
		if want := fmt.Sprintf("entry-%07d", i); e.Name() != want {
			t.Fatalf("entry %d: %s, want %s", i, e.Name(), want)
		}
	}
	// Page through with cookies; and a fresh FS sees the same count.
	var cookie uint64
	count := 0
	for {
		page, err := e.reopen(t).Inodes().ReadDir(t.Context(), dirIno, cookie, 1000)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		count += len(page)
		cookie = page[len(page)-1].Cookie
	}
	if count != n {
		t.Fatalf("ReadDirIno pages: %d entries, want %d", count, n)
	}
	if a := attr(t, f, "big"); a.Nlink != 2 {
		t.Fatalf("nlink %d", a.Nlink)
	}
}

func testReaddirStability(t *testing.T, e *env) {
	f := e.fs
	require.NoError(t, f.Mkdir("d", 0o755))
	dir := attr(t, f, "d").Ino
	// 2,000 names present throughout, or BigDir if that is smaller.
	stable := min(2000, e.cfg.BigDir)
	for i := range stable {
		file, err := f.Inodes().Create(t.Context(), dir, fmt.Sprintf("stable-%05d", i), os.O_RDWR|os.O_EXCL, 0o644, nil)
		require.NoError(t, err)
		require.NoError(t, file.Close())
	}
	// A churner on another FS (another client) inserts and removes names
	// while listings page through.
	other := e.reopen(t)
	stop := make(chan struct{})
	var churned atomic.Int64
	var g errgroupLite
	g.Go(func() error {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return nil
			default:
			}
			name := fmt.Sprintf("churn-%06d", i)
			file, err := other.Inodes().Create(t.Context(), dir, name, os.O_RDWR|os.O_EXCL, 0o644, nil)
			if err != nil {
				return err
			}
			if err := file.Close(); err != nil {
				return err
			}
			if i%2 == 0 {
				if err := other.Inodes().Unlink(t.Context(), dir, name); err != nil {
					return err
				}
			}
			churned.Add(1)
		}
	})
	listings := 0
	for range 4 {
		for _, page := range []int{1, 37, 500} {
			if page == 1 && listings > 0 {
				continue // page size 1 is slow; once is enough
			}
			seen := map[string]bool{}
			var cookie uint64
			for {
				ents, err := f.Inodes().ReadDir(t.Context(), dir, cookie, page)
				require.NoError(t, err)
				if len(ents) == 0 {
					break
				}
				for _, e := range ents {
					if seen[e.Name] {
						close(stop)
						t.Fatalf("page %d: %s listed twice", page, e.Name)
					}
					seen[e.Name] = true
					if e.Cookie <= cookie {
						close(stop)
						t.Fatalf("cookie went back: %d after %d", e.Cookie, cookie)
					}
					cookie = e.Cookie
				}
			}
			for i := range stable {
				if n := fmt.Sprintf("stable-%05d", i); !seen[n] {
					close(stop)
					t.Fatalf("page %d: %s missed", page, n)
				}
			}
			listings++
		}
		// The same through Dir.ReadDir(n).
		d, err := f.Open("d")
		require.NoError(t, err)
		seen := map[string]bool{}
		for {
			ents, err := d.(fs.ReadDirFile).ReadDir(64)
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			for _, e := range ents {
				if seen[e.Name()] {
					close(stop)
					t.Fatalf("Dir.ReadDir: %s twice", e.Name())
				}
				seen[e.Name()] = true
			}
		}
		require.NoError(t, d.Close())
		for i := range stable {
			if n := fmt.Sprintf("stable-%05d", i); !seen[n] {
				close(stop)
				t.Fatalf("Dir.ReadDir: %s missed", n)
			}
		}
	}
	close(stop)
	require.NoError(t, g.Wait())
	if churned.Load() == 0 {
		t.Fatal("the churner made no change during the listings")
	}
	t.Logf("%d listings, %d churn creates", listings, churned.Load())
}
