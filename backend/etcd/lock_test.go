package etcd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/voldfs/voldfs"
)

// Shared locks on etcd: FS values on one etcd-backed filesystem stand for
// machines; the locks live in the cluster and exclude across them.

// lockFS formats a filesystem under a fresh prefix of c and opens n FS
// values of it with lock timeout d, closed in t.Cleanup; it returns them
// and the prefix.
func lockFS(t testing.TB, c *cluster, prefix string, n int, d time.Duration) []*voldfs.FS {
	t.Helper()
	ctx := context.Background()
	var fss []*voldfs.FS
	for i := range n {
		s, err := New(c.config(), WithPrefix(prefix))
		require.NoError(t, err)
		var f *voldfs.FS
		if i == 0 {
			f, err = voldfs.Format(ctx, s, nil)
		} else {
			f, err = voldfs.Open(ctx, s, nil)
		}
		require.NoError(t, err)
		f.SetLockTimeout(d)
		t.Cleanup(func() { f.Close(); s.Close() })
		fss = append(fss, f)
	}
	return fss
}

// openAll creates name through fss[0] and opens it in every FS.
func openAll(t testing.TB, fss []*voldfs.FS, name string) []*voldfs.File {
	t.Helper()
	f, err := fss[0].Create(name)
	require.NoError(t, err)
	files := []*voldfs.File{f}
	for _, c := range fss[1:] {
		g, err := c.OpenFile(name, os.O_RDWR, 0)
		require.NoError(t, err)
		files = append(files, g)
	}
	for _, f := range files {
		t.Cleanup(func() { f.Close() })
	}
	return files
}

// TestLockEtcd: flock and POSIX locks between two FS values of one
// etcd-backed filesystem, and the locks of a killed client process.
func TestLockEtcd(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, 3)
	fss := lockFS(t, c, "voldfs-lock/", 2, voldfs.DefaultLockTimeout)
	f := openAll(t, fss, "f")
	a, b := f[0], f[1]

	t.Run("Flock", func(t *testing.T) {
		require.NoError(t, a.Flock(ctx, syscall.LOCK_EX|syscall.LOCK_NB))
		assert.ErrorIs(t, b.Flock(ctx, syscall.LOCK_EX|syscall.LOCK_NB), syscall.EAGAIN, "exclusive excludes")
		assert.ErrorIs(t, b.Flock(ctx, syscall.LOCK_SH|syscall.LOCK_NB), syscall.EAGAIN, "exclusive excludes shared")
		require.NoError(t, a.Flock(ctx, syscall.LOCK_SH), "downgrade")
		assert.NoError(t, b.Flock(ctx, syscall.LOCK_SH|syscall.LOCK_NB), "shared locks coexist")
		assert.ErrorIs(t, a.Flock(ctx, syscall.LOCK_EX|syscall.LOCK_NB), syscall.EAGAIN, "upgrade against a shared holder")
		require.NoError(t, b.Flock(ctx, syscall.LOCK_UN))
		require.NoError(t, a.Flock(ctx, syscall.LOCK_UN))

		// A waiting LOCK_EX is granted once the holder unlocks.
		require.NoError(t, a.Flock(ctx, syscall.LOCK_EX))
		got := make(chan error, 1)
		go func() { got <- b.Flock(ctx, syscall.LOCK_EX) }()
		select {
		case err := <-got:
			t.Fatalf("LOCK_EX granted while the other FS holds it: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		require.NoError(t, a.Flock(ctx, syscall.LOCK_UN))
		select {
		case err := <-got:
			assert.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("LOCK_EX still waiting 10 s after the holder unlocked")
		}
		require.NoError(t, b.Flock(ctx, syscall.LOCK_UN))
	})

	t.Run("Posix", func(t *testing.T) {
		w := func(start, n int64) voldfs.Lock {
			return voldfs.Lock{Kind: voldfs.PosixLock, Type: voldfs.WriteLock, Start: start, Len: n, Owner: 1, Pid: 42}
		}
		require.NoError(t, a.Lock(ctx, w(0, 10), false))
		assert.ErrorIs(t, b.Lock(ctx, w(5, 10), false), syscall.EAGAIN, "overlap conflicts")
		assert.ErrorIs(t, b.Lock(ctx, w(9, 1), false), syscall.EAGAIN, "last byte conflicts")
		got, err := b.GetLock(ctx, w(5, 10))
		require.NoError(t, err)
		assert.Equal(t, voldfs.WriteLock, got.Type, "GETLK reports the holder")
		assert.Equal(t, int64(0), got.Start)
		assert.Equal(t, int64(10), got.Len)
		assert.True(t, got.Remote, "held through another FS")
		require.NoError(t, b.Lock(ctx, w(10, 5), false), "adjacent range")
		r := w(20, 10)
		r.Type = voldfs.ReadLock
		require.NoError(t, a.Lock(ctx, r, false))
		assert.NoError(t, b.Lock(ctx, r, false), "read locks coexist")
		require.NoError(t, a.ReleaseLocks(ctx, 1, false))
		assert.NoError(t, b.Lock(ctx, w(0, 10), false), "free once released")
		require.NoError(t, b.ReleaseLocks(ctx, 1, false))
	})

	t.Run("HolderKilled", func(t *testing.T) { lockHolderKilled(t, c) })
}

// lockHolderKilled: a client process killed with SIGKILL while it holds a
// flock and a POSIX lock has them broken within its lock timeout (plus
// heartbeat slack), and the other FS gets them.
func lockHolderKilled(t *testing.T, c *cluster) {
	ctx := context.Background()
	const prefix = "voldfs-lock-killed/"
	const timeout = time.Second
	fss := lockFS(t, c, prefix, 1, timeout)
	b := openAll(t, fss, "f")[0]

	cmd := exec.Command(os.Args[0], "-test.run=^TestLockEtcdChild$")
	cmd.Env = append(os.Environ(), "VOLDFS_LOCK_CHILD="+strings.Join(c.endpoints(), ",")+"|"+prefix)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "child: %q", line)
	require.Equal(t, "locked\n", line)
	w := voldfs.Lock{Kind: voldfs.PosixLock, Type: voldfs.WriteLock, Owner: 1}
	require.ErrorIs(t, b.Flock(ctx, syscall.LOCK_EX|syscall.LOCK_NB), syscall.EAGAIN, "the child holds the flock")
	require.ErrorIs(t, b.Lock(ctx, w, false), syscall.EAGAIN, "the child holds the POSIX lock")
	time.Sleep(timeout * 3 / 2)
	require.ErrorIs(t, b.Lock(ctx, w, false), syscall.EAGAIN, "a live client's lock is never broken")

	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	killed = true
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, b.Flock(wctx, syscall.LOCK_EX), "the killed client's flock is broken")
	took := time.Since(start)
	t.Logf("flock granted %v after the holder's kill (lock timeout %v)", took, timeout)
	assert.Less(t, took, timeout+2*time.Second)
	assert.NoError(t, b.Lock(ctx, w, false), "the killed client's POSIX lock is broken too")
}

