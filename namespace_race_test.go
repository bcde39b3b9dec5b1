package voldfs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/faulty"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/testserver"
)

// Adversarial schedules of namespace operations by several clients (FS
// values on one store). Every inode-key store call of every client blocks
// until a seeded scheduler lets it run; the scheduler waits until every
// client is blocked in a store call (or done) and then picks one at random,
// so a seed names one interleaving of the clients' store calls and replays
// it (VOLDFS_SEED). Block keys are not scheduled (background frees).

// scheduler interleaves the store calls of n clients by a seeded choice. A
// client is running until it blocks in a store call; once no client runs,
// one blocked call, chosen by the seed, goes ahead. A client with calls in
// parallel (the txn wrapper releases its locks in parallel) counts as
// blocked while any of them waits.
type scheduler struct {
	mu      sync.Mutex
	rng     *rand.Rand
	active  int                 // clients not done
	waiting map[int][]chan bool // client -> its blocked calls' releases
	steps   int
}

func newScheduler(seed uint64, clients int) *scheduler {
	return &scheduler{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), active: clients, waiting: map[int][]chan bool{}}
}

// wait blocks a call of client id until the scheduler picks it.
func (s *scheduler) wait(id int) {
	ch := make(chan bool)
	s.mu.Lock()
	s.waiting[id] = append(s.waiting[id], ch)
	s.dispatch()
	s.mu.Unlock()
	<-ch
}

// returned notes that a call returned: a client whose other parallel call
// still waits may now wait for it, so look again.
func (s *scheduler) returned() {
	s.mu.Lock()
	s.dispatch()
	s.mu.Unlock()
}

// done marks a client finished.
func (s *scheduler) done() {
	s.mu.Lock()
	s.active--
	s.dispatch()
	s.mu.Unlock()
}

func (s *scheduler) dispatch() {
	if s.active > len(s.waiting) || len(s.waiting) == 0 {
		return // some client runs, or none waits
	}
	ids := make([]int, 0, len(s.waiting))
	for id := range s.waiting {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	id := ids[s.rng.IntN(len(ids))]
	ch := s.waiting[id][0]
	if s.waiting[id] = s.waiting[id][1:]; len(s.waiting[id]) == 0 {
		delete(s.waiting, id)
	}
	s.steps++
	close(ch)
}

// schedStore is one client's view of the shared store: its inode-key calls
// go through the scheduler while gate is set.
type schedStore struct {
	backend.Store
	s    *scheduler
	id   int
	gate *bool
}

// hold blocks an inode-key call until the scheduler picks it and returns
// the function to call when the call returns.
func (st *schedStore) hold(key string) func() {
	if *st.gate && strings.Contains(key, "/i/") {
		st.s.wait(st.id)
		return st.s.returned
	}
	return func() {}
}

func (st *schedStore) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	defer st.hold(key)()
	return st.Store.Get(ctx, key)
}

func (st *schedStore) CAS(ctx context.Context, key string, old backend.Version, v []byte) (backend.Version, error) {
	defer st.hold(key)()
	return st.Store.CAS(ctx, key, old, v)
}

func (st *schedStore) Delete(ctx context.Context, key string, old backend.Version) error {
	defer st.hold(key)()
	return st.Store.Delete(ctx, key, old)
}

func (st *schedStore) Put(ctx context.Context, key string, v []byte) (backend.Version, error) {
	defer st.hold(key)()
	return backend.Put(ctx, st.Store, key, v)
}

func (st *schedStore) GetMulti(ctx context.Context, keys []string) (map[string]backend.Item, error) {
	if len(keys) > 0 {
		defer st.hold(keys[0])()
	}
	return backend.GetMulti(ctx, st.Store, keys)
}

func (st *schedStore) List(ctx context.Context, prefix string, fn func(string) error) error {
	return backend.List(ctx, st.Store, prefix, fn)
}

func (st *schedStore) Commit(ctx context.Context, ops []backend.Op) ([]backend.Version, error) {
	if len(ops) > 0 {
		defer st.hold(ops[0].Key)()
	}
	return backend.Commit(ctx, st.Store, ops)
}

