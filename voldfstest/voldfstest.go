// Package voldfstest is a conformance suite for voldfs filesystems, in the
// manner of testing/fstest and gocloud's drivertest: it formats filesystems
// on stores the caller provides and checks the whole voldfs API on them
// (paths, files, directories, attributes, the standard library's io/fs
// consumers, corrupt values and a store that stops answering). Every store of
// this repository runs it, and a user's own backend.Store runs it in a few
// lines, beside backendtest.RunConformanceTests:
//
//	func TestFilesystem(t *testing.T) {
//		voldfstest.Run(t, voldfstest.Config{
//			NewStore: func(t *testing.T) backend.Store {
//				s := mystore.New()
//				t.Cleanup(func() { s.Close() })
//				return s
//			},
//			BigDir: 5_000,
//		})
//	}
//
// The suite uses only the exported API of voldfs and backend. It relies on
// the documented key layout under a filesystem's name (DefaultName + "/":
// "super", "i/<ino hex>", "b/<ref hex>") to corrupt values by hand, and on
// backend.Lister, where the store has it, to count blocks.
package voldfstest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
)

// Config describes the stores the suite runs on.
type Config struct {
	// NewStore returns a new, empty store (or a fresh key prefix of a
	// shared one) and closes it in t.Cleanup. The suite calls it at least
	// once per subtest. Required.
	NewStore func(t *testing.T) backend.Store

	// NewBlocks, if set, returns a new, empty store for write-once blocks,
	// like NewStore: every filesystem of the suite is then split
	// (Options.Blocks), inodes in a NewStore store and blocks in a
	// NewBlocks one.
	NewBlocks func(t *testing.T) backend.Store

	// BigDir is the number of entries the big-directory subtest creates in
	// one directory: a tenth under -short, a fifth under the race detector.
	// Zero means 100,000. A store whose every write is a network round trip
	// or an fsync wants a few thousand or fewer. The listing-stability
	// subtest keeps min(BigDir, 2000) names in its directory.
	BigDir int
}

// Run runs the suite: every subtest on a freshly formatted filesystem in a
// fresh store from cfg.NewStore (and cfg.NewBlocks).
func Run(t *testing.T, cfg Config) {
	t.Helper()
	require.NotNil(t, cfg.NewStore, "voldfstest: Config.NewStore is required")
	if cfg.BigDir == 0 {
		cfg.BigDir = 100_000
	}
	for _, tc := range subtests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.splitOnly && cfg.NewBlocks == nil {
				t.Skip("checks the pairing of a split filesystem; Config.NewBlocks is not set")
			}
			e := &env{cfg: cfg, store: cfg.NewStore(t)}
			if cfg.NewBlocks != nil {
				e.blocks = cfg.NewBlocks(t)
			}
			o := e.options()
			o.BlockSize = tc.bs
			f, err := voldfs.Format(context.Background(), e.store, o)
			require.NoError(t, err, "Format")
			e.fs = f
			tc.fn(t, e)
		})
	}
}

// subtest is one entry of the suite.
type subtest struct {
	name      string
	bs        int // block size; 0 is the default
	fn        func(t *testing.T, e *env)
	splitOnly bool // runs only when Config.NewBlocks is set
}

