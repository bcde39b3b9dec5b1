package voldfs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/faulty"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/backend/txn"
)

// A deterministic interleaving explorer for namespace operations (issue
// #12, item 7). Every store call a client makes (but block reads and
// writes, which are write-once) passes through a scheduler that lets one
// pending call run at a time: once every client is blocked in a store call
// (or done), the scheduler picks which call goes ahead. A run is named by
// its list of picks, so it replays exactly; TestExplorePairs enumerates
// every list (every interleaving of the clients' calls) for each pair of
// operations, depth first, and TestExploreTriples draws seeded ones for
// triples. A fault names one call of one client: the client crashes there
// (the call is not applied, or applied, and the client makes no further
// call), or the call's reply is lost (applied, the client sees a connection
// reset). After each run a fresh client checks the tree (one name per
// directory, no cycles, "..", nlink against names, subdirectory counts),
// that fsck is clean (after a repair of what a crash left behind), and that
// some serial order of the operations gives the same outcomes and the same
// tree: every acknowledged operation is visible, no failed one is.
//
// VOLDFS_EXPLORE=<case>/<fault>/<picks>, as a failure prints it, replays
// one run.

// errCrashed is what a crashed client's store calls return.
var errCrashed = fmt.Errorf("explorer: client crashed: %w", faulty.NetError("read", syscall.ECONNRESET))

// errLost is a reply lost after the call was applied.
var errLost = fmt.Errorf("%w: %w", faulty.ErrConnReset, faulty.ErrReplyLost)

// xfault is a fault at one call of one client.
type xfault struct {
	client, call int
	kind         string // "" (none), "crash", "crash-applied", "lost"
}

func (f xfault) String() string {
	if f.kind == "" {
		return "none"
	}
	return fmt.Sprintf("%s@%d.%d", f.kind, f.client, f.call)
}

func parseFault(s string) (xfault, error) {
	if s == "none" {
		return xfault{}, nil
	}
	kind, at, ok := strings.Cut(s, "@")
	c, k, ok2 := strings.Cut(at, ".")
	ci, err1 := strconv.Atoi(c)
	ki, err2 := strconv.Atoi(k)
	if !ok || !ok2 || err1 != nil || err2 != nil {
		return xfault{}, fmt.Errorf("bad fault %q", s)
	}
	return xfault{ci, ki, kind}, nil
}

// xsched decides which blocked call runs next. The pick at each step is
// prefix[step] (a client id) while the prefix lasts, then a seeded random
// client (rng), or else the lowest client not asleep: depth-first
// enumeration with sleep sets (Godefroid), which skips a run that only
// swaps calls that commute (different keys, or reads of one key), as it
// gives the same result as one already made.
type xsched struct {
	mu      sync.Mutex
	prefix  []int
	rng     *rand.Rand
	picks   []int    // the client picked at each step
	trace   []string // what ran at each step: client, keys read and written
	enabled [][]int  // the clients blocked at each step, lowest first
	asleep  []map[int]bool
	sleep   map[int]bool // clients whose pending call need not go next
	blocked int          // first step at which every blocked client slept (-1: none)
	active  int          // clients neither done nor crashed
	waiting map[int][]*xpending
	calls   map[int]int // calls made per client
	dead    map[int]bool
	fault   xfault
	hit     bool          // the fault's call was reached
	end     chan struct{} // closed when no client is active
	ended   bool
}

// xpending is a blocked call: its release, and the keys it reads and writes.
type xpending struct {
	ch     chan struct{}
	reads  []string
	writes []string
	all    bool // depends on every call (a fault)
	step   int  // the step it ran at
}

// dependent reports whether a and b may not commute.
func (a *xpending) dependent(b *xpending) bool {
	if a.all || b.all {
		return true
	}
	return writesRead(a.writes, b.reads) || writesRead(b.writes, a.reads) || writesRead(a.writes, b.writes)
}

// writesRead reports whether a key of writes is in reads, where a read
// "prefix*" (a List) reads every key with the prefix.
func writesRead(writes, reads []string) bool {
	for _, w := range writes {
		for _, r := range reads {
			if p, ok := strings.CutSuffix(r, "*"); ok && strings.HasPrefix(w, p) || r == w {
				return true
			}
		}
	}
	return false
}

const maxSteps = 20000 // a run longer than this is a livelock

func newXsched(clients int, prefix []int, rng *rand.Rand, fault xfault) *xsched {
	return &xsched{prefix: prefix, rng: rng, active: clients, waiting: map[int][]*xpending{}, sleep: map[int]bool{},
		blocked: -1, calls: map[int]int{}, dead: map[int]bool{}, fault: fault, end: make(chan struct{})}
}

