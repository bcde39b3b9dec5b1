package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestXattrMount: extended attributes through the kernel, with the attr
// tools and the system calls.
func TestXattrMount(t *testing.T) { forStores(t, xattrMount) }

func xattrMount(t *testing.T, store string) {
	_, mp := testMount(t, store)
	p := filepath.Join(mp, "f")
	require.NoError(t, os.WriteFile(p, []byte("x"), 0o644))

	if _, err := exec.LookPath("setfattr"); err == nil {
		out, err := exec.Command("setfattr", "-n", "user.color", "-v", "blue", p).CombinedOutput()
		require.NoError(t, err, "%s", out)
		out, err = exec.Command("getfattr", "--absolute-names", "-n", "user.color", "--only-values", p).CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, "blue", string(out))
		out, err = exec.Command("getfattr", "--absolute-names", "-d", p).CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), `user.color="blue"`)
		out, err = exec.Command("getfattr", "-n", "user.nope", p).CombinedOutput()
		assert.Error(t, err)
		assert.Contains(t, string(out), "No such attribute")
		out, err = exec.Command("setfattr", "-x", "user.color", p).CombinedOutput()
		require.NoError(t, err, "%s", out)
	} else if os.Getenv("CI") != "" {
		t.Error("setfattr not installed")
	}

	require.NoError(t, unix.Setxattr(p, "user.a", []byte("1"), 0))
	require.NoError(t, unix.Setxattr(p, "user.b", []byte("22"), 0))
	n, err := unix.Getxattr(p, "user.b", nil)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "size query")
	_, err = unix.Getxattr(p, "user.b", make([]byte, 1))
	assert.Equal(t, unix.ERANGE, err)
	buf := make([]byte, 16)
	n, err = unix.Getxattr(p, "user.b", buf)
	require.NoError(t, err)
	assert.Equal(t, "22", string(buf[:n]))

	n, err = unix.Listxattr(p, nil)
	require.NoError(t, err)
	assert.Equal(t, len("user.a\x00user.b\x00"), n)
	_, err = unix.Listxattr(p, make([]byte, 3))
	assert.Equal(t, unix.ERANGE, err)
	n, err = unix.Listxattr(p, buf)
	require.NoError(t, err)
	assert.Equal(t, "user.a\x00user.b\x00", string(buf[:n]))

	assert.Equal(t, unix.EEXIST, unix.Setxattr(p, "user.a", []byte("x"), unix.XATTR_CREATE))
	assert.Equal(t, unix.ENODATA, unix.Setxattr(p, "user.c", []byte("x"), unix.XATTR_REPLACE))
	require.NoError(t, unix.Setxattr(p, "user.a", []byte("new"), unix.XATTR_REPLACE))
	_, err = unix.Getxattr(p, "user.nope", buf)
	assert.Equal(t, unix.ENODATA, err)
	assert.Equal(t, unix.EOPNOTSUPP, unix.Setxattr(p, "bogus.x", []byte("x"), 0))

	big := bytes.Repeat([]byte("v"), 64<<10)
	require.NoError(t, unix.Setxattr(p, "user.big", big, 0))
	got := make([]byte, 64<<10)
	n, err = unix.Getxattr(p, "user.big", got)
	require.NoError(t, err)
	assert.Equal(t, big, got[:n])
	// The kernel refuses values over 64 KiB itself.
	assert.Equal(t, unix.E2BIG, unix.Setxattr(p, "user.big2", append(big, 'v'), 0))

	require.NoError(t, unix.Removexattr(p, "user.a"))
	assert.Equal(t, unix.ENODATA, unix.Removexattr(p, "user.a"))
	n, err = unix.Listxattr(p, buf)
	require.NoError(t, err)
	assert.Equal(t, "user.b\x00user.big\x00", string(buf[:n]))
}

// TestSpecialFiles: FIFOs, sockets and devices through the kernel, which
// serves the FIFO's data and the socket's connections itself.
func TestSpecialFiles(t *testing.T) { forStores(t, specialFiles) }

