package voldbilly_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/test"
	"github.com/go-git/go-billy/v5/util"
	"github.com/voldfs/voldfs"
	voldbilly "github.com/voldfs/voldfs/adapters/billy"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/testserver"
	. "gopkg.in/check.v1"
)

// Test runs go-billy's own conformance suites (BasicSuite, DirSuite,
// SymlinkSuite, TempFileSuite, ChrootSuite and the FilesystemSuite tests
// that combine them) against the adapter, on a fresh filesystem in a fresh
// memory store per test.
func Test(t *testing.T) { TestingT(t) }

// TestSuiteStores runs the same suites on a bolt file and on a real
// memcached server (which has no multi-key commits: voldfs commits
// namespace changes there through backend/txn), a fresh filesystem per
// test.
func TestSuiteStores(t *testing.T) {
	if testing.Short() {
		t.Skip("the suites on bolt and memcached take seconds; Test runs them on memory")
	}
	var names atomic.Int64
	mc, err := memcache.New(testserver.Memcached(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func(c *C) (backend.Store, *voldfs.Options, func()){
		"bolt": func(c *C) (backend.Store, *voldfs.Options, func()) {
			s, err := bolt.Open(filepath.Join(c.MkDir(), "fs.db"), nil)
			c.Assert(err, IsNil)
			return s, nil, func() { s.Close() }
		},
		"memcached": func(c *C) (backend.Store, *voldfs.Options, func()) {
			return mc, &voldfs.Options{Name: fmt.Sprintf("t%d", names.Add(1))}, func() {}
		},
	} {
		t.Run(name, func(t *testing.T) {
			out := &strings.Builder{}
			res := Run(&VoldSuite{open: open}, &RunConf{Output: out, Verbose: testing.Verbose()})
			t.Log(out.String())
			if !res.Passed() {
				t.Fatal(res)
			}
			t.Log(res)
		})
	}
}

// VoldSuite is billy's FilesystemSuite on a voldfs filesystem that open
// makes (nil: a memory store).
type VoldSuite struct {
	test.FilesystemSuite
	open    func(c *C) (backend.Store, *voldfs.Options, func())
	cleanup []func()
}

var _ = Suite(&VoldSuite{})

func (s *VoldSuite) SetUpTest(c *C) {
	var store backend.Store = memory.New()
	var o *voldfs.Options
	if s.open != nil {
		var closeStore func()
		store, o, closeStore = s.open(c)
		s.cleanup = append(s.cleanup, closeStore)
	}
	f, err := voldfs.Format(context.Background(), store, o)
	c.Assert(err, IsNil)
	s.cleanup = append(s.cleanup, func() { f.Close() })
	s.FilesystemSuite = test.NewFilesystemSuite(voldbilly.New(f))
}

func (s *VoldSuite) TearDownTest(c *C) {
	for i := len(s.cleanup) - 1; i >= 0; i-- {
		s.cleanup[i]()
	}
	s.cleanup = nil
}

func (s *VoldSuite) TestCapabilities(c *C) {
	c.Assert(billy.Capabilities(s.FS), Equals, billy.DefaultCapabilities)
}

// long reports whether the full-size versions of the slow suite tests run.
var long = os.Getenv("VOLDFS_LONG") != ""

// TestTempFileMany is billy's (1024 rounds of 100 temporary files, about
// 12 s here and a minute under -race) with VOLDFS_LONG set, else the same
// loop with 16 rounds.
func (s *VoldSuite) TestTempFileMany(c *C) {
	if long {
		s.FilesystemSuite.TempFileSuite.TestTempFileMany(c)
		return
	}
	tempFileMany(c, s.FS, s.FS.TempFile)
}

// TestTempFileManyWithUtil is TestTempFileMany through util.TempFile.
func (s *VoldSuite) TestTempFileManyWithUtil(c *C) {
	if long {
		s.FilesystemSuite.TempFileSuite.TestTempFileManyWithUtil(c)
		return
	}
	tempFileMany(c, s.FS, func(dir, prefix string) (billy.File, error) {
		return util.TempFile(s.FS, dir, prefix)
	})
}

func tempFileMany(c *C, fs billy.Filesystem, tempFile func(dir, prefix string) (billy.File, error)) {
	for i := 0; i < 16; i++ {
		var files []billy.File
		for j := 0; j < 100; j++ {
			f, err := tempFile("test-dir", "test-prefix")
			c.Assert(err, IsNil)
			files = append(files, f)
		}
		names := map[string]bool{}
		for _, f := range files {
			c.Assert(names[f.Name()], Equals, false, Commentf("name %q twice", f.Name()))
			names[f.Name()] = true
			c.Assert(f.Close(), IsNil)
			c.Assert(fs.Remove(f.Name()), IsNil)
		}
	}
	left, err := fs.ReadDir("test-dir")
	c.Assert(err, IsNil)
	c.Assert(left, HasLen, 0)
}

// TestSymlinkWithChrootCrossBounders replaces billy's test of the same name,
// the one exception: billy's chroot helper answers a symlink whose relative
// target climbs above the chroot with billy.ErrCrossedBoundary; the adapter
// resolves it on a voldfs Sub view, where ".." stops at the root as under
// chroot(2), so the link names the file of that name inside the chroot.
func (s *VoldSuite) TestSymlinkWithChrootCrossBounders(c *C) {
	qux, err := s.FS.Chroot("/qux")
	c.Assert(err, IsNil)
	c.Assert(util.WriteFile(s.FS, "file", []byte("foo"), 0o755), IsNil)

	c.Assert(qux.Symlink("../../file", "qux/link"), IsNil)
	fi, err := qux.Lstat("qux/link")
	c.Assert(err, IsNil)
	c.Assert(fi.Mode()&os.ModeSymlink, Not(Equals), os.FileMode(0))

	// billy's helper: ErrCrossedBoundary. Here: the target stops at the
	// chroot's root, /qux/file, which does not exist...
	_, err = qux.Stat("qux/link")
	c.Assert(errors.Is(err, fs.ErrNotExist), Equals, true, Commentf("%v", err))
	// ...and once it does, the link names it, never the /file outside.
	c.Assert(util.WriteFile(qux, "file", []byte("inside"), 0o644), IsNil)
	b, err := util.ReadFile(qux, "qux/link")
	c.Assert(err, IsNil)
	c.Assert(string(b), Equals, "inside")
}

// newMemFS is the adapter on a fresh memory store, for the tests ported from
// go-billy's util package, which use memfs.New.
func newMemFS() billy.Filesystem {
	f, err := voldfs.Format(context.Background(), memory.New(), nil)
	if err != nil {
		panic(err)
	}
	return voldbilly.New(f)
}