// dispatch releases one blocked call once no client runs. s.mu is held.
func (s *xsched) dispatch() {
	if s.active == 0 && !s.ended {
		s.ended = true
		close(s.end)
	}
	if len(s.waiting) == 0 || s.active > len(s.waiting) {
		return
	}
	ids := make([]int, 0, len(s.waiting))
	for id := range s.waiting {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	step := len(s.picks)
	pick := -1
	switch {
	case step < len(s.prefix):
		if slices.Contains(ids, s.prefix[step]) {
			pick = s.prefix[step]
		}
	case s.rng != nil:
		pick = ids[s.rng.IntN(len(ids))]
	default:
		for _, id := range ids {
			if !s.sleep[id] {
				pick = id
				break
			}
		}
		if pick < 0 && s.blocked < 0 {
			s.blocked = step // the rest of this run repeats an earlier one
		}
	}
	if pick < 0 {
		pick = ids[0]
	}
	s.picks = append(s.picks, pick)
	s.enabled = append(s.enabled, ids)
	s.asleep = append(s.asleep, maps.Clone(s.sleep))
	p := s.waiting[pick][0]
	p.step = len(s.trace)
	s.trace = append(s.trace, fmt.Sprintf("%d r%v w%v", pick, p.reads, p.writes))
	// The clients explored before pick at this step, and those asleep,
	// stay asleep while what runs commutes with their calls.
	next := map[int]bool{}
	for _, id := range ids {
		if id != pick && (s.sleep[id] || id < pick) && !s.waiting[id][0].dependent(p) {
			next[id] = true
		}
	}
	s.sleep = next
	if s.waiting[pick] = s.waiting[pick][1:]; len(s.waiting[pick]) == 0 {
		delete(s.waiting, pick)
	}
	close(p.ch)
}

// xgarbageBorn is when the setup's garbage blocks were written (fixed, so
// that their keys are the same in every process).
var xgarbageBorn = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// xstep is how far the explorer's virtual clock advances per scheduled
// call.
const xstep = 100 * time.Microsecond

// now is the explorer clients' clock: it advances by xstep at each
// scheduled call, so a txn client's decision that a pending transaction
// is abandoned depends on the schedule alone, never on the machine's
// speed. Only one client runs between two scheduled calls, so the step
// count it reads is fixed by the picks.
func (s *xsched) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Unix(0, 0).Add(time.Duration(len(s.picks)) * xstep)
}

// done marks client id finished.
func (s *xsched) done(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dead[id] {
		s.active--
	}
	s.dispatch()
}

// call runs one store call of client id, reading and writing keys, through
// the scheduler: apply does it, lose replaces its result by a lost reply.
func (s *xsched) call(id int, reads, writes []string, apply func() error, lose func(), desc ...func() string) error {
	s.mu.Lock()
	if s.dead[id] {
		s.mu.Unlock()
		return errCrashed
	}
	n := s.calls[id]
	s.calls[id]++
	kind := ""
	if s.fault.client == id && s.fault.call == n {
		kind = s.fault.kind
	}
	p := &xpending{ch: make(chan struct{}), reads: reads, writes: writes, all: kind != ""}
	s.waiting[id] = append(s.waiting[id], p)
	s.dispatch()
	s.mu.Unlock()
	<-p.ch
	var err error
	switch kind {
	case "crash", "crash-applied":
		if kind == "crash-applied" {
			apply()
		}
		s.mu.Lock()
		s.hit = true
		s.dead[id] = true
		s.active--
		s.dispatch()
		s.mu.Unlock()
		<-s.end // a crashed client stops: its call returns after the run
		lose()
		return errCrashed
	case "lost":
		err = apply()
		s.describe(p, err, desc)
		lose()
		err = errLost
	default:
		err = apply()
		s.describe(p, err, desc)
	}
	s.mu.Lock()
	if kind != "" {
		s.hit = true
	}
	s.dispatch()
	s.mu.Unlock()
	return err
}

var xtracing = os.Getenv("VOLDFS_EXPLORE_TRACE") == "1"

// describe adds what call p did to its step in the trace.
func (s *xsched) describe(p *xpending, err error, desc []func() string) {
	if !xtracing {
		return
	}
	d := ""
	if err != nil {
		d = " err=" + err.Error()
	}
	for _, f := range desc {
		d += " " + f()
	}
	s.mu.Lock()
	s.trace[p.step] += " ->" + d
	s.mu.Unlock()
}

// xval describes a stored value for a trace: a txn lock by its primary,
// id, state and kind.
func xval(v []byte) string {
	if len(v) < 2 || v[0] != 0xC1 {
		if len(v) == 0 {
			return "-"
		}
		return fmt.Sprintf("plain(%c,%d)", v[0], len(v))
	}
	if v[1] != 'L' {
		return fmt.Sprintf("txn-%c", v[1])
	}
	b := v[2:]
	n, k := binary.Uvarint(b)
	b = b[k:]
	prim := string(b[:n])
	b = b[n:]
	id := b[:16]
	b = b[16:]
	st := b[1]
	if st == 0 {
		st = 's'
	}
	return fmt.Sprintf("L(%s,%x,%c,k%d)", prim[len(prim)-4:], id[:2], st, b[0]&0x7f)
}

// xstore is one client's view of the shared store: every call but those on
// block keys goes through the scheduler once gate is set.
type xstore struct {
	backend.Store
	s    *xsched
	id   int
	gate *atomic.Bool
}

func (st *xstore) gated(key string) bool { return st.gate.Load() && !strings.Contains(key, "/b/") }

func (st *xstore) Get(ctx context.Context, key string) (v []byte, ver backend.Version, err error) {
	if !st.gated(key) {
		return st.Store.Get(ctx, key)
	}
	err = st.s.call(st.id, []string{key}, nil, func() error { v, ver, err = st.Store.Get(ctx, key); return err }, func() { v, ver = nil, 0 },
		func() string { return fmt.Sprintf("%s v%d", xval(v), ver) })
	return v, ver, err
}

