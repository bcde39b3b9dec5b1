package voldfs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
)

// Power loss on a store that commits in groups (bolt's default). The bolt
// store acknowledges writes from memory and writes them to its file later,
// in order, so a crash leaves a prefix of the acknowledged history. The
// sweep below cuts that history after every store write of a workload
// (creates, writes, renames, unlinks, truncates, with FS.Sync between
// them), in two ways:
//
//   - lost tail: the file is flushed exactly at the cut, the FS runs on
//     (its later writes acknowledged but never flushed) until its next
//     Sync would have returned, then the store crashes. The survivor is
//     the history up to the cut: the steps before it done, the one it
//     fell in done or not (or, for a create, the file present and empty).
//   - no flush: the store crashes at the cut and the file holds what the
//     last FS.Sync made durable, exactly.
//
// Either way, after reopening, Fsck must repair it to clean.

// model is a tree as treeContents returns it.
type model map[string][]byte

// plStep is one step of the power-loss workload.
type plStep struct {
	name string
	sync bool                        // an FS.Sync; do and apply are nil
	do   func(f *FS) error           // the operation
	set  map[string][]byte           // paths it sets (nil value: a directory)
	del  []string                    // paths it removes
	mid  func(m model) (model, bool) // a state in the middle of the step, if it has one
}

func (s plStep) apply(m model) model {
	m = maps.Clone(m)
	for p, b := range s.set {
		m[p] = b
	}
	for _, p := range s.del {
		delete(m, p)
	}
	return m
}

// created is a new file's state between its create and its first commit.
func created(p string) func(m model) (model, bool) {
	return func(m model) (model, bool) {
		m = maps.Clone(m)
		m[p] = []byte{}
		return m, true
	}
}

func writeStep(p string, data []byte) plStep {
	return plStep{name: "write " + p, do: func(f *FS) error { return f.WriteFile(p, data, 0o644) },
		set: map[string][]byte{p: data}, mid: created(p)}
}

func renameStep(from, to string, data []byte) plStep {
	return plStep{name: "rename " + from + " " + to, do: func(f *FS) error { return f.Rename(from, to) },
		set: map[string][]byte{to: data}, del: []string{from}}
}

func removeStep(p string) plStep {
	return plStep{name: "remove " + p, do: func(f *FS) error { return f.Remove(p) }, del: []string{p, p + "/"}}
}

var plSync = plStep{name: "sync", sync: true}

var plSteps = []plStep{
	writeStep("a/new", crashNew),
	{name: "overwrite a/old", do: func(f *FS) error {
		file, err := f.OpenFile("a/old", os.O_RDWR, 0)
		if err != nil {
			return err
		}
		if _, err := file.WriteAt(crashOld2, 0); err != nil {
			file.Close()
			return err
		}
		return file.Close()
	}, set: map[string][]byte{"a/old": crashOld2}},
	plSync,
	renameStep("a/new", "b/moved", crashNew),
	removeStep("a/gone"),
	{name: "mkdir c", do: func(f *FS) error { return f.Mkdir("c", 0o755) }, set: map[string][]byte{"c/": nil}},
	writeStep("c/f", crashX),
	plSync,
	renameStep("b/x", "b/y", crashX),
	{name: "truncate a/old", do: func(f *FS) error { return f.Truncate("a/old", int64(len(crashCut))) },
		set: map[string][]byte{"a/old": crashCut}},
	removeStep("b/moved"),
	renameStep("c/f", "a/f", crashX),
	removeStep("c"),
	plSync,
	writeStep("a/last", crashKeep[:5000]),
}

// cutStore counts the writes acknowledged by a bolt store and cuts its
// history after the at'th: with flush set it makes the file hold exactly
// the writes up to the cut.
type cutStore struct {
	*bolt.Store
	flush bool

	mu      sync.Mutex
	at      int // cut after this many writes; 0: never
	writes  int
	step    int // the workload step running
	cutStep int // the step the cut fell in; -1: no cut yet
}

