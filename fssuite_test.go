package voldfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// suiteConfig scales the suite to a store: a store whose every write is a
// network round trip or an fsync gets a smaller big directory.
type suiteConfig struct {
	bigDir int // entries in the big-directory test (testing.Short: a tenth)
	// blocks, if set, gives each filesystem a separate blocks store
	// (Options.Blocks). Subtests about a single store's format and
	// failures (FormatOpen, Corrupt, Cancel, OpTimeout) are skipped then.
	blocks func(t *testing.T) backend.Store
}

// runFSSuite runs the filesystem suite, every subtest on a freshly
// formatted filesystem in a fresh store from newStore.
func runFSSuite(t *testing.T, newStore func(t *testing.T) backend.Store) {
	runFSSuiteWith(t, newStore, suiteConfig{bigDir: 100_000})
}

// env is one subtest's filesystem and the store under it.
type env struct {
	fs     *FS
	store  backend.Store
	blocks backend.Store // nil unless split
	new    func(t *testing.T) backend.Store
	cfg    suiteConfig
}

// reopen opens a second FS on the same store, with no caches shared.
func (e *env) reopen(t *testing.T) *FS {
	t.Helper()
	var o *Options
	if e.blocks != nil {
		o = &Options{Blocks: e.blocks}
	}
	f, err := Open(context.Background(), e.store, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return f
}

type suiteTest struct {
	name string
	bs   int // block size; 0 is the default
	fn   func(t *testing.T, e *env)
}

func runFSSuiteWith(t *testing.T, newStore func(t *testing.T) backend.Store, cfg suiteConfig) {
	tests := []suiteTest{
		{"Create", 4096, testCreate},
		{"OpenFile", 4096, testOpenFile},
		{"Append", 4096, testAppend},
		{"Mkdir", 4096, testMkdir},
		{"MkdirAll", 4096, testMkdirAll},
		{"Remove", 4096, testRemove},
		{"RemoveAll", 4096, testRemoveAll},
		{"Rename", 4096, testRename},
		{"RenameAttr", 4096, testRenameAttr},
		{"Link", 4096, testLink},
		{"Symlink", 4096, testSymlink},
		{"Chmod", 4096, testChmod},
		{"Chown", 4096, testChown},
		{"Chtimes", 4096, testChtimes},
		{"Truncate", 4096, testTruncate},
		{"TruncateDefaultBlock", 0, testTruncate},
		{"WriteReadFile", 4096, testWriteReadFile},
		{"WriteReadFileDefaultBlock", 0, testWriteReadFile},
		{"ReadDir", 4096, testReadDir},
		{"GlobSub", 4096, testGlobSub},
		{"Names", 4096, testNames},
		{"FileOps", 4096, testFileOps},
		{"ClosedFile", 4096, testClosedFile},
		{"DirReadDirN", 4096, testDirReadDirN},
		{"Sparse", 4096, testSparse},
		{"SparseHuge", 4096, testSparseHuge},
		{"SparseHugeDefaultBlock", 0, testSparseHuge},
		{"Times", 4096, testTimes},
		{"Attr", 4096, testAttr},
		{"StdlibFS", 4096, testStdlibFS},
		{"StdlibFSDefaultBlock", 0, testStdlibFS},
		{"BigDir", 4096, testBigDir},
		{"ReaddirStability", 4096, testReaddirStability},
		{"Corrupt", 4096, testCorrupt},
		{"FormatOpen", 4096, testFormatOpen},
		{"Cancel", 4096, testCancel},
		{"OpTimeout", 4096, testOpTimeout},
		{"Persistence", 4096, testPersistence},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &Options{BlockSize: tc.bs}
			if cfg.blocks != nil {
				switch tc.name {
				case "FormatOpen", "Corrupt", "Cancel", "OpTimeout":
					t.Skip("single-store subtest; run by the single-store suites")
				}
				o.Blocks = cfg.blocks(t)
			}
			s := newStore(t)
			f, err := Format(context.Background(), s, o)
			if err != nil {
				t.Fatalf("Format: %v", err)
			}
			tc.fn(t, &env{fs: f, store: s, blocks: o.Blocks, new: newStore, cfg: cfg})
		})
	}
}

// Helpers.

// wantErr checks that err matches target with errors.Is and, unless typ is
// "", that it is an *fs.PathError ("path") or an *os.LinkError ("link").
func wantErr(t *testing.T, what string, err, target error, typ string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got nil error, want %v", what, target)
	}
	if !errors.Is(err, target) {
		t.Fatalf("%s: got %v, want errors.Is %v", what, err, target)
	}
	switch typ {
	case "path":
		var pe *fs.PathError
		if !errors.As(err, &pe) {
			t.Fatalf("%s: got %T (%v), want *fs.PathError", what, err, err)
		}
	case "link":
		var le *os.LinkError
		if !errors.As(err, &le) {
			t.Fatalf("%s: got %T (%v), want *os.LinkError", what, err, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, f *FS, name string, data []byte) {
	t.Helper()
	if err := f.WriteFile(name, data, 0o644); err != nil {
		t.Fatalf("WriteFile %s: %v", name, err)
	}
}

func readFile(t *testing.T, f *FS, name string) []byte {
	t.Helper()
	b, err := f.ReadFile(name)
	if err != nil {
		t.Fatalf("ReadFile %s: %v", name, err)
	}
	return b
}

func wantContent(t *testing.T, f *FS, name string, want []byte) {
	t.Helper()
	got := readFile(t, f, name)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes %q..., want %d bytes %q...", name, len(got), trunc(got), len(want), trunc(want))
	}
}

func trunc(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

func attr(t *testing.T, f *FS, name string) *Attr {
	t.Helper()
	fi, err := f.Lstat(name)
	if err != nil {
		t.Fatalf("Lstat %s: %v", name, err)
	}
	a, ok := fi.Sys().(*Attr)
	if !ok {
		t.Fatalf("Lstat %s: Sys is %T, want *Attr", name, fi.Sys())
	}
	return a
}

func notExist(t *testing.T, f *FS, name string) {
	t.Helper()
	_, err := f.Lstat(name)
	wantErr(t, "Lstat "+name, err, fs.ErrNotExist, "path")
}

// pattern returns n bytes that differ at every offset modulo a large prime,
// so misplaced blocks show.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7+i/4093) ^ seed
	}
	return b
}

func names(ents []fs.DirEntry) []string {
	out := make([]string, len(ents))
	for i, e := range ents {
		out[i] = e.Name()
	}
	return out
}

// Subtests.

func testCreate(t *testing.T, e *env) {
	f := e.fs
	file, err := f.Create("a")
	must(t, err)
	_, err = file.Write([]byte("hello"))
	must(t, err)
	must(t, file.Close())
	wantContent(t, f, "a", []byte("hello"))

	// Create truncates an existing file.
	file, err = f.Create("a")
	must(t, err)
	must(t, file.Close())
	wantContent(t, f, "a", nil)

	must(t, f.Mkdir("d", 0o755))
	tests := []struct {
		name   string
		target error
	}{
		{"missing/x", syscall.ENOENT},
		{"missing/deeper/x", syscall.ENOENT},
		{"a/x", syscall.ENOTDIR},
		{"d", syscall.EISDIR},
	}
	for _, tc := range tests {
		_, err := f.Create(tc.name)
		wantErr(t, "Create "+tc.name, err, tc.target, "path")
	}
	notExist(t, f, "missing")
	if fi, err := f.Stat("d"); err != nil || !fi.IsDir() {
		t.Fatalf("d after failed Create: %v %v", fi, err)
	}
}

func testOpenFile(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "f", []byte("0123456789"))
	must(t, f.Mkdir("d", 0o755))

	// Opening errors.
	errTests := []struct {
		name   string
		flag   int
		target error
	}{
		{"missing", os.O_RDONLY, fs.ErrNotExist},
		{"missing", os.O_RDWR, fs.ErrNotExist},
		{"missing/x", os.O_RDWR | os.O_CREATE, fs.ErrNotExist},
		{"f", os.O_RDWR | os.O_CREATE | os.O_EXCL, fs.ErrExist},
		{"d", os.O_RDWR | os.O_CREATE | os.O_EXCL, fs.ErrExist},
		{"d", os.O_WRONLY, syscall.EISDIR},
		{"d", os.O_RDWR, syscall.EISDIR},
		{"d", os.O_RDWR | os.O_CREATE, syscall.EISDIR},
		{"f/x", os.O_RDONLY, syscall.ENOTDIR},
	}
	for _, tc := range errTests {
		_, err := f.OpenFile(tc.name, tc.flag, 0o644)
		wantErr(t, fmt.Sprintf("OpenFile(%s, %#x)", tc.name, tc.flag), err, tc.target, "path")
	}
	notExist(t, f, "missing")

	// Access modes.
	modeTests := []struct {
		flag             int
		canRead, canWrit bool
	}{
		{os.O_RDONLY, true, false},
		{os.O_WRONLY, false, true},
		{os.O_RDWR, true, true},
	}
	for _, tc := range modeTests {
		file, err := f.OpenFile("f", tc.flag, 0)
		must(t, err)
		buf := make([]byte, 3)
		_, rerr := file.Read(buf)
		_, werr := file.WriteAt([]byte("x"), 100)
		if tc.canRead {
			must(t, rerr)
			if string(buf) != "012" {
				t.Fatalf("flag %#x: read %q", tc.flag, buf)
			}
		} else {
			wantErr(t, fmt.Sprintf("read with flag %#x", tc.flag), rerr, syscall.EBADF, "path")
		}
		if tc.canWrit {
			must(t, werr)
			must(t, file.Truncate(10))
		} else {
			wantErr(t, fmt.Sprintf("write with flag %#x", tc.flag), werr, syscall.EBADF, "path")
			wantErr(t, "truncate read-only", file.Truncate(0), syscall.EBADF, "path")
		}
		must(t, file.Close())
	}
	wantContent(t, f, "f", []byte("0123456789"))

	// O_CREATE makes a file with perm; an existing file is opened as is.
	file, err := f.OpenFile("new", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	must(t, err)
	must(t, file.Close())
	if m := attr(t, f, "new").FileMode(); m != 0o640 {
		t.Fatalf("new: mode %v, want 0640", m)
	}
	file, err = f.OpenFile("f", os.O_RDWR|os.O_CREATE, 0o600)
	must(t, err)
	must(t, file.Close())
	wantContent(t, f, "f", []byte("0123456789"))
	if m := attr(t, f, "f").FileMode(); m != 0o644 {
		t.Fatalf("f: mode %v changed by O_CREATE of an existing file", m)
	}

	// O_TRUNC.
	file, err = f.OpenFile("f", os.O_WRONLY|os.O_TRUNC, 0)
	must(t, err)
	if fi, err := file.Stat(); err != nil || fi.Size() != 0 {
		t.Fatalf("after O_TRUNC: %v %v", fi, err)
	}
	_, err = file.Write([]byte("ab"))
	must(t, err)
	must(t, file.Close())
	wantContent(t, f, "f", []byte("ab"))

	// O_TRUNC of a multi-block file frees it and reads as empty.
	writeFile(t, f, "big", pattern(5*4096+7, 1))
	file, err = f.OpenFile("big", os.O_RDWR|os.O_TRUNC, 0)
	must(t, err)
	must(t, file.Close())
	wantContent(t, f, "big", nil)

	// O_CREATE through a symlink creates the target.
	must(t, f.Symlink("target", "ln"))
	file, err = f.OpenFile("ln", os.O_WRONLY|os.O_CREATE, 0o644)
	if err == nil {
		_, err = file.Write([]byte("via link"))
		must(t, err)
		must(t, file.Close())
		wantContent(t, f, "target", []byte("via link"))
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("O_CREATE through a dangling symlink: %v", err)
	}
}