func (st *xstore) CAS(ctx context.Context, key string, old backend.Version, val []byte) (ver backend.Version, err error) {
	if !st.gated(key) {
		return st.Store.CAS(ctx, key, old, val)
	}
	err = st.s.call(st.id, nil, []string{key}, func() error { ver, err = st.Store.CAS(ctx, key, old, val); return err }, func() { ver = 0 },
		func() string { return fmt.Sprintf("cas v%d %s -> v%d", old, xval(val), ver) })
	return ver, err
}

func (st *xstore) Delete(ctx context.Context, key string, old backend.Version) error {
	if !st.gated(key) {
		return st.Store.Delete(ctx, key, old)
	}
	return st.s.call(st.id, nil, []string{key}, func() error { return st.Store.Delete(ctx, key, old) }, func() {},
		func() string { return fmt.Sprintf("delete v%d", old) })
}

func (st *xstore) Put(ctx context.Context, key string, val []byte) (ver backend.Version, err error) {
	if !st.gated(key) {
		return backend.Put(ctx, st.Store, key, val)
	}
	err = st.s.call(st.id, nil, []string{key}, func() error { ver, err = backend.Put(ctx, st.Store, key, val); return err }, func() { ver = 0 })
	return ver, err
}

func (st *xstore) GetMulti(ctx context.Context, keys []string) (m map[string]backend.Item, err error) {
	if len(keys) == 0 || !st.gated(keys[0]) {
		return backend.GetMulti(ctx, st.Store, keys)
	}
	err = st.s.call(st.id, keys, nil, func() error { m, err = backend.GetMulti(ctx, st.Store, keys); return err }, func() { m = nil },
		func() string {
			var b strings.Builder
			for _, k := range keys {
				fmt.Fprintf(&b, "%s:%s v%d ", k[len(k)-4:], xval(m[k].Value), m[k].Version)
			}
			return b.String()
		})
	return m, err
}

