package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/internal/testserver"
)

// Locks through two mounts of one memcached filesystem: the kernel of each
// forwards them, and the library's store-held locks exclude across mounts.

func twoMountsFile(t *testing.T) (store, a, b string) {
	store = "memcache://" + testserver.Memcached(t)
	_, ma := testMount(t, store)
	_, mb := testMount(t, store)
	require.NoError(t, os.WriteFile(filepath.Join(ma, "f"), []byte("locked file"), 0o644))
	return store, filepath.Join(ma, "f"), filepath.Join(mb, "f")
}

func openT(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// TestFlockTwoMounts: an exclusive flock excludes across mounts, shared
// ones coexist, and a blocked LOCK_EX gets the lock once the holder closes.
func TestFlockTwoMounts(t *testing.T) {
	_, a, b := twoMountsFile(t)
	fa, fb := openT(t, a), openT(t, b)
	require.NoError(t, syscall.Flock(int(fa.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
	assert.Equal(t, syscall.EWOULDBLOCK, syscall.Flock(int(fb.Fd()), syscall.LOCK_SH|syscall.LOCK_NB))
	// Another open file of the same mount conflicts too (flock locks
	// belong to the open file).
	fa2 := openT(t, a)
	assert.Equal(t, syscall.EWOULDBLOCK, syscall.Flock(int(fa2.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))

	require.NoError(t, syscall.Flock(int(fa.Fd()), syscall.LOCK_SH))
	assert.NoError(t, syscall.Flock(int(fb.Fd()), syscall.LOCK_SH|syscall.LOCK_NB), "shared locks coexist")
	assert.Equal(t, syscall.EWOULDBLOCK, syscall.Flock(int(fa2.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
	require.NoError(t, syscall.Flock(int(fb.Fd()), syscall.LOCK_UN))

	// A waiting LOCK_EX in b is granted when a's open file is closed
	// (RELEASE frees its flock lock).
	got := make(chan error, 1)
	go func() { got <- syscall.Flock(int(fb.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-got:
		t.Fatalf("LOCK_EX granted while a holds LOCK_SH: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, fa.Close())
	select {
	case err := <-got:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("LOCK_EX still waiting 10 s after the holder closed")
	}
	assert.Equal(t, syscall.EWOULDBLOCK, syscall.Flock(int(fa2.Fd()), syscall.LOCK_SH|syscall.LOCK_NB))
}

func fcntlLock(f *os.File, cmd int, typ int16, start, n int64) (*syscall.Flock_t, error) {
	lk := &syscall.Flock_t{Type: typ, Whence: 0, Start: start, Len: n}
	err := syscall.FcntlFlock(f.Fd(), cmd, lk)
	return lk, err
}

// TestPosixLocksTwoMounts: byte-range locks conflict exactly where they
// overlap, F_GETLK reports the conflicting range, and closing any
// descriptor of the file releases the process's locks.
func TestPosixLocksTwoMounts(t *testing.T) {
	_, a, b := twoMountsFile(t)
	fa, fb := openT(t, a), openT(t, b)
	_, err := fcntlLock(fa, syscall.F_SETLK, syscall.F_WRLCK, 0, 10)
	require.NoError(t, err)
	_, err = fcntlLock(fa, syscall.F_SETLK, syscall.F_RDLCK, 100, 0)
	require.NoError(t, err)

	_, err = fcntlLock(fb, syscall.F_SETLK, syscall.F_WRLCK, 10, 10)
	assert.NoError(t, err, "adjacent range")
	for _, r := range [][2]int64{{9, 1}, {0, 1}, {5, 20}} {
		_, err = fcntlLock(fb, syscall.F_SETLK, syscall.F_RDLCK, r[0], r[1])
		assert.Equal(t, syscall.EAGAIN, err, "range %v overlaps a's write lock", r)
	}
	_, err = fcntlLock(fb, syscall.F_SETLK, syscall.F_RDLCK, 200, 5)
	assert.NoError(t, err, "read lock inside a's read lock")
	_, err = fcntlLock(fb, syscall.F_SETLK, syscall.F_WRLCK, 150, 1)
	assert.Equal(t, syscall.EAGAIN, err, "write lock inside a's read lock")

	lk, err := fcntlLock(fb, syscall.F_GETLK, syscall.F_WRLCK, 3, 2)
	require.NoError(t, err)
	assert.Equal(t, int16(syscall.F_WRLCK), lk.Type)
	assert.Equal(t, int64(0), lk.Start)
	assert.Equal(t, int64(10), lk.Len)
	lk, err = fcntlLock(fb, syscall.F_GETLK, syscall.F_WRLCK, 1000, 1)
	require.NoError(t, err)
	assert.Equal(t, int16(syscall.F_RDLCK), lk.Type)
	assert.Equal(t, int64(100), lk.Start)
	assert.Equal(t, int64(0), lk.Len, "to the end of the file")
	lk, err = fcntlLock(fb, syscall.F_GETLK, syscall.F_WRLCK, 50, 10)
	require.NoError(t, err)
	assert.Equal(t, int16(syscall.F_UNLCK), lk.Type, "no conflict")

	// Closing another descriptor of the file in a (not the one that locked)
	// drops all the process's locks there.
	require.NoError(t, openT(t, a).Close())
	_, err = fcntlLock(fb, syscall.F_SETLK, syscall.F_WRLCK, 0, 0)
	assert.NoError(t, err, "after a's close")

	// A waiting F_SETLKW in a is granted when b unlocks.
	got := make(chan error, 1)
	go func() {
		_, err := fcntlLock(fa, syscall.F_SETLKW, syscall.F_WRLCK, 0, 1)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("F_SETLKW granted while b holds the file: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	_, err = fcntlLock(fb, syscall.F_SETLK, syscall.F_UNLCK, 0, 0)
	require.NoError(t, err)
	select {
	case err := <-got:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("F_SETLKW still waiting 10 s after the unlock")
	}
}

// TestOFDLocksMount: open-file-description locks conflict between two open
// files of one process and go with the last close of theirs.
func TestOFDLocksMount(t *testing.T) {
	_, a, _ := twoMountsFile(t)
	f1, f2 := openT(t, a), openT(t, a)
	_, err := fcntlLock(f1, unix.F_OFD_SETLK, syscall.F_WRLCK, 0, 0)
	require.NoError(t, err)
	_, err = fcntlLock(f2, unix.F_OFD_SETLK, syscall.F_RDLCK, 0, 1)
	assert.Equal(t, syscall.EAGAIN, err)
	// A close of another descriptor does not drop it.
	require.NoError(t, openT(t, a).Close())
	_, err = fcntlLock(f2, unix.F_OFD_SETLK, syscall.F_RDLCK, 0, 1)
	assert.Equal(t, syscall.EAGAIN, err)
	// The kernel sends RELEASE, which frees the lock, just after close(2)
	// returns: a request at once may still meet the lock for a moment.
	require.NoError(t, f1.Close())
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err = fcntlLock(f2, unix.F_OFD_SETLK, syscall.F_RDLCK, 0, 1)
		if err != syscall.EAGAIN || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	assert.NoError(t, err, "2 s after the holder's close")
}

// TestLockHolderKilled: a mount process killed with SIGKILL while its
// mount holds a flock has its lock broken after its -lock-timeout, and the
// other mount gets it.
func TestLockHolderKilled(t *testing.T) {
	requireFUSE(t)
	store, _, b := twoMountsFile(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "voldfs-mount")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	mp := filepath.Join(dir, "mnt")
	require.NoError(t, os.Mkdir(mp, 0o755))
	stderr := &lockedBuffer{}
	cmd := exec.Command(bin, "-store", store, "-lock-timeout", "2s", mp)
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
		exec.Command("fusermount3", "-u", "-z", mp).Run()
	})
	if !waitMounted(mp, true) {
		t.Fatalf("not mounted; stderr: %s", stderr.String())
	}
	fc, err := os.OpenFile(filepath.Join(mp, "f"), os.O_RDWR, 0)
	require.NoError(t, err)
	defer fc.Close()
	require.NoError(t, syscall.Flock(int(fc.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
	_, err = fcntlLock(fc, syscall.F_SETLK, syscall.F_WRLCK, 0, 0)
	require.NoError(t, err)
	fb := openT(t, b)
	require.Equal(t, syscall.EWOULDBLOCK, syscall.Flock(int(fb.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))

	require.NoError(t, cmd.Process.Kill())
	cmd.Wait()
	killed = true
	start := time.Now()
	got := make(chan error, 1)
	go func() { got <- syscall.Flock(int(fb.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-got:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("flock still waiting 10 s after the holder was killed (lock timeout 2 s)")
	}
	took := time.Since(start)
	t.Logf("flock granted %v after the holder's kill", took)
	assert.Less(t, took, 2*time.Second+3*time.Second)
	_, err = fcntlLock(fb, syscall.F_SETLK, syscall.F_WRLCK, 0, 0)
	assert.NoError(t, err, "the killed mount's POSIX lock is broken too")
}

// TestLockWaitInterrupted: a waiting lock ends when the waiter gets a
// signal (flock -w times out with SIGALRM), leaves no lock behind, and the
// lock is free once the holder unlocks.
func TestLockWaitInterrupted(t *testing.T) {
	bin, err := exec.LookPath("flock")
	if err != nil {
		t.Skip("no flock(1)")
	}
	_, a, b := twoMountsFile(t)
	fa := openT(t, a)
	require.NoError(t, syscall.Flock(int(fa.Fd()), syscall.LOCK_EX))
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-w", "1", b, "true").CombinedOutput()
	took := time.Since(start)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "flock -w 1 while another mount holds the lock: %s", out)
	assert.Equal(t, 1, ee.ExitCode(), "flock -w times out: %s", out)
	assert.Less(t, took, 5*time.Second)
	require.NoError(t, syscall.Flock(int(fa.Fd()), syscall.LOCK_UN))
	out, err = exec.Command(bin, "-n", b, "true").CombinedOutput()
	assert.NoError(t, err, "flock -n after the unlock: %s", out)
	assert.NoError(t, syscall.Flock(int(fa.Fd()), syscall.LOCK_EX|syscall.LOCK_NB), "no lock left by the interrupted waiter")
}
