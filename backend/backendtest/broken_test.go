package backendtest_test

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/backendtest"
)

// The suite must fail stores that break the contract. A failing suite would
// fail the test that runs it, so TestBrokenStores runs each broken store in a
// child process (TestBrokenHelper) and checks that the child failed, in the
// subtest that checks the broken property.

const brokenEnv = "BACKENDTEST_BROKEN"

var brokenCases = []struct {
	name     string
	bugs     bugs
	wantFail string // subtest of the suite that must fail; "" for none
}{
	{"correct", bugs{}, ""},
	{"CASIgnoresVersion", bugs{ignoreVersion: true}, "CAS"},
	{"NilForNotFound", bugs{nilNotFound: true}, "GetMissing"},
	{"NilForEmpty", bugs{nilEmpty: true}, "EmptyValue"},
	{"PerKeyVersions", bugs{perKeyVersions: true}, "NoABA"},
	{"NonAtomicCAS", bugs{nonAtomic: true}, "CreateIfAbsentRace"},
	{"RetainsSlices", bugs{retain: true}, "SliceOwnership"},
	{"IgnoresContext", bugs{ignoreCtx: true}, "ContextCanceled"},
	{"IgnoresLimit", bugs{ignoreLimit: true}, "LargeValues"},
	{"UnconditionalDelete", bugs{blindDelete: true}, "ConditionalDelete"},
	{"ListsAll", bugs{listAll: true}, "List"},
	{"UsableAfterClose", bugs{noClose: true}, "Close"},
	{"NonAtomicCommit", bugs{nonAtomicCommit: true}, "Commit/Conflicts"},
	{"InterleavedCommit", bugs{interleavedCommit: true}, "Commit/Transfers"},
}

func TestBrokenStores(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite once per broken store in a child process; skipped in -short")
	}
	for _, tc := range brokenCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenHelper$", "-test.count=1", "-test.timeout=5m")
			cmd.Env = append(os.Environ(), brokenEnv+"="+tc.name)
			out, err := cmd.CombinedOutput()
			if tc.wantFail == "" {
				if err != nil {
					t.Fatalf("suite failed a correct store: %v\n%s", err, out)
				}
				if !strings.Contains(string(out), "PASS") {
					t.Fatalf("child did not run the suite:\n%s", out)
				}
				return
			}
			if _, ok := err.(*exec.ExitError); !ok {
				t.Fatalf("suite passed a store with bug %s (err %v):\n%s", tc.name, err, out)
			}
			want := "--- FAIL: TestBrokenHelper/" + tc.wantFail + " "
			if !strings.Contains(string(out), want) {
				t.Fatalf("child output lacks %q:\n%s", want, out)
			}
		})
	}
}

// TestBrokenHelper runs the suite on the broken store named by $BACKENDTEST_BROKEN.
func TestBrokenHelper(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("child process of TestBrokenStores only")
	}
	for _, tc := range brokenCases {
		if tc.name == name {
			backendtest.RunConformanceTests(t, func(*testing.T) backend.Store {
				return &brokenStore{bugs: tc.bugs, m: map[string]entry{}}
			})
			return
		}
	}
	t.Fatalf("no broken store %q", name)
}

// bugs selects how brokenStore breaks the contract.
type bugs struct {
	ignoreVersion  bool // CAS ignores the old version
	nilNotFound    bool // Get of a missing key returns nil, nil
	nilEmpty       bool // Get of an empty value returns a nil slice
	perKeyVersions bool // versions restart at 1 when a key is re-created
	nonAtomic      bool // CAS checks and writes under separate locks
	retain         bool // CAS keeps the caller's slice
	ignoreCtx      bool // calls ignore the context
	ignoreLimit    bool // MaxValueSize is not enforced
	blindDelete    bool // Delete ignores the version
	listAll        bool // List ignores the prefix
	noClose        bool // Close does nothing
	// Commit applies op by op, so a later conflict leaves earlier ops applied
	nonAtomicCommit bool
	// Commit checks every condition, then applies under separate locks
	interleavedCommit bool
}

