package voldfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/testserver"
)

// Multi-client torture: K FS values on one store, several goroutines on
// each, running random creates, writes, appends, renames, truncates and
// unlinks in one shared tree. The workload is shaped so that the checker's
// expectations are sound:
//
//   - every goroutine owns some files exclusively ("g<g>f<k>.<v>", moved
//     between the shared directories d0..d3 and renamed between variants
//     a and b) and keeps an exact model of their content and place;
//   - the O_APPEND logs are shared: every record is unique and
//     self-describing, and each acknowledged record must appear exactly
//     once, intact;
//   - the shared names s0..s7 in shared and shared2 are created, written,
//     renamed and unlinked by everyone; what they hold must be made of
//     intact records, each at its own position, of writes someone issued;
//   - one register file and one directory of names record histories that
//     porcupine checks for linearizability.
//
// Sizes: -short is small; the default suits CI under -race; VOLDFS_LONG=1
// runs longer. VOLDFS_SEED=n replays a seed.

func tortureSeed(t *testing.T) uint64 {
	if s := os.Getenv("VOLDFS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("VOLDFS_SEED: %v", err)
		}
		t.Logf("seed %d (from VOLDFS_SEED)", v)
		return v
	}
	v := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay with VOLDFS_SEED=%d)", v, v)
	return v
}

type tortureSize struct {
	clients, perClient, ops int
}

func tortureSizes() tortureSize {
	switch {
	case os.Getenv("VOLDFS_LONG") != "":
		return tortureSize{clients: 4, perClient: 4, ops: 5000}
	case testing.Short():
		return tortureSize{clients: 2, perClient: 2, ops: 80}
	}
	return tortureSize{clients: 3, perClient: 3, ops: 600}
}

const (
	tortureBS      = 4096
	tortureRecLen  = 32 // O_APPEND log records
	tortureSRecLen = 64 // shared-file records
	tortureOwned   = 4  // owned files per goroutine
	tortureShared  = 8  // shared names
	tortureDirs    = 4
	tortureSetSize = 6 // names in the linearizability directory
	tortureRegLen  = 6000
)

// ownedFile is the exact model of a file only its owner touches.
type ownedFile struct {
	exists  bool
	dir     int
	variant byte
	data    []byte
}

func (o *ownedFile) path(g, k int) string {
	return fmt.Sprintf("d%d/g%df%d.%c", o.dir, g, k, o.variant)
}

// tortureRun is the shared state of one torture run.
type tortureRun struct {
	t     *testing.T
	fss   []*FS
	start time.Time

	mu         sync.Mutex
	acked      map[string]bool // acknowledged log records
	issued     map[string]bool // issued shared-write tokens
	regHist    []porcupine.Operation
	ownedFinal []ownedSnapshot
	setHist    []porcupine.Operation
	ops        atomic.Int64
	dirOps     atomic.Int64
	failures   atomic.Int64
}

func (r *tortureRun) now() int64 { return int64(time.Since(r.start)) }

func (r *tortureRun) fail(format string, args ...any) {
	r.failures.Add(1)
	r.t.Errorf(format, args...)
}

