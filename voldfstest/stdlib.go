package voldfstest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs"
)

func testGlobSub(t *testing.T, e *env) {
	f := e.fs
	require.NoError(t, f.MkdirAll("a/b/c", 0o755))
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
		require.NoError(t, err)
		if !slices.Equal(got, tc.want) {
			t.Fatalf("Glob %q: %v, want %v", tc.pattern, got, tc.want)
		}
	}
	if _, err := f.Glob("a/[x"); !errors.Is(err, path.ErrBadPattern) {
		t.Fatalf("bad pattern: %v", err)
	}

	sub, err := f.Sub("a/b")
	require.NoError(t, err)
	b, err := fs.ReadFile(sub, "c/v.go")
	if err != nil || string(b) != "a/b/c/v.go" {
		t.Fatalf("Sub read: %q %v", b, err)
	}
	got, err := fs.Glob(sub, "*.go")
	require.NoError(t, err)
	if !slices.Equal(got, []string{"w.go"}) {
		t.Fatalf("Sub glob: %v", got)
	}
	require.NoError(t, fstest.TestFS(sub, "w.go", "c/v.go"))
	// ".." and absolute symlinks stop at the Sub root.
	sf := sub.(*voldfs.FS)
	require.NoError(t, sf.Symlink("/w.go", "c/abs"))
	b, err = fs.ReadFile(sub, "c/abs")
	if err != nil || string(b) != "a/b/w.go" {
		t.Fatalf("absolute symlink in Sub: %q %v", b, err)
	}
	require.NoError(t, sf.Symlink("../../..", "c/up"))
	ents, err := fs.ReadDir(sub, "c/up")
	require.NoError(t, err)
	if !slices.Contains(names(ents), "w.go") {
		t.Fatalf("..: %v", names(ents))
	}
	// Writes through a Sub land in the tree.
	require.NoError(t, sf.WriteFile("new", []byte("n"), 0o644))
	wantContent(t, f, "a/b/new", []byte("n"))
	// Sub follows its directory across a rename.
	require.NoError(t, f.Rename("a/b", "moved"))
	b, err = fs.ReadFile(sub, "new")
	if err != nil || string(b) != "n" {
		t.Fatalf("Sub after rename: %q %v", b, err)
	}
	_, err = f.Sub("a/x.go")
	wantErr(t, "Sub of a file", err, syscall.ENOTDIR, "path")
	_, err = f.Sub("missing")
	wantErr(t, "Sub missing", err, fs.ErrNotExist, "path")
}

// populate builds a tree for the standard-library checks and returns its
// files (path -> content) and all paths.
func populate(t *testing.T, f *voldfs.FS) (map[string][]byte, []string) {
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
	require.NoError(t, f.MkdirAll("emptydir/inner", 0o755))
	for p, data := range files {
		dir := path.Dir(p)
		require.NoError(t, f.MkdirAll(dir, 0o755))
		writeFile(t, f, p, data)
	}
	require.NoError(t, f.Symlink("a/b/multi", "link-to-file"))
	require.NoError(t, f.Symlink("b/c", "a/link-to-dir"))
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
	require.NoError(t, fstest.TestFS(f, paths...))
	// A second FS on the store passes too (nothing from caches).
	if f.BlockSize() <= 64<<10 {
		require.NoError(t, fstest.TestFS(e.reopen(t), paths...))
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
	require.NoError(t, err)
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
		require.NoError(t, err)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
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
	require.NoError(t, err)
	b, err := io.ReadAll(hf)
	require.NoError(t, err)
	require.NoError(t, hf.Close())
	if string(b) != "top\n" {
		t.Fatalf("http.FS read %q", b)
	}

	// os.CopyFS copies everything out; compare with the original.
	dir := t.TempDir()
	require.NoError(t, f.Remove("link-to-file")) // CopyFS does not copy symlinks
	require.NoError(t, f.Remove("a/link-to-dir"))
	require.NoError(t, os.CopyFS(dir, f))
	for p, data := range files {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("CopyFS %s: %v, %d bytes, want %d", p, err, len(got), len(data))
		}
	}
	var copied int
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
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

func testPersistence(t *testing.T, e *env) {
	f := e.fs
	files, paths := populate(t, f)
	g := e.reopen(t)
	for p, data := range files {
		wantContent(t, g, p, data)
	}
	require.NoError(t, fstest.TestFS(g, paths...))
	checkTree(t, g, ".")
}
