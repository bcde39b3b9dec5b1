package main

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend/bolt"
)

// A mount of a bolt file (group commit, the default) killed with SIGKILL
// in the middle of a workload: the file must reopen, Fsck must repair it to
// clean, every file fsync(2) made durable must be there with its content,
// and the tree must be one the workload passed through after that fsync
// (writes reach the file in order: a kill loses a suffix, never a write
// without the later ones).

// kbOp is one step of the workload, done through the mount.
type kbOp struct {
	kind     string // mkdir, create (also rewrites), rename, unlink, fsync, dirsync
	path, to string
	data     string
	pause    bool // sleep past the group commit interval after the step
}

// kbTree is a tree: path -> content, directories as "path/" -> "".
type kbTree map[string]string

// kbWorkload returns n seeded steps and the trees the workload passes
// through: trees[0] is the empty filesystem, and a create or rewrite passes
// through the empty file (the create or truncate commits before the data).
// synced[i] is the index in trees of the last tree fsync made durable after
// i steps (0: none), and upto[i] the index of the tree after i steps.
func kbWorkload(seed uint64, n int) (ops []kbOp, trees []kbTree, synced, upto []int) {
	r := rand.New(rand.NewPCG(seed, 0x6b696c6c))
	cur := kbTree{}
	trees = []kbTree{{}}
	synced, upto = []int{0}, []int{0}
	push := func() { trees = append(trees, cloneTree(cur)) }
	files := func() []string {
		var fs []string
		for p := range cur {
			if !strings.HasSuffix(p, "/") {
				fs = append(fs, p)
			}
		}
		slices.Sort(fs)
		return fs
	}
	next := 0
	for len(ops) < n {
		var op kbOp
		existing := files()
		switch c := r.IntN(100); {
		case len(ops) < 2:
			op = kbOp{kind: "mkdir", path: []string{"a", "b"}[len(ops)]}
		case c < 40 || len(existing) == 0:
			next++
			op = kbOp{kind: "create", path: fmt.Sprintf("%s/f%d", []string{"a", "b"}[r.IntN(2)], next)}
		case c < 50:
			op = kbOp{kind: "create", path: existing[r.IntN(len(existing))]}
		case c < 65:
			next++
			from := existing[r.IntN(len(existing))]
			op = kbOp{kind: "rename", path: from, to: fmt.Sprintf("%s/r%d", filepath.Dir(from), next)}
		case c < 75:
			op = kbOp{kind: "unlink", path: existing[r.IntN(len(existing))]}
		case c < 90:
			op = kbOp{kind: "fsync", path: existing[r.IntN(len(existing))]}
		default:
			op = kbOp{kind: "dirsync", path: []string{"a", "b"}[r.IntN(2)]}
		}
		switch op.kind {
		case "mkdir":
			cur[op.path+"/"] = ""
			push()
		case "create":
			op.data = strings.Repeat(fmt.Sprintf("%s v%d;", op.path, len(ops)), 1+r.IntN(400))
			cur[op.path] = ""
			push()
			cur[op.path] = op.data
			push()
		case "rename":
			cur[op.to] = cur[op.path]
			delete(cur, op.path)
			push()
		case "unlink":
			delete(cur, op.path)
			push()
		}
		// Some pauses let the flusher write a group mid-workload, so the
		// kill lands between groups, not only after the last fsync.
		op.pause = r.IntN(8) == 0
		ops = append(ops, op)
		s := synced[len(synced)-1]
		if op.kind == "fsync" || op.kind == "dirsync" {
			// fsync of any file or directory makes everything
			// acknowledged before it durable; only the file (or the
			// directory's entries) is promised, but the check below holds
			// the whole tree to it. (syncfs(2) after a directory's fsync
			// adds nothing: go-fuse does not pass SYNCFS to the server.)
			s = len(trees) - 1
		}
		synced = append(synced, s)
		upto = append(upto, len(trees)-1)
	}
	return ops, trees, synced, upto
}

func cloneTree(t kbTree) kbTree {
	c := make(kbTree, len(t))
	for k, v := range t {
		c[k] = v
	}
	return c
}