// tolerate reports whether err is one of the outcomes a racing operation
// on a shared name may legitimately see.
func tolerate(err error, errs ...error) bool {
	if err == nil {
		return true
	}
	for _, e := range errs {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// record returns the shared-file record of token tok at record index i.
func sharedRecord(tok string, i int) []byte {
	s := fmt.Sprintf("%s@%d", tok, i)
	return []byte(s + strings.Repeat(".", tortureSRecLen-1-len(s)) + "\n")
}

func logRecord(g, seq int) []byte {
	s := fmt.Sprintf("<%d:%d>", g, seq)
	return []byte(s + strings.Repeat("-", tortureRecLen-1-len(s)) + "\n")
}

func (r *tortureRun) worker(g int, f *FS, seed uint64, nops int) {
	rng := rand.New(rand.NewPCG(seed, uint64(g)))
	owned := make([]ownedFile, tortureOwned)
	logSeq, tokSeq := 0, 0
	randData := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rng.IntN(26))
		}
		return b
	}
	for op := 0; op < nops; op++ {
		r.ops.Add(1)
		switch p := rng.IntN(100); {
		case p < 40:
			r.ownedOp(g, f, rng, owned, randData)
		case p < 55:
			// O_APPEND: one to three records in one open.
			name := fmt.Sprintf("log%d", rng.IntN(2))
			file, err := f.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				r.fail("append open %s: %v", name, err)
				continue
			}
			var recs []string
			for range 1 + rng.IntN(3) {
				rec := logRecord(g, logSeq)
				logSeq++
				if _, err := file.Write(rec); err != nil {
					r.fail("append %s: %v", name, err)
				}
				recs = append(recs, string(rec))
			}
			if err := file.Close(); err != nil {
				r.fail("append close %s: %v", name, err)
				continue
			}
			r.mu.Lock()
			for _, rec := range recs {
				r.acked[rec] = true
			}
			r.mu.Unlock()
		case p < 80:
			r.sharedOp(g, f, rng, &tokSeq)
		case p < 88:
			r.registerOp(g, f, rng)
		case p < 95:
			r.setOp(g, f, rng)
		default:
			r.dirOp(f, rng)
		}
	}
	// Final check of the owned files through a different client.
	other := r.fss[(g+1)%len(r.fss)]
	for k := range owned {
		o := &owned[k]
		if !o.exists {
			continue
		}
		got, err := other.ReadFile(o.path(g, k))
		if err != nil || !bytes.Equal(got, o.data) {
			r.fail("g%d: %s through another client: %d bytes, %v; want %d bytes", g, o.path(g, k), len(got), err, len(o.data))
		}
	}
	r.mu.Lock()
	r.ownedFinal = append(r.ownedFinal, ownedSnapshot{g, owned})
	r.mu.Unlock()
}

type ownedSnapshot struct {
	g     int
	files []ownedFile
}

// dirOp makes, moves, exchanges or removes a directory of the shared tree
// t/ (names p0..p3, up to three deep), which every goroutine changes: the
// outcome of each call is checked only for its errno here, and the tree
// after the run for its structure (one name per directory, no cycle, "..",
// link counts) and by fsck.
func (r *tortureRun) dirOp(f *FS, rng *rand.Rand) {
	path := func() string {
		p := "t"
		for range 1 + rng.IntN(3) {
			p += fmt.Sprintf("/p%d", rng.IntN(4))
		}
		return p
	}
	var err error
	var op string
	switch k := rng.IntN(10); {
	case k < 3:
		op = "mkdir"
		err = f.Mkdir(path(), 0o755)
	case k < 6:
		op = "rename"
		err = f.Rename(path(), path())
	case k < 8:
		op = "exchange"
		err = f.RenameFlags(path(), path(), RenameExchange)
	default:
		op = "rmdir"
		err = f.Remove(path())
	}
	if !tolerate(err, syscall.ENOENT, syscall.EEXIST, syscall.ENOTEMPTY, syscall.EINVAL, syscall.ENOTDIR) {
		r.fail("%s in t/: %v", op, err)
	}
	r.dirOps.Add(1)
}