func testAppend(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "log", []byte("start:"))
	a, err := f.OpenFile("log", os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = a.Write([]byte("1"))
	must(t, err)
	// O_APPEND ignores the offset.
	_, err = a.Seek(0, io.SeekStart)
	must(t, err)
	_, err = a.Write([]byte("2"))
	must(t, err)
	must(t, a.Sync())
	wantContent(t, f, "log", []byte("start:12"))

	// Another handle extends the file; the next append goes after that.
	w, err := f.OpenFile("log", os.O_WRONLY, 0)
	must(t, err)
	_, err = w.WriteAt([]byte("<other>"), 8)
	must(t, err)
	must(t, w.Close())
	_, err = a.Write([]byte("3"))
	must(t, err)
	must(t, a.Close())
	wantContent(t, f, "log", []byte("start:12<other>3"))

	// WriteAt on an O_APPEND file is an error.
	a, err = f.OpenFile("log", os.O_RDWR|os.O_APPEND, 0)
	must(t, err)
	if _, err := a.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("WriteAt on O_APPEND file succeeded")
	}
	// An O_RDWR|O_APPEND reader sees its own appends.
	_, err = a.Write(bytes.Repeat([]byte("z"), 3*4096))
	must(t, err)
	buf := make([]byte, 4)
	_, err = a.ReadAt(buf, 16)
	must(t, err)
	if string(buf) != "zzzz" {
		t.Fatalf("read own append: %q", buf)
	}
	must(t, a.Close())
	if fi, err := f.Stat("log"); err != nil || fi.Size() != 16+3*4096 {
		t.Fatalf("log size: %v %v", fi, err)
	}

	// O_CREATE|O_APPEND on a new file.
	a, err = f.OpenFile("new", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	must(t, err)
	for i := range 100 {
		_, err = fmt.Fprintf(a, "%03d\n", i)
		must(t, err)
	}
	must(t, a.Close())
	got := readFile(t, f, "new")
	if len(got) != 400 || !bytes.HasPrefix(got, []byte("000\n001\n")) || !bytes.HasSuffix(got, []byte("099\n")) {
		t.Fatalf("appended: %q", got)
	}
}

func testMkdir(t *testing.T, e *env) {
	f := e.fs
	must(t, f.Mkdir("d", 0o750))
	fi, err := f.Stat("d")
	must(t, err)
	if !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Fatalf("d: mode %v", fi.Mode())
	}
	writeFile(t, f, "file", nil)
	tests := []struct {
		name   string
		target error
	}{
		{"d", fs.ErrExist},
		{"file", fs.ErrExist},
		{".", fs.ErrExist},
		{"missing/x", fs.ErrNotExist},
		{"file/x", syscall.ENOTDIR},
	}
	for _, tc := range tests {
		wantErr(t, "Mkdir "+tc.name, f.Mkdir(tc.name, 0o755), tc.target, "path")
	}
	notExist(t, f, "missing")
	must(t, f.Mkdir("d/e", 0o755))
	if fi, err := f.Stat("d/e"); err != nil || !fi.IsDir() {
		t.Fatalf("d/e: %v %v", fi, err)
	}
}

func testMkdirAll(t *testing.T, e *env) {
	f := e.fs
	must(t, f.MkdirAll("a/b/c/d", 0o755))
	must(t, f.MkdirAll("a/b/c/d", 0o755))
	must(t, f.MkdirAll("a/b/x", 0o755))
	must(t, f.MkdirAll(".", 0o755))
	for _, p := range []string{"a", "a/b", "a/b/c", "a/b/c/d", "a/b/x"} {
		if fi, err := f.Stat(p); err != nil || !fi.IsDir() {
			t.Fatalf("%s: %v %v", p, fi, err)
		}
	}
	writeFile(t, f, "a/file", nil)
	wantErr(t, "MkdirAll through a file", f.MkdirAll("a/file/x", 0o755), syscall.ENOTDIR, "path")
	wantErr(t, "MkdirAll of a file", f.MkdirAll("a/file", 0o755), syscall.ENOTDIR, "path")
	// Through a symlink to a directory.
	must(t, f.Symlink("a/b", "lb"))
	must(t, f.MkdirAll("lb/y/z", 0o755))
	if fi, err := f.Stat("a/b/y/z"); err != nil || !fi.IsDir() {
		t.Fatalf("a/b/y/z: %v %v", fi, err)
	}
}

func testRemove(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "file", []byte("x"))
	must(t, f.MkdirAll("full/sub", 0o755))
	must(t, f.Mkdir("empty", 0o755))
	must(t, f.Symlink("full", "link"))

	tests := []struct {
		name   string
		target error
	}{
		{"missing", fs.ErrNotExist},
		{"missing/x", fs.ErrNotExist},
		{"full", syscall.ENOTEMPTY},
		{"file/x", syscall.ENOTDIR},
		{".", nil},
	}
	for _, tc := range tests {
		err := f.Remove(tc.name)
		if tc.target == nil {
			if err == nil {
				t.Fatalf("Remove %s succeeded", tc.name)
			}
			continue
		}
		wantErr(t, "Remove "+tc.name, err, tc.target, "path")
	}
	must(t, f.Remove("file"))
	notExist(t, f, "file")
	must(t, f.Remove("empty"))
	notExist(t, f, "empty")
	// Removing a symlink removes the link, not its target.
	must(t, f.Remove("link"))
	notExist(t, f, "link")
	if _, err := f.Stat("full/sub"); err != nil {
		t.Fatal(err)
	}
	must(t, f.Remove("full/sub"))
	must(t, f.Remove("full"))
	ents, err := f.ReadDir(".")
	must(t, err)
	if len(ents) != 0 {
		t.Fatalf("root not empty: %v", names(ents))
	}
	// A removed name can be reused, as the other type.
	must(t, f.Mkdir("file", 0o755))
	writeFile(t, f, "full", []byte("now a file"))
	wantContent(t, f, "full", []byte("now a file"))
	if a := attr(t, f, "."); a.Nlink != 3 {
		t.Fatalf("root nlink %d, want 3", a.Nlink)
	}
}

func testRemoveAll(t *testing.T, e *env) {
	f := e.fs
	must(t, f.MkdirAll("t/a/b/c", 0o755))
	for i := range 20 {
		writeFile(t, f, fmt.Sprintf("t/a/f%d", i), pattern(i*1000, byte(i)))
	}
	writeFile(t, f, "t/a/b/c/big", pattern(10*4096, 3))
	must(t, f.Symlink("../..", "t/a/b/up"))
	writeFile(t, f, "keep", []byte("keep"))
	must(t, f.RemoveAll("t"))
	notExist(t, f, "t")
	must(t, f.RemoveAll("t"))
	must(t, f.RemoveAll("missing/x"))
	wantContent(t, f, "keep", []byte("keep"))
	must(t, f.RemoveAll("keep"))
	notExist(t, f, "keep")
	if err := f.RemoveAll("."); err == nil {
		t.Fatal("RemoveAll(.) succeeded")
	}
	if a := attr(t, f, "."); a.Nlink != 2 {
		t.Fatalf("root nlink %d, want 2", a.Nlink)
	}
}

func testRename(t *testing.T, e *env) {
	f := e.fs
	setup := func(t *testing.T) {
		must(t, f.RemoveAll("r"))
		must(t, f.MkdirAll("r/d1/sub/deep", 0o755))
		must(t, f.MkdirAll("r/d2", 0o755))
		must(t, f.MkdirAll("r/full/x", 0o755))
		must(t, f.Mkdir("r/empty", 0o755))
		writeFile(t, f, "r/f1", []byte("one"))
		writeFile(t, f, "r/f2", []byte("two"))
		writeFile(t, f, "r/d1/inner", []byte("inner"))
	}
	tests := []struct {
		old, new string
		flags    uint32
		target   error // nil: success
		check    func(t *testing.T)
	}{
		{"r/f1", "r/g", 0, nil, func(t *testing.T) {
			wantContent(t, f, "r/g", []byte("one"))
			notExist(t, f, "r/f1")
		}},
		{"r/f1", "r/f2", 0, nil, func(t *testing.T) { // file over file
			wantContent(t, f, "r/f2", []byte("one"))
			notExist(t, f, "r/f1")
		}},
		{"r/f1", "r/d2/f1", 0, nil, func(t *testing.T) { // across directories
			wantContent(t, f, "r/d2/f1", []byte("one"))
			notExist(t, f, "r/f1")
		}},
		{"r/f1", "r/d1/inner", 0, nil, func(t *testing.T) { // across, replacing
			wantContent(t, f, "r/d1/inner", []byte("one"))
			notExist(t, f, "r/f1")
		}},
		{"r/d1", "r/empty", 0, nil, func(t *testing.T) { // dir over empty dir
			wantContent(t, f, "r/empty/inner", []byte("inner"))
			notExist(t, f, "r/d1")
		}},
		{"r/d1", "r/d2/moved", 0, nil, func(t *testing.T) { // dir across
			wantContent(t, f, "r/d2/moved/inner", []byte("inner"))
			if fi, err := f.Stat("r/d2/moved/sub/deep"); err != nil || !fi.IsDir() {
				t.Fatalf("deep: %v", err)
			}
			notExist(t, f, "r/d1")
			// ".." follows the move.
			if p := parentIno(t, f, "r/d2/moved"); p != attr(t, f, "r/d2").Ino {
				t.Fatalf("moved/..: %d", p)
			}
			must(t, f.Symlink("../inner", "r/d2/moved/sub/up"))
			wantContent(t, f, "r/d2/moved/sub/up", []byte("inner"))
		}},
		{"r/d1", "r/d2/empty2", 0, nil, nil},
		{"r/f1", "r/f1", 0, nil, func(t *testing.T) { wantContent(t, f, "r/f1", []byte("one")) }},
		{"r/d1", "r/d1", 0, nil, nil},
		{"r/f1", "r/d2", 0, syscall.EISDIR, nil},
		{"r/d1", "r/f2", 0, syscall.ENOTDIR, nil},
		{"r/d1", "r/full", 0, syscall.ENOTEMPTY, nil},
		{"r/empty", "r/full", 0, syscall.ENOTEMPTY, nil},
		{"r/d1", "r/d1/sub", 0, syscall.EINVAL, nil},
		{"r/d1", "r/d1/x", 0, syscall.EINVAL, nil},
		{"r/d1", "r/d1/sub/deep/x", 0, syscall.EINVAL, nil},
		{"r/d1", "r/d1/sub/deep", 0, nil, nil}, // EINVAL or ENOTEMPTY: checked below
		{"r/f1", "r/f2", RenameNoReplace, syscall.EEXIST, nil},
		{"r/d1", "r/empty", RenameNoReplace, fs.ErrExist, nil},
		{"r/f1", "r/new", RenameNoReplace, nil, func(t *testing.T) { wantContent(t, f, "r/new", []byte("one")) }},
		{"r/missing", "r/x", 0, fs.ErrNotExist, nil},
		{"r/f1", "r/missing/x", 0, fs.ErrNotExist, nil},
		{"r/f1", "r/f2/x", 0, syscall.ENOTDIR, nil},
		{"r/f1", "r/f1/x", 0, syscall.ENOTDIR, nil},
		{".", "r/x", 0, nil, nil},                            // some error: checked below
		{"r/f1", "r/x", RenameExchange, syscall.ENOENT, nil}, // exchange needs both names
		{"r/f1", "r/f2", RenameExchange | RenameNoReplace, syscall.EINVAL, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s->%s/%d", tc.old, tc.new, tc.flags), func(t *testing.T) {
			setup(t)
			var before *Attr
			if tc.old != "r/missing" {
				before = attr(t, f, tc.old)
			}
			err := f.RenameFlags(tc.old, tc.new, tc.flags)
			switch {
			case tc.old == "." || tc.new == "r/d1/sub/deep":
				if err == nil {
					t.Fatalf("rename succeeded")
				}
				var le *os.LinkError
				if !errors.As(err, &le) {
					t.Fatalf("got %T, want *os.LinkError", err)
				}
				if tc.new == "r/d1/sub/deep" && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTEMPTY) {
					t.Fatalf("got %v, want EINVAL or ENOTEMPTY", err)
				}
			case tc.target != nil:
				wantErr(t, "Rename", err, tc.target, "link")
				// Nothing changed.
				if before == nil {
					break
				}
				if a := attr(t, f, tc.old); a.Ino != before.Ino {
					t.Fatalf("source changed")
				}
			default:
				must(t, err)
				if tc.old != tc.new {
					if a := attr(t, f, tc.new); a.Ino != before.Ino {
						t.Fatalf("target ino %d, want %d", a.Ino, before.Ino)
					}
				}
			}
			if tc.check != nil {
				tc.check(t)
			}
			checkTree(t, f, ".")
		})
	}
}