// TestLockEtcdChild is the killed client of TestLockEtcd/HolderKilled: with
// VOLDFS_LOCK_CHILD set ("endpoints|prefix") it opens the filesystem, locks
// file f (flock and a POSIX write lock), says "locked" and waits to be
// killed.
func TestLockEtcdChild(t *testing.T) {
	env := os.Getenv("VOLDFS_LOCK_CHILD")
	if env == "" {
		t.Skip("the child of TestLockEtcd/HolderKilled")
	}
	eps, prefix, _ := strings.Cut(env, "|")
	ctx := context.Background()
	s, err := New(clientv3.Config{Endpoints: strings.Split(eps, ","), DialTimeout: 5 * time.Second, Logger: zap.NewNop()}, WithPrefix(prefix))
	require.NoError(t, err)
	f, err := voldfs.Open(ctx, s, nil)
	require.NoError(t, err)
	f.SetLockTimeout(time.Second)
	file, err := f.OpenFile("f", os.O_RDWR, 0)
	require.NoError(t, err)
	require.NoError(t, file.Flock(ctx, syscall.LOCK_EX|syscall.LOCK_NB))
	require.NoError(t, file.Lock(ctx, voldfs.Lock{Kind: voldfs.PosixLock, Type: voldfs.WriteLock, Owner: 9}, false))
	fmt.Println("locked")
	time.Sleep(time.Minute)
	t.Fatal("not killed within a minute")
}

// BenchmarkLock measures an uncontended POSIX lock and unlock of one file
// on the three-member cluster: one lock-table CAS each (plus re-reading
// the open file's inode on lock).
func BenchmarkLock(b *testing.B) {
	ctx := context.Background()
	c := startCluster(b, 3)
	fss := lockFS(b, c, "voldfs-lockbench/", 1, voldfs.DefaultLockTimeout)
	f := openAll(b, fss, "f")[0]
	w := voldfs.Lock{Kind: voldfs.PosixLock, Type: voldfs.WriteLock, Owner: 1}
	require.NoError(b, f.Lock(ctx, w, false)) // starts the session
	require.NoError(b, f.ReleaseLocks(ctx, 1, false))
	for b.Loop() {
		if err := f.Lock(ctx, w, false); err != nil {
			b.Fatal(err)
		}
		if err := f.ReleaseLocks(ctx, 1, false); err != nil {
			b.Fatal(err)
		}
	}
}