func (r *tortureRun) ownedOp(g int, f *FS, rng *rand.Rand, owned []ownedFile, randData func(int) []byte) {
	k := rng.IntN(len(owned))
	o := &owned[k]
	path := o.path(g, k)
	if !o.exists {
		o.dir, o.variant = rng.IntN(tortureDirs), 'a'
		path = o.path(g, k)
		file, err := f.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			r.fail("g%d create %s: %v", g, path, err)
			return
		}
		o.data = randData(rng.IntN(3 * tortureBS))
		if _, err := file.Write(o.data); err != nil {
			r.fail("g%d write %s: %v", g, path, err)
		}
		if err := file.Close(); err != nil {
			r.fail("g%d close %s: %v", g, path, err)
		}
		o.exists = true
		return
	}
	switch rng.IntN(8) {
	case 0: // write at an offset, maybe past the end
		off := rng.IntN(len(o.data) + 2*tortureBS)
		p := randData(1 + rng.IntN(2*tortureBS))
		file, err := f.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			r.fail("g%d open %s: %v", g, path, err)
			return
		}
		if _, err := file.WriteAt(p, int64(off)); err != nil {
			r.fail("g%d writeat %s: %v", g, path, err)
		}
		if err := file.Close(); err != nil {
			r.fail("g%d close %s: %v", g, path, err)
		}
		if end := off + len(p); end > len(o.data) {
			o.data = append(o.data, make([]byte, end-len(o.data))...)
		}
		copy(o.data[off:], p)
	case 1: // append
		p := randData(1 + rng.IntN(tortureBS))
		file, err := f.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			r.fail("g%d open %s: %v", g, path, err)
			return
		}
		if _, err := file.Write(p); err != nil {
			r.fail("g%d append %s: %v", g, path, err)
		}
		if err := file.Close(); err != nil {
			r.fail("g%d close %s: %v", g, path, err)
		}
		o.data = append(o.data, p...)
	case 2: // truncate
		size := rng.IntN(len(o.data) + tortureBS + 1)
		if err := f.Truncate(path, int64(size)); err != nil {
			r.fail("g%d truncate %s: %v", g, path, err)
			return
		}
		if size < len(o.data) {
			o.data = o.data[:size]
		} else {
			o.data = append(o.data, make([]byte, size-len(o.data))...)
		}
	case 3: // rename within the directory
		o.variant ^= 'a' ^ 'b'
		if err := f.Rename(path, o.path(g, k)); err != nil {
			r.fail("g%d rename %s: %v", g, path, err)
		}
	case 4: // rename across directories
		o.dir = (o.dir + 1 + rng.IntN(tortureDirs-1)) % tortureDirs
		if err := f.Rename(path, o.path(g, k)); err != nil {
			r.fail("g%d rename %s -> %s: %v", g, path, o.path(g, k), err)
		}
	case 5: // unlink
		if err := f.Remove(path); err != nil {
			r.fail("g%d remove %s: %v", g, path, err)
		}
		o.exists, o.data = false, nil
	default: // read back, through any client
		c := r.fss[rng.IntN(len(r.fss))]
		got, err := c.ReadFile(path)
		if err != nil || !bytes.Equal(got, o.data) {
			r.fail("g%d read %s: %d bytes, %v; want %d bytes (%s)", g, path, len(got), err, len(o.data), describeMix(got, [][]byte{o.data}))
		}
	}
}

func (r *tortureRun) sharedOp(g int, f *FS, rng *rand.Rand, tokSeq *int) {
	dirs := []string{"shared", "shared2"}
	name := fmt.Sprintf("%s/s%d", dirs[rng.IntN(2)], rng.IntN(tortureShared))
	switch rng.IntN(6) {
	case 0, 1, 2: // write whole records at record-aligned offsets
		tok := fmt.Sprintf("%d.%d", g, *tokSeq)
		*tokSeq++
		r.mu.Lock()
		r.issued[tok] = true
		r.mu.Unlock()
		flag := os.O_RDWR
		if rng.IntN(2) == 0 {
			flag |= os.O_CREATE
		}
		file, err := f.OpenFile(name, flag, 0o644)
		if !tolerate(err, fs.ErrNotExist) {
			r.fail("shared open %s: %v", name, err)
		}
		if err != nil {
			return
		}
		first, n := rng.IntN(3*tortureBS/tortureSRecLen), 1+rng.IntN(2*tortureBS/tortureSRecLen)
		var buf []byte
		for i := first; i < first+n; i++ {
			buf = append(buf, sharedRecord(tok, i)...)
		}
		// Another client may unlink the file while it is open here: open
		// handles pin a file only within one process (see doc.go), so a
		// commit may find the inode gone.
		if _, err := file.WriteAt(buf, int64(first*tortureSRecLen)); !tolerate(err, ErrStale, fs.ErrNotExist) {
			r.fail("shared write %s: %v", name, err)
		}
		if err := file.Close(); !tolerate(err, ErrStale, fs.ErrNotExist) {
			r.fail("shared close %s: %v", name, err)
		}
	case 3:
		to := fmt.Sprintf("%s/s%d", dirs[rng.IntN(2)], rng.IntN(tortureShared))
		if err := f.Rename(name, to); !tolerate(err, fs.ErrNotExist) {
			r.fail("shared rename %s -> %s: %v", name, to, err)
		}
	case 4:
		if err := f.Remove(name); !tolerate(err, fs.ErrNotExist) {
			r.fail("shared remove %s: %v", name, err)
		}
	case 5: // truncate to a record boundary
		size := int64(rng.IntN(4*tortureBS/tortureSRecLen) * tortureSRecLen)
		if err := f.Truncate(name, size); !tolerate(err, fs.ErrNotExist) {
			r.fail("shared truncate %s: %v", name, err)
		}
	}
}