func (st *xstore) List(ctx context.Context, prefix string, fn func(string) error) error {
	if !st.gated(prefix + "x") {
		return backend.List(ctx, st.Store, prefix, fn)
	}
	// Collect the keys in the call, then hand them to fn outside it.
	var keys []string
	err := st.s.call(st.id, []string{prefix + "*"}, nil, func() error {
		return backend.List(ctx, st.Store, prefix, func(k string) error { keys = append(keys, k); return nil })
	}, func() { keys = nil })
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// Close leaves the shared store open.
func (st *xstore) Close() error { return nil }

// xcommitStore is an xstore over a store with native commits.
type xcommitStore struct{ *xstore }

func (st xcommitStore) Commit(ctx context.Context, ops []backend.Op) (vers []backend.Version, err error) {
	if len(ops) == 0 || !st.gated(ops[0].Key) {
		return backend.Commit(ctx, st.Store, ops)
	}
	var reads, writes []string
	for _, op := range ops {
		if op.Check {
			reads = append(reads, op.Key)
		} else {
			writes = append(writes, op.Key)
		}
	}
	err = st.s.call(st.id, reads, writes, func() error { vers, err = backend.Commit(ctx, st.Store, ops); return err }, func() { vers = nil })
	return vers, err
}

// xop is one client's operation.
type xop struct {
	kind   string // rename, exchange, remove, link, create, mkdir, fsck
	p1, p2 string
}

func (o xop) String() string { return strings.TrimSpace(o.kind + " " + o.p1 + " " + o.p2) }

func (o xop) run(f *FS) error {
	switch o.kind {
	case "rename":
		return f.Rename(o.p1, o.p2)
	case "exchange":
		return f.RenameFlags(o.p1, o.p2, RenameExchange)
	case "remove":
		return f.Remove(o.p1)
	case "link":
		return f.Link(o.p1, o.p2)
	case "create":
		fl, err := f.OpenFile(o.p1, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		return fl.Close()
	case "mkdir":
		return f.Mkdir(o.p1, 0o755)
	case "fsck":
		// An online repair that judges everything old enough: what
		// protects the other clients is that every repair is a
		// conditional commit on the state it judged. Not GC: a block
		// is garbage only once it is older than any commit in flight
		// (the grace period), and here every block is young. With no
		// grace, GC deletes the blocks a commit in flight has written
		// and not yet published (TestExplorePairsBigDir found that
		// as soon as directories had blocks); the documented limit.
		_, err := f.Fsck(context.Background(), FsckOptions{Repair: true, Grace: -1})
		return err
	case "gc":
		// Garbage collection beside the clients, with a grace period
		// that every block a commit in flight wrote is younger than;
		// the setup's garbage is older.
		_, err := f.Fsck(context.Background(), FsckOptions{GC: true, Grace: time.Hour})
		return err
	}
	panic(o.kind)
}

// apply runs o on model m (its paths resolved in states ro and rn, as a
// path is looked up before the commit) and reports whether it succeeds.
// New inodes get the number label.
func (o xop) apply(m, ro, rn *nsModel, label uint64) bool {
	switch o.kind {
	case "rename", "exchange":
		return m.apply(nsOp{o.kind, o.p1, o.p2}, ro, rn)
	case "fsck", "gc":
		return true
	case "remove":
		d, name, ok := ro.resolve(o.p1)
		if !ok || ro.dirs[d] == nil {
			return false
		}
		seen, ok := ro.dirs[d][name]
		if !ok || m.dirs[d] == nil {
			return false
		}
		isDir := ro.dirs[seen] != nil // the type the lookup saw
		ino, ok := m.dirs[d][name]
		if !ok || (m.dirs[ino] != nil) != isDir {
			return false
		}
		if isDir {
			if len(m.dirs[ino]) > 0 {
				return false
			}
			delete(m.dirs, ino)
		}
		delete(m.dirs[d], name)
		return true
	case "link":
		sd, sname, ok := ro.resolve(o.p1)
		if !ok || ro.dirs[sd] == nil {
			return false
		}
		src, ok := ro.dirs[sd][sname]
		if !ok || m.dirs[src] != nil || ro.dirs[src] != nil || !m.named(src) {
			return false
		}
		d, name, ok := rn.resolve(o.p2)
		if !ok || m.dirs[d] == nil {
			return false
		}
		if _, exists := m.dirs[d][name]; exists {
			return false
		}
		m.dirs[d][name] = src
		return true
	case "create", "mkdir":
		d, name, ok := ro.resolve(o.p1)
		if !ok || m.dirs[d] == nil {
			return false
		}
		if _, exists := m.dirs[d][name]; exists {
			return false
		}
		m.dirs[d][name] = label
		if o.kind == "mkdir" {
			m.dirs[label] = map[string]uint64{}
		}
		return true
	}
	panic(o.kind)
}

// named reports whether inode ino has a name in m.
func (m *nsModel) named(ino uint64) bool {
	for _, ents := range m.dirs {
		for _, e := range ents {
			if e == ino {
				return true
			}
		}
	}
	return false
}

// canon renders the tree from the root with inodes outside orig (created
// by the operations) as "N", so a model and a real tree compare.
func (m *nsModel) canon(orig map[uint64]bool) string {
	var b strings.Builder
	var walk func(d uint64, depth int)
	walk = func(d uint64, depth int) {
		if depth > 32 {
			b.WriteString("<cycle>")
			return
		}
		names := slices.Sorted(mapsKeys(m.dirs[d]))
		b.WriteByte('{')
		for _, name := range names {
			ino := m.dirs[d][name]
			b.WriteString(name)
			b.WriteByte('=')
			if orig[ino] {
				b.WriteString(strconv.FormatUint(ino, 10))
			} else {
				b.WriteByte('N')
			}
			if m.dirs[ino] != nil {
				walk(ino, depth+1)
			}
			b.WriteByte(' ')
		}
		b.WriteByte('}')
	}
	walk(RootIno, 0)
	return b.String()
}

func mapsKeys(m map[string]uint64) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Outcomes of an operation, as its error tells them.
const (
	outFailed  = iota // a definite refusal: nothing changed
	outApplied        // acknowledged
	outEither         // unknown (a lost reply, a crash): either is right
)

// outcome classifies an operation's result; a result no operation may
// give is an error.
func outcome(err error) (int, error) {
	switch {
	case err == nil:
		return outApplied, nil
	case outcomeUnknown(err), errors.Is(err, syscall.ECONNRESET):
		return outEither, nil
	}
	for _, e := range []syscall.Errno{syscall.ENOENT, syscall.EEXIST, syscall.ENOTEMPTY, syscall.EINVAL,
		syscall.ENOTDIR, syscall.EISDIR, syscall.EPERM} {
		if errors.Is(err, e) {
			return outFailed, nil
		}
	}
	return 0, err
}

// xserial reports whether running ops in order p from the states so far,
// each op's paths resolved in any state from the start to its turn, gives
// the outcomes want (outEither: applied or not) and the tree want.
func xserial(ops []xop, p []int, states []*nsModel, want []int, orig map[uint64]bool, after string) bool {
	k := len(states) - 1
	if k == len(p) {
		return states[k].canon(orig) == after
	}
	i := p[k]
	if want[i] != outApplied {
		// Not applied: the state stays (for outFailed, only if the op
		// does fail from some resolution; checked below).
		if want[i] == outEither && xserial(ops, p, append(slices.Clip(states), states[k]), want, orig, after) {
			return true
		}
	}
	for _, ro := range states {
		for _, rn := range states {
			m := states[k].clone()
			ok := ops[i].apply(m, ro, rn, 1<<60+uint64(i))
			switch {
			case ok && want[i] != outFailed:
				if xserial(ops, p, append(slices.Clip(states), m), want, orig, after) {
					return true
				}
			case !ok && want[i] == outFailed:
				if xserial(ops, p, append(slices.Clip(states), states[k]), want, orig, after) {
					return true
				}
			}
		}
	}
	return false
}

// xcase is a set of operations run by one client each on the setup tree.
type xcase struct {
	name string
	ops  []xop
}

// The setup tree every case starts from.
//
//	a/  a/d/  a/d/s  a/e/  a/f (2 links: b/l)  b/  b/g  b/l  c/
func xsetup(t testing.TB, f *FS) {
	for _, d := range []string{"a", "b", "c", "a/d", "a/e"} {
		require.NoError(t, f.Mkdir(d, 0o755))
	}
	for _, p := range []string{"a/d/s", "a/f", "b/g"} {
		require.NoError(t, f.WriteFile(p, []byte(p), 0o644))
	}
	require.NoError(t, f.Link("a/f", "b/l"))
}

// xops are the operations the explorer pairs: renames within and across
// directories (files and directories, with and without a replaced target,
// into a moving subtree), exchanges, rmdir, unlink, link, create, mkdir and
// an online fsck repair, chosen so that most pairs touch the same names.
var xops = []xop{
	{"rename", "a/f", "a/f2"},  // within a directory
	{"rename", "a/f", "b/f"},   // a file across directories
	{"rename", "a/f", "b/g"},   // a file across, replacing a file
	{"rename", "a/d", "b/d"},   // a directory across
	{"rename", "a/d", "c"},     // a directory across, replacing an empty one
	{"rename", "b", "a/e/b"},   // a directory into another's subtree
	{"rename", "a", "b/a"},     // ... and the crossed move (a cycle if both won)
	{"exchange", "a/d", "b/g"}, // a directory and a file across directories
	{"exchange", "a/f", "a/e"}, // within a directory
	{"remove", "a/e", ""},      // rmdir
	{"remove", "c", ""},        // rmdir
	{"remove", "a/f", ""},      // unlink of a file with two links
	{"remove", "b/g", ""},      // unlink of its last link
	{"link", "a/f", "a/e/x"},   // into a directory others remove or move
	{"link", "b/g", "c/h"},     // of a file others unlink
	{"create", "b/f", ""},      // against the rename to b/f
	{"create", "a/e/n", ""},    // into a directory others remove
	{"mkdir", "b/d", ""},       // against the move to b/d
	{"mkdir", "c/m", ""},       // into a directory others replace
	{"fsck", "", ""},
	{"gc", "", ""}, // deletes the setup's old garbage, never a young block
}

// xenv is what every run of one explorer shares: the store holding the
// setup tree, copied for each run.
type xenv struct {
	setup *memory.Store
	orig  map[uint64]bool // the setup tree's inodes
	// garbage are the keys of blocks no inode references, written long
	// ago (xgarbageBorn), that the setup leaves for the gc op.
	garbage []string
	txn     bool // clients commit through the txn fallback
	// steps is how long, on the virtual clock, a txn client lets a
	// pending transaction block it before it aborts it, in scheduled
	// calls (1: aggressive aborts, a client's pending transaction is
	// aborted by the other almost at once); VOLDFS_EXPLORE_TXN_STEPS
	// overrides it.
	steps int
	nruns atomic.Int64
	ops   atomic.Int64
	crash atomic.Int64 // runs whose fault was reached
}

func newXenv(t *testing.T, useTxn bool) *xenv { return newXenvWith(t, useTxn, xsetup) }

// newXenvWith is newXenv with another setup tree, made by setup.
func newXenvWith(t *testing.T, useTxn bool, setup func(testing.TB, *FS)) *xenv {
	ctx := context.Background()
	if useTxn {
		// The setup tree's inode numbers decide the keys, and the keys
		// the order of a commit's locks: fix them, so a run replays in
		// another process.
		cryptotest.SetGlobalRandom(t, 1)
	}
	s := memory.New()
	var st backend.Store = s
	if useTxn {
		st = txn.Wrap(casOnly{s})
	}
	f, err := Format(ctx, st, &Options{Name: "x", AttrTimeout: -1})
	require.NoError(t, err)
	setup(t, f)
	f.WaitFrees()
	var garbage []string
	for i := range 2 {
		var ref blockRef
		binary.BigEndian.PutUint64(ref[:8], uint64(xgarbageBorn.UnixNano()))
		ref[15] = byte(i + 1)
		k := f.c.blockKey(ref)
		_, err := backend.Put(ctx, s, k, []byte("garbage"))
		require.NoError(t, err)
		garbage = append(garbage, k)
	}
	m := readModel(t, f)
	orig := map[uint64]bool{RootIno: true}
	for d, ents := range m.dirs {
		orig[d] = true
		for _, e := range ents {
			orig[e] = true
		}
	}
	return &xenv{setup: s, orig: orig, garbage: garbage, txn: useTxn, steps: envInt("VOLDFS_EXPLORE_TXN_STEPS", 10)}
}

// copyStore returns a new memory store with the setup store's keys.
func (e *xenv) copyStore(t testing.TB) *memory.Store {
	ctx := context.Background()
	s := memory.New()
	var keys []string
	require.NoError(t, e.setup.List(ctx, "", func(k string) error { keys = append(keys, k); return nil }))
	for _, k := range keys {
		v, _, err := e.setup.Get(ctx, k)
		require.NoError(t, err)
		_, err = s.CAS(ctx, k, backend.NoVersion, v)
		require.NoError(t, err)
	}
	return s
}

// open returns a client on s (through the txn fallback if the env says,
// timing abandoned transactions on clock, or the wall clock if nil).
func (e *xenv) open(t testing.TB, s backend.Store, clock func() time.Time) *FS {
	if e.txn {
		opts := []txn.Option{txn.WithTimeout(time.Duration(e.steps) * xstep)}
		if os.Getenv("VOLDFS_EXPLORE_TXN_PARALLEL") != "1" {
			// A commit's parallel releases would race for the scheduler.
			opts = append(opts, txn.WithSequentialRelease())
		}
		if clock != nil {
			// Scheduled clients need not sleep: the scheduler decides
			// who goes next, and the virtual clock when to abort.
			opts = append(opts, txn.WithClock(clock), txn.WithWait(func(ctx context.Context, _ time.Duration) error { return ctx.Err() }))
		}
		s = txn.Wrap(s, opts...)
	}
	f, err := Open(context.Background(), s, &Options{Name: "x", AttrTimeout: -1, noBackoff: clock != nil})
	require.NoError(t, err)
	return f
}

// xresult is what one run did.
type xresult struct {
	picks   []int
	enabled [][]int
	asleep  []map[int]bool
	blocked int
	hit     bool
	calls   map[int]int
	trace   []string
	seed    uint64 // the crypto/rand stream's (txn runs)
}

// run runs case c once under the picks prefix (then rng, or depth first)
// with fault, checks the result, and returns the run's picks.
func (e *xenv) run(t *testing.T, c xcase, fault xfault, prefix []int, rng *rand.Rand) xresult {
	t.Helper()
	ctx := context.Background()
	mem := e.copyStore(t)
	var gate atomic.Bool
	// New inode numbers and transaction ids decide the keys and so the
	// order of a commit's locks: draw them from a stream fixed by the run's
	// seed (VOLDFS_EXPLORE_TXN_SEED when replaying).
	cseed := uint64(envInt("VOLDFS_EXPLORE_TXN_SEED", 1))
	if rng != nil {
		cseed = rng.Uint64() >> 1
	}
	if e.txn {
		cryptotest.SetGlobalRandom(t, cseed)
	}
	sch := newXsched(len(c.ops), prefix, rng, fault)
	clients := make([]*FS, len(c.ops))
	for i := range clients {
		xs := &xstore{Store: mem, s: sch, id: i, gate: &gate}
		var st backend.Store = xs
		if !e.txn {
			st = xcommitStore{xs}
		}
		clients[i] = e.open(t, st, sch.now)
	}
	errs := make([]error, len(c.ops))
	var wg sync.WaitGroup
	gate.Store(true)
	for i, op := range c.ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sch.done(i)
			errs[i] = op.run(clients[i])
		}()
	}
	wg.Wait()
	gate.Store(false)
	for _, f := range clients {
		f.WaitFrees()
	}
	e.nruns.Add(1)
	e.ops.Add(int64(len(c.ops)))
	if sch.hit {
		e.crash.Add(1)
	}
	res := xresult{picks: sch.picks, enabled: sch.enabled, asleep: sch.asleep, blocked: sch.blocked, hit: sch.hit, calls: sch.calls, trace: sch.trace, seed: cseed}
	replay := fmt.Sprintf("VOLDFS_EXPLORE=%q", c.name+"/"+fault.String()+"/"+picksString(sch.picks))
	if e.txn {
		replay = fmt.Sprintf("VOLDFS_EXPLORE_TXN_STEPS=%d VOLDFS_EXPLORE_TXN_SEED=%d %s", e.steps, cseed, replay)
	}
	if len(sch.picks) > maxSteps {
		t.Fatalf("%s: %d steps: a livelock? replay with %s", c.name, len(sch.picks), replay)
	}
	want := make([]int, len(c.ops))
	for i, err := range errs {
		o, uerr := outcome(err)
		if uerr != nil {
			t.Fatalf("%s: %v: unexpected error %v; replay with %s", c.name, c.ops[i], uerr, replay)
		}
		if sch.dead[i] {
			o = outEither
		}
		want[i] = o
	}
	// An acknowledged gc deleted the old garbage; whatever is left of it
	// goes now, so that the checks below find no garbage.
	for i, op := range c.ops {
		for _, k := range e.garbage {
			_, _, err := mem.Get(ctx, k)
			if op.kind == "gc" && want[i] == outApplied && err == nil {
				t.Errorf("%s: gc returned nil and left garbage block %s; replay with %s", c.name, k, replay)
			}
		}
	}
	for _, k := range e.garbage {
		_ = mem.Delete(ctx, k, backend.AnyVersion)
	}
	g := e.open(t, mem, nil)
	defer func() {
		if t.Failed() {
			if os.Getenv("VOLDFS_EXPLORE_TRACE") == "1" {
				for k, x := range sch.trace {
					t.Logf("step %d: %s", k, x)
				}
			}
			t.Fatalf("%s: results %v; replay with %s", c.name, errs, replay)
		}
	}()
	// A crash or a lost reply may leave an orphan (an inode whose last
	// link went but that the client did not delete): fsck repairs it.
	if fault.kind != "" {
		r, err := g.Fsck(ctx, FsckOptions{Grace: time.Hour})
		require.NoError(t, err)
		require.True(t, r.OK(), "fsck beside young leftovers: %v", r.Problems)
		_, err = g.Fsck(ctx, FsckOptions{Repair: true, GC: true, Grace: -1})
		require.NoError(t, err)
		g.WaitFrees()
	}
	after := readModel(t, g)
	if t.Failed() {
		return res
	}
	wantFsckClean(t, g)
	before := &nsModel{dirs: map[uint64]map[string]uint64{}}
	*before = *e.setupModel(t)
	order := make([]int, len(c.ops))
	for i := range order {
		order[i] = i
	}
	got := after.canon(e.orig)
	matched := false
	permute(order, 0, func(p []int) {
		if !matched {
			matched = xserial(c.ops, p, []*nsModel{before}, want, e.orig, got)
		}
	})
	if !matched {
		t.Errorf("%s %v: outcomes %v (errors %v) match no serial order; tree %s", c.name, c.ops, want, errs, got)
	}
	return res
}

