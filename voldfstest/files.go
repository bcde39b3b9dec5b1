package voldfstest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs"
)

func testCreate(t *testing.T, e *env) {
	f := e.fs
	file, err := f.Create("a")
	require.NoError(t, err)
	_, err = file.Write([]byte("hello"))
	require.NoError(t, err)
	require.NoError(t, file.Close())
	wantContent(t, f, "a", []byte("hello"))

	// Create truncates an existing file.
	file, err = f.Create("a")
	require.NoError(t, err)
	require.NoError(t, file.Close())
	wantContent(t, f, "a", nil)

	require.NoError(t, f.Mkdir("d", 0o755))
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
	require.NoError(t, f.Mkdir("d", 0o755))

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
		require.NoError(t, err)
		buf := make([]byte, 3)
		_, rerr := file.Read(buf)
		_, werr := file.WriteAt([]byte("x"), 100)
		if tc.canRead {
			require.NoError(t, rerr)
			if string(buf) != "012" {
				t.Fatalf("flag %#x: read %q", tc.flag, buf)
			}
		} else {
			wantErr(t, fmt.Sprintf("read with flag %#x", tc.flag), rerr, syscall.EBADF, "path")
		}
		if tc.canWrit {
			require.NoError(t, werr)
			require.NoError(t, file.Truncate(10))
		} else {
			wantErr(t, fmt.Sprintf("write with flag %#x", tc.flag), werr, syscall.EBADF, "path")
			wantErr(t, "truncate read-only", file.Truncate(0), syscall.EBADF, "path")
		}
		require.NoError(t, file.Close())
	}
	wantContent(t, f, "f", []byte("0123456789"))

	// O_CREATE makes a file with perm; an existing file is opened as is.
	file, err := f.OpenFile("new", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	require.NoError(t, err)
	require.NoError(t, file.Close())
	if m := attr(t, f, "new").FileMode(); m != 0o640 {
		t.Fatalf("new: mode %v, want 0640", m)
	}
	file, err = f.OpenFile("f", os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	require.NoError(t, file.Close())
	wantContent(t, f, "f", []byte("0123456789"))
	if m := attr(t, f, "f").FileMode(); m != 0o644 {
		t.Fatalf("f: mode %v changed by O_CREATE of an existing file", m)
	}

	// O_TRUNC.
	file, err = f.OpenFile("f", os.O_WRONLY|os.O_TRUNC, 0)
	require.NoError(t, err)
	if fi, err := file.Stat(); err != nil || fi.Size() != 0 {
		t.Fatalf("after O_TRUNC: %v %v", fi, err)
	}
	_, err = file.Write([]byte("ab"))
	require.NoError(t, err)
	require.NoError(t, file.Close())
	wantContent(t, f, "f", []byte("ab"))

	// O_TRUNC of a multi-block file frees it and reads as empty.
	writeFile(t, f, "big", pattern(5*4096+7, 1))
	file, err = f.OpenFile("big", os.O_RDWR|os.O_TRUNC, 0)
	require.NoError(t, err)
	require.NoError(t, file.Close())
	wantContent(t, f, "big", nil)

	// O_CREATE through a symlink creates the target.
	require.NoError(t, f.Symlink("target", "ln"))
	file, err = f.OpenFile("ln", os.O_WRONLY|os.O_CREATE, 0o644)
	if err == nil {
		_, err = file.Write([]byte("via link"))
		require.NoError(t, err)
		require.NoError(t, file.Close())
		wantContent(t, f, "target", []byte("via link"))
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("O_CREATE through a dangling symlink: %v", err)
	}
}

func testAppend(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "log", []byte("start:"))
	a, err := f.OpenFile("log", os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = a.Write([]byte("1"))
	require.NoError(t, err)
	// O_APPEND ignores the offset.
	_, err = a.Seek(0, io.SeekStart)
	require.NoError(t, err)
	_, err = a.Write([]byte("2"))
	require.NoError(t, err)
	require.NoError(t, a.Sync())
	wantContent(t, f, "log", []byte("start:12"))

	// Another handle extends the file; the next append goes after that.
	w, err := f.OpenFile("log", os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = w.WriteAt([]byte("<other>"), 8)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	_, err = a.Write([]byte("3"))
	require.NoError(t, err)
	require.NoError(t, a.Close())
	wantContent(t, f, "log", []byte("start:12<other>3"))

	// WriteAt on an O_APPEND file is an error.
	a, err = f.OpenFile("log", os.O_RDWR|os.O_APPEND, 0)
	require.NoError(t, err)
	if _, err := a.WriteAt([]byte("x"), 0); err == nil {
		t.Fatal("WriteAt on O_APPEND file succeeded")
	}
	// An O_RDWR|O_APPEND reader sees its own appends.
	_, err = a.Write(bytes.Repeat([]byte("z"), 3*4096))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = a.ReadAt(buf, 16)
	require.NoError(t, err)
	if string(buf) != "zzzz" {
		t.Fatalf("read own append: %q", buf)
	}
	require.NoError(t, a.Close())
	if fi, err := f.Stat("log"); err != nil || fi.Size() != 16+3*4096 {
		t.Fatalf("log size: %v %v", fi, err)
	}

	// O_CREATE|O_APPEND on a new file.
	a, err = f.OpenFile("new", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	require.NoError(t, err)
	for i := range 100 {
		_, err = fmt.Fprintf(a, "%03d\n", i)
		require.NoError(t, err)
	}
	require.NoError(t, a.Close())
	got := readFile(t, f, "new")
	if len(got) != 400 || !bytes.HasPrefix(got, []byte("000\n001\n")) || !bytes.HasSuffix(got, []byte("099\n")) {
		t.Fatalf("appended: %q", got)
	}
}

func testFileOps(t *testing.T, e *env) {
	f := e.fs
	bs := f.BlockSize()
	file, err := f.OpenFile("f", os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
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
	}{{-1, io.SeekStart}, {-8, io.SeekCurrent}, {-int64(len(data)) - 1, io.SeekEnd}, {0, 5}} {
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
	require.NoError(t, err)
	_, err = file.Write([]byte("tail"))
	require.NoError(t, err)
	fi, err := file.Stat()
	require.NoError(t, err)
	if fi.Size() != int64(len(data))+104 || fi.Name() != "f" || fi.Mode() != 0o644 {
		t.Fatalf("Stat: %v", fi)
	}
	require.NoError(t, file.Sync())
	want := append(append(slices.Clone(data), make([]byte, 100)...), "tail"...)
	wantContent(t, e.reopen(t), "f", want)
	// Read to EOF with Read.
	_, err = file.Seek(int64(len(want))-2, io.SeekStart)
	require.NoError(t, err)
	n, err = file.Read(buf)
	if n != 2 || (err != nil && err != io.EOF) {
		t.Fatalf("Read at end: %d %v", n, err)
	}
	n, err = file.Read(buf)
	if n != 0 || err != io.EOF {
		t.Fatalf("Read past end: %d %v", n, err)
	}
	require.NoError(t, file.Close())
	// Close twice: an error wrapping fs.ErrClosed, no panic.
	wantErr(t, "second Close", file.Close(), fs.ErrClosed, "path")
	// Sync with nothing buffered is fine; io.Copy works.
	rf, err := f.Open("f")
	require.NoError(t, err)
	var sb bytes.Buffer
	if _, err := io.Copy(&sb, rf); err != nil || !bytes.Equal(sb.Bytes(), want) {
		t.Fatalf("io.Copy: %v", err)
	}
	require.NoError(t, rf.(*voldfs.File).Sync())
	require.NoError(t, rf.Close())
	// A file opened for reading is a *File with Name and Ino.
	rf, err = f.Open("f")
	require.NoError(t, err)
	if ff := rf.(*voldfs.File); ff.Name() != "f" || ff.Ino() != attr(t, f, "f").Ino {
		t.Fatalf("Name %q Ino %d", ff.Name(), ff.Ino())
	}
	require.NoError(t, rf.Close())
	// A directory opened with OpenFile is readable as a directory only.
	require.NoError(t, f.Mkdir("d", 0o755))
	dfile, err := f.OpenFile("d", os.O_RDONLY, 0)
	require.NoError(t, err)
	_, err = dfile.Read(buf)
	wantErr(t, "Read of a directory", err, syscall.EISDIR, "path")
	ents, err := dfile.ReadDir(-1)
	if err != nil || len(ents) != 0 {
		t.Fatalf("ReadDir: %v %v", ents, err)
	}
	require.NoError(t, dfile.Close())
	// ReadDir on a regular file.
	file2, err := f.OpenFile("f", os.O_RDONLY, 0)
	require.NoError(t, err)
	_, err = file2.ReadDir(-1)
	wantErr(t, "ReadDir of a file", err, syscall.ENOTDIR, "path")
	require.NoError(t, file2.Close())
}

func testClosedFile(t *testing.T, e *env) {
	f := e.fs
	writeFile(t, f, "f", []byte("data"))
	file, err := f.OpenFile("f", os.O_RDWR, 0)
	require.NoError(t, err)
	require.NoError(t, file.Close())
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
	require.NoError(t, err)
	require.NoError(t, d.Close())
	_, err = d.(fs.ReadDirFile).ReadDir(-1)
	wantErr(t, "ReadDir on closed dir", err, fs.ErrClosed, "path")
	_, err = d.Stat()
	wantErr(t, "Stat on closed dir", err, fs.ErrClosed, "path")
	wantErr(t, "Close closed dir", d.Close(), fs.ErrClosed, "path")
	// A closed FS.
	g := e.reopen(t)
	require.NoError(t, g.Close())
	_, err = g.Open("f")
	wantErr(t, "Open on closed FS", err, fs.ErrClosed, "path")
	wantErr(t, "Mkdir on closed FS", g.Mkdir("x", 0o755), fs.ErrClosed, "path")
	if err := g.Close(); err == nil {
		t.Fatal("second FS.Close succeeded")
	}
}