// checkTree walks the tree from dir and checks, for every directory, that
// nlink is 2 + subdirectories, that ".." leads back to it, and that no
// directory is reached twice (no cycle, no double link).
func checkTree(t *testing.T, f *FS, dir string) {
	t.Helper()
	seen := map[uint64]string{}
	var walk func(p string, depth int)
	walk = func(p string, depth int) {
		if depth > 64 {
			t.Fatalf("%s: tree deeper than 64: a cycle?", p)
		}
		a := attr(t, f, p)
		if prev, ok := seen[a.Ino]; ok {
			t.Fatalf("directory ino %d reached as %s and %s", a.Ino, prev, p)
		}
		seen[a.Ino] = p
		ents, err := f.ReadDir(p)
		if err != nil {
			t.Fatalf("ReadDir %s: %v", p, err)
		}
		subdirs := 0
		for _, e := range ents {
			cp := joinPath(p, e.Name())
			if e.IsDir() {
				subdirs++
				walk(cp, depth+1)
				if pa := parentIno(t, f, cp); pa != a.Ino {
					t.Fatalf("%s/..: ino %d, want %d (%s)", cp, pa, a.Ino, p)
				}
			}
		}
		if a.Nlink != uint32(2+subdirs) {
			t.Fatalf("%s: nlink %d, want %d", p, a.Nlink, 2+subdirs)
		}
	}
	walk(dir, 0)
}

// parentIno returns the ".." of directory p as the inode records it (io/fs
// paths have no "..").
func parentIno(t *testing.T, f *FS, p string) uint64 {
	t.Helper()
	ci, err := f.c.getInode(context.Background(), attr(t, f, p).Ino, 0)
	must(t, err)
	return ci.n.parent
}

func testRenameAttr(t *testing.T, e *env) {
	f := e.fs
	must(t, f.MkdirAll("a/b", 0o755))
	must(t, f.Mkdir("c", 0o755))
	writeFile(t, f, "a/b/f", pattern(3*4096, 9))
	ino := attr(t, f, "a/b/f").Ino
	dino := attr(t, f, "a/b").Ino
	must(t, f.Rename("a/b/f", "c/g"))
	must(t, f.Rename("a/b", "c/b"))
	must(t, f.Rename("c/g", "c/b/h"))
	if a := attr(t, f, "c/b/h"); a.Ino != ino || a.Nlink != 1 {
		t.Fatalf("moved file: ino %d nlink %d, want %d 1", a.Ino, a.Nlink, ino)
	}
	if a := attr(t, f, "c/b"); a.Ino != dino {
		t.Fatalf("moved dir: ino %d, want %d", a.Ino, dino)
	}
	if a, c := attr(t, f, "a"), attr(t, f, "c"); a.Nlink != 2 || c.Nlink != 3 {
		t.Fatalf("nlink a %d c %d, want 2 3", a.Nlink, c.Nlink)
	}
	wantContent(t, f, "c/b/h", pattern(3*4096, 9))
	// A replaced file is gone for good (its inode freed).
	writeFile(t, f, "victim", []byte("v"))
	vino := attr(t, f, "victim").Ino
	must(t, f.Rename("c/b/h", "victim"))
	if a := attr(t, f, "victim"); a.Ino != ino {
		t.Fatalf("victim ino %d, want %d", a.Ino, ino)
	}
	if _, err := f.Inodes().GetAttr(context.Background(), vino); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("replaced inode still there: %v", err)
	}
	checkTree(t, f, ".")
}

func testLink(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "f", []byte("data"))
	must(t, f.Mkdir("d", 0o755))
	must(t, f.Link("f", "d/g"))
	must(t, f.Link("f", "h"))
	a := attr(t, f, "f")
	if a.Nlink != 3 {
		t.Fatalf("nlink %d, want 3", a.Nlink)
	}
	if b := attr(t, f, "d/g"); b.Ino != a.Ino || b.Nlink != 3 {
		t.Fatalf("d/g: ino %d nlink %d", b.Ino, b.Nlink)
	}
	// Writing through one name shows through the others.
	writeFile(t, f, "d/g", []byte("changed"))
	wantContent(t, f, "h", []byte("changed"))

	tests := []struct {
		old, new string
		target   error
	}{
		{"d", "d2", syscall.EPERM},
		{".", "d3", syscall.EPERM},
		{"f", "h", fs.ErrExist},
		{"f", "d", fs.ErrExist},
		{"missing", "x", fs.ErrNotExist},
		{"f", "missing/x", fs.ErrNotExist},
		{"f", "f/x", syscall.ENOTDIR},
	}
	for _, tc := range tests {
		wantErr(t, "Link "+tc.old+" "+tc.new, f.Link(tc.old, tc.new), tc.target, "link")
	}
	if a := attr(t, f, "f"); a.Nlink != 3 {
		t.Fatalf("nlink after failed links %d, want 3", a.Nlink)
	}
	if a := attr(t, f, "d"); a.Nlink != 2 {
		t.Fatalf("d nlink %d", a.Nlink)
	}
	must(t, f.Remove("f"))
	must(t, f.Remove("h"))
	if a := attr(t, f, "d/g"); a.Nlink != 1 {
		t.Fatalf("nlink after removes %d, want 1", a.Nlink)
	}
	wantContent(t, f, "d/g", []byte("changed"))
	// A symlink is linked as itself.
	must(t, f.Symlink("d/g", "sl"))
	must(t, f.Link("sl", "sl2"))
	if a := attr(t, f, "sl2"); a.FileMode()&fs.ModeSymlink == 0 || a.Nlink != 2 {
		t.Fatalf("sl2: %v nlink %d", a.FileMode(), a.Nlink)
	}
	// An open unlinked file stays readable until closed.
	file, err := f.Open("d/g")
	must(t, err)
	must(t, f.Remove("d/g"))
	buf := make([]byte, 7)
	if _, err := io.ReadFull(file, buf); err != nil || string(buf) != "changed" {
		t.Fatalf("read of open unlinked file: %q %v", buf, err)
	}
	must(t, file.Close())
}

func testSymlink(t *testing.T, e *env) {
	f := e.fs
	must(t, f.MkdirAll("a/b", 0o755))
	writeFile(t, f, "a/b/f", []byte("target"))
	links := []struct{ target, name string }{
		{"b/f", "a/rel"},
		{"/a/b/f", "abs"},
		{"a/b", "dirlink"},
		{"../../a/b/f", "a/b/up"},
		{"nowhere", "dangling"},
		{"loop2", "loop1"},
		{"loop1", "loop2"},
	}
	for _, l := range links {
		must(t, f.Symlink(l.target, l.name))
		got, err := f.Readlink(l.name)
		if err != nil || got != l.target {
			t.Fatalf("Readlink %s: %q %v", l.name, got, err)
		}
		if a := attr(t, f, l.name); a.FileMode().Type() != fs.ModeSymlink || a.Size != uint64(len(l.target)) {
			t.Fatalf("Lstat %s: %v size %d", l.name, a.FileMode(), a.Size)
		}
	}
	wantContent(t, f, "a/rel", []byte("target"))
	wantContent(t, f, "abs", []byte("target"))
	wantContent(t, f, "dirlink/f", []byte("target"))
	wantContent(t, f, "a/b/up", []byte("target"))
	if fi, err := f.Stat("dirlink"); err != nil || !fi.IsDir() {
		t.Fatalf("Stat dirlink: %v %v", fi, err)
	}
	_, err := f.Stat("dangling")
	wantErr(t, "Stat dangling", err, fs.ErrNotExist, "path")
	_, err = f.Stat("loop1")
	wantErr(t, "Stat loop", err, syscall.ELOOP, "path")
	_, err = f.Open("loop1")
	wantErr(t, "Open loop", err, syscall.ELOOP, "path")
	_, err = f.ReadLink("a/b/f")
	wantErr(t, "ReadLink of a file", err, syscall.EINVAL, "path")
	_, err = f.ReadLink("missing")
	wantErr(t, "ReadLink missing", err, fs.ErrNotExist, "path")
	wantErr(t, "Symlink over existing", f.Symlink("x", "a/rel"), fs.ErrExist, "path")
	wantErr(t, "Symlink empty target", f.Symlink("", "e"), syscall.EINVAL, "path")
	wantErr(t, "Symlink in missing dir", f.Symlink("x", "missing/e"), fs.ErrNotExist, "path")
	wantErr(t, "Symlink long target", f.Symlink(strings.Repeat("x", 5000), "e"), syscall.ENAMETOOLONG, "path")
	notExist(t, f, "e")
	// Lstat does not follow; Stat does; a symlink in the middle is followed.
	if a := attr(t, f, "dirlink/f"); a.FileMode().Type() != 0 {
		t.Fatalf("dirlink/f: %v", a.FileMode())
	}
}

func testChmod(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "f", []byte("x"))
	must(t, f.Mkdir("d", 0o755))
	must(t, f.Symlink("f", "l"))
	for _, tc := range []struct {
		name string
		mode fs.FileMode
	}{
		{"f", 0o600},
		{"f", 0o7777 & fs.ModePerm},
		{"f", 0o644 | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky},
		{"d", 0o700},
		{"d", 0o755 | fs.ModeSticky},
	} {
		must(t, f.Chmod(tc.name, tc.mode))
		want := tc.mode
		if tc.name == "d" {
			want |= fs.ModeDir
		}
		if m := attr(t, f, tc.name).FileMode(); m != want {
			t.Fatalf("Chmod %s %v: got %v", tc.name, tc.mode, m)
		}
	}
	// Chmod follows a symlink.
	must(t, f.Chmod("l", 0o640))
	if m := attr(t, f, "f").FileMode(); m != 0o640 {
		t.Fatalf("Chmod via link: %v", m)
	}
	if m := attr(t, f, "l").FileMode(); m != fs.ModeSymlink|0o777 {
		t.Fatalf("link mode changed: %v", m)
	}
	wantErr(t, "Chmod missing", f.Chmod("missing", 0o644), fs.ErrNotExist, "path")
	// Chmod changes ctime only.
	before := attr(t, f, "f")
	time.Sleep(2 * time.Millisecond)
	must(t, f.Chmod("f", 0o600))
	after := attr(t, f, "f")
	if !after.Ctime.After(before.Ctime) || !after.Mtime.Equal(before.Mtime) {
		t.Fatalf("chmod: ctime %v -> %v, mtime %v -> %v", before.Ctime, after.Ctime, before.Mtime, after.Mtime)
	}
	// File.Chmod.
	file, err := f.Open("f")
	must(t, err)
	must(t, file.(*File).Chmod(0o444))
	must(t, file.Close())
	if m := attr(t, f, "f").FileMode(); m != 0o444 {
		t.Fatalf("File.Chmod: %v", m)
	}
}

func testChown(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "f", []byte("x"))
	must(t, f.Symlink("f", "l"))
	a0 := attr(t, f, "f")
	must(t, f.Chown("f", 1234, 5678))
	if a := attr(t, f, "f"); a.Uid != 1234 || a.Gid != 5678 {
		t.Fatalf("uid %d gid %d", a.Uid, a.Gid)
	}
	must(t, f.Chown("f", -1, 42))
	if a := attr(t, f, "f"); a.Uid != 1234 || a.Gid != 42 {
		t.Fatalf("after -1: uid %d gid %d", a.Uid, a.Gid)
	}
	must(t, f.Chown("f", 7, -1))
	if a := attr(t, f, "f"); a.Uid != 7 || a.Gid != 42 {
		t.Fatalf("after -1 gid: uid %d gid %d", a.Uid, a.Gid)
	}
	must(t, f.Lchown("l", 99, 98))
	if a := attr(t, f, "l"); a.Uid != 99 || a.Gid != 98 {
		t.Fatalf("Lchown: uid %d gid %d", a.Uid, a.Gid)
	}
	if a := attr(t, f, "f"); a.Uid != 7 {
		t.Fatalf("Lchown followed the link")
	}
	must(t, f.Chown("l", 1, 2))
	if a := attr(t, f, "f"); a.Uid != 1 || a.Gid != 2 {
		t.Fatalf("Chown did not follow the link")
	}
	if a := attr(t, f, "f"); !a.Mtime.Equal(a0.Mtime) {
		t.Fatalf("chown changed mtime")
	}
	wantErr(t, "Chown missing", f.Chown("missing", 1, 1), fs.ErrNotExist, "path")
}

