package voldfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

// Two FS values opened on one store stand for two machines: they share
// nothing but the store.

func twoClients(t *testing.T) (a, b *FS, s backend.Store) {
	t.Helper()
	s = memory.New()
	t.Cleanup(func() { s.Close() })
	a, err := Format(context.Background(), s, &Options{BlockSize: 4096})
	must(t, err)
	b, err = Open(context.Background(), s, nil)
	must(t, err)
	return a, b, s
}

func TestTwoClientsCloseToOpen(t *testing.T) {
	a, b, _ := twoClients(t)
	// b looks first, so it has the root cached.
	ents, err := b.ReadDir(".")
	must(t, err)
	if len(ents) != 0 {
		t.Fatal(ents)
	}
	must(t, a.MkdirAll("d/e", 0o755))
	writeFile(t, a, "d/f", pattern(5*4096+1, 1))
	// b sees a's committed changes at open, within its attribute window.
	wantContent(t, b, "d/f", pattern(5*4096+1, 1))
	ents, err = b.ReadDir("d")
	must(t, err)
	if !slices.Equal(names(ents), []string{"e", "f"}) {
		t.Fatalf("b lists %v", names(ents))
	}
	// a overwrites; b, holding the old file open, sees the new content once
	// it reopens.
	old, err := b.Open("d/f")
	must(t, err)
	writeFile(t, a, "d/f", []byte("new"))
	must(t, old.Close())
	wantContent(t, b, "d/f", []byte("new"))
	// Buffered writes are not visible before Close / Sync.
	w, err := a.OpenFile("d/f", os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = w.Write([]byte("+more"))
	must(t, err)
	wantContent(t, b, "d/f", []byte("new"))
	must(t, w.Sync())
	wantContent(t, b, "d/f", []byte("new+more"))
	must(t, w.Close())
	// Removal and rename by b show at a.
	must(t, b.Rename("d/f", "d/e/g"))
	must(t, b.Remove("d/e/g"))
	_, err = a.Stat("d/e/g")
	wantErr(t, "a sees b's remove", err, fs.ErrNotExist, "path")
	_, err = a.Open("d/f")
	wantErr(t, "a sees b's rename", err, fs.ErrNotExist, "path")
	checkTree(t, a, ".")
	checkTree(t, b, ".")
}

func TestTwoClientsConcurrentBlockRanges(t *testing.T) {
	a, b, s := twoClients(t)
	const bs = 4096
	const blocksPer = 24
	writeFile(t, a, "f", nil)
	clients := []*FS{a, b}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for ci, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			file, err := c.OpenFile("f", os.O_RDWR, 0)
			if err != nil {
				errs <- err
				return
			}
			// Client ci owns blocks ci, ci+2, ci+4, ...: interleaved, so
			// the two share index nodes and the file size, and commits often.
			for k := range blocksPer {
				idx := int64(2*k + ci)
				if _, err := file.WriteAt(pattern(bs, byte(idx)), idx*bs); err != nil {
					errs <- err
					return
				}
				if k%3 == 2 {
					if err := file.Sync(); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- file.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	check := func(c *FS) {
		got := readFile(t, c, "f")
		if len(got) != 2*blocksPer*bs {
			t.Fatalf("size %d, want %d", len(got), 2*blocksPer*bs)
		}
		for idx := range 2 * blocksPer {
			if !bytes.Equal(got[idx*bs:(idx+1)*bs], pattern(bs, byte(idx))) {
				t.Fatalf("block %d lost or damaged", idx)
			}
		}
	}
	check(a)
	check(b)
	c, err := Open(context.Background(), s, nil)
	must(t, err)
	check(c)
	t.Logf("conflicts: a %d, b %d", a.Stats().Conflicts, b.Stats().Conflicts)
}

// Two clients write disjoint byte ranges inside the same blocks.
func TestTwoClientsConcurrentSameBlock(t *testing.T) {
	a, b, _ := twoClients(t)
	size := 3*4096 + 100
	writeFile(t, a, "f", make([]byte, size))
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for ci, c := range []*FS{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			file, err := c.OpenFile("f", os.O_RDWR, 0)
			if err != nil {
				errs <- err
				return
			}
			for off := ci * 10; off < size; off += 20 {
				if _, err := file.WriteAt(bytes.Repeat([]byte{byte('a' + ci)}, 10), int64(off)); err != nil {
					errs <- err
					return
				}
				if off%500 < 20 {
					if err := file.Sync(); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- file.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	got := readFile(t, b, "f")
	for i := 0; i < len(got); i++ {
		want := byte('a' + (i/10)%2)
		if got[i] != want {
			t.Fatalf("byte %d: %q, want %q", i, got[i], want)
		}
	}
}

func TestTwoClientsAppend(t *testing.T) {
	a, b, _ := twoClients(t)
	writeFile(t, a, "log", nil)
	const perClient = 150
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	// Two goroutines per client, each with its own handle.
	for ci, c := range []*FS{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			file, err := c.OpenFile("log", os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				errs <- err
				return
			}
			for i := range perClient {
				// Records of different lengths, some crossing blocks.
				rec := fmt.Sprintf("<%d:%04d:%s>\n", ci, i, strings.Repeat("x", (i*37)%300))
				if _, err := file.Write([]byte(rec)); err != nil {
					errs <- err
					return
				}
				if i%4 == 0 {
					if err := file.Sync(); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- file.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	got := string(readFile(t, b, "log"))
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 4*perClient {
		t.Fatalf("%d records, want %d", len(lines), 4*perClient)
	}
	next := make([]int, 4)
	for _, l := range lines {
		var ci, i int
		var xs string
		if _, err := fmt.Sscanf(l, "<%d:%04d:%s", &ci, &i, &xs); err != nil || ci < 0 || ci > 3 {
			t.Fatalf("damaged record %q", l)
		}
		want := fmt.Sprintf("<%d:%04d:%s>", ci, i, strings.Repeat("x", (i*37)%300))
		if l != want {
			t.Fatalf("damaged record %q", l)
		}
		// Each writer's records stay in its order.
		if i != next[ci] {
			t.Fatalf("writer %d: record %d after %d", ci, i, next[ci]-1)
		}
		next[ci]++
	}
}

func TestTwoClientsCreateInOneDir(t *testing.T) {
	a, b, _ := twoClients(t)
	must(t, a.Mkdir("d", 0o755))
	const per = 300
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for ci, c := range []*FS{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				name := fmt.Sprintf("d/c%d-%04d", ci, i)
				var err error
				switch i % 3 {
				case 0:
					err = c.WriteFile(name, []byte(name), 0o644)
				case 1:
					err = c.Mkdir(name, 0o755)
				case 2:
					err = c.Symlink(name, name)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	// Both also race to create the same names: exactly one wins each.
	wins := make([][]bool, 2)
	for ci, c := range []*FS{a, b} {
		wins[ci] = make([]bool, 100)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				f, err := c.OpenFile(fmt.Sprintf("d/same-%03d", i), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
				if err == nil {
					wins[ci][i] = true
					_, _ = f.Write([]byte{byte(ci)})
					must(t, f.Close())
				} else if !errors.Is(err, fs.ErrExist) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	for _, c := range []*FS{a, b} {
		ents, err := c.ReadDir("d")
		must(t, err)
		if len(ents) != 4*per+100 {
			t.Fatalf("%d entries, want %d", len(ents), 4*per+100)
		}
	}
	for i := range 100 {
		if wins[0][i] == wins[1][i] {
			t.Fatalf("same-%03d: wins a %v b %v", i, wins[0][i], wins[1][i])
		}
		w := 0
		if wins[1][i] {
			w = 1
		}
		wantContent(t, a, fmt.Sprintf("d/same-%03d", i), []byte{byte(w)})
	}
	if at := attr(t, b, "d"); at.Nlink != uint32(2+countDirs(4, per)) {
		t.Fatalf("nlink %d, want %d", at.Nlink, 2+countDirs(4, per))
	}
	checkTree(t, a, ".")
}

func countDirs(writers, per int) int {
	n := 0
	for i := range per {
		if i%3 == 1 {
			n++
		}
	}
	return writers * n
}

// Concurrent cross-directory renames that would create a cycle: a into b
// and b into a. Exactly one wins; the tree stays a tree.
func TestTwoClientsRenameCycle(t *testing.T) {
	rounds := 30
	if testing.Short() {
		rounds = 10
	}
	for r := range rounds {
		a, b, s := twoClients(t)
		must(t, a.MkdirAll("p/x/inner", 0o755))
		must(t, a.MkdirAll("q/y", 0o755))
		writeFile(t, a, "p/x/inner/file", []byte("data"))
		// Warm b's cache.
		_, err := b.Stat("q/y")
		must(t, err)
		var wg sync.WaitGroup
		var errA, errB error
		start := make(chan struct{})
		wg.Add(2)
		go func() { defer wg.Done(); <-start; errA = a.Rename("p/x", "q/y/x") }()
		go func() { defer wg.Done(); <-start; errB = b.Rename("q/y", "p/x/inner/y") }()
		close(start)
		wg.Wait()
		if (errA == nil) == (errB == nil) {
			t.Fatalf("round %d: errA %v errB %v: want exactly one winner", r, errA, errB)
		}
		loser := errA
		if loser == nil {
			loser = errB
		}
		if !errors.Is(loser, syscall.EINVAL) && !errors.Is(loser, fs.ErrNotExist) {
			t.Fatalf("round %d: loser error %v", r, loser)
		}
		c, err := Open(context.Background(), s, &Options{AttrTimeout: -1})
		must(t, err)
		checkTree(t, c, ".")
		want := "q/y/x/inner/file"
		if errA != nil {
			want = "p/x/inner/y"
			if fi, err := c.Stat(want); err != nil || !fi.IsDir() {
				t.Fatalf("round %d: %s: %v", r, want, err)
			}
			want = "p/x/inner/file"
		}
		wantContent(t, c, want, []byte("data"))
	}
}

// Concurrent renames of many entries between two directories from two
// clients: every entry ends in exactly one place.
func TestTwoClientsRenameShuffle(t *testing.T) {
	a, b, s := twoClients(t)
	must(t, a.Mkdir("l", 0o755))
	must(t, a.Mkdir("r", 0o755))
	const n = 40
	for i := range n {
		if i%2 == 0 {
			writeFile(t, a, fmt.Sprintf("l/e%02d", i), []byte{byte(i)})
		} else {
			must(t, a.Mkdir(fmt.Sprintf("l/e%02d", i), 0o755))
		}
	}
	var wg sync.WaitGroup
	for ci, c := range []*FS{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 3 * n {
				i := (k*7 + ci*13) % n
				from, to := "l", "r"
				if (k/n)%2 == 1 {
					from, to = to, from
				}
				err := c.Rename(fmt.Sprintf("%s/e%02d", from, i), fmt.Sprintf("%s/e%02d", to, i))
				if err != nil && !errors.Is(err, fs.ErrNotExist) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	c, err := Open(context.Background(), s, &Options{AttrTimeout: -1})
	must(t, err)
	seen := map[string]int{}
	for _, d := range []string{"l", "r"} {
		ents, err := c.ReadDir(d)
		must(t, err)
		for _, e := range ents {
			seen[e.Name()]++
		}
	}
	for i := range n {
		name := fmt.Sprintf("e%02d", i)
		if seen[name] != 1 {
			t.Fatalf("%s present %d times", name, seen[name])
		}
	}
	checkTree(t, c, ".")
	for i := 0; i < n; i += 2 {
		p := fmt.Sprintf("l/e%02d", i)
		if _, err := c.Stat(p); err != nil {
			p = fmt.Sprintf("r/e%02d", i)
		}
		if a := attr(t, c, p); a.Nlink != 1 {
			t.Fatalf("%s: nlink %d", p, a.Nlink)
		}
		wantContent(t, c, p, []byte{byte(i)})
	}
}