// Unwrap returns the shared store.
func (st *schedStore) Unwrap() backend.Store { return st.Store }

// nsModel is the sequential specification: directories as name -> inode
// maps, enough to replay renames, exchanges and rmdirs.
type nsModel struct {
	dirs map[uint64]map[string]uint64
}

func (m *nsModel) clone() *nsModel {
	c := &nsModel{dirs: map[uint64]map[string]uint64{}}
	for d, ents := range m.dirs {
		c.dirs[d] = maps.Clone(ents)
	}
	return c
}

// resolve returns the directory holding path p's last element and the name.
func (m *nsModel) resolve(p string) (uint64, string, bool) {
	parts := strings.Split(p, "/")
	d := RootIno
	for _, name := range parts[:len(parts)-1] {
		ino, ok := m.dirs[d][name]
		if !ok || m.dirs[ino] == nil {
			return 0, "", false
		}
		d = ino
	}
	return d, parts[len(parts)-1], true
}

// inside reports whether directory dir is ino or below it.
func (m *nsModel) inside(dir, ino uint64) bool {
	for p := dir; ; {
		if p == ino {
			return true
		}
		if p == RootIno {
			return false
		}
		found := false
		for d, ents := range m.dirs {
			for _, e := range ents {
				if e == p {
					p, found = d, true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			return false
		}
	}
}

type nsOp struct {
	kind   string // "rename", "exchange", "rmdir"
	od, nd string
}

func (o nsOp) String() string { return o.kind + " " + o.od + " " + o.nd }

func (o nsOp) run(f *FS) error {
	switch o.kind {
	case "rename":
		return f.Rename(o.od, o.nd)
	case "exchange":
		return f.RenameFlags(o.od, o.nd, RenameExchange)
	case "rmdir":
		return f.Remove(o.od)
	}
	panic(o.kind)
}

// apply runs o on the model, with its parent directories resolved in the
// states ro and rn (a path is resolved before the rename commits, perhaps
// before other ops commit, as in Linux), and reports whether it succeeds.
func (m *nsModel) apply(o nsOp, ro, rn *nsModel) bool {
	od, on, ok := ro.resolve(o.od)
	if !ok || m.dirs[od] == nil {
		return false
	}
	src, ok := m.dirs[od][on]
	if !ok {
		return false
	}
	if o.kind == "rmdir" {
		if m.dirs[src] == nil || len(m.dirs[src]) > 0 {
			return false
		}
		delete(m.dirs[od], on)
		delete(m.dirs, src)
		return true
	}
	nd, nn, ok := rn.resolve(o.nd)
	if !ok || m.dirs[nd] == nil {
		return false
	}
	dst, exists := m.dirs[nd][nn]
	isDir := m.dirs[src] != nil
	if o.kind == "exchange" {
		if !exists {
			return false
		}
		if src == dst {
			return true
		}
		if isDir && od != nd && m.inside(nd, src) || m.dirs[dst] != nil && od != nd && m.inside(od, dst) {
			return false
		}
		m.dirs[od][on], m.dirs[nd][nn] = dst, src
		return true
	}
	if od == nd && on == nn || exists && dst == src {
		return true
	}
	if isDir && m.inside(nd, src) {
		return false
	}
	if exists {
		if (m.dirs[dst] != nil) != isDir || isDir && len(m.dirs[dst]) > 0 {
			return false
		}
		delete(m.dirs, dst)
	}
	delete(m.dirs[od], on)
	m.dirs[nd][nn] = src
	return true
}

// readModel reads the real tree, checking the structural invariants on the
// way: every directory but the root has exactly one name, no cycle, ".."
// names the directory holding the entry, and a file's link count equals its
// names.
func readModel(t *testing.T, f *FS) *nsModel {
	t.Helper()
	ctx := context.Background()
	m := &nsModel{dirs: map[uint64]map[string]uint64{}}
	names := map[uint64]int{}
	var walk func(ino uint64, depth int)
	walk = func(ino uint64, depth int) {
		require.Less(t, depth, 64, "directory cycle")
		if _, seen := m.dirs[ino]; seen {
			t.Fatalf("directory %d reached twice: under two names, or a cycle", ino)
		}
		ci, err := f.c.getInode(ctx, ino, 0)
		require.NoError(t, err)
		ents, _, err := dirList(ctx, dirNodes{f.c}, ci.n.inline, 0, 0)
		require.NoError(t, err)
		m.dirs[ino] = map[string]uint64{}
		subdirs := 0
		for _, e := range ents {
			m.dirs[ino][e.name] = e.ino
			names[e.ino]++
			if e.typ != typeDir {
				continue
			}
			subdirs++
			child, err := f.c.getInode(ctx, e.ino, 0)
			require.NoError(t, err, "entry %q in %d names a missing directory", e.name, ino)
			assert.False(t, child.n.dead(), "entry %q names a removed directory", e.name)
			assert.Equal(t, ino, child.n.parent, "\"..\" of %q", e.name)
			walk(e.ino, depth+1)
		}
		assert.EqualValues(t, subdirs, ci.n.subdir, "subdirectory count of %d", ino)
	}
	walk(RootIno, 0)
	for ino, n := range names {
		ci, err := f.c.getInode(ctx, ino, 0)
		require.NoError(t, err)
		if ci.n.isDir() {
			assert.Equal(t, 1, n, "directory %d has %d names", ino, n)
		} else {
			assert.EqualValues(t, n, ci.n.nlink, "file %d: nlink against names", ino)
		}
	}
	return m
}

func equalModels(a, b *nsModel) bool {
	if len(a.dirs) != len(b.dirs) {
		return false
	}
	for d, ents := range a.dirs {
		o, ok := b.dirs[d]
		if !ok || len(o) != len(ents) {
			return false
		}
		for k, v := range ents {
			if o[k] != v {
				return false
			}
		}
	}
	return true
}

// raceScenario is a tree to build and one op per client.
type raceScenario struct {
	name  string
	setup func(t *testing.T, f *FS)
	ops   []nsOp
}

func mkdirs(t *testing.T, f *FS, dirs ...string) {
	for _, d := range dirs {
		require.NoError(t, f.Mkdir(d, 0o755))
	}
}

var raceScenarios = []raceScenario{
	{"move vs same-dir rename", func(t *testing.T, f *FS) { mkdirs(t, f, "a", "b", "a/d", "a/d/s") },
		[]nsOp{{"rename", "a/d", "b/d"}, {"rename", "a/d", "a/d2"}}},
	{"move vs exchange", func(t *testing.T, f *FS) {
		mkdirs(t, f, "a", "b", "a/d", "a/e")
		writeFile(t, f, "a/d/f", []byte("f"))
	}, []nsOp{{"rename", "a/d", "b/d"}, {"exchange", "a/d", "a/e"}}},
	{"move vs exchange with a file", func(t *testing.T, f *FS) {
		mkdirs(t, f, "a", "b", "a/d")
		writeFile(t, f, "a/e", []byte("e"))
	}, []nsOp{{"rename", "a/d", "b/d"}, {"exchange", "a/d", "a/e"}}},
	{"move vs rmdir", func(t *testing.T, f *FS) { mkdirs(t, f, "a", "b", "a/d") },
		[]nsOp{{"rename", "a/d", "b/d"}, {"rmdir", "a/d", ""}}},
	{"move vs rename vs rmdir", func(t *testing.T, f *FS) { mkdirs(t, f, "a", "b", "a/d") },
		[]nsOp{{"rename", "a/d", "b/d"}, {"rename", "a/d", "a/x"}, {"rmdir", "a/d", ""}}},
	{"crossed moves (cycle)", func(t *testing.T, f *FS) { mkdirs(t, f, "a", "b") },
		[]nsOp{{"rename", "a", "b/x"}, {"rename", "b", "a/y"}}},
	{"move into a moving subtree", func(t *testing.T, f *FS) { mkdirs(t, f, "a", "b", "a/c") },
		[]nsOp{{"rename", "b", "a/c/b"}, {"rename", "a", "b/a"}, {"rename", "a/c", "c"}}},
}

// raceSeeds returns the seeds to run: VOLDFS_SEED alone, or n from a
// time-based start.
func raceSeeds(t *testing.T, n int) []uint64 {
	if s := os.Getenv("VOLDFS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		return []uint64{seed}
	}
	start := uint64(time.Now().UnixNano())
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = start + uint64(i)
	}
	return seeds
}

// runSchedule runs sc's ops, one client each, on store s (every client
// through its own scheduled view), under the interleaving seed names, and
// checks the result against every serial order of the ops.
func runSchedule(t *testing.T, s backend.Store, name string, sc raceScenario, seed uint64) {
	t.Helper()
	ctx := context.Background()
	o := &Options{Name: name, AttrTimeout: -1}
	f0, err := Format(ctx, s, o)
	require.NoError(t, err)
	sc.setup(t, f0)
	f0.WaitFrees()
	before := readModel(t, f0)
	gate := false
	sch := newScheduler(seed, len(sc.ops))
	clients := make([]*FS, len(sc.ops))
	for i := range clients {
		clients[i], err = Open(ctx, &schedStore{Store: s, s: sch, id: i, gate: &gate}, o)
		require.NoError(t, err)
	}
	errs := make([]error, len(sc.ops))
	var wg sync.WaitGroup
	gate = true
	for i, op := range sc.ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sch.done()
			errs[i] = op.run(clients[i])
		}()
	}
	wg.Wait()
	gate = false
	for _, c := range clients {
		c.WaitFrees()
	}
	g, err := Open(ctx, s, o)
	require.NoError(t, err)
	ok := make([]bool, len(errs))
	for i, err := range errs {
		ok[i] = err == nil
		if err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.EINVAL) &&
			!errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			t.Errorf("seed %d: %v: unexpected error %v", seed, sc.ops[i], err)
		}
	}
	after := readModel(t, g)
	wantFsckClean(t, g)
	// Linearizable: some serial order of the ops gives the same outcomes
	// (acknowledged ops visible, failed ones not) and the same tree.
	order := make([]int, len(sc.ops))
	for i := range order {
		order[i] = i
	}
	var matched bool
	permute(order, 0, func(p []int) {
		if !matched {
			matched = serialMatch(sc.ops, p, []*nsModel{before}, make([]bool, len(p)), ok, after)
		}
	})
	if !matched {
		t.Errorf("seed %d (VOLDFS_SEED=%d to replay): results %v for %v match no serial order; tree %v from %v", seed, seed, errs, sc.ops, after.dirs, before.dirs)
	}
}