func testChtimes(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "f", []byte("x"))
	must(t, f.Mkdir("d", 0o755))
	at := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	mt := time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	for _, name := range []string{"f", "d"} {
		must(t, f.Chtimes(name, at, mt))
		a := attr(t, f, name)
		if !a.Atime.Equal(at) || !a.Mtime.Equal(mt) {
			t.Fatalf("%s: atime %v mtime %v", name, a.Atime, a.Mtime)
		}
		fi, err := f.Stat(name)
		must(t, err)
		if !fi.ModTime().Equal(mt) {
			t.Fatalf("%s: ModTime %v", name, fi.ModTime())
		}
	}
	// A zero time leaves that time alone.
	mt2 := mt.Add(time.Hour)
	must(t, f.Chtimes("f", time.Time{}, mt2))
	if a := attr(t, f, "f"); !a.Atime.Equal(at) || !a.Mtime.Equal(mt2) {
		t.Fatalf("zero atime: atime %v mtime %v", a.Atime, a.Mtime)
	}
	at2 := at.Add(time.Hour)
	must(t, f.Chtimes("f", at2, time.Time{}))
	if a := attr(t, f, "f"); !a.Atime.Equal(at2) || !a.Mtime.Equal(mt2) {
		t.Fatalf("zero mtime: atime %v mtime %v", a.Atime, a.Mtime)
	}
	wantErr(t, "Chtimes missing", f.Chtimes("missing", at, mt), fs.ErrNotExist, "path")
	// Times survive a reopen.
	g := e.reopen(t)
	if a := attr(t, g, "f"); !a.Atime.Equal(at2) || !a.Mtime.Equal(mt2) {
		t.Fatalf("reopened: atime %v mtime %v", a.Atime, a.Mtime)
	}
}