type entry struct {
	value   []byte
	version backend.Version
}

// brokenStore is a small map store with optional bugs.
type brokenStore struct {
	bugs   bugs
	mu     sync.Mutex
	m      map[string]entry
	seq    backend.Version
	closed bool
}

const brokenLimit = 4096

func (s *brokenStore) MaxValueSize() int { return brokenLimit }

func (s *brokenStore) enter(ctx context.Context) error {
	if !s.bugs.ignoreCtx {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return backend.ErrClosed
	}
	return nil
}

func (s *brokenStore) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	if err := s.enter(ctx); err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		if s.bugs.nilNotFound {
			return nil, 0, nil
		}
		return nil, 0, backend.ErrNotFound
	}
	if len(e.value) == 0 && s.bugs.nilEmpty {
		return nil, e.version, nil
	}
	return append([]byte{}, e.value...), e.version, nil
}

func (s *brokenStore) CAS(ctx context.Context, key string, old backend.Version, value []byte) (backend.Version, error) {
	if len(value) > brokenLimit && !s.bugs.ignoreLimit {
		return 0, backend.ErrTooLarge
	}
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	e, ok := s.m[key]
	if e.version != old && !s.bugs.ignoreVersion {
		s.mu.Unlock()
		return 0, backend.ErrConflict
	}
	if s.bugs.nonAtomic {
		s.mu.Unlock()
		runtime.Gosched()
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	v := append([]byte{}, value...)
	if s.bugs.retain {
		v = value
	}
	s.seq++
	nv := s.seq
	if s.bugs.perKeyVersions {
		nv = e.version + 1
		if !ok {
			nv = 1
		}
	}
	s.m[key] = entry{v, nv}
	return nv, nil
}

func (s *brokenStore) Delete(ctx context.Context, key string, old backend.Version) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		return backend.ErrNotFound
	}
	if old != backend.AnyVersion && old != e.version && !s.bugs.blindDelete {
		return backend.ErrConflict
	}
	delete(s.m, key)
	return nil
}

func (s *brokenStore) List(ctx context.Context, prefix string, fn func(string) error) error {
	if err := s.enter(ctx); err != nil {
		return err
	}
	var keys []string
	for k := range s.m {
		if strings.HasPrefix(k, prefix) || s.bugs.listAll {
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	for _, k := range keys {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

func (s *brokenStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = !s.bugs.noClose
	return nil
}

func commitCond(e entry, ok bool, old backend.Version) bool {
	switch old {
	case backend.AnyVersion:
		return true
	case backend.NoVersion:
		return !ok
	}
	return ok && e.version == old
}

// Commit implements backend.Committer: under the store's lock, every
// condition, then every write (unless a commit bug is set).
func (s *brokenStore) Commit(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	if err := backend.CheckOps(ctx, ops, brokenLimit); err != nil {
		return nil, err
	}
	if s.bugs.nonAtomicCommit {
		vers := make([]backend.Version, len(ops))
		for i, op := range ops {
			v, err := s.apply(ctx, []backend.Op{op}) // each op on its own
			if err != nil {
				return nil, err
			}
			vers[i] = v[0]
		}
		return vers, nil
	}
	return s.apply(ctx, ops)
}

func (s *brokenStore) apply(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	for _, op := range ops {
		e, ok := s.m[op.Key]
		if !commitCond(e, ok, op.Old) {
			s.mu.Unlock()
			return nil, &backend.ConflictError{Key: op.Key}
		}
	}
	vers := make([]backend.Version, len(ops))
	for i, op := range ops {
		if s.bugs.interleavedCommit {
			s.mu.Unlock()
			runtime.Gosched()
			s.mu.Lock()
		}
		switch {
		case op.Check:
		case op.Delete:
			delete(s.m, op.Key)
		default:
			s.seq++
			s.m[op.Key] = entry{append([]byte{}, op.Value...), s.seq}
			vers[i] = s.seq
		}
	}
	s.mu.Unlock()
	return vers, nil
}