// serialMatch reports whether running ops in order p, each op's paths
// resolved in any state from the start to its turn, can give the outcomes
// want and the tree after. states holds the states so far.
func serialMatch(ops []nsOp, p []int, states []*nsModel, got, want []bool, after *nsModel) bool {
	k := len(states) - 1
	if k == len(p) {
		return slices.Equal(got, want) && equalModels(states[k], after)
	}
	i := p[k]
	for _, ro := range states {
		for _, rn := range states {
			m := states[k].clone()
			got[i] = m.apply(ops[i], ro, rn)
			if got[i] != want[i] {
				continue
			}
			if serialMatch(ops, p, append(slices.Clip(states), m), got, want, after) {
				return true
			}
		}
	}
	return false
}

func permute(a []int, k int, fn func([]int)) {
	if k == len(a) {
		fn(a)
		return
	}
	for i := k; i < len(a); i++ {
		a[k], a[i] = a[i], a[k]
		permute(a, k+1, fn)
		a[k], a[i] = a[i], a[k]
	}
}

// TestNamespaceRace runs every scenario under many seeded interleavings on
// one memory store.
func TestNamespaceRace(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	seeds := raceSeeds(t, n)
	t.Logf("seeds %d.. (%d each; replay one with VOLDFS_SEED)", seeds[0], len(seeds))
	for _, sc := range raceScenarios {
		t.Run(sc.name, func(t *testing.T) {
			for _, seed := range seeds {
				runSchedule(t, memory.New(), "fs", sc, seed)
				if t.Failed() {
					t.Fatalf("failed at seed %d: replay with VOLDFS_SEED=%d", seed, seed)
				}
			}
		})
	}
}