func testTruncate(t *testing.T, e *env) {
	f := e.fs
	bs := f.BlockSize()
	for _, tc := range []struct{ size, shrink, grow int }{
		{10, 5, 20},
		{100, 0, 100},
		{4096, 4095, 8192},
		{5000, 10, 5000},
		{3*bs + 100, bs + 7, 4 * bs},
		{3*bs + 100, bs, 3*bs + 100},
		{3*bs + 100, 0, 2 * bs},
		{300 * 4096, 3, 300*4096 + 1},
	} {
		name := fmt.Sprintf("f%d-%d-%d", tc.size, tc.shrink, tc.grow)
		data := pattern(tc.size, 5)
		writeFile(t, f, name, data)
		must(t, f.Truncate(name, int64(tc.shrink)))
		wantContent(t, f, name, data[:tc.shrink])
		must(t, f.Truncate(name, int64(tc.grow)))
		want := append(slices.Clone(data[:tc.shrink]), make([]byte, tc.grow-tc.shrink)...)
		wantContent(t, f, name, want)
		if fi, err := f.Stat(name); err != nil || fi.Size() != int64(tc.grow) {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
		// The same through a reopened FS (nothing cached).
		wantContent(t, e.reopen(t), name, want)
	}
	// File.Truncate with buffered writes.
	file, err := f.Create("ft")
	must(t, err)
	_, err = file.Write(pattern(3*bs, 1))
	must(t, err)
	must(t, file.Truncate(int64(bs/2)))
	_, err = file.WriteAt([]byte("end"), int64(2*bs))
	must(t, err)
	must(t, file.Close())
	want := append(pattern(3*bs, 1)[:bs/2], make([]byte, 2*bs-bs/2)...)
	wantContent(t, f, "ft", append(want, "end"...))

	must(t, f.Mkdir("d", 0o755))
	wantErr(t, "Truncate dir", f.Truncate("d", 0), syscall.EISDIR, "path")
	wantErr(t, "Truncate negative", f.Truncate("ft", -1), syscall.EINVAL, "path")
	wantErr(t, "Truncate missing", f.Truncate("missing", 0), fs.ErrNotExist, "path")
	// Truncate follows symlinks.
	must(t, f.Symlink("ft", "l"))
	must(t, f.Truncate("l", 1))
	wantContent(t, f, "ft", want[:1])
}

func testWriteReadFile(t *testing.T, e *env) {
	f := e.fs
	bs := f.BlockSize()
	sizes := []int{0, 1, 100, inlineMax - 1, inlineMax, inlineMax + 1, bs - 1, bs, bs + 1, 5*bs + 3}
	if bs == 4096 {
		sizes = append(sizes, 129*4096+5, 200*4096) // a two-level index tree
	}
	for i, n := range sizes {
		name := fmt.Sprintf("f%d-%d", i, n)
		data := pattern(n, byte(i))
		writeFile(t, f, name, data)
		wantContent(t, f, name, data)
		if fi, err := f.Stat(name); err != nil || fi.Size() != int64(n) || fi.Mode() != 0o644 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
	// Overwrite shorter: WriteFile truncates.
	writeFile(t, f, fmt.Sprintf("f9-%d", 5*bs+3), []byte("short"))
	wantContent(t, f, fmt.Sprintf("f9-%d", 5*bs+3), []byte("short"))
	// Another FS sees all of it.
	g := e.reopen(t)
	for i, n := range sizes {
		if i == 9 {
			continue
		}
		wantContent(t, g, fmt.Sprintf("f%d-%d", i, n), pattern(n, byte(i)))
	}
	must(t, f.Mkdir("d", 0o755))
	_, err := f.ReadFile("d")
	wantErr(t, "ReadFile dir", err, syscall.EISDIR, "path")
	_, err = f.ReadFile("missing")
	wantErr(t, "ReadFile missing", err, fs.ErrNotExist, "path")
	wantErr(t, "WriteFile dir", f.WriteFile("d", nil, 0o644), syscall.EISDIR, "path")
	wantErr(t, "WriteFile missing parent", f.WriteFile("missing/x", nil, 0o644), fs.ErrNotExist, "path")
	notExist(t, f, "missing")
	// fs.ReadFile uses the same path.
	b, err := fs.ReadFile(f, "f2-100")
	if err != nil || !bytes.Equal(b, pattern(100, 2)) {
		t.Fatalf("fs.ReadFile: %v", err)
	}
	// Random overwrites within a multi-block file, checked against a model.
	rng := rand.New(rand.NewPCG(1, 2))
	model := pattern(7*bs+11, 9)
	writeFile(t, f, "rw", model)
	file, err := f.OpenFile("rw", os.O_RDWR, 0)
	must(t, err)
	for range 50 {
		off := rng.IntN(len(model) + bs)
		n := rng.IntN(2 * bs)
		p := pattern(n, byte(rng.Uint32()))
		_, err := file.WriteAt(p, int64(off))
		must(t, err)
		if off+n > len(model) {
			model = append(model, make([]byte, off+n-len(model))...)
		}
		copy(model[off:], p)
		if rng.IntN(5) == 0 {
			must(t, file.Sync())
		}
	}
	got := make([]byte, len(model)+10)
	n, err := file.ReadAt(got, 0)
	if err != io.EOF || n != len(model) || !bytes.Equal(got[:n], model) {
		t.Fatalf("ReadAt own writes: n %d err %v equal %v", n, err, bytes.Equal(got[:n], model))
	}
	must(t, file.Close())
	wantContent(t, f, "rw", model)
	wantContent(t, e.reopen(t), "rw", model)
}

func testReadDir(t *testing.T, e *env) {
	f := e.fs
	must(t, f.Mkdir("d", 0o755))
	want := []string{}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 300 {
		name := fmt.Sprintf("n%x-%d", rng.Uint32(), i)
		want = append(want, name)
		switch i % 3 {
		case 0:
			writeFile(t, f, "d/"+name, []byte(name))
		case 1:
			must(t, f.Mkdir("d/"+name, 0o700))
		case 2:
			must(t, f.Symlink(name, "d/"+name))
		}
	}
	slices.Sort(want)
	ents, err := f.ReadDir("d")
	must(t, err)
	if got := names(ents); !slices.Equal(got, want) {
		t.Fatalf("ReadDir: got %d names, want %d (sorted)", len(got), len(want))
	}
	for _, de := range ents {
		fi, err := de.Info()
		must(t, err)
		if fi.Name() != de.Name() || fi.Mode().Type() != de.Type() {
			t.Fatalf("%s: Info %v, entry type %v", de.Name(), fi.Mode(), de.Type())
		}
	}
	if a := attr(t, f, "d"); a.Nlink != 2+100 {
		t.Fatalf("nlink %d, want 102", a.Nlink)
	}
	ents, err = fs.ReadDir(f, "d")
	must(t, err)
	if len(ents) != 300 {
		t.Fatalf("fs.ReadDir: %d", len(ents))
	}
	writeFile(t, f, "file", nil)
	_, err = f.ReadDir("file")
	wantErr(t, "ReadDir file", err, syscall.ENOTDIR, "path")
	_, err = f.ReadDir("missing")
	wantErr(t, "ReadDir missing", err, fs.ErrNotExist, "path")
	ents, err = f.ReadDir(".")
	must(t, err)
	if got := names(ents); !slices.Equal(got, []string{"d", "file"}) {
		t.Fatalf("root: %v", got)
	}
}

func testGlobSub(t *testing.T, e *env) {
	f := e.fs
	must(t, f.MkdirAll("a/b/c", 0o755))
	for _, n := range []string{"a/x.go", "a/y.go", "a/z.txt", "a/b/w.go", "a/b/c/v.go"} {
		writeFile(t, f, n, []byte(n))
	}
	for _, tc := range []struct {
		pattern string
		want    []string
	}{
		{"a/*.go", []string{"a/x.go", "a/y.go"}},
		{"a/*/*.go", []string{"a/b/w.go"}},
		{"*/b", []string{"a/b"}},
		{"a/[xz]*", []string{"a/x.go", "a/z.txt"}},
		{"nomatch/*", nil},
	} {
		got, err := f.Glob(tc.pattern)
		must(t, err)
		if !slices.Equal(got, tc.want) {
			t.Fatalf("Glob %q: %v, want %v", tc.pattern, got, tc.want)
		}
	}
	if _, err := f.Glob("a/[x"); !errors.Is(err, path.ErrBadPattern) {
		t.Fatalf("bad pattern: %v", err)
	}

	sub, err := f.Sub("a/b")
	must(t, err)
	b, err := fs.ReadFile(sub, "c/v.go")
	if err != nil || string(b) != "a/b/c/v.go" {
		t.Fatalf("Sub read: %q %v", b, err)
	}
	got, err := fs.Glob(sub, "*.go")
	must(t, err)
	if !slices.Equal(got, []string{"w.go"}) {
		t.Fatalf("Sub glob: %v", got)
	}
	if err := fstest.TestFS(sub, "w.go", "c/v.go"); err != nil {
		t.Fatal(err)
	}
	// ".." and absolute symlinks stop at the Sub root.
	sf := sub.(*FS)
	must(t, sf.Symlink("/w.go", "c/abs"))
	b, err = fs.ReadFile(sub, "c/abs")
	if err != nil || string(b) != "a/b/w.go" {
		t.Fatalf("absolute symlink in Sub: %q %v", b, err)
	}
	must(t, sf.Symlink("../../..", "c/up"))
	ents, err := fs.ReadDir(sub, "c/up")
	must(t, err)
	if !slices.Contains(names(ents), "w.go") {
		t.Fatalf("..: %v", names(ents))
	}
	// Writes through a Sub land in the tree.
	must(t, sf.WriteFile("new", []byte("n"), 0o644))
	wantContent(t, f, "a/b/new", []byte("n"))
	// Sub follows its directory across a rename.
	must(t, f.Rename("a/b", "moved"))
	b, err = fs.ReadFile(sub, "new")
	if err != nil || string(b) != "n" {
		t.Fatalf("Sub after rename: %q %v", b, err)
	}
	_, err = f.Sub("a/x.go")
	wantErr(t, "Sub of a file", err, syscall.ENOTDIR, "path")
	_, err = f.Sub("missing")
	wantErr(t, "Sub missing", err, fs.ErrNotExist, "path")
}

func testNames(t *testing.T, e *env) {
	f := e.fs
	long := strings.Repeat("n", 255)
	writeFile(t, f, long, []byte("ok"))
	wantContent(t, f, long, []byte("ok"))
	must(t, f.Mkdir("d"+long[1:], 0o755))
	ents, err := f.ReadDir(".")
	must(t, err)
	if len(ents) != 2 {
		t.Fatalf("entries %v", names(ents))
	}
	tooLong := strings.Repeat("x", 256)
	ops := []struct {
		name string
		fn   func(p string) error
		typ  string
	}{
		{"Create", func(p string) error { _, err := f.Create(p); return err }, "path"},
		{"Open", func(p string) error { _, err := f.Open(p); return err }, "path"},
		{"Stat", func(p string) error { _, err := f.Stat(p); return err }, "path"},
		{"Lstat", func(p string) error { _, err := f.Lstat(p); return err }, "path"},
		{"Mkdir", func(p string) error { return f.Mkdir(p, 0o755) }, "path"},
		{"MkdirAll", func(p string) error { return f.MkdirAll(p, 0o755) }, "path"},
		{"Remove", func(p string) error { return f.Remove(p) }, "path"},
		{"RemoveAll", func(p string) error { return f.RemoveAll(p) }, "path"},
		{"ReadFile", func(p string) error { _, err := f.ReadFile(p); return err }, "path"},
		{"WriteFile", func(p string) error { return f.WriteFile(p, nil, 0o644) }, "path"},
		{"ReadDir", func(p string) error { _, err := f.ReadDir(p); return err }, "path"},
		{"Symlink", func(p string) error { return f.Symlink("x", p) }, "path"},
		{"ReadLink", func(p string) error { _, err := f.ReadLink(p); return err }, "path"},
		{"Chmod", func(p string) error { return f.Chmod(p, 0o644) }, "path"},
		{"Chown", func(p string) error { return f.Chown(p, 1, 1) }, "path"},
		{"Chtimes", func(p string) error { return f.Chtimes(p, time.Now(), time.Now()) }, "path"},
		{"Truncate", func(p string) error { return f.Truncate(p, 0) }, "path"},
		{"Sub", func(p string) error { _, err := f.Sub(p); return err }, "path"},
		{"RenameFrom", func(p string) error { return f.Rename(p, "y") }, "link"},
		{"RenameTo", func(p string) error { return f.Rename(long, p) }, "link"},
		{"LinkFrom", func(p string) error { return f.Link(p, "y") }, "link"},
		{"LinkTo", func(p string) error { return f.Link(long, p) }, "link"},
	}
	invalid := []string{"", "/a", "a/", "a//b", "./a", "a/.", "../a", "a/../b", "..", "a\x00b", "\xff"}
	for _, op := range ops {
		for _, p := range []string{tooLong, "d" + long[1:] + "/" + tooLong} {
			wantErr(t, op.name+" long name", op.fn(p), syscall.ENAMETOOLONG, op.typ)
		}
		for _, p := range invalid {
			if op.name == "RemoveAll" && p == "" {
				continue
			}
			wantErr(t, fmt.Sprintf("%s(%q)", op.name, p), op.fn(p), fs.ErrInvalid, op.typ)
		}
	}
	// Names with odd but legal bytes.
	for _, n := range []string{"sp ace", "ü", "tab\t", "new\nline", "-dash", "#hash", "%", "a:b", strings.Repeat("é", 127)} {
		writeFile(t, f, n, []byte(n))
		wantContent(t, f, n, []byte(n))
	}
	ents, err = f.ReadDir(".")
	must(t, err)
	if len(ents) != 11 {
		t.Fatalf("entries: %q", names(ents))
	}
}

func testFileOps(t *testing.T, e *env) {
	f := e.fs
	bs := f.BlockSize()
	file, err := f.OpenFile("f", os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	data := pattern(3*bs+10, 7)
	n, err := file.Write(data)
	if err != nil || n != len(data) {
		t.Fatalf("Write: %d %v", n, err)
	}
	// Seek.
	for _, tc := range []struct {
		off    int64
		whence int
		want   int64
	}{
		{0, io.SeekStart, 0},
		{10, io.SeekCurrent, 10},
		{-5, io.SeekCurrent, 5},
		{0, io.SeekEnd, int64(len(data))},
		{-int64(len(data)), io.SeekEnd, 0},
		{100, io.SeekEnd, int64(len(data)) + 100},
		{7, io.SeekStart, 7},
	} {
		pos, err := file.Seek(tc.off, tc.whence)
		if err != nil || pos != tc.want {
			t.Fatalf("Seek(%d, %d): %d %v, want %d", tc.off, tc.whence, pos, err, tc.want)
		}
	}
	for _, tc := range []struct {
		off    int64
		whence int
	}{{-1, io.SeekStart}, {-8, io.SeekCurrent}, {-int64(len(data)) - 1, io.SeekEnd}, {0, 3}} {
		_, err := file.Seek(tc.off, tc.whence)
		wantErr(t, fmt.Sprintf("Seek(%d, %d)", tc.off, tc.whence), err, syscall.EINVAL, "path")
	}
	if pos, _ := file.Seek(0, io.SeekCurrent); pos != 7 {
		t.Fatalf("failed seeks moved the offset to %d", pos)
	}
	// Read from the offset, across block boundaries, before any commit.
	buf := make([]byte, bs+100)
	n, err = io.ReadFull(file, buf)
	if err != nil || !bytes.Equal(buf[:n], data[7:7+n]) {
		t.Fatalf("Read: %d %v", n, err)
	}
	// ReadAt does not move the offset; short read at EOF is io.EOF.
	n, err = file.ReadAt(buf, int64(len(data)-50))
	if n != 50 || err != io.EOF || !bytes.Equal(buf[:50], data[len(data)-50:]) {
		t.Fatalf("ReadAt at end: %d %v", n, err)
	}
	n, err = file.ReadAt(buf[:10], int64(len(data)+10))
	if n != 0 || err != io.EOF {
		t.Fatalf("ReadAt past end: %d %v", n, err)
	}
	_, err = file.ReadAt(buf, -1)
	wantErr(t, "ReadAt negative", err, syscall.EINVAL, "path")
	_, err = file.WriteAt(buf, -1)
	wantErr(t, "WriteAt negative", err, syscall.EINVAL, "path")
	if pos, _ := file.Seek(0, io.SeekCurrent); pos != int64(7+bs+100) {
		t.Fatalf("offset %d after ReadAt", pos)
	}
	// Write past the end leaves a zero gap.
	_, err = file.Seek(int64(len(data))+100, io.SeekStart)
	must(t, err)
	_, err = file.Write([]byte("tail"))
	must(t, err)
	fi, err := file.Stat()
	must(t, err)
	if fi.Size() != int64(len(data))+104 || fi.Name() != "f" || fi.Mode() != 0o644 {
		t.Fatalf("Stat: %v", fi)
	}
	must(t, file.Sync())
	want := append(append(slices.Clone(data), make([]byte, 100)...), "tail"...)
	wantContent(t, e.reopen(t), "f", want)
	// Read to EOF with Read.
	_, err = file.Seek(int64(len(want))-2, io.SeekStart)
	must(t, err)
	n, err = file.Read(buf)
	if n != 2 || (err != nil && err != io.EOF) {
		t.Fatalf("Read at end: %d %v", n, err)
	}
	n, err = file.Read(buf)
	if n != 0 || err != io.EOF {
		t.Fatalf("Read past end: %d %v", n, err)
	}
	must(t, file.Close())
	// Close twice: an error wrapping fs.ErrClosed, no panic.
	wantErr(t, "second Close", file.Close(), fs.ErrClosed, "path")
	// Sync with nothing buffered is fine; io.Copy works.
	rf, err := f.Open("f")
	must(t, err)
	var sb bytes.Buffer
	if _, err := io.Copy(&sb, rf); err != nil || !bytes.Equal(sb.Bytes(), want) {
		t.Fatalf("io.Copy: %v", err)
	}
	must(t, rf.(*File).Sync())
	must(t, rf.Close())
	// A file opened for reading is a *File with Name and Ino.
	rf, err = f.Open("f")
	must(t, err)
	if ff := rf.(*File); ff.Name() != "f" || ff.Ino() != attr(t, f, "f").Ino {
		t.Fatalf("Name %q Ino %d", ff.Name(), ff.Ino())
	}
	must(t, rf.Close())
	// A directory opened with OpenFile is readable as a directory only.
	must(t, f.Mkdir("d", 0o755))
	dfile, err := f.OpenFile("d", os.O_RDONLY, 0)
	must(t, err)
	_, err = dfile.Read(buf)
	wantErr(t, "Read of a directory", err, syscall.EISDIR, "path")
	ents, err := dfile.ReadDir(-1)
	if err != nil || len(ents) != 0 {
		t.Fatalf("ReadDir: %v %v", ents, err)
	}
	must(t, dfile.Close())
	// ReadDir on a regular file.
	file2, err := f.OpenFile("f", os.O_RDONLY, 0)
	must(t, err)
	_, err = file2.ReadDir(-1)
	wantErr(t, "ReadDir of a file", err, syscall.ENOTDIR, "path")
	must(t, file2.Close())
}

func testClosedFile(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "f", []byte("data"))
	file, err := f.OpenFile("f", os.O_RDWR, 0)
	must(t, err)
	must(t, file.Close())
	buf := make([]byte, 4)
	ops := map[string]func() error{
		"Read":     func() error { _, err := file.Read(buf); return err },
		"ReadAt":   func() error { _, err := file.ReadAt(buf, 0); return err },
		"Write":    func() error { _, err := file.Write(buf); return err },
		"WriteAt":  func() error { _, err := file.WriteAt(buf, 0); return err },
		"Seek":     func() error { _, err := file.Seek(0, io.SeekStart); return err },
		"Stat":     func() error { _, err := file.Stat(); return err },
		"Sync":     func() error { return file.Sync() },
		"Truncate": func() error { return file.Truncate(0) },
		"Chmod":    func() error { return file.Chmod(0o600) },
		"Chown":    func() error { return file.Chown(1, 1) },
		"ReadDir":  func() error { _, err := file.ReadDir(-1); return err },
		"Close":    func() error { return file.Close() },
	}
	for name, op := range ops {
		wantErr(t, name+" on closed file", op(), fs.ErrClosed, "path")
	}
	wantContent(t, f, "f", []byte("data"))
	// A closed Dir.
	d, err := f.Open(".")
	must(t, err)
	must(t, d.Close())
	_, err = d.(fs.ReadDirFile).ReadDir(-1)
	wantErr(t, "ReadDir on closed dir", err, fs.ErrClosed, "path")
	_, err = d.Stat()
	wantErr(t, "Stat on closed dir", err, fs.ErrClosed, "path")
	wantErr(t, "Close closed dir", d.Close(), fs.ErrClosed, "path")
	// A closed FS.
	g := e.reopen(t)
	must(t, g.Close())
	_, err = g.Open("f")
	wantErr(t, "Open on closed FS", err, fs.ErrClosed, "path")
	wantErr(t, "Mkdir on closed FS", g.Mkdir("x", 0o755), fs.ErrClosed, "path")
	if err := g.Close(); err == nil {
		t.Fatal("second FS.Close succeeded")
	}
}

func testDirReadDirN(t *testing.T, e *env) {
	f := e.fs
	must(t, f.Mkdir("d", 0o755))
	want := map[string]bool{}
	for i := range 250 {
		n := fmt.Sprintf("e%03d", i)
		writeFile(t, f, "d/"+n, nil)
		want[n] = true
	}
	for _, page := range []int{1, 7, 100, 250, 1000} {
		d, err := f.Open("d")
		must(t, err)
		rd := d.(fs.ReadDirFile)
		got := map[string]bool{}
		for {
			ents, err := rd.ReadDir(page)
			if err == io.EOF {
				if len(ents) != 0 {
					t.Fatalf("page %d: io.EOF with %d entries", page, len(ents))
				}
				break
			}
			must(t, err)
			if len(ents) == 0 || len(ents) > page {
				t.Fatalf("page %d: got %d entries with nil error", page, len(ents))
			}
			for _, e := range ents {
				if got[e.Name()] {
					t.Fatalf("page %d: %s twice", page, e.Name())
				}
				got[e.Name()] = true
			}
		}
		if len(got) != len(want) {
			t.Fatalf("page %d: %d entries, want %d", page, len(got), len(want))
		}
		// At the end, ReadDir(-1) returns nothing and no error.
		ents, err := rd.ReadDir(-1)
		if err != nil || len(ents) != 0 {
			t.Fatalf("ReadDir(-1) at end: %d %v", len(ents), err)
		}
		// Seek(0, 0) on a directory opened as a file rewinds it.
		must(t, d.Close())
	}
	file, err := f.OpenFile("d", os.O_RDONLY, 0)
	must(t, err)
	ents, err := file.ReadDir(-1)
	must(t, err)
	if len(ents) != 250 {
		t.Fatalf("ReadDir(-1): %d", len(ents))
	}
	_, err = file.Seek(0, io.SeekStart)
	must(t, err)
	ents, err = file.ReadDir(10)
	if err != nil || len(ents) != 10 {
		t.Fatalf("after rewind: %d %v", len(ents), err)
	}
	must(t, file.Close())
	// An empty directory: ReadDir(n>0) is io.EOF at once.
	must(t, f.Mkdir("empty", 0o755))
	d, err := f.Open("empty")
	must(t, err)
	ents, err = d.(fs.ReadDirFile).ReadDir(5)
	if err != io.EOF || len(ents) != 0 {
		t.Fatalf("empty dir: %v %v", ents, err)
	}
	must(t, d.Close())
}

func testSparse(t *testing.T, e *env) {
	f := e.fs
	bs := int64(f.BlockSize())
	file, err := f.Create("s")
	must(t, err)
	offs := []int64{0, 5 * bs, 5*bs + bs/2, 300 * bs, 300*bs + 1, 20000*bs - 3}
	for i, off := range offs {
		_, err := file.WriteAt([]byte{byte('a' + i)}, off)
		must(t, err)
	}
	must(t, file.Close())
	size := offs[len(offs)-1] + 1
	g := e.reopen(t)
	sf, err := g.Open("s")
	must(t, err)
	fi, err := sf.Stat()
	must(t, err)
	if fi.Size() != size {
		t.Fatalf("size %d, want %d", fi.Size(), size)
	}
	ra := sf.(io.ReaderAt)
	for i, off := range offs {
		buf := make([]byte, 3)
		n, err := ra.ReadAt(buf, off-1)
		if off == 0 {
			n, err = ra.ReadAt(buf[1:], 0)
			n++
		}
		if err != nil && !(err == io.EOF && off == size-1) {
			t.Fatalf("ReadAt %d: %v", off, err)
		}
		if buf[1] != byte('a'+i) || buf[0] != 0 && off != 5*bs+bs/2 && off != 300*bs+1 || n < 2 {
			t.Fatalf("around %d: %q (n %d)", off, buf, n)
		}
	}
	// Holes read as zeros, across a whole hole block.
	hole := make([]byte, 3*bs)
	_, err = ra.ReadAt(hole, 100*bs)
	must(t, err)
	if !bytes.Equal(hole, make([]byte, len(hole))) {
		t.Fatal("hole not zero")
	}
	must(t, sf.Close())
}

// blockKeys counts the block keys of the store, when it can list.
func blockKeys(t *testing.T, e *env) (int, bool) {
	bs := e.store
	if e.blocks != nil {
		bs = e.blocks
	}
	l, ok := bs.(backend.Lister)
	if !ok {
		return 0, false
	}
	e.fs.Flush() // replaced blocks are deleted in the background
	n := 0
	err := l.List(context.Background(), e.fs.c.prefix+"b/", func(string) error { n++; return nil })
	if errors.Is(err, errors.ErrUnsupported) {
		return 0, false
	}
	must(t, err)
	return n, true
}

func testSparseHuge(t *testing.T, e *env) {
	f := e.fs
	bs := int64(f.BlockSize())
	before := f.Stats()
	file, err := f.Create("huge")
	must(t, err)
	offs := []int64{0, 1 << 40, 1<<40 + bs + 3, 1<<41 - 5}
	for i, off := range offs {
		_, err := file.WriteAt([]byte(fmt.Sprintf("rec%d", i)), off)
		must(t, err)
	}
	must(t, file.Close())
	size := offs[len(offs)-1] + 4
	stats := f.Stats()
	height := int64(f.c.heightFor(uint64((size + bs - 1) / bs)))
	// Each written block costs its data block and at most one index node
	// per level.
	limit := int64(len(offs)) * (1 + height)
	if puts := stats.BlockPuts - before.BlockPuts; puts > limit {
		t.Fatalf("%d block puts for %d written blocks (limit %d)", puts, len(offs), limit)
	}
	if n, ok := blockKeys(t, e); ok && int64(n) > limit {
		t.Fatalf("%d block keys in the store (limit %d)", n, limit)
	}
	g := e.reopen(t)
	fi, err := g.Stat("huge")
	must(t, err)
	if fi.Size() != size {
		t.Fatalf("size %d, want %d", fi.Size(), size)
	}
	rf, err := g.Open("huge")
	must(t, err)
	defer rf.Close()
	ra := rf.(io.ReaderAt)
	for i, off := range offs {
		buf := make([]byte, 4)
		n, err := ra.ReadAt(buf, off)
		if n != 4 || (err != nil && err != io.EOF) || string(buf) != fmt.Sprintf("rec%d", i) {
			t.Fatalf("ReadAt %d: %q %d %v", off, buf, n, err)
		}
	}
	for _, off := range []int64{4, 1<<39 + 12345, 1<<40 - 300, 1<<40 + 4, 1<<40 + 3*bs} {
		buf := make([]byte, 200)
		for i := range buf {
			buf[i] = 0xee
		}
		if _, err := ra.ReadAt(buf, off); err != nil {
			t.Fatalf("ReadAt hole %d: %v", off, err)
		}
		if !bytes.Equal(buf, make([]byte, 200)) {
			t.Fatalf("hole at %d not zero: %x", off, buf[:16])
		}
	}
	// Shrinking it back frees almost everything.
	must(t, f.Truncate("huge", 10))
	if n, ok := blockKeys(t, e); ok && n > 2 {
		t.Fatalf("%d block keys after truncating to 10 bytes", n)
	}
	wantContent(t, f, "huge", []byte("rec0\x00\x00\x00\x00\x00\x00"))
	must(t, f.Remove("huge"))
	if n, ok := blockKeys(t, e); ok && n != 0 {
		t.Fatalf("%d block keys after removing the only file", n)
	}
}

func testTimes(t *testing.T, e *env) {
	f := e.fs
	t0 := time.Now()
	writeFile(t, f, "f", []byte("x"))
	a0 := attr(t, f, "f")
	if a0.Mtime.Before(t0.Add(-time.Second)) || a0.Btime.IsZero() || a0.Mtime.After(time.Now().Add(time.Second)) {
		t.Fatalf("new file times: %+v", a0)
	}
	d0 := attr(t, f, ".")
	step := func() { time.Sleep(2 * time.Millisecond) }

	step()
	file, err := f.OpenFile("f", os.O_WRONLY, 0)
	must(t, err)
	_, err = file.Write([]byte("y"))
	must(t, err)
	must(t, file.Close())
	a1 := attr(t, f, "f")
	if !a1.Mtime.After(a0.Mtime) || !a1.Ctime.After(a0.Ctime) || !a1.Btime.Equal(a0.Btime) {
		t.Fatalf("write: mtime %v -> %v, ctime %v -> %v", a0.Mtime, a1.Mtime, a0.Ctime, a1.Ctime)
	}
	step()
	must(t, f.Chmod("f", 0o600))
	a2 := attr(t, f, "f")
	if !a2.Mtime.Equal(a1.Mtime) || !a2.Ctime.After(a1.Ctime) {
		t.Fatalf("chmod: mtime %v -> %v, ctime %v -> %v", a1.Mtime, a2.Mtime, a1.Ctime, a2.Ctime)
	}
	step()
	must(t, f.Truncate("f", 100))
	a3 := attr(t, f, "f")
	if !a3.Mtime.After(a2.Mtime) || !a3.Ctime.After(a2.Ctime) {
		t.Fatalf("truncate: mtime %v -> %v", a2.Mtime, a3.Mtime)
	}
	// Creating and removing entries changes the directory's mtime.
	d1 := attr(t, f, ".")
	if !d1.Mtime.After(d0.Mtime) && !d1.Mtime.Equal(d0.Mtime) {
		t.Fatalf("root mtime went back")
	}
	step()
	writeFile(t, f, "g", nil)
	d2 := attr(t, f, ".")
	if !d2.Mtime.After(d1.Mtime) || !d2.Ctime.After(d1.Ctime) {
		t.Fatalf("create: dir mtime %v -> %v", d1.Mtime, d2.Mtime)
	}
	step()
	must(t, f.Remove("g"))
	if d3 := attr(t, f, "."); !d3.Mtime.After(d2.Mtime) {
		t.Fatalf("remove: dir mtime %v -> %v", d2.Mtime, d3.Mtime)
	}
	// Link changes the file's ctime, not its mtime.
	step()
	must(t, f.Link("f", "f2"))
	a4 := attr(t, f, "f")
	if !a4.Mtime.Equal(a3.Mtime) || !a4.Ctime.After(a3.Ctime) {
		t.Fatalf("link: mtime %v -> %v, ctime %v -> %v", a3.Mtime, a4.Mtime, a3.Ctime, a4.Ctime)
	}
	// Chtimes sets exactly.
	at := time.Unix(1e9, 123)
	must(t, f.Chtimes("f", at, at))
	if a := attr(t, f, "f"); !a.Atime.Equal(at) || !a.Mtime.Equal(at) {
		t.Fatalf("chtimes: %v %v", a.Atime, a.Mtime)
	}
}

func testAttr(t *testing.T, e *env) {
	f := e.fs
	must(t, f.MkdirAll("a/b", 0o755))
	must(t, f.Mkdir("a/c", 0o755))
	writeFile(t, f, "a/f", []byte("x"))
	must(t, f.Symlink("f", "a/l"))
	inos := map[uint64]string{}
	for _, p := range []string{".", "a", "a/b", "a/c", "a/f", "a/l"} {
		a := attr(t, f, p)
		if prev, dup := inos[a.Ino]; dup {
			t.Fatalf("ino %d shared by %s and %s", a.Ino, prev, p)
		}
		inos[a.Ino] = p
		if a.Blksize != uint32(f.BlockSize()) {
			t.Fatalf("%s: blksize %d", p, a.Blksize)
		}
		if a.FileMode() != (a.FileMode().Type() | a.FileMode().Perm()) {
			t.Fatalf("%s: odd mode %v", p, a.FileMode())
		}
	}
	if a := attr(t, f, "."); a.Ino != RootIno || a.Nlink != 3 {
		t.Fatalf("root: ino %d nlink %d", a.Ino, a.Nlink)
	}
	for p, want := range map[string]uint32{"a": 4, "a/b": 2, "a/f": 1, "a/l": 1} {
		if a := attr(t, f, p); a.Nlink != want {
			t.Fatalf("%s: nlink %d, want %d", p, a.Nlink, want)
		}
	}
	// GetAttr and Lookup agree with Lstat.
	fa := attr(t, f, "a/f")
	ga, err := f.Inodes().GetAttr(context.Background(), fa.Ino)
	must(t, err)
	la, err := f.Inodes().Lookup(context.Background(), attr(t, f, "a").Ino, "f")
	must(t, err)
	if ga.Ino != fa.Ino || la.Ino != fa.Ino || ga.Size != 1 {
		t.Fatalf("GetAttr %+v Lookup %+v", ga, la)
	}
	// FileInfo and Attr agree.
	fi, err := f.Stat("a/f")
	must(t, err)
	if fi.Mode() != fa.FileMode() || fi.Size() != int64(fa.Size) || !fi.ModTime().Equal(fa.Mtime) || fi.Name() != "f" {
		t.Fatalf("FileInfo %v vs Attr %+v", fi, fa)
	}
	// Ino stable across renames, within and across directories.
	must(t, f.Rename("a/f", "a/g"))
	must(t, f.Rename("a/g", "a/b/h"))
	must(t, f.Rename("a/b", "b2"))
	if a := attr(t, f, "b2/h"); a.Ino != fa.Ino {
		t.Fatalf("ino after rename %d, want %d", a.Ino, fa.Ino)
	}
	if a := attr(t, f, "a"); a.Nlink != 3 {
		t.Fatalf("a nlink %d after moving b out", a.Nlink)
	}
	// Open files report the same ino.
	file, err := f.Open("b2/h")
	must(t, err)
	fi, err = file.Stat()
	must(t, err)
	if fi.Sys().(*Attr).Ino != fa.Ino {
		t.Fatalf("File.Stat ino")
	}
	must(t, file.Close())
	// A removed and re-created name gets a new ino.
	must(t, f.Remove("b2/h"))
	writeFile(t, f, "b2/h", nil)
	if a := attr(t, f, "b2/h"); a.Ino == fa.Ino {
		t.Fatalf("re-created file reused ino %d", a.Ino)
	}
	// Blocks reflects allocation.
	writeFile(t, f, "big", pattern(10*f.BlockSize(), 1))
	if a := attr(t, f, "big"); a.Blocks < uint64(10*f.BlockSize()/512) {
		t.Fatalf("blocks %d", a.Blocks)
	}
	checkTree(t, f, ".")
}

// populate builds a tree for the standard-library checks and returns its
// files (path -> content) and all paths.
func populate(t *testing.T, f *FS) (map[string][]byte, []string) {
	// fstest reads every file byte by byte: with big blocks the files stay
	// in one block (the 4 KiB variant covers multi-block files).
	bs := f.BlockSize()
	multi := 3*bs + 17
	if bs > 64<<10 {
		multi = 64<<10 + 17
	}
	files := map[string][]byte{
		"top.txt":            []byte("top\n"),
		"empty":              nil,
		"a/empty":            nil,
		"a/b/c/deep.txt":     []byte("deep"),
		"a/b/multi":          pattern(multi, 1),
		"a/exact":            pattern(min(bs, 64<<10), 2),
		"x/y/z/inline":       pattern(inlineMax, 3),
		"x/y/page.html":      []byte("<html>hi</html>"),
		"a/b/c/d/e/f/g/leaf": []byte("leaf"),
	}
	for i := range 40 {
		files[fmt.Sprintf("many/f%02d", i)] = pattern(i*97, byte(i))
	}
	must(t, f.MkdirAll("emptydir/inner", 0o755))
	for p, data := range files {
		dir, _ := split(p)
		must(t, f.MkdirAll(dir, 0o755))
		writeFile(t, f, p, data)
	}
	must(t, f.Symlink("a/b/multi", "link-to-file"))
	must(t, f.Symlink("b/c", "a/link-to-dir"))
	paths := []string{"emptydir/inner", "link-to-file", "a/link-to-dir"}
	for p := range files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return files, paths
}

func testStdlibFS(t *testing.T, e *env) {
	f := e.fs
	files, paths := populate(t, f)
	if err := fstest.TestFS(f, paths...); err != nil {
		t.Fatal(err)
	}
	// A second FS on the store passes too (nothing from caches).
	if f.BlockSize() <= 64<<10 {
		if err := fstest.TestFS(e.reopen(t), paths...); err != nil {
			t.Fatal(err)
		}
	}

	// fs.WalkDir visits every file once, in lexical order.
	var walked []string
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			walked = append(walked, p)
		}
		return nil
	})
	must(t, err)
	var want []string
	for p := range files {
		want = append(want, p)
	}
	slices.Sort(want)
	if !slices.Equal(walked, want) {
		t.Fatalf("WalkDir: %v\nwant %v", walked, want)
	}

	// http.FS serves a file, with ranges.
	srv := httptest.NewServer(http.FileServerFS(f))
	defer srv.Close()
	get := func(p, rng string) (int, []byte) {
		req, err := http.NewRequest("GET", srv.URL+"/"+p, nil)
		must(t, err)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := srv.Client().Do(req)
		must(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		must(t, err)
		return resp.StatusCode, b
	}
	if code, b := get("a/b/multi", ""); code != 200 || !bytes.Equal(b, files["a/b/multi"]) {
		t.Fatalf("GET multi: %d, %d bytes", code, len(b))
	}
	if code, b := get("a/b/multi", "bytes=4090-4105"); code != 206 || !bytes.Equal(b, files["a/b/multi"][4090:4106]) {
		t.Fatalf("GET range: %d %q", code, b)
	}
	if code, b := get("x/y/page.html", ""); code != 200 || string(b) != "<html>hi</html>" {
		t.Fatalf("GET html: %d %q", code, b)
	}
	if code, _ := get("nope", ""); code != 404 {
		t.Fatalf("GET missing: %d", code)
	}
	if code, b := get("many/", ""); code != 200 || !bytes.Contains(b, []byte("f39")) {
		t.Fatalf("GET dir listing: %d", code)
	}
	// The http.FS adapter too.
	hf, err := http.FS(f).Open("/top.txt")
	must(t, err)
	b, err := io.ReadAll(hf)
	must(t, err)
	must(t, hf.Close())
	if string(b) != "top\n" {
		t.Fatalf("http.FS read %q", b)
	}

	// os.CopyFS copies everything out; compare with the original.
	dir := t.TempDir()
	must(t, f.Remove("link-to-file")) // CopyFS does not copy symlinks
	must(t, f.Remove("a/link-to-dir"))
	must(t, os.CopyFS(dir, f))
	for p, data := range files {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("CopyFS %s: %v, %d bytes, want %d", p, err, len(got), len(data))
		}
	}
	var copied int
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			copied++
		}
		return err
	}))
	if copied != len(files) {
		t.Fatalf("CopyFS copied %d files, want %d", copied, len(files))
	}
	if fi, err := os.Stat(filepath.Join(dir, "emptydir", "inner")); err != nil || !fi.IsDir() {
		t.Fatalf("CopyFS emptydir: %v", err)
	}
}

