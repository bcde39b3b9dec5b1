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
	"testing"
	"time"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/faulty"
	"github.com/voldfs/voldfs/backend/memory"
)

// Crash consistency. A fixed workload (create a multi-block file, overwrite
// another in place, rename across directories, unlink, rename within a
// directory, truncate) runs against a store that stops answering after
// operation i, for every i; then a new FS opens what survived, Fsck repairs
// it, and a second Fsck must find nothing. Every file must hold its old or
// its new content, never a mix; nothing unrelated may be lost; a
// cross-directory rename is one commit: applied entirely or not at all,
// and no rename intent is ever left in the store. The same sweep runs with lost replies
// (faulty.Ambiguous): the write happened, the client saw an error.

const crashBS = 4096

// crashPattern returns n bytes of a pattern that names tag and every
// 16-byte position, so a mix of two versions is visible.
func crashPattern(tag string, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%s%011d|", tag[:3], i)
	}
	return b.Bytes()[:n]
}

var (
	crashKeep = crashPattern("KEE", 2*crashBS+1000)
	crashOld  = crashPattern("OLD", 3*crashBS+17)
	crashOld2 = crashPattern("NEW", 3*crashBS+17)
	crashCut  = crashOld2[:crashBS+300]
	crashNew  = crashPattern("CRE", 2*crashBS+2000)
	crashGone = []byte("short-lived inline file")
	crashX    = []byte("renamed within b")
)

// crashSetup formats a filesystem with the files the workload changes.
func crashSetup(t *testing.T) *memory.Store {
	t.Helper()
	ctx := context.Background()
	s := memory.New()
	f, err := Format(ctx, s, &Options{BlockSize: crashBS})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "b"} {
		if err := f.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string][]byte{"a/keep": crashKeep, "a/old": crashOld, "a/gone": crashGone, "b/x": crashX} {
		if err := f.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// crashWorkload runs the steps in order and returns how many completed
// before the first error (and that error), and how many bytes the overwrite
// reported written if it stopped short: a short WriteAt is honest about the
// prefix it buffered, and Close then commits that prefix.
func crashWorkload(f *FS) (done, short int, err error) {
	steps := []func() error{
		func() error { return f.WriteFile("a/new", crashNew, 0o644) },
		func() error { // overwrite in place: one commit
			file, err := f.OpenFile("a/old", os.O_RDWR, 0)
			if err != nil {
				return err
			}
			if n, err := file.WriteAt(crashOld2, 0); err != nil {
				short = n
				file.Close()
				return err
			}
			return file.Close()
		},
		func() error { return f.Rename("a/new", "b/moved") },
		func() error { return f.Remove("a/gone") },
		func() error { return f.Rename("b/x", "b/y") },
		func() error { return f.Truncate("a/old", int64(len(crashCut))) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return i, short, err
		}
	}
	return len(steps), 0, nil
}

const crashSteps = 6

// ageIntent backdates a pending rename intent past the lease, as if its
// owner had crashed long ago, and reports whether one was pending.
func ageIntent(t *testing.T, s backend.Store) bool {
	t.Helper()
	ctx := context.Background()
	key := DefaultName + "/rename"
	b, ver, err := s.Get(ctx, key)
	if errors.Is(err, backend.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	in, err := decodeIntent(key, b)
	if err != nil {
		t.Fatalf("lease key: %v", err)
	}
	if in == nil {
		return false
	}
	in.at -= int64(renameLease + time.Minute)
	if _, err := s.CAS(ctx, key, ver, encodeIntent(in)); err != nil {
		t.Fatal(err)
	}
	return true
}

// treeContents reads every file under the root into a map path -> content.
func treeContents(t *testing.T, f *FS) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			out[p+"/"] = nil
			return nil
		}
		b, err := f.ReadFile(p)
		if err != nil {
			return err
		}
		out[p] = b
		return nil
	})
	if err != nil {
		t.Fatalf("walking the tree: %v", err)
	}
	return out
}

// fsckClean runs Fsck with repair and GC (no grace), then again without,
// and fails unless the second run is clean. It returns the first report.
func fsckClean(t *testing.T, f *FS) *FsckReport {
	t.Helper()
	ctx := context.Background()
	r1, err := f.Fsck(ctx, FsckOptions{Repair: true, GC: true, Grace: -1})
	if err != nil {
		t.Fatalf("fsck repair: %v", err)
	}
	r2, err := f.Fsck(ctx, FsckOptions{Grace: -1})
	if err != nil {
		t.Fatalf("fsck: %v", err)
	}
	if !r2.OK() || r2.GarbageBlocks != 0 || r2.GarbageInodes != 0 {
		t.Errorf("fsck after repair not clean: problems %v, garbage blocks %d, inodes %d (repair run found %v)",
			r2.Problems, r2.GarbageBlocks, r2.GarbageInodes, r1.Problems)
	}
	return r1
}