// The register: whole-content writes (one commit each) and reads.
type regInput struct {
	write bool
	val   byte // the byte the whole content is made of; 0: empty file
}

func (r *tortureRun) registerOp(g int, f *FS, rng *rand.Rand) {
	const name = "reg/file"
	if rng.IntN(2) == 0 {
		v := byte('A' + rng.IntN(26))
		call := r.now()
		file, err := f.OpenFile(name, os.O_RDWR, 0)
		if err != nil {
			r.fail("register open: %v", err)
			return
		}
		if _, err := file.WriteAt(bytes.Repeat([]byte{v}, tortureRegLen), 0); err != nil {
			r.fail("register write: %v", err)
		}
		if err := file.Close(); err != nil {
			r.fail("register close: %v", err)
			return
		}
		ret := r.now()
		r.mu.Lock()
		r.regHist = append(r.regHist, porcupine.Operation{ClientId: g, Input: regInput{true, v}, Call: call, Output: byte(0), Return: ret})
		r.mu.Unlock()
		return
	}
	call := r.now()
	b, err := f.ReadFile(name)
	ret := r.now()
	if err != nil {
		r.fail("register read: %v", err)
		return
	}
	var v byte
	if len(b) > 0 {
		v = b[0]
		if len(b) != tortureRegLen || bytes.Count(b, []byte{v}) != len(b) {
			r.fail("register read a torn value: %d bytes, %s", len(b), describeMix(b, [][]byte{bytes.Repeat([]byte{v}, tortureRegLen)}))
			return
		}
	}
	r.mu.Lock()
	r.regHist = append(r.regHist, porcupine.Operation{ClientId: g, Input: regInput{false, 0}, Call: call, Output: v, Return: ret})
	r.mu.Unlock()
}

var registerModel = porcupine.Model{
	Init: func() any { return byte(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.val
		}
		return output.(byte) == state.(byte), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.write {
			return fmt.Sprintf("write %q", in.val)
		}
		return fmt.Sprintf("read -> %q", output.(byte))
	},
}

// The directory: a set of names, as a bitmask.
type setInput struct {
	op   byte // 'a'dd, 'r'emove, 'c'ontains, 'l'ist
	name int
}

func (r *tortureRun) setOp(g int, f *FS, rng *rand.Rand) {
	in := setInput{op: "arcl"[rng.IntN(4)], name: rng.IntN(tortureSetSize)}
	path := fmt.Sprintf("set/n%d", in.name)
	var out uint32
	call := r.now()
	var err error
	switch in.op {
	case 'a':
		var file *File
		file, err = f.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			out = 1
			err = file.Close()
		} else if errors.Is(err, fs.ErrExist) {
			err = nil
		}
	case 'r':
		err = f.Remove(path)
		if err == nil {
			out = 1
		} else if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	case 'c':
		_, err = f.Stat(path)
		if err == nil {
			out = 1
		} else if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	case 'l':
		var ents []fs.DirEntry
		ents, err = f.ReadDir("set")
		for _, e := range ents {
			k, perr := strconv.Atoi(strings.TrimPrefix(e.Name(), "n"))
			if perr != nil || k >= tortureSetSize {
				r.fail("set: unexpected entry %q", e.Name())
				continue
			}
			if out&(1<<k) != 0 {
				r.fail("set: %q listed twice", e.Name())
			}
			out |= 1 << k
		}
	}
	ret := r.now()
	if err != nil {
		r.fail("set %c %s: %v", in.op, path, err)
		return
	}
	r.mu.Lock()
	r.setHist = append(r.setHist, porcupine.Operation{ClientId: g, Input: in, Call: call, Output: out, Return: ret})
	r.mu.Unlock()
}