func testBigDir(t *testing.T, e *env) {
	f := e.fs
	n := e.cfg.bigDir
	if testing.Short() {
		n /= 10
	} else if raceEnabled {
		// The race detector makes each create about ten times slower.
		n /= 5
	}
	t.Logf("%d entries", n)
	must(t, f.Mkdir("big", 0o755))
	dirIno := attr(t, f, "big").Ino
	// Create through the inode-level API from a few goroutines (the path API
	// would walk "big" each time, which measures nothing more).
	const workers = 4
	var g errgroupLite
	for w := range workers {
		g.Go(func() error {
			for i := w; i < n; i += workers {
				file, err := f.Inodes().Create(context.Background(), dirIno, fmt.Sprintf("entry-%07d", i), os.O_RDWR|os.O_EXCL, 0o644, nil)
				if err != nil {
					return err
				}
				if err := file.Close(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	must(t, g.Wait())
	for _, i := range []int{0, 1, n / 2, n - 1} {
		if _, err := f.Stat(fmt.Sprintf("big/entry-%07d", i)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.Stat(fmt.Sprintf("big/entry-%07d", n))
	wantErr(t, "Stat past the last", err, fs.ErrNotExist, "path")
	ents, err := f.ReadDir("big")
	must(t, err)
	if len(ents) != n {
		t.Fatalf("ReadDir: %d entries, want %d", len(ents), n)
	}
	for i, e := range ents {
		if want := fmt.Sprintf("entry-%07d", i); e.Name() != want {
			t.Fatalf("entry %d: %s, want %s", i, e.Name(), want)
		}
	}
	// Page through with cookies; and a fresh FS sees the same count.
	var cookie uint64
	count := 0
	for {
		page, err := e.reopen(t).Inodes().ReadDir(context.Background(), dirIno, cookie, 1000)
		must(t, err)
		if len(page) == 0 {
			break
		}
		count += len(page)
		cookie = page[len(page)-1].Cookie
	}
	if count != n {
		t.Fatalf("ReadDirIno pages: %d entries, want %d", count, n)
	}
	if a := attr(t, f, "big"); a.Nlink != 2 {
		t.Fatalf("nlink %d", a.Nlink)
	}
}

// errgroupLite is a minimal errgroup (first error wins).
type errgroupLite struct {
	wg   sync.WaitGroup
	once sync.Once
	err  error
}

func (g *errgroupLite) Go(fn func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := fn(); err != nil {
			g.once.Do(func() { g.err = err })
		}
	}()
}

func (g *errgroupLite) Wait() error { g.wg.Wait(); return g.err }

func testReaddirStability(t *testing.T, e *env) {
	f := e.fs
	must(t, f.Mkdir("d", 0o755))
	dir := attr(t, f, "d").Ino
	const stable = 2000
	for i := range stable {
		file, err := f.Inodes().Create(context.Background(), dir, fmt.Sprintf("stable-%05d", i), os.O_RDWR|os.O_EXCL, 0o644, nil)
		must(t, err)
		must(t, file.Close())
	}
	// A churner on another FS (another client) inserts and removes names
	// while listings page through.
	other := e.reopen(t)
	stop := make(chan struct{})
	var churned atomic.Int64
	var g errgroupLite
	g.Go(func() error {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return nil
			default:
			}
			name := fmt.Sprintf("churn-%06d", i)
			file, err := other.Inodes().Create(context.Background(), dir, name, os.O_RDWR|os.O_EXCL, 0o644, nil)
			if err != nil {
				return err
			}
			if err := file.Close(); err != nil {
				return err
			}
			if i%2 == 0 {
				if err := other.Inodes().Unlink(context.Background(), dir, name); err != nil {
					return err
				}
			}
			churned.Add(1)
		}
	})
	listings := 0
	for range 4 {
		for _, page := range []int{1, 37, 500} {
			if page == 1 && listings > 0 {
				continue // page size 1 is slow; once is enough
			}
			seen := map[string]bool{}
			var cookie uint64
			for {
				ents, err := f.Inodes().ReadDir(context.Background(), dir, cookie, page)
				must(t, err)
				if len(ents) == 0 {
					break
				}
				for _, e := range ents {
					if seen[e.Name] {
						close(stop)
						t.Fatalf("page %d: %s listed twice", page, e.Name)
					}
					seen[e.Name] = true
					if e.Cookie <= cookie {
						close(stop)
						t.Fatalf("cookie went back: %d after %d", e.Cookie, cookie)
					}
					cookie = e.Cookie
				}
			}
			for i := range stable {
				if n := fmt.Sprintf("stable-%05d", i); !seen[n] {
					close(stop)
					t.Fatalf("page %d: %s missed", page, n)
				}
			}
			listings++
		}
		// The same through Dir.ReadDir(n).
		d, err := f.Open("d")
		must(t, err)
		seen := map[string]bool{}
		for {
			ents, err := d.(fs.ReadDirFile).ReadDir(64)
			if err == io.EOF {
				break
			}
			must(t, err)
			for _, e := range ents {
				if seen[e.Name()] {
					close(stop)
					t.Fatalf("Dir.ReadDir: %s twice", e.Name())
				}
				seen[e.Name()] = true
			}
		}
		must(t, d.Close())
		for i := range stable {
			if n := fmt.Sprintf("stable-%05d", i); !seen[n] {
				close(stop)
				t.Fatalf("Dir.ReadDir: %s missed", n)
			}
		}
	}
	close(stop)
	must(t, g.Wait())
	if churned.Load() == 0 {
		t.Fatal("the churner made no change during the listings")
	}
	t.Logf("%d listings, %d churn creates", listings, churned.Load())
}

// rewrite replaces the value of key with fn(value).
func rewrite(t *testing.T, s backend.Store, key string, fn func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	v, ver, err := s.Get(ctx, key)
	must(t, err)
	if _, err := s.CAS(ctx, key, ver, fn(v)); err != nil {
		t.Fatalf("rewrite %s: %v", key, err)
	}
}

func testCorrupt(t *testing.T, e *env) {
	f := e.fs
	must(t, f.MkdirAll("d/sub", 0o755))
	writeFile(t, f, "d/f", []byte("small"))
	writeFile(t, f, "d/big", pattern(5*f.BlockSize(), 1))
	fino := attr(t, f, "d/f").Ino
	dino := attr(t, f, "d").Ino
	bigIno := attr(t, f, "d/big").Ino

	// Find the inode keys by listing where the store can, else by name.
	keys := map[uint64]string{}
	for _, ino := range []uint64{fino, dino, bigIno} {
		keys[ino] = f.c.inodeKey(ino)
	}
	if l, ok := e.store.(backend.Lister); ok {
		found := 0
		err := l.List(context.Background(), f.c.prefix+"i/", func(k string) error {
			for _, want := range keys {
				if k == want {
					found++
				}
			}
			return nil
		})
		if !errors.Is(err, errors.ErrUnsupported) {
			must(t, err)
			if found != len(keys) {
				t.Fatalf("List found %d of %d inode keys", found, len(keys))
			}
		}
	}
	flip := func(off int) func([]byte) []byte {
		return func(b []byte) []byte {
			b = slices.Clone(b)
			b[min(off, len(b)-1)] ^= 0x40
			return b
		}
	}
	rewrite(t, e.store, keys[fino], flip(5))
	g := e.reopen(t)
	checkCorrupt := func(what string, err error, key string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error from a corrupt value", what)
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v does not wrap ErrCorrupt", what, err)
		}
		if !strings.Contains(err.Error(), key) {
			t.Fatalf("%s: %q does not name the key %s", what, err, key)
		}
	}
	_, err := g.Stat("d/f")
	checkCorrupt("Stat", err, keys[fino])
	_, err = g.ReadFile("d/f")
	checkCorrupt("ReadFile", err, keys[fino])
	checkCorrupt("WriteFile", g.WriteFile("d/f", nil, 0o644), keys[fino])
	checkCorrupt("Remove", g.Remove("d/f"), keys[fino])
	_, err = g.Inodes().GetAttr(context.Background(), fino)
	checkCorrupt("GetAttr", err, keys[fino])
	// Other files are unaffected.
	wantContent(t, g, "d/big", pattern(5*f.BlockSize(), 1))

	// A corrupt directory inode.
	orig, _, err := e.store.Get(context.Background(), keys[dino])
	must(t, err)
	rewrite(t, e.store, keys[dino], flip(len(f.c.inodeKey(dino))))
	g = e.reopen(t)
	_, err = g.ReadDir("d")
	checkCorrupt("ReadDir", err, keys[dino])
	_, err = g.Stat("d/sub")
	checkCorrupt("Stat through", err, keys[dino])
	checkCorrupt("Mkdir in", g.Mkdir("d/new", 0o755), keys[dino])
	if err := fstest.TestFS(g, "d"); err == nil {
		t.Fatal("fstest.TestFS passed a corrupt tree")
	}

	rewrite(t, e.store, keys[dino], func([]byte) []byte { return orig })
	wantContent(t, e.reopen(t), "d/big", pattern(5*f.BlockSize(), 1))

	// Truncated and emptied values, and a data block.
	bigOrig, _, err := e.store.Get(context.Background(), keys[bigIno])
	must(t, err)
	for _, fn := range []func([]byte) []byte{
		func(b []byte) []byte { return b[:len(b)/2] },
		func(b []byte) []byte { return []byte{} },
		func(b []byte) []byte { return append(slices.Clone(b), 0) },
		func(b []byte) []byte { return b[:len(b)-1] },
	} {
		rewrite(t, e.store, keys[bigIno], func([]byte) []byte { return fn(slices.Clone(bigOrig)) })
		_, err := e.reopen(t).ReadFile("d/big")
		checkCorrupt("ReadFile of a mangled inode", err, keys[bigIno])
	}
	rewrite(t, e.store, keys[bigIno], func([]byte) []byte { return bigOrig })
	if l, ok := e.store.(backend.Lister); ok {
		var bkey string
		err := l.List(context.Background(), f.c.prefix+"b/", func(k string) error { bkey = k; return errors.New("stop") })
		if bkey != "" {
			rewrite(t, e.store, bkey, flip(3))
			// Some file holds this block; reading everything must report it.
			g := e.reopen(t)
			var rerr error
			_ = fs.WalkDir(g, ".", func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					if _, err := g.ReadFile(p); err != nil && rerr == nil {
						rerr = err
					}
				}
				return nil
			})
			_ = err
			if rerr != nil {
				checkCorrupt("ReadFile of a corrupt block", rerr, bkey)
			}
		}
	}
}

func testFormatOpen(t *testing.T, e *env) {
	ctx := context.Background()
	// Format twice.
	_, err := Format(ctx, e.store, nil)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second Format: %v, want fs.ErrExist", err)
	}
	// The first FS still works.
	writeFile(t, e.fs, "f", []byte("x"))
	wantContent(t, e.reopen(t), "f", []byte("x"))
	// Another name in the same store is not formatted.
	_, err = Open(ctx, e.store, &Options{Name: "other"})
	if !errors.Is(err, ErrNotFormatted) {
		t.Fatalf("Open of an unformatted name: %v", err)
	}
	// A fresh store.
	s := e.new(t)
	_, err = Open(ctx, s, nil)
	if !errors.Is(err, ErrNotFormatted) {
		t.Fatalf("Open of an empty store: %v", err)
	}
	// Two filesystems in one store stay apart.
	o, err := Format(ctx, s, &Options{Name: "fs2", BlockSize: 8192})
	must(t, err)
	writeFile(t, o, "mine", []byte("2"))
	o2, err := Open(ctx, s, &Options{Name: "fs2"})
	must(t, err)
	if o2.BlockSize() != 8192 {
		t.Fatalf("block size %d after Open", o2.BlockSize())
	}
	wantContent(t, o2, "mine", []byte("2"))
	d, err := Format(ctx, s, nil)
	must(t, err)
	notExist(t, d, "mine")
	// Invalid options.
	for _, o := range []*Options{{Name: "bad name"}, {Name: "a/b"}, {BlockSize: 1000}, {BlockSize: 3 << 10}, {BlockSize: 32 << 20}} {
		if _, err := Format(ctx, e.new(t), o); !errors.Is(err, fs.ErrInvalid) {
			t.Fatalf("Format %+v: %v, want fs.ErrInvalid", o, err)
		}
	}
	// An unknown format version, written by hand.
	sb := e.fs.c.sb
	sb.version = formatVersion + 1
	rewrite(t, e.store, e.fs.c.superKey(), func([]byte) []byte { return encodeSuperblock(&sb) })
	_, err = Open(ctx, e.store, nil)
	if !errors.Is(err, ErrFormatVersion) {
		t.Fatalf("Open of format version %d: %v", sb.version, err)
	}
	// A corrupt superblock.
	rewrite(t, e.store, e.fs.c.superKey(), func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
	_, err = Open(ctx, e.store, nil)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a corrupt superblock: %v", err)
	}
}