// oneOf reports whether got equals one of the allowed contents (nil: absent).
func oneOf(got []byte, present bool, allowed ...[]byte) bool {
	for _, a := range allowed {
		if a == nil && !present || a != nil && present && bytes.Equal(got, a) {
			return true
		}
	}
	return false
}

// crashCheck checks the recovered tree given that steps [0, done) completed
// and step done may or may not have taken effect.
func crashCheck(t *testing.T, tree map[string][]byte, done, short int) {
	t.Helper()
	get := func(p string) ([]byte, bool) { b, ok := tree[p]; return b, ok }
	expect := func(p string, allowed ...[]byte) {
		t.Helper()
		got, ok := get(p)
		if !oneOf(got, ok, allowed...) {
			desc := "absent"
			if ok {
				desc = fmt.Sprintf("%d bytes %s", len(got), describeMix(got, allowed))
			}
			t.Errorf("after %d steps: %s is %s; allowed %d alternatives", done, p, desc, len(allowed))
		}
	}
	empty := []byte{}
	expect("a/keep", crashKeep)
	switch {
	case done < 1:
		expect("a/old", crashOld)
	case done == 1 && short > 0:
		mix := append(slices.Clone(crashOld2[:short]), crashOld[short:]...)
		expect("a/old", crashOld, crashOld2, mix)
	case done == 1:
		expect("a/old", crashOld, crashOld2)
	case done < 5:
		expect("a/old", crashOld2)
	case done == 5:
		expect("a/old", crashOld2, crashCut)
	default:
		expect("a/old", crashCut)
	}
	switch {
	case done == 0:
		expect("a/new", nil, empty, crashNew)
		expect("b/moved", nil)
	case done == 1:
		expect("a/new", crashNew)
		expect("b/moved", nil)
	case done == 2:
		_, atOld := get("a/new")
		_, atNew := get("b/moved")
		if atOld == atNew {
			t.Errorf("interrupted rename: file at old name %v, at new name %v: want exactly one", atOld, atNew)
		}
		expect("a/new", nil, crashNew)
		expect("b/moved", nil, crashNew)
	default:
		expect("a/new", nil)
		expect("b/moved", crashNew)
	}
	switch {
	case done < 3:
		expect("a/gone", crashGone)
	case done == 3:
		expect("a/gone", crashGone, nil)
	default:
		expect("a/gone", nil)
	}
	switch {
	case done < 4:
		expect("b/x", crashX)
		expect("b/y", nil)
	case done == 4:
		_, x := get("b/x")
		_, y := get("b/y")
		if x == y {
			t.Errorf("same-directory rename: b/x present %v, b/y present %v", x, y)
		}
		expect("b/x", nil, crashX)
		expect("b/y", nil, crashX)
	default:
		expect("b/x", nil)
		expect("b/y", crashX)
	}
	known := []string{"a/", "b/", "a/keep", "a/old", "a/new", "a/gone", "b/moved", "b/x", "b/y", "./", "lost+found/"}
	for p := range tree {
		if !slices.Contains(known, p) && !strings.HasPrefix(p, "lost+found/") {
			t.Errorf("after %d steps: unexpected %s", done, p)
		}
	}
}

func crashRecoverAndCheck(t *testing.T, s *memory.Store, done, short int, lostReply bool) {
	t.Helper()
	if lostReply {
		// Before any recovery: a lost reply may leak (a link count too
		// high, an orphan, garbage), never leave a visible inconsistency.
		g, err := Open(context.Background(), s, &Options{AttrTimeout: -1})
		if err != nil {
			t.Fatalf("open after a lost reply: %v", err)
		}
		r, err := g.Fsck(context.Background(), FsckOptions{Grace: -1})
		if err != nil {
			t.Fatalf("fsck after a lost reply: %v", err)
		}
		for _, p := range r.Problems {
			if p.Kind != "nlink" && p.Kind != "orphan" {
				t.Errorf("after a lost reply: %v", p)
			}
		}
	}
	if ageIntent(t, s) {
		t.Errorf("after %d steps: a rename left an intent in the store; renames are single commits", done)
	}
	f, err := Open(context.Background(), s, &Options{AttrTimeout: -1})
	if err != nil {
		t.Fatalf("open after crash: %v", err)
	}
	fsckClean(t, f)
	crashCheck(t, treeContents(t, f), done, short)
}

type crashMode struct {
	name string
	inj  func(i int64) faulty.Injector
}

var crashModes = []crashMode{
	{"after", faulty.After},
	{"ambiguous", faulty.Ambiguous},
}