var setModel = porcupine.Model{
	Init: func() any { return uint32(0) },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(uint32), input.(setInput), output.(uint32)
		bit := uint32(1) << in.name
		switch in.op {
		case 'a':
			if s&bit != 0 {
				return out == 0, s
			}
			return out == 1, s | bit
		case 'r':
			if s&bit == 0 {
				return out == 0, s
			}
			return out == 1, s &^ bit
		case 'c':
			return (s&bit != 0) == (out == 1), s
		}
		return out == s, s
	},
	DescribeOperation: func(input, output any) string {
		in := input.(setInput)
		if in.op == 'l' {
			return fmt.Sprintf("list -> %06b (%d names)", output.(uint32), bits.OnesCount32(output.(uint32)))
		}
		return fmt.Sprintf("%c n%d -> %v", in.op, in.name, output.(uint32))
	},
}

func runTorture(t *testing.T, stores func() backend.Store) {
	ctx := context.Background()
	size := tortureSizes()
	seed := tortureSeed(t)
	s := stores()
	f0, err := Format(ctx, s, &Options{BlockSize: tortureBS})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"d0", "d1", "d2", "d3", "shared", "shared2", "reg", "set", "t"} {
		if err := f0.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"log0", "log1", "reg/file"} {
		if err := f0.WriteFile(name, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &tortureRun{t: t, acked: map[string]bool{}, issued: map[string]bool{}, start: time.Now()}
	for range size.clients {
		// Strict attributes: histories across clients must linearize.
		f, err := Open(ctx, s, &Options{AttrTimeout: -1, WriteBuffer: 2 * tortureBS})
		if err != nil {
			t.Fatal(err)
		}
		r.fss = append(r.fss, f)
	}
	var wg sync.WaitGroup
	g := 0
	for c := range size.clients {
		for range size.perClient {
			wg.Add(1)
			go func(g int, f *FS) {
				defer wg.Done()
				r.worker(g, f, seed, size.ops)
			}(g, r.fss[c])
			g++
		}
	}
	// An online fsck repair loops beside the workload: every repair must
	// be a conditional commit on what it judged (a wrong one shows in the
	// checks below as a lost file, a dangling name or a bad link count).
	fsckDone := make(chan struct{})
	var fsckRuns, fsckRepairs, fsckUnsettled int
	var fwg sync.WaitGroup
	fwg.Add(1)
	go func() {
		defer fwg.Done()
		fc, err := Open(ctx, s, &Options{AttrTimeout: -1})
		if err != nil {
			r.fail("fsck client: %v", err)
			return
		}
		defer fc.Close()
		for {
			select {
			case <-fsckDone:
				return
			default:
			}
			rep, err := fc.Fsck(ctx, FsckOptions{Repair: true, Grace: 500 * time.Millisecond})
			if err != nil {
				r.fail("online fsck: %v", err)
				return
			}
			fsckRuns++
			fsckRepairs += rep.Repaired
			fsckUnsettled += rep.Unsettled
		}
	}()
	wg.Wait()
	close(fsckDone)
	fwg.Wait()
	elapsed := time.Since(r.start)
	st := Stats{}
	for _, c := range r.fss {
		x := c.Stats()
		st.InodeCAS += x.InodeCAS
		st.Conflicts += x.Conflicts
		if err := c.Close(); err != nil { // lets background work finish
			t.Errorf("close: %v", err)
		}
	}
	if t.Failed() {
		t.Fatalf("seed %d: the workload failed", seed)
	}

	// Check with a fresh client.
	f, err := Open(ctx, s, &Options{AttrTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	readModel(t, f) // one name per directory, no cycle, "..", nlink = names
	tree := treeContents(t, f)
	expected := map[string]bool{}
	for _, snap := range r.ownedFinal {
		for k, o := range snap.files {
			if !o.exists {
				continue
			}
			p := o.path(snap.g, k)
			expected[p] = true
			if got, ok := tree[p]; !ok || !bytes.Equal(got, o.data) {
				t.Errorf("owned %s: present %v, %d bytes (%s); want %d bytes", p, ok, len(got), describeMix(got, [][]byte{o.data}), len(o.data))
			}
		}
	}
	for p := range tree {
		if strings.HasPrefix(p, "d") && !strings.HasSuffix(p, "/") && !expected[p] {
			t.Errorf("%s exists but its owner removed or renamed it", p)
		}
	}
	// Logs: every acknowledged record exactly once, every record intact.
	seen := map[string]int{}
	for _, name := range []string{"log0", "log1"} {
		b := tree[name]
		if len(b)%tortureRecLen != 0 {
			t.Errorf("%s: %d bytes, not a whole number of records", name, len(b))
		}
		for i := 0; i+tortureRecLen <= len(b); i += tortureRecLen {
			rec := string(b[i : i+tortureRecLen])
			if !r.acked[rec] {
				t.Errorf("%s at %d: record %q was never acknowledged (torn or overwritten)", name, i, rec)
			}
			seen[rec]++
		}
	}
	for rec := range r.acked {
		if seen[rec] != 1 {
			t.Errorf("acknowledged record %q appears %d times", strings.TrimRight(rec, "-\n"), seen[rec])
		}
	}
	// Shared files: intact records of issued writes, each at its place, or
	// zeros (holes left by truncation and sparse writes).
	sharedFiles, sharedRecs := 0, 0
	zero := make([]byte, tortureSRecLen)
	for p, b := range tree {
		if !strings.HasPrefix(p, "shared") || strings.HasSuffix(p, "/") {
			continue
		}
		sharedFiles++
		if len(b)%tortureSRecLen != 0 {
			t.Errorf("%s: %d bytes, not a whole number of records", p, len(b))
		}
		for i := 0; i+tortureSRecLen <= len(b); i += tortureSRecLen {
			rec := b[i : i+tortureSRecLen]
			if bytes.Equal(rec, zero) {
				continue
			}
			sharedRecs++
			tok, idx, ok := strings.Cut(strings.TrimRight(string(rec), ".\n"), "@")
			if !ok || !r.issued[tok] || idx != strconv.Itoa(i/tortureSRecLen) || !bytes.Equal(rec, sharedRecord(tok, i/tortureSRecLen)) {
				t.Errorf("%s at %d: %q is no record of an issued write at this place", p, i, rec)
			}
		}
	}
	// Fsck: entries and link counts agree, nothing is garbage.
	rep, err := f.Fsck(ctx, FsckOptions{Grace: -1})
	if err != nil {
		t.Fatal(err)
	}
	var orphans []Problem
	for _, p := range rep.Problems {
		if p.Kind == "orphan" {
			orphans = append(orphans, p)
		} else {
			t.Errorf("fsck: %v", p)
		}
	}
	if len(orphans) > 0 {
		t.Errorf("fsck: orphans after a clean run: %v", orphans)
	}
	if rep.GarbageBlocks != 0 {
		t.Errorf("fsck: %d unreferenced blocks after a clean run", rep.GarbageBlocks)
	}
	// Linearizability.
	checked := 0
	for _, h := range []struct {
		name  string
		model porcupine.Model
		ops   []porcupine.Operation
	}{{"register", registerModel, r.regHist}, {"directory", setModel, r.setHist}} {
		res := porcupine.CheckOperationsTimeout(h.model, h.ops, 30*time.Second)
		switch res {
		case porcupine.Illegal:
			t.Errorf("%s history of %d operations is not linearizable (seed %d)", h.name, len(h.ops), seed)
		case porcupine.Unknown:
			t.Logf("%s history of %d operations: linearizability check timed out", h.name, len(h.ops))
		default:
			checked++
		}
	}
	t.Logf("%d goroutines on %d clients ran %d operations (%d directory moves, exchanges, mkdirs, rmdirs) in %v (%d inode CAS, %d conflicts) beside %d online fsck repairs (%d repaired, %d left unsettled); checked %d log records, %d shared files with %d records, %d owned files; %d histories linearizable (register %d ops, directory %d ops); fsck: %d dirs, %d files",
		g, size.clients, r.ops.Load(), r.dirOps.Load(), elapsed.Round(time.Millisecond), st.InodeCAS, st.Conflicts, fsckRuns, fsckRepairs, fsckUnsettled, len(r.acked), sharedFiles, sharedRecs, len(expected), checked, len(r.regHist), len(r.setHist), rep.Dirs, rep.Files)
}

func TestTortureMemory(t *testing.T) {
	runTorture(t, func() backend.Store { return memory.New() })
}

// TestTortureMemcached runs the torture on a real memcached (started by
// internal/testserver; skipped without the binary, except in CI). memcached
// cannot list keys, so Fsck checks entries and link counts but not garbage.
func TestTortureMemcached(t *testing.T) {
	addr := testserver.Memcached(t)
	runTorture(t, func() backend.Store {
		s, err := memcache.New(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