// TestNamespaceRaceMemcached runs the scenarios on memcached, where the
// commits are the txn wrapper's (the store has no Committer).
func TestNamespaceRaceMemcached(t *testing.T) {
	n := 60
	if testing.Short() {
		n = 10
	}
	s, err := memcache.New(testserver.Memcached(t))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	seeds := raceSeeds(t, n)
	t.Logf("seeds %d.. (%d each; replay one with VOLDFS_SEED)", seeds[0], len(seeds))
	for k, sc := range raceScenarios {
		t.Run(sc.name, func(t *testing.T) {
			for i, seed := range seeds {
				runSchedule(t, s, fmt.Sprintf("fs%d-%d-%d", k, i, seed%1000), sc, seed)
				if t.Failed() {
					t.Fatalf("failed at seed %d: replay with VOLDFS_SEED=%d", seed, seed)
				}
			}
		})
	}
}

// TestLinkLostReply: a Link whose commit applied but whose reply was lost
// (a connection reset) is resolved by reading: it succeeds and the link
// count equals the names. A commit that failed before applying (a reset
// before the request reached the store) is sent again as it was: the link
// is made once.
func TestLinkLostReply(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		applied bool
	}{{"lost reply", true}, {"not applied", false}} {
		t.Run(tc.name, func(t *testing.T) {
			s := memory.New()
			f0, err := Format(ctx, s, nil)
			require.NoError(t, err)
			writeFile(t, f0, "f", []byte("x"))
			require.NoError(t, f0.Mkdir("d", 0o755))
			fs := faulty.Wrap(s, nil)
			f, err := Open(ctx, fs, &Options{AttrTimeout: -1})
			require.NoError(t, err)
			var once sync.Once
			fs.SetInjector(faulty.InjectorFunc(func(op faulty.Op, key string) error {
				var err error
				if op == faulty.OpCommit {
					once.Do(func() {
						err = faulty.ErrConnReset
						if tc.applied {
							err = fmt.Errorf("%w: %w", faulty.ErrConnReset, faulty.ErrReplyLost)
						}
					})
				}
				return err
			}))
			lerr := f.Link("f", "d/g")
			fs.SetInjector(nil)
			g, err := Open(ctx, s, &Options{AttrTimeout: -1})
			require.NoError(t, err)
			_, gerr := g.Stat("d/g")
			assert.NoError(t, lerr, "an unknown outcome is settled by reading (and sending the commit again)")
			assert.NoError(t, gerr)
			assert.EqualValues(t, 2, attr(t, g, "f").Nlink)
			readModel(t, g)
			wantFsckClean(t, g)
		})
	}
}

