package main

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/voldfs/voldfs/internal/testserver"
)

// xattrPy exercises Python's os.setxattr, getxattr, listxattr and
// removexattr (the system calls as a program makes them) on the directory
// given as its argument, asserting errnos as ext4 gives them.
const xattrPy = `
import errno, os, sys
d = sys.argv[1]
f = os.path.join(d, "f")
open(f, "w").close()

def fails(e, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except OSError as x:
        assert x.errno == e, "%s%r: errno %s, want %s" % (fn.__name__, args[1:2], errno.errorcode.get(x.errno), errno.errorcode[e])
        return
    raise AssertionError("%s%r succeeded, want %s" % (fn.__name__, args[1:2], errno.errorcode[e]))

os.setxattr(f, "user.a", b"1")
assert os.getxattr(f, "user.a") == b"1"
fails(errno.EEXIST, os.setxattr, f, "user.a", b"2", os.XATTR_CREATE)
os.setxattr(f, "user.a", b"2", os.XATTR_REPLACE)
assert os.getxattr(f, "user.a") == b"2"
fails(errno.ENODATA, os.setxattr, f, "user.b", b"x", os.XATTR_REPLACE)
os.setxattr(f, "user.b", b"", os.XATTR_CREATE)
assert os.getxattr(f, "user.b") == b"", "an empty value"
assert sorted(os.listxattr(f)) == ["user.a", "user.b"], os.listxattr(f)
os.removexattr(f, "user.a")
fails(errno.ENODATA, os.getxattr, f, "user.a")
fails(errno.ENODATA, os.removexattr, f, "user.a")
assert os.listxattr(f) == ["user.b"], os.listxattr(f)

big = bytes(range(256)) * 234  # 59904 bytes
os.setxattr(f, "user.big", big)
assert os.getxattr(f, "user.big") == big
fails(errno.E2BIG, os.setxattr, f, "user.huge", b"x" * 65537)
long = "user." + "n" * 250  # 255 bytes
os.setxattr(f, long, b"v")
assert os.getxattr(f, long) == b"v"
fails(errno.ERANGE, os.setxattr, f, long + "n", b"v")
fails(errno.EOPNOTSUPP, os.setxattr, f, "nosuch.ns", b"v")
if os.geteuid() == 0:
    os.setxattr(f, "trusted.t", b"root only")
    assert os.getxattr(f, "trusted.t") == b"root only"
else:
    fails(errno.EPERM, os.setxattr, f, "trusted.t", b"root only")

os.mkdir(os.path.join(d, "dir"))
os.setxattr(os.path.join(d, "dir"), "user.d", b"on a directory")
assert os.getxattr(os.path.join(d, "dir"), "user.d") == b"on a directory"
os.symlink("f", os.path.join(d, "l"))
assert os.getxattr(os.path.join(d, "l"), "user.b") == b"", "through a symlink"
fails(errno.EPERM, os.setxattr, os.path.join(d, "l"), "user.s", b"v", follow_symlinks=False)
assert os.listxattr(os.path.join(d, "l"), follow_symlinks=False) == []

# The attributes survive a rename and are the link's, not the name's.
os.rename(f, os.path.join(d, "g"))
os.link(os.path.join(d, "g"), os.path.join(d, "h"))
assert os.getxattr(os.path.join(d, "h"), "user.big") == big
print("ok")
`

// TestXattrPython runs xattrPy through bolt and memcached mounts (as root
// when the test is, so trusted.* is allowed).
func TestXattrPython(t *testing.T) {
	py := needBinary(t, "python3")
	forStores(t, func(t *testing.T, store string) {
		_, mp := testMount(t, store)
		out, err := exec.Command(py, "-c", xattrPy, mp).CombinedOutput()
		if err != nil {
			t.Fatalf("python3 os.*xattr: %v\n%s", err, out)
		}
	})
}

// forStores runs a mount test on a bolt store and on a memcached (started
// for it), each as a subtest: the stores that differ most (a local file
// with listing and native commits; a network cache with per-key CAS only).
func forStores(t *testing.T, test func(t *testing.T, store string)) {
	t.Run("bolt", func(t *testing.T) { test(t, "bolt:"+filepath.Join(t.TempDir(), "voldfs.db")) })
	t.Run("memcached", func(t *testing.T) { test(t, "memcache://"+testserver.Memcached(t)) })
}