var setupModels sync.Map // *xenv -> *nsModel

func (e *xenv) setupModel(t *testing.T) *nsModel {
	if m, ok := setupModels.Load(e); ok {
		return m.(*nsModel).clone()
	}
	f, err := Open(context.Background(), e.setup, &Options{Name: "x", AttrTimeout: -1})
	require.NoError(t, err)
	m := readModel(t, f)
	setupModels.Store(e, m)
	return m.clone()
}

// traceSum is a digest of a run's trace (the keys each step read and
// wrote), to compare runs in different processes.
func traceSum(trace []string) string {
	h := fnv.New64a()
	for _, x := range trace {
		h.Write([]byte(x))
		h.Write([]byte{0})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

func picksString(p []int) string {
	var b strings.Builder
	for _, k := range p {
		b.WriteByte(byte('0' + k))
	}
	return b.String()
}

func parsePicks(s string) []int {
	p := make([]int, len(s))
	for i := range s {
		p[i] = int(s[i] - '0')
	}
	return p
}

// next returns the picks of the next run in depth-first order after run
// r, or false when every run was made: at the last step (before the run
// met only sleeping clients) that has a higher client awake, that client.
func next(r xresult) ([]int, bool) {
	last := len(r.picks) - 1
	if r.blocked >= 0 {
		last = r.blocked - 1
	}
	for i := last; i >= 0; i-- {
		for _, id := range r.enabled[i] {
			if id > r.picks[i] && !r.asleep[i][id] {
				return append(slices.Clone(r.picks[:i]), id), true
			}
		}
	}
	return nil, false
}

// exhaust runs every interleaving of c under fault (at most budget runs)
// and returns the runs made, whether they were all, and the most store
// calls each client made in one run.
func (e *xenv) exhaust(t *testing.T, c xcase, fault xfault, budget int) (int, bool, []int) {
	var prefix []int
	calls := make([]int, len(c.ops))
	for n := 1; ; n++ {
		r := e.run(t, c, fault, prefix, nil)
		for id, k := range r.calls {
			calls[id] = max(calls[id], k)
		}
		var ok bool
		if prefix, ok = next(r); !ok {
			return n, true, calls
		}
		if n >= budget {
			return n, false, calls
		}
	}
}

// replayExplore runs the one run VOLDFS_EXPLORE names, if set.
func replayExplore(t *testing.T, e *xenv) bool {
	v := os.Getenv("VOLDFS_EXPLORE")
	if v == "" {
		return false
	}
	parts := strings.Split(v, "/")
	require.Len(t, parts, 3, "VOLDFS_EXPLORE=<case>/<fault>/<picks>")
	fault, err := parseFault(parts[1])
	require.NoError(t, err)
	c := xcase{name: parts[0]}
	for _, f := range strings.Split(parts[0], "+") {
		i, err := strconv.Atoi(f)
		require.NoError(t, err, "case %q", parts[0])
		c.ops = append(c.ops, xops[i])
	}
	r := e.run(t, c, fault, parsePicks(parts[2]), nil)
	t.Logf("replayed %s %v under %v: %d steps, trace %s", c.name, c.ops, fault, len(r.picks), traceSum(r.trace))
	return true
}

// pairCases returns every pair of xops (each op also against itself).
func pairCases() []xcase {
	var cs []xcase
	for i := range xops {
		for j := i; j < len(xops); j++ {
			cs = append(cs, xcase{fmt.Sprintf("%d+%d", i, j), []xop{xops[i], xops[j]}})
		}
	}
	return cs
}

// faultKinds are the faults injected at every call.
var faultKinds = []string{"crash", "crash-applied", "lost"}

// xplan says how many runs explorePairs makes per case: free runs with
// no fault and perFault runs per fault point, each depth-first (every
// interleaving, up to the count) or seeded random.
type xplan struct {
	free, perFault int
	random         bool // seeded random runs instead of depth-first ones
	// oneKind injects one fault per call instead of each kind: every call
	// of every client still meets a fault, its kind rotating by case,
	// client and call (VOLDFS_EXPLORE_FAULT_KINDS=all: every kind).
	oneKind bool
}

// all is a count that exhausts every case.
const all = 1 << 30

// envInt returns the integer in environment variable name, else def.
func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// runs makes up to n runs of c under fault and returns how many, whether
// that was every interleaving, and the most store calls each client made
// in one run.
func (e *xenv) runs(t *testing.T, c xcase, fault xfault, n int, random bool) (int, bool, []int) {
	if !random {
		return e.exhaust(t, c, fault, n)
	}
	calls := make([]int, len(c.ops))
	h := uint64(14695981039346656037)
	for _, b := range []byte(c.name + "/" + fault.String()) {
		h = (h ^ uint64(b)) * 1099511628211
	}
	for i := 0; i < n; i++ {
		r := e.run(t, c, fault, nil, rand.New(rand.NewPCG(h, uint64(i))))
		for id, k := range r.calls {
			calls[id] = max(calls[id], k)
		}
	}
	return n, false, calls
}

// explorePairs runs each case with no fault and with a fault at every call
// any client made in one of those runs, as plan says; it logs the counts.
func (e *xenv) explorePairs(t *testing.T, cases []xcase, plan xplan) {
	var faultPoints, incomplete int
	for _, c := range cases {
		_, done, calls := e.runs(t, c, xfault{}, plan.free, plan.random)
		if !done {
			incomplete++
		}
		oneKind := plan.oneKind && os.Getenv("VOLDFS_EXPLORE_FAULT_KINDS") != "all"
		for id, k := range calls {
			for call := 0; call < k && plan.perFault > 0; call++ {
				for ki, kind := range faultKinds {
					if oneKind && (call+id+len(c.name)+int(c.name[0]))%len(faultKinds) != ki {
						continue
					}
					faultPoints++
					if _, done, _ := e.runs(t, c, xfault{id, call, kind}, plan.perFault, plan.random || plan.perFault < all); !done {
						incomplete++
					}
				}
			}
		}
	}
	t.Logf("%d cases of %d operations: %d runs (%d operations), %d fault points (%d runs reached theirs); %d of %d (case, fault) not exhausted",
		len(cases), len(c0ops(cases)), e.nruns.Load(), e.ops.Load(), faultPoints, e.crash.Load(), incomplete, len(cases)+faultPoints)
}

func c0ops(cases []xcase) map[string]bool {
	m := map[string]bool{}
	for _, c := range cases {
		for _, op := range c.ops {
			m[op.String()] = true
		}
	}
	return m
}

// TestExplorePairs runs every interleaving of every pair of operations
// (each also against itself) with no fault, and seeded random ones
// (VOLDFS_EXPLORE_FAULT_RUNS of them, default 1; "all"
// runs every interleaving, about 150000 runs) with a crash (the call not
// applied, or applied) or a lost reply at every call of every client.
func TestExplorePairs(t *testing.T) {
	e := newXenv(t, false)
	cases := pairCases()
	if replayExplore(t, e) {
		return
	}
	perFault := 1
	if os.Getenv("VOLDFS_EXPLORE_FAULT_RUNS") == "all" {
		perFault = all
	}
	e.explorePairs(t, cases, xplan{free: all, perFault: envInt("VOLDFS_EXPLORE_FAULT_RUNS", perFault)})
}

// TestExplorePairsTxn explores the pairs on a store without native
// commits: every client commits through the txn fallback, whose reads,
// locks, commit points and releases are scheduled one by one. A client
// that meets a pending transaction waits for it (so the interleavings are
// unbounded) and aborts it after a number of scheduled calls, so the runs
// are seeded random ones: per pair, VOLDFS_EXPLORE_TXN_RUNS (default 8)
// with no fault and VOLDFS_EXPLORE_FAULT_RUNS (default 1) with a fault at
// every call of every client: a crash, a crash after the call applied, or
// a lost reply, in turn (VOLDFS_EXPLORE_FAULT_KINDS=all: each of them;
// about 80000 runs, 10 minutes under -race). It runs twice:
// with aborts after 10 calls, and with aggressive aborts after 1, where
// almost every wait ends in an abort racing its owner's commit. Under
// -short, one pair in four and only the first.
//
// The clients time abandoned transactions on a virtual clock (xsched.now)
// and draw ids from a per-run crypto/rand stream, so a failing run replays
// from the string it prints (VOLDFS_EXPLORE_TXN_STEPS sets the abort
// timeout). The release order is fixed unless VOLDFS_EXPLORE_TXN_PARALLEL=1
// (then runs may not replay).
func TestExplorePairsTxn(t *testing.T) {
	for _, steps := range []int{10, 1} {
		t.Run(fmt.Sprintf("abort-after-%d", steps), func(t *testing.T) {
			if testing.Short() && steps == 1 {
				t.Skip("-short explores with one abort timeout")
			}
			e := newXenv(t, true)
			e.steps = envInt("VOLDFS_EXPLORE_TXN_STEPS", steps)
			cases := pairCases()
			if replayExplore(t, e) {
				return
			}
			if testing.Short() {
				var some []xcase
				for i, c := range cases {
					if i%4 == 0 {
						some = append(some, c)
					}
				}
				cases = some
			}
			e.explorePairs(t, cases, xplan{free: envInt("VOLDFS_EXPLORE_TXN_RUNS", 8), perFault: envInt("VOLDFS_EXPLORE_FAULT_RUNS", 1),
				random: true, oneKind: true})
		})
	}
}

// TestExploreTriples runs seeded random interleavings of triples of
// operations (VOLDFS_SEED replays; VOLDFS_EXPLORE_TRIPLES sets how many
// triples, default 300, 60 under -short), each with no fault and with one
// fault at a seeded call.
func TestExploreTriples(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 60
	}
	exploreTriples(t, newXenv(t, false), envInt("VOLDFS_EXPLORE_TRIPLES", n))
}

// TestExploreTriplesTxn is TestExploreTriples through the txn fallback
// (see TestExplorePairsTxn), as many triples.
func TestExploreTriplesTxn(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 60
	}
	exploreTriples(t, newXenv(t, true), envInt("VOLDFS_EXPLORE_TRIPLES", n))
}

func exploreTriples(t *testing.T, e *xenv, n int) {
	if replayExplore(t, e) {
		return
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("VOLDFS_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (VOLDFS_SEED replays)", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x3c))
	for i := 0; i < n; i++ {
		k := []int{rng.IntN(len(xops)), rng.IntN(len(xops)), rng.IntN(len(xops))}
		ops := []xop{xops[k[0]], xops[k[1]], xops[k[2]]}
		c := xcase{fmt.Sprintf("%d+%d+%d", k[0], k[1], k[2]), ops}
		r := e.run(t, c, xfault{}, nil, rand.New(rand.NewPCG(rng.Uint64(), 1)))
		id := rng.IntN(len(ops))
		if r.calls[id] == 0 {
			continue
		}
		f := xfault{id, rng.IntN(r.calls[id]), faultKinds[rng.IntN(len(faultKinds))]}
		e.run(t, c, f, nil, rand.New(rand.NewPCG(rng.Uint64(), 2)))
		if t.Failed() {
			t.Fatalf("triple %d %v failed: replay with VOLDFS_SEED=%d", i, ops, seed)
		}
	}
	t.Logf("%d triples: %d runs (%d operations), %d reached their fault", n, e.nruns.Load(), e.ops.Load(), e.crash.Load())
}
