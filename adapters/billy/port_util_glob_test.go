// Ported from go-billy v5.9.2 util/glob_test.go (Copyright the go-billy
// authors, Apache License 2.0); changes: package, and the adapter on a fresh
// memory store (newMemFS) in place of memfs.New, the
// gocheck entry point left to suite_test.go.

package voldbilly_test

import (
	"path/filepath"
	"sort"

	"github.com/go-git/go-billy/v5/util"
	. "gopkg.in/check.v1"
)

// (The gocheck entry point is Test, in suite_test.go.)

var _ = Suite(&UtilSuite{})

type UtilSuite struct{}

func (s *UtilSuite) TestCreate(c *C) {
	fs := newMemFS()
	util.WriteFile(fs, "foo/qux", nil, 0644)
	util.WriteFile(fs, "foo/bar", nil, 0644)
	util.WriteFile(fs, "foo/baz/foo", nil, 0644)

	names, err := util.Glob(fs, "*/b*")
	c.Assert(err, IsNil)
	c.Assert(names, HasLen, 2)
	sort.Strings(names)
	c.Assert(names, DeepEquals, []string{
		filepath.Join("foo", "bar"),
		filepath.Join("foo", "baz"),
	})

}