func (c *cutStore) wrote(err error) {
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if c.writes != c.at {
		return
	}
	c.cutStep = c.step
	// Under c.mu, so that the workload cannot start its next step (and
	// put that step's writes in the batch) before the cut is in the file.
	if c.flush {
		if err := c.Store.Sync(context.Background()); err != nil {
			panic(err)
		}
	}
}

func (c *cutStore) CAS(ctx context.Context, key string, old backend.Version, value []byte) (backend.Version, error) {
	v, err := c.Store.CAS(ctx, key, old, value)
	c.wrote(err)
	return v, err
}

func (c *cutStore) Put(ctx context.Context, key string, value []byte) (backend.Version, error) {
	v, err := c.Store.Put(ctx, key, value)
	c.wrote(err)
	return v, err
}

func (c *cutStore) Delete(ctx context.Context, key string, old backend.Version) error {
	err := c.Store.Delete(ctx, key, old)
	c.wrote(err)
	return err
}

func (c *cutStore) Commit(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	v, err := c.Store.Commit(ctx, ops)
	c.wrote(err)
	return v, err
}

func (c *cutStore) state() (step, cutStep, writes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.step, c.cutStep, c.writes
}

// plSetup formats a filesystem in a bolt file with the files the workload
// changes, synced, and returns its path and its tree.
func plSetup(t *testing.T) (string, model) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fs.db")
	s, err := bolt.Open(path, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Format(ctx, s, &Options{BlockSize: crashBS, AttrTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "b"} {
		must(t, f.Mkdir(d, 0o755))
	}
	for name, data := range map[string][]byte{"a/keep": crashKeep, "a/old": crashOld, "a/gone": crashGone, "b/x": crashX} {
		must(t, f.WriteFile(name, data, 0o644))
	}
	tree := treeContents(t, f)
	f.Close()
	must(t, s.Close())
	return path, tree
}

// plRun runs the workload on a copy of the set-up file, cut after write at
// (0: never), and crashes the store. It returns the file, the number of
// writes, the step the cut fell in (-1: none) and the last step that was an
// FS.Sync that returned (-1: none).
func plRun(t *testing.T, setup string, at int, flush bool) (path string, writes, cutStep, synced int) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "cut.db")
	b, err := os.ReadFile(setup)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(path, b, 0o600))
	s, err := bolt.Open(path, &bolt.Options{NoSync: true, Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	cs := &cutStore{Store: s, flush: flush, at: at, cutStep: -1}
	f, err := Open(context.Background(), cs, &Options{AttrTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	synced = -1
	for i, st := range plSteps {
		cs.mu.Lock()
		cs.step = i
		cs.mu.Unlock()
		_, cut, _ := cs.state()
		if st.sync {
			if cut >= 0 { // the crash came before this Sync returned
				break
			}
			if err := f.Sync(); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			synced = i
			continue
		}
		if err := st.do(f); err != nil {
			t.Fatalf("step %d (%s): %v", i, st.name, err)
		}
		if _, cut, _ := cs.state(); cut >= 0 && !flush {
			break
		}
	}
	f.WaitFrees() // background frees: no store call after the crash
	_, cutStep, writes = cs.state()
	must(t, s.Crash())
	return path, writes, cutStep, synced
}

// plRecover reopens a crashed file, rolls a pending rename forward, repairs
// with Fsck (which must then be clean) and returns the tree, without
// /lost+found (which a cut in an unlink or rename may fill: nothing is lost
// that was still linked).
func plRecover(t *testing.T, path string) (model, int) {
	t.Helper()
	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	ageIntent(t, s)
	f, err := Open(context.Background(), s, &Options{AttrTimeout: -1})
	if err != nil {
		t.Fatalf("open after the crash: %v", err)
	}
	fsckClean(t, f)
	tree := treeContents(t, f)
	lost := 0
	for p := range tree {
		if strings.HasPrefix(p, "lost+found/") {
			delete(tree, p)
			if p != "lost+found/" {
				lost++
			}
		}
	}
	return tree, lost
}

// plModels returns the tree after each number of steps: models[i] is the
// tree before step i.
func plModels(setup model) []model {
	models := []model{setup}
	for _, st := range plSteps {
		models = append(models, st.apply(models[len(models)-1]))
	}
	return models
}

func plDiff(got, want model) string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(got)) {
		if w, ok := want[p]; !ok {
			out = append(out, "+"+p)
		} else if !bytes.Equal(got[p], w) {
			out = append(out, fmt.Sprintf("~%s (%d bytes, want %d)", p, len(got[p]), len(w)))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(want)) {
		if _, ok := got[p]; !ok {
			out = append(out, "-"+p)
		}
	}
	return strings.Join(out, " ")
}

func equalModel(a, b model) bool { return maps.EqualFunc(a, b, bytes.Equal) }

func TestPowerLossSweep(t *testing.T) {
	setup, tree := plSetup(t)
	models := plModels(tree)
	// A run without a cut counts the writes to sweep.
	path, total, _, _ := plRun(t, setup, 0, false)
	got, _ := plRecover(t, path)
	if want := models[len(plSteps)-1]; !equalModel(got, want) {
		// The last step is after the last Sync: with no flush it is lost.
		t.Fatalf("without a cut the file holds %s against the last sync", plDiff(got, want))
	}
	every := 1
	if testing.Short() {
		every = 7
	}
	for _, flush := range []bool{true, false} {
		name := map[bool]string{true: "lost-tail", false: "no-flush"}[flush]
		t.Run(name, func(t *testing.T) {
			swept := 0
			for at := 1; at <= total; at += every {
				path, _, cut, synced := plRun(t, setup, at, flush)
				if cut < 0 {
					continue // this run wrote less
				}
				swept++
				got, lost := plRecover(t, path)
				var allowed []model
				if flush {
					allowed = append(allowed, models[cut], models[cut+1])
					if mid := plSteps[cut].mid; mid != nil {
						m, _ := mid(models[cut])
						allowed = append(allowed, m)
					}
				} else {
					allowed = append(allowed, models[synced+1])
				}
				ok := slices.ContainsFunc(allowed, func(m model) bool { return equalModel(got, m) })
				if !ok {
					t.Errorf("cut after write %d, in step %d (%s), last sync at step %d: the tree differs from the state before the step by %s and after it by %s",
						at, cut, plSteps[cut].name, synced, plDiff(got, models[cut]), plDiff(got, models[cut+1]))
				}
				if lost > 0 {
					t.Logf("cut after write %d, in step %d (%s): %d inodes in lost+found", at, cut, plSteps[cut].name, lost)
				}
				if t.Failed() && !testing.Verbose() {
					t.Fatalf("stopping the sweep at write %d of %d", at, total)
				}
			}
			t.Logf("%s: swept %d cut points of a workload of %d store writes", name, swept, total)
		})
	}
}

// The kill -9 test: a child process (this test binary again) runs a
// workload on a real bolt file with the default options (group commit,
// fsync), printing how many steps it had done at each FS.Sync that returned
// (every 150 steps; the flusher writes batches between them); the parent
// kills it with SIGKILL at several points, reopens the file, and checks
// that it opens, that Fsck repairs it to clean, and that the tree is the
// state after some number of steps (or in the middle of one), no fewer
// than the last sync printed.

const killEnv = "VOLDFS_POWERLOSS_CHILD"

// killStep runs step j of the kill workload, or applies it to m if f is
// nil. Every third step renames or removes a file an earlier step wrote.
func killStep(f *FS, m model, j int) error {
	file := func(j int) string { return fmt.Sprintf("d%d/f%d", j%4, j) }
	content := func(j int) []byte { return crashPattern(fmt.Sprintf("%03d", j%1000), 100+j*37%9000) }
	switch {
	case j%3 != 2:
		if f == nil {
			m[file(j)] = content(j)
			return nil
		}
		return f.WriteFile(file(j), content(j), 0o644)
	case j%2 == 0:
		to := fmt.Sprintf("d%d/m%d", (j+1)%4, j-1)
		if f == nil {
			m[to] = m[file(j-1)]
			delete(m, file(j-1))
			return nil
		}
		return f.Rename(file(j-1), to)
	default:
		if f == nil {
			delete(m, file(j-2))
			return nil
		}
		return f.Remove(file(j - 2))
	}
}

// TestPowerLossKillChild is the child's side; it runs only under killEnv.
func TestPowerLossKillChild(t *testing.T) {
	path := os.Getenv(killEnv)
	if path == "" {
		t.Skip("the child of TestPowerLossKill")
	}
	ctx := context.Background()
	s, err := bolt.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Format(ctx, s, &Options{BlockSize: crashBS})
	if err != nil {
		t.Fatal(err)
	}
	for d := range 4 {
		must(t, f.Mkdir(fmt.Sprint("d", d), 0o755))
	}
	must(t, f.Sync())
	fmt.Printf("synced 0\n")
	for j := 0; j < 100_000; j++ {
		if err := killStep(f, nil, j); err != nil {
			t.Fatalf("step %d: %v", j, err)
		}
		if j%150 == 149 {
			must(t, f.Sync())
			fmt.Printf("synced %d\n", j+1)
		}
	}
}

func TestPowerLossKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("VOLDFS_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (replay with VOLDFS_SEED=%d)", seed, seed)
	r := rand.New(rand.NewPCG(seed, 0))
	for run, lines := range []int{1, 2, 4, 7, 11} {
		path := filepath.Join(t.TempDir(), "kill.db")
		cmd := exec.Command(os.Args[0], "-test.run=^TestPowerLossKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), killEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		synced, seen := -1, 0
		for seen < lines && sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "synced "); ok {
				synced, _ = strconv.Atoi(n)
				seen++
			}
		}
		if seen < lines {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("run %d: the child stopped after %d syncs: %s", run, seen, stderr.String())
		}
		delay := time.Duration(r.IntN(50_000)) * time.Microsecond
		time.Sleep(delay)
		must(t, cmd.Process.Signal(syscall.SIGKILL))
		go io.Copy(io.Discard, out)
		cmd.Wait()

		s, err := bolt.Open(path, &bolt.Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("run %d: the file does not open after kill -9: %v", run, err)
		}
		ageIntent(t, s)
		f, err := Open(context.Background(), s, &Options{AttrTimeout: -1})
		if err != nil {
			t.Fatalf("run %d: open after kill -9: %v", run, err)
		}
		fsckClean(t, f)
		got := treeContents(t, f)
		for p := range got {
			if strings.HasPrefix(p, "lost+found/") {
				delete(got, p)
			}
		}
		must(t, s.Close())
		// The tree must be the state after k steps (or in step k, for a
		// create: the file present and empty), for some k >= synced.
		m := model{"./": nil}
		for d := range 4 {
			m[fmt.Sprintf("d%d/", d)] = nil
		}
		at := -1
		for k := 0; k <= synced+5000 && at < 0; k++ {
			if k >= synced {
				if equalModel(got, m) {
					at = k
					break
				}
				mid := maps.Clone(m)
				if k%3 != 2 {
					mid[fmt.Sprintf("d%d/f%d", k%4, k)] = []byte{}
				}
				if equalModel(got, mid) {
					at = k
					break
				}
			}
			killStep(nil, m, k)
		}
		if at < 0 {
			t.Errorf("run %d: killed %v after sync %d: the tree (%d entries) is the state after no number of steps from %d on", run, delay, synced, len(got), synced)
			continue
		}
		t.Logf("run %d: killed %v after the sync of step %d; the file kept %d steps", run, delay, synced, at)
	}
}