func specialFiles(t *testing.T, store string) {
	_, mp := testMount(t, store)
	fifo := filepath.Join(mp, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o640))
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(fifo, &st))
	assert.Equal(t, uint32(syscall.S_IFIFO), st.Mode&syscall.S_IFMT)
	assert.Zero(t, st.Mode&0o7777&^0o640, "mode %o: no bits beyond those asked (the umask may clear some)", st.Mode)

	// A writer and a reader meet through it.
	done := make(chan error, 1)
	go func() {
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			_, err = w.Write([]byte("through the pipe"))
			w.Close()
		}
		done <- err
	}()
	r, err := os.Open(fifo)
	require.NoError(t, err)
	data, err := io.ReadAll(r)
	r.Close()
	require.NoError(t, err)
	require.NoError(t, <-done)
	assert.Equal(t, "through the pipe", string(data))

	// The listing shows the type.
	ents, err := os.ReadDir(mp)
	require.NoError(t, err)
	require.Len(t, ents, 1)
	assert.True(t, ents[0].Type()&os.ModeNamedPipe != 0, "type %v", ents[0].Type())

	// Rename, link, chmod, unlink; a directory holding one is not empty.
	require.NoError(t, os.Mkdir(filepath.Join(mp, "d"), 0o755))
	moved := filepath.Join(mp, "d", "fifo2")
	require.NoError(t, os.Rename(fifo, moved))
	require.NoError(t, os.Link(moved, filepath.Join(mp, "d", "fifo3")))
	require.NoError(t, os.Chmod(moved, 0o600))
	require.NoError(t, syscall.Stat(filepath.Join(mp, "d", "fifo3"), &st))
	assert.Equal(t, uint32(syscall.S_IFIFO|0o600), st.Mode)
	assert.Equal(t, uint64(2), uint64(st.Nlink))
	assert.Equal(t, syscall.ENOTEMPTY, errnoOf(syscall.Rmdir(filepath.Join(mp, "d"))))
	require.NoError(t, os.Remove(moved))
	require.NoError(t, os.Remove(filepath.Join(mp, "d", "fifo3")))
	require.NoError(t, syscall.Rmdir(filepath.Join(mp, "d")))

	// A unix socket bound in the mount takes connections.
	sock := filepath.Join(mp, "sock")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	c, err := net.Dial("unix", sock)
	require.NoError(t, err)
	data, err = io.ReadAll(c)
	c.Close()
	require.NoError(t, err)
	assert.Equal(t, "hello", string(data))
	require.NoError(t, syscall.Lstat(sock, &st))
	assert.Equal(t, uint32(syscall.S_IFSOCK), st.Mode&syscall.S_IFMT)

	// mknod of a regular file.
	reg := filepath.Join(mp, "reg")
	require.NoError(t, syscall.Mknod(reg, syscall.S_IFREG|0o644, 0))
	require.NoError(t, syscall.Stat(reg, &st))
	assert.Equal(t, uint32(syscall.S_IFREG), st.Mode&syscall.S_IFMT)
	assert.Equal(t, int64(0), st.Size)
	require.NoError(t, os.WriteFile(reg, []byte("data"), 0o644))

	// Devices, as root: the type and the device number.
	if os.Geteuid() != 0 {
		t.Log("not root: no device nodes")
		return
	}
	for _, d := range []struct {
		name         string
		typ          uint32
		major, minor uint32
	}{{"null", syscall.S_IFCHR, 1, 3}, {"blk", syscall.S_IFBLK, 8, 1}, {"big", syscall.S_IFCHR, 300, 70000}} {
		p := filepath.Join(mp, d.name)
		require.NoError(t, unix.Mknod(p, d.typ|0o600, int(unix.Mkdev(d.major, d.minor))), d.name)
		require.NoError(t, syscall.Stat(p, &st))
		assert.Equal(t, d.typ, st.Mode&syscall.S_IFMT, d.name)
		assert.Equal(t, unix.Mkdev(d.major, d.minor), uint64(st.Rdev), "%s rdev", d.name)
	}
	out, err := exec.Command("ls", "-l", filepath.Join(mp, "null")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.True(t, strings.HasPrefix(string(out), "c") && strings.Contains(string(out), "1, 3"), "ls -l: %s", out)
}

func errnoOf(err error) syscall.Errno {
	errno, _ := err.(syscall.Errno)
	return errno
}

// TestFUSEDescriptorCloseOnExec: the mount's /dev/fuse descriptors are not
// inherited by child processes (one outliving the server would keep the
// connection alive and the mount hanging).
func TestFUSEDescriptorCloseOnExec(t *testing.T) {
	testMount(t, "mem:")
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	found := 0
	for _, e := range ents {
		if target, _ := os.Readlink("/proc/self/fd/" + e.Name()); target != "/dev/fuse" {
			continue
		}
		found++
		fd := 0
		fmt.Sscan(e.Name(), &fd)
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		require.NoError(t, err)
		assert.NotZero(t, flags&unix.FD_CLOEXEC, "fd %d", fd)
	}
	assert.NotZero(t, found, "no /dev/fuse descriptor")
}