func testCancel(t *testing.T, e *env) {
	writeFile(t, e.fs, "f", pattern(3*4096, 1))
	must(t, e.fs.Mkdir("d", 0o755))
	blocker := &blockingStore{Store: e.store}
	f, err := Open(context.Background(), blocker, &Options{AttrTimeout: -1, CacheSize: -1})
	must(t, err)
	blocker.arm()
	defer blocker.release()
	ops := map[string]func(f *FS) error{
		"Stat":      func(f *FS) error { _, err := f.Stat("f"); return err },
		"ReadFile":  func(f *FS) error { _, err := f.ReadFile("f"); return err },
		"WriteFile": func(f *FS) error { return f.WriteFile("g", []byte("x"), 0o644) },
		"Mkdir":     func(f *FS) error { return f.Mkdir("d/x", 0o755) },
		"Rename":    func(f *FS) error { return f.Rename("f", "d/f") },
		"ReadDir":   func(f *FS) error { _, err := f.ReadDir("d"); return err },
	}
	for name, op := range ops {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		err := op(f.WithContext(ctx))
		cancel()
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: returned after %v", name, d)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: %v, want context.DeadlineExceeded", name, err)
		}
	}
	// A cancelled (not expired) context is context.Canceled.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := f.WithContext(ctx).Stat("f"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Stat: %v", err)
	}
	// A File opened through a context-bound FS is bounded by it.
	blocker.release()
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	file, err := f.WithContext(ctx).OpenFile("f", os.O_RDWR, 0)
	must(t, err)
	blocker.arm()
	start := time.Now()
	_, err = file.ReadAt(make([]byte, 10), 5000)
	if d := time.Since(start); d > 2*time.Second || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("File.ReadAt: %v after %v", err, d)
	}
	blocker.release()
	_ = file.Close()
	// The store is intact and usable after the cancelled operations.
	wantContent(t, e.reopen(t), "f", pattern(3*4096, 1))
}