// casOnly hides a store's Committer, as memcached or a user's store has none.
type casOnly struct{ backend.Store }

// TestOpenPlainThroughTxn: a filesystem written with plain values (by a
// store with native commits, as every filesystem formatted before the
// multi-key commits) opens through the txn wrapper newCore puts on a store
// without a Committer, reads unchanged, and takes namespace commits.
func TestOpenPlainThroughTxn(t *testing.T) {
	ctx := context.Background()
	s := memory.New()
	f0, err := Format(ctx, s, nil)
	require.NoError(t, err)
	mkdirs(t, f0, "a", "b", "a/d")
	writeFile(t, f0, "a/f", []byte("plain"))
	require.Equal(t, backend.Store(s), uncounted(f0.c.inodes), "a store with a Committer is used as it is")
	f, err := Open(ctx, casOnly{s}, &Options{AttrTimeout: -1})
	require.NoError(t, err)
	_, ok := f.c.inodes.(backend.Committer)
	require.True(t, ok)
	u, ok := f.c.inodes.(interface{ Unwrap() backend.Store })
	require.True(t, ok, "a store without a Committer is wrapped")
	require.Equal(t, backend.Store(casOnly{s}), uncounted(u.Unwrap()))
	wantContent(t, f, "a/f", []byte("plain"))
	require.NoError(t, f.Rename("a/d", "b/d"))
	require.NoError(t, f.Rename("a/f", "b/f"))
	require.NoError(t, f.Link("b/f", "a/g"))
	wantContent(t, f, "a/g", []byte("plain"))
	readModel(t, f)
	wantFsckClean(t, f)
}