func TestCrashSweep(t *testing.T) {
	ctx := context.Background()
	// A run without faults counts the operations to sweep.
	s := crashSetup(t)
	fst := faulty.Wrap(s, nil)
	f, err := Open(ctx, fst, &Options{AttrTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	base := fst.Ops()
	if done, _, err := crashWorkload(f); err != nil || done != crashSteps {
		t.Fatalf("workload without faults: %d steps, %v", done, err)
	}
	total := fst.Ops() - base
	crashRecoverAndCheck(t, s, crashSteps, 0, false)
	if t.Failed() {
		t.FailNow()
	}

	for _, m := range crashModes {
		t.Run(m.name, func(t *testing.T) {
			swept, happened := 0, 0
			for i := int64(0); i <= total; i++ {
				s := crashSetup(t)
				fst := faulty.Wrap(s, nil)
				f, err := Open(ctx, fst, &Options{AttrTimeout: -1})
				if err != nil {
					t.Fatal(err)
				}
				inner := m.inj(i)
				var opMu sync.Mutex
				var failedOp string
				fst.SetInjector(faulty.InjectorFunc(func(op faulty.Op, key string) error {
					err := inner.MaybeError(op, key)
					opMu.Lock()
					if err != nil && failedOp == "" {
						failedOp = fmt.Sprintf("%v %s", op, key)
					}
					opMu.Unlock()
					return err
				}))
				done, short, err := crashWorkload(f)
				if err != nil && !errors.Is(err, faulty.ErrInjected) {
					t.Errorf("op %d: step %d failed with %v, want the injected error", i, done, err)
				}
				if err != nil {
					happened++
				}
				if m.name == "ambiguous" {
					// The client that saw the error must still read
					// unrelated data correctly.
					fst.SetInjector(nil)
					if b, err := f.ReadFile("a/keep"); err != nil || !bytes.Equal(b, crashKeep) {
						t.Errorf("op %d: a/keep through the failed client: %v", i, err)
					}
				}
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					crashRecoverAndCheck(t, s, done, short, m.name == "ambiguous")
					if t.Failed() {
						opMu.Lock()
						t.Logf("failed store operation %d: %s, in step %d: %v", i, failedOp, done, err)
						opMu.Unlock()
					}
				})
				swept++
				if t.Failed() && !testing.Verbose() {
					t.Fatalf("stopping the sweep at op %d of %d", i, total)
				}
			}
			t.Logf("%s: swept %d crash points (workload of %d store operations), %d of them failed the workload", m.name, swept, total, happened)
		})
	}
}

// TestCrashRenameRolledForward checks that an intent an older client left
// (it died right after writing its cross-directory rename intent; this
// version writes none) is rolled forward by a later Open once the lease has
// expired.
func TestCrashRenameRolledForward(t *testing.T) {
	ctx := context.Background()
	s := crashSetup(t)
	f, err := Open(ctx, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	ino, _, err := f.walk(ctx, "a/keep", false)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := f.walk(ctx, "a", false)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := f.walk(ctx, "b", false)
	if err != nil {
		t.Fatal(err)
	}
	in := &intent{at: time.Now().UnixNano(), odir: a, oname: "keep", ndir: b, nname: "kept", ino: ino, typ: typeFile}
	if _, err := s.CAS(ctx, f.c.leaseKey(), backend.NoVersion, encodeIntent(in)); err != nil {
		t.Fatal(err)
	}
	// Within the lease, Open leaves it alone.
	if _, err := Open(ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Stat("a/keep"); err != nil {
		t.Fatalf("rename applied while its lease was live: %v", err)
	}
	if !ageIntent(t, s) {
		t.Fatal("no intent pending")
	}
	g, err := Open(ctx, s, &Options{AttrTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	tree := treeContents(t, g)
	if _, ok := tree["a/keep"]; ok {
		t.Errorf("a/keep still present after roll-forward")
	}
	if got := tree["b/kept"]; !bytes.Equal(got, crashKeep) {
		t.Errorf("b/kept = %d bytes, want the rolled-forward file", len(got))
	}
	if ageIntent(t, s) {
		t.Errorf("intent still pending after roll-forward")
	}
	r := fsckClean(t, g)
	if !r.OK() {
		t.Errorf("roll-forward left problems: %v", r.Problems)
	}
}

// describeMix says where got departs from each allowed content.
func describeMix(got []byte, allowed [][]byte) string {
	var parts []string
	for _, a := range allowed {
		if a == nil {
			continue
		}
		i := 0
		for i < len(got) && i < len(a) && got[i] == a[i] {
			i++
		}
		end := min(len(got), i+32)
		parts = append(parts, fmt.Sprintf("differs from a %d-byte version at %d: %q", len(a), i, got[i:end]))
	}
	return strings.Join(parts, "; ")
}