// do runs one step through the mount at mp.
func (op kbOp) do(mp string) error {
	p := filepath.Join(mp, op.path)
	switch op.kind {
	case "mkdir":
		return os.Mkdir(p, 0o755)
	case "create":
		return os.WriteFile(p, []byte(op.data), 0o644)
	case "rename":
		return os.Rename(p, filepath.Join(mp, op.to))
	case "unlink":
		return os.Remove(p)
	case "fsync", "dirsync":
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		if op.kind == "dirsync" && err == nil {
			err = unix.Syncfs(int(f.Fd()))
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return fmt.Errorf("unknown step %q", op.kind)
}

// TestKillBolt kills a mount of a bolt file with SIGKILL after several
// numbers of steps of a seeded workload (creates, rewrites, renames,
// unlinks, fsync of files, fsync and syncfs of directories) and checks the
// reopened file (see above). VOLDFS_KILLBOLT_SEED replays a seed.
func TestKillBolt(t *testing.T) {
	requireFUSE(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("VOLDFS_KILLBOLT_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "VOLDFS_KILLBOLT_SEED")
	}
	t.Logf("seed %d (replay with VOLDFS_KILLBOLT_SEED=%d)", seed, seed)
	bin := filepath.Join(t.TempDir(), "voldfs-mount")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const steps = 60
	ops, trees, synced, upto := kbWorkload(seed, steps)
	for _, n := range []int{4, 15, 31, 47, steps} {
		t.Run(fmt.Sprintf("after%d", n), func(t *testing.T) {
			killBoltRun(t, bin, "", ops[:n], trees[:upto[n]+1], synced[n])
		})
	}
}

// TestKillBoltDirSync: fsync of a directory is a durability point. With a
// group commit interval far longer than the test, only the fsync can have
// put the directory's new entries (and the file fsynced before) on disk.
func TestKillBoltDirSync(t *testing.T) {
	requireFUSE(t)
	bin := filepath.Join(t.TempDir(), "voldfs-mount")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ops := []kbOp{
		{kind: "mkdir", path: "a"},
		{kind: "create", path: "a/x", data: "durable by the directory's fsync"},
		{kind: "dirsync", path: "a"},
	}
	trees := []kbTree{{}, {"a/": ""}, {"a/": "", "a/x": ""}, {"a/": "", "a/x": ops[1].data}}
	killBoltRun(t, bin, "?interval=1h", ops, trees, len(trees)-1)
}

// killBoltRun mounts a fresh bolt file (with the bolt URL options opts)
// with the mount binary bin as a child, does ops through it, kills it with
// SIGKILL and checks the file.
func killBoltRun(t *testing.T, bin, opts string, ops []kbOp, trees []kbTree, synced int) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fs.db")
	mp := filepath.Join(dir, "mnt")
	require.NoError(t, os.Mkdir(mp, 0o755))
	stderr := &lockedBuffer{}
	cmd := exec.Command(bin, "-store", "bolt:"+db+opts, mp)
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	killed := false
	lazyUnmount := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if exec.CommandContext(ctx, "fusermount3", "-u", "-z", mp).Run() != nil && os.Geteuid() == 0 {
			exec.CommandContext(ctx, "umount", "-l", mp).Run()
		}
	}
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
		lazyUnmount()
	})
	if !waitMounted(mp, true) {
		t.Fatalf("not mounted; stderr: %s", stderr.String())
	}
	// Every step runs in a goroutine with a deadline, so a hung mount fails
	// the test instead of blocking it (the cleanup's kill ends the call).
	for i, op := range ops {
		done := make(chan error, 1)
		go func() { done <- op.do(mp) }()
		select {
		case err := <-done:
			require.NoError(t, err, "step %d %+v", i, op)
			if op.pause {
				time.Sleep(30 * time.Millisecond) // the default interval is 20 ms
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("step %d %s %s: no answer from the mount in 10 s; stderr: %s", i, op.kind, op.path, stderr.String())
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	killed = true
	lazyUnmount()
	if !waitMounted(mp, false) {
		t.Fatal("the killed mount is still mounted after a lazy unmount")
	}

	s, err := bolt.Open(db, &bolt.Options{Timeout: 5 * time.Second})
	require.NoError(t, err, "reopen the bolt file after the kill")
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	f, err := voldfs.Open(ctx, s, &voldfs.Options{AttrTimeout: -1})
	require.NoError(t, err, "open the filesystem after the kill")
	t.Cleanup(func() { f.Close() })
	r1, err := f.Fsck(ctx, voldfs.FsckOptions{Repair: true, GC: true, Grace: -1})
	require.NoError(t, err, "fsck -repair")
	r2, err := f.Fsck(ctx, voldfs.FsckOptions{Grace: -1})
	require.NoError(t, err, "fsck")
	assert.True(t, r2.OK() && r2.GarbageBlocks == 0 && r2.GarbageInodes == 0,
		"fsck after repair not clean: problems %v, garbage blocks %d, inodes %d (repair found %v)",
		r2.Problems, r2.GarbageBlocks, r2.GarbageInodes, r1.Problems)

	got := kbTree{}
	err = fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case p == ".":
			return nil
		case p == "lost+found":
			// A kill between the store writes of an unlink may leave
			// the inode there; nothing still linked is lost.
			return fs.SkipDir
		case d.IsDir():
			got[p+"/"] = ""
			return nil
		}
		b, err := f.ReadFile(p)
		got[p] = string(b)
		return err
	})
	require.NoError(t, err, "walk the tree after the kill")

	// The files fsync made durable and that no later step touched.
	last := len(trees) - 1
	durable := 0
	for p, want := range trees[synced] {
		stable := true
		for _, tr := range trees[synced:] {
			if v, ok := tr[p]; !ok || v != want {
				stable = false
				break
			}
		}
		if stable && !strings.HasSuffix(p, "/") {
			durable++
			if assert.Contains(t, got, p, "fsynced before the kill, lost") {
				assert.Equal(t, want, got[p], "%s: fsynced before the kill, content differs", p)
			}
		}
	}
	// The whole tree is one the workload passed through, at or after the
	// last fsync: a prefix of the steps, each file a complete version.
	at := -1
	for k := synced; k < len(trees); k++ {
		if treesEqual(trees[k], got) {
			at = k
		}
	}
	if at < 0 {
		t.Errorf("the tree after the kill is none of trees %d..%d the workload passed through after its last fsync\ngot:  %v\nlast fsync: %v",
			synced, last, summary(got), summary(trees[synced]))
	}
	t.Logf("%d steps: recovered tree %d (of %d..%d since the last fsync), %d files fsynced and untouched since, fsck repaired %d",
		len(ops), at, synced, last, durable, r1.Repaired)
}

func treesEqual(a, b kbTree) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	return true
}

// summary lists a tree's paths with their content lengths.
func summary(t kbTree) string {
	var out []string
	for p, v := range t {
		out = append(out, fmt.Sprintf("%s(%d)", p, len(v)))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}