// subtests are the suite, grouped as the files that hold them.
var subtests = []subtest{
	// files.go
	{name: "Create", bs: 4096, fn: testCreate},
	{name: "OpenFile", bs: 4096, fn: testOpenFile},
	{name: "Append", bs: 4096, fn: testAppend},
	{name: "FileOps", bs: 4096, fn: testFileOps},
	{name: "ClosedFile", bs: 4096, fn: testClosedFile},
	// data.go
	{name: "Truncate", bs: 4096, fn: testTruncate},
	{name: "TruncateDefaultBlock", fn: testTruncate},
	{name: "WriteReadFile", bs: 4096, fn: testWriteReadFile},
	{name: "WriteReadFileDefaultBlock", fn: testWriteReadFile},
	{name: "Sparse", bs: 4096, fn: testSparse},
	{name: "SparseHuge", bs: 4096, fn: testSparseHuge},
	{name: "SparseHugeDefaultBlock", fn: testSparseHuge},
	// namespace.go
	{name: "Mkdir", bs: 4096, fn: testMkdir},
	{name: "MkdirAll", bs: 4096, fn: testMkdirAll},
	{name: "Remove", bs: 4096, fn: testRemove},
	{name: "RemoveAll", bs: 4096, fn: testRemoveAll},
	{name: "Link", bs: 4096, fn: testLink},
	{name: "Symlink", bs: 4096, fn: testSymlink},
	{name: "Names", bs: 4096, fn: testNames},
	// rename.go
	{name: "Rename", bs: 4096, fn: testRename},
	{name: "RenameAttr", bs: 4096, fn: testRenameAttr},
	// attrs.go
	{name: "Chmod", bs: 4096, fn: testChmod},
	{name: "Chown", bs: 4096, fn: testChown},
	{name: "Chtimes", bs: 4096, fn: testChtimes},
	{name: "Times", bs: 4096, fn: testTimes},
	{name: "Attr", bs: 4096, fn: testAttr},
	// dirs.go
	{name: "ReadDir", bs: 4096, fn: testReadDir},
	{name: "DirReadDirN", bs: 4096, fn: testDirReadDirN},
	{name: "BigDir", bs: 4096, fn: testBigDir},
	{name: "ReaddirStability", bs: 4096, fn: testReaddirStability},
	// stdlib.go
	{name: "GlobSub", bs: 4096, fn: testGlobSub},
	{name: "StdlibFS", bs: 4096, fn: testStdlibFS},
	{name: "StdlibFSDefaultBlock", fn: testStdlibFS},
	{name: "Persistence", bs: 4096, fn: testPersistence},
	{name: "Workload", bs: 64 << 10, fn: testWorkload},
	{name: "WorkloadSmallBlock", bs: 4096, fn: testWorkload},
	// store.go
	{name: "Corrupt", bs: 4096, fn: testCorrupt},
	{name: "FormatOpen", bs: 4096, fn: testFormatOpen},
	{name: "BlocksPairing", bs: 4096, fn: testBlocksPairing, splitOnly: true},
	{name: "Cancel", bs: 4096, fn: testCancel},
	{name: "OpTimeout", bs: 4096, fn: testOpTimeout},
}

// env is one subtest's filesystem and the stores under it.
type env struct {
	cfg    Config
	fs     *voldfs.FS
	store  backend.Store // inodes (and blocks unless split)
	blocks backend.Store // nil unless split
}

// options returns Options naming the subtest's blocks store, if split.
func (e *env) options() *voldfs.Options {
	return &voldfs.Options{Blocks: e.blocks}
}

// blockStore returns the store that holds the blocks.
func (e *env) blockStore() backend.Store {
	if e.blocks != nil {
		return e.blocks
	}
	return e.store
}

// reopen opens a second FS on the same stores, with no caches shared.
func (e *env) reopen(t *testing.T) *voldfs.FS {
	t.Helper()
	return e.open(t, e.options())
}

// open opens a second FS on the same stores with o (its Blocks is set here).
func (e *env) open(t *testing.T, o *voldfs.Options) *voldfs.FS {
	t.Helper()
	o.Blocks = e.blocks
	f, err := voldfs.Open(context.Background(), e.store, o)
	require.NoError(t, err, "Open")
	return f
}

// newStores returns a new pair of empty stores like the subtest's (blocks is
// nil unless split) and Options naming the blocks store.
func (e *env) newStores(t *testing.T) (backend.Store, *voldfs.Options) {
	s := e.cfg.NewStore(t)
	o := &voldfs.Options{}
	if e.cfg.NewBlocks != nil {
		o.Blocks = e.cfg.NewBlocks(t)
	}
	return s, o
}