func testOpTimeout(t *testing.T, e *env) {
	writeFile(t, e.fs, "f", []byte("x"))
	blocker := &blockingStore{Store: e.store}
	f, err := Open(context.Background(), blocker, &Options{AttrTimeout: -1, OpTimeout: 150 * time.Millisecond})
	must(t, err)
	wantContent(t, f, "f", []byte("x")) // works while the store answers
	blocker.arm()
	defer blocker.release()
	for name, op := range map[string]func() error{
		"Stat":     func() error { _, err := f.Stat("f"); return err },
		"Create":   func() error { _, err := f.Create("g"); return err },
		"MkdirAll": func() error { return f.MkdirAll("a/b/c", 0o755) },
		"Remove":   func() error { return f.Remove("f") },
	} {
		start := time.Now()
		err := op()
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: returned after %v", name, d)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: %v, want context.DeadlineExceeded", name, err)
		}
	}
	blocker.release()
	wantContent(t, f, "f", []byte("x"))
}

// blockingStore hangs every operation, while armed, until its context is
// done: a store that stopped answering.
type blockingStore struct {
	backend.Store
	mu    sync.Mutex
	armed chan struct{} // closed when released; nil when not armed
}

func (b *blockingStore) arm() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.armed == nil {
		b.armed = make(chan struct{})
	}
}

func (b *blockingStore) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.armed != nil {
		close(b.armed)
		b.armed = nil
	}
}

func (b *blockingStore) wait(ctx context.Context) error {
	b.mu.Lock()
	ch := b.armed
	b.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-ch:
		return nil
	}
}

func (b *blockingStore) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	if err := b.wait(ctx); err != nil {
		return nil, 0, err
	}
	return b.Store.Get(ctx, key)
}

func (b *blockingStore) CAS(ctx context.Context, key string, old backend.Version, v []byte) (backend.Version, error) {
	if err := b.wait(ctx); err != nil {
		return 0, err
	}
	return b.Store.CAS(ctx, key, old, v)
}

func (b *blockingStore) Delete(ctx context.Context, key string, old backend.Version) error {
	if err := b.wait(ctx); err != nil {
		return err
	}
	return b.Store.Delete(ctx, key, old)
}

func testPersistence(t *testing.T, e *env) {
	f := e.fs
	files, paths := populate(t, f)
	g := e.reopen(t)
	for p, data := range files {
		wantContent(t, g, p, data)
	}
	if err := fstest.TestFS(g, paths...); err != nil {
		t.Fatal(err)
	}
	checkTree(t, g, ".")
}
