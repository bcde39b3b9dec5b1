package voldfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

// Bad input: every call gets the right error, nothing panics, and the
// files around it still read back.

func badSetup(t *testing.T) (*FS, *memory.Store) {
	t.Helper()
	s := memory.New()
	f, err := Format(context.Background(), s, &Options{BlockSize: 4096, AttrTimeout: -1, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Mkdir("d", 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range badFiles {
		if err := f.WriteFile(name, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f, s
}

var badFiles = map[string][]byte{
	"d/small": []byte("small inline file"),
	"d/big":   bytes.Repeat([]byte("0123456789"), 4096*40), // two index levels at 4 KiB
	"keep":    bytes.Repeat([]byte("k"), 9000),
}

// badIntact fails unless every file named in skip's complement reads back.
func badIntact(t *testing.T, f *FS, skip ...string) {
	t.Helper()
	for name, want := range badFiles {
		if contains(skip, name) {
			continue
		}
		got, err := f.ReadFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s damaged: %d bytes, %v", name, len(got), err)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// isAny reports whether err wraps one of targets.
func isAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

func TestBadPaths(t *testing.T) {
	f, _ := badSetup(t)
	long := strings.Repeat("n", 256)
	invalid := []error{fs.ErrInvalid, syscall.EINVAL}
	for _, tc := range []struct {
		path string
		want []error
	}{
		{"bad\xffutf8", invalid},
		{"nul\x00name", invalid},
		{"d/nul\x00", invalid},
		{"/abs", invalid},
		{"d//x", invalid},
		{"d/", invalid},
		{"", invalid},
		{"./d", invalid},
		{"d/../keep", invalid},
		{"..", invalid},
		{long, []error{syscall.ENAMETOOLONG}},
		{"d/" + long, []error{syscall.ENAMETOOLONG}},
	} {
		ops := map[string]func() error{
			"create":   func() error { _, err := f.Create(tc.path); return err },
			"open":     func() error { _, err := f.Open(tc.path); return err },
			"stat":     func() error { _, err := f.Stat(tc.path); return err },
			"mkdir":    func() error { return f.Mkdir(tc.path, 0o755) },
			"remove":   func() error { return f.Remove(tc.path) },
			"rename":   func() error { return f.Rename("keep", tc.path) },
			"rename2":  func() error { return f.Rename(tc.path, "x") },
			"symlink":  func() error { return f.Symlink("keep", tc.path) },
			"link":     func() error { return f.Link("keep", tc.path) },
			"truncate": func() error { return f.Truncate(tc.path, 0) },
			"readdir":  func() error { _, err := f.ReadDir(tc.path); return err },
			"write":    func() error { return f.WriteFile(tc.path, []byte("x"), 0o644) },
		}
		for op, fn := range ops {
			if err := fn(); !isAny(err, tc.want...) {
				t.Errorf("%s(%q) = %v, want %v", op, tc.path, err, tc.want)
			}
		}
	}
	// "." names the root: it cannot be created, removed or renamed.
	for op, fn := range map[string]func() error{
		"mkdir":  func() error { return f.Mkdir(".", 0o755) },
		"remove": func() error { return f.Remove(".") },
		"rename": func() error { return f.Rename(".", "x") },
		"create": func() error { _, err := f.Create("."); return err },
	} {
		if err := fn(); err == nil {
			t.Errorf("%s(\".\") succeeded", op)
		}
	}
	badIntact(t, f)
}

func TestBadNamesInodeAPI(t *testing.T) {
	f, _ := badSetup(t)
	attr, err := f.Inodes().Lookup(context.Background(), RootIno, "d")
	if err != nil {
		t.Fatal(err)
	}
	keep, err := f.Inodes().Lookup(context.Background(), RootIno, "keep")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want error
	}{
		{"", syscall.EINVAL},
		{".", syscall.EINVAL},
		{"..", syscall.EINVAL},
		{"a/b", syscall.EINVAL},
		{"/", syscall.EINVAL},
		{"nul\x00", syscall.EINVAL},
		{strings.Repeat("n", 256), syscall.ENAMETOOLONG},
	} {
		d := attr.Ino
		ops := map[string]func() error{
			"lookup": func() error { _, err := f.Inodes().Lookup(context.Background(), d, tc.name); return err },
			"create": func() error {
				_, err := f.Inodes().Create(context.Background(), d, tc.name, os.O_RDWR, 0o644, nil)
				return err
			},
			"mkdir":   func() error { _, err := f.Inodes().Mkdir(context.Background(), d, tc.name, 0o755, nil); return err },
			"symlink": func() error { _, err := f.Inodes().Symlink(context.Background(), d, tc.name, "x", nil); return err },
			"link":    func() error { _, err := f.Inodes().Link(context.Background(), keep.Ino, d, tc.name); return err },
			"unlink":  func() error { return f.Inodes().Unlink(context.Background(), d, tc.name) },
			"rmdir":   func() error { return f.Inodes().Rmdir(context.Background(), d, tc.name) },
			"rename":  func() error { return f.Inodes().Rename(context.Background(), RootIno, "keep", d, tc.name, 0) },
			"rename2": func() error { return f.Inodes().Rename(context.Background(), d, tc.name, RootIno, "x", 0) },
		}
		for op, fn := range ops {
			if err := fn(); !errors.Is(err, tc.want) {
				t.Errorf("%s(%q) = %v, want %v", op, tc.name, err, tc.want)
			}
		}
	}
	// Invalid UTF-8 is a valid name at the inode level (the kernel passes
	// bytes), and must round-trip.
	if _, err := f.Inodes().Mkdir(context.Background(), attr.Ino, "raw\xff", 0o755, nil); err != nil {
		t.Errorf("mkdir with a non-UTF-8 name: %v", err)
	} else if err := f.Inodes().Rmdir(context.Background(), attr.Ino, "raw\xff"); err != nil {
		t.Errorf("rmdir with a non-UTF-8 name: %v", err)
	}
	badIntact(t, f)
}

func TestBadOffsets(t *testing.T) {
	f, _ := badSetup(t)
	file, err := f.OpenFile("d/small", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	const max = 1<<63 - 1
	if _, err := file.WriteAt([]byte("x"), max); !errors.Is(err, syscall.EFBIG) {
		t.Errorf("WriteAt at 2^63-1 = %v, want EFBIG", err)
	}
	if _, err := file.WriteAt([]byte("x"), -1); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("WriteAt at -1 = %v, want EINVAL", err)
	}
	if _, err := file.ReadAt(make([]byte, 4), -1); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("ReadAt at -1 = %v, want EINVAL", err)
	}
	if n, err := file.ReadAt(make([]byte, 4), max); n != 0 || err != io.EOF {
		t.Errorf("ReadAt at 2^63-1 = %d, %v, want 0, EOF", n, err)
	}
	if _, err := file.Seek(-1, io.SeekStart); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Seek to -1 = %v, want EINVAL", err)
	}
	if _, err := file.Seek(max, io.SeekStart); err != nil {
		t.Errorf("Seek to 2^63-1: %v", err)
	} else if _, err := file.Seek(1, io.SeekCurrent); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Seek past 2^63-1 = %v, want EINVAL (overflow)", err)
	}
	if _, err := file.Seek(0, 7); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Seek whence 7 = %v, want EINVAL", err)
	}
	if _, err := file.Seek(max, io.SeekStart); err == nil {
		if _, err := file.Write([]byte("xy")); !errors.Is(err, syscall.EFBIG) {
			t.Errorf("Write at 2^63-1 = %v, want EFBIG", err)
		}
	}
	if err := file.Truncate(-1); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Truncate(-1) = %v, want EINVAL", err)
	}
	if err := f.Truncate("d/small", -1); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("FS.Truncate(-1) = %v, want EINVAL", err)
	}
	if err := file.Close(); err != nil {
		t.Errorf("close after bad offsets: %v", err)
	}
	badIntact(t, f)
}

func TestBadFileUse(t *testing.T) {
	f, _ := badSetup(t)
	// Writing a directory, listing a file.
	if _, err := f.OpenFile("d", os.O_RDWR, 0); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("open a directory for writing = %v, want EISDIR", err)
	}
	if err := f.WriteFile("d", []byte("x"), 0o644); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("WriteFile on a directory = %v, want EISDIR", err)
	}
	if err := f.Truncate("d", 0); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("truncate a directory = %v, want EISDIR", err)
	}
	if _, err := f.ReadFile("d"); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("ReadFile on a directory = %v, want EISDIR", err)
	}
	if _, err := f.ReadDir("keep"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("ReadDir on a file = %v, want ENOTDIR", err)
	}
	if _, err := f.Stat("keep/x"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Stat through a file = %v, want ENOTDIR", err)
	}
	file, err := f.OpenFile("keep", os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.ReadDir(-1); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("File.ReadDir on a file = %v, want ENOTDIR", err)
	}
	if _, err := file.Write([]byte("x")); !errors.Is(err, syscall.EBADF) {
		t.Errorf("write to a read-only file = %v, want EBADF", err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	// A closed File.
	for op, fn := range map[string]func() error{
		"read":     func() error { _, err := file.Read(make([]byte, 1)); return err },
		"readat":   func() error { _, err := file.ReadAt(make([]byte, 1), 0); return err },
		"write":    func() error { _, err := file.Write([]byte("x")); return err },
		"writeat":  func() error { _, err := file.WriteAt([]byte("x"), 0); return err },
		"seek":     func() error { _, err := file.Seek(0, io.SeekStart); return err },
		"stat":     func() error { _, err := file.Stat(); return err },
		"sync":     func() error { return file.Sync() },
		"truncate": func() error { return file.Truncate(0) },
		"chmod":    func() error { return file.Chmod(0o600) },
		"readdir":  func() error { _, err := file.ReadDir(1); return err },
		"close":    func() error { return file.Close() },
	} {
		if err := fn(); !errors.Is(err, fs.ErrClosed) {
			t.Errorf("%s on a closed File = %v, want ErrClosed", op, err)
		}
	}
	badIntact(t, f)
}

// TestBadStoreValues damages one stored value at a time (truncated, one bit
// flipped) and checks that reading through it is ErrCorrupt, that nothing
// panics, and that the files not behind it still read back.
func TestBadStoreValues(t *testing.T) {
	ctx := context.Background()
	type target struct {
		name   string
		key    func(f *FS) string
		victim []string // files that may fail
		read   func(f *FS) error
	}
	inodeOf := func(f *FS, p string) uint64 {
		ino, _, err := f.walk(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		return ino
	}
	ninode := func(f *FS, p string) *inode {
		_, n, err := f.walk(ctx, p, false)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	readAll := func(p string) func(f *FS) error {
		return func(f *FS) error { _, err := f.ReadFile(p); return err }
	}
	targets := []target{
		{"file inode", func(f *FS) string { return f.c.inodeKey(inodeOf(f, "d/small")) }, []string{"d/small"}, readAll("d/small")},
		{"data block", func(f *FS) string {
			n := ninode(f, "d/big")
			var data blockRef
			f.c.treeRefs(ctx, n, func(r blockRef, k byte) error {
				if k == recData && data.isZero() {
					data = r
				}
				return nil
			})
			return f.c.blockKey(data)
		}, []string{"d/big"}, readAll("d/big")},
		{"index node", func(f *FS) string { return f.c.blockKey(ninode(f, "d/big").root) }, []string{"d/big"}, readAll("d/big")},
		{"directory inode", func(f *FS) string { return f.c.inodeKey(inodeOf(f, "d")) }, []string{"d/small", "d/big"},
			func(f *FS) error { _, err := f.ReadDir("d"); return err }},
	}
	for _, tg := range targets {
		for _, damage := range []struct {
			name string
			fn   func([]byte) []byte
		}{
			{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
			{"bitflip", func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 0x10; return b }},
			{"empty", func(b []byte) []byte { return []byte{} }},
		} {
			t.Run(tg.name+"/"+damage.name, func(t *testing.T) {
				f, s := badSetup(t)
				key := tg.key(f)
				store := backend.Store(s)
				b, ver, err := store.Get(ctx, key)
				if err != nil {
					t.Fatalf("get %s: %v", key, err)
				}
				if _, err := store.CAS(ctx, key, ver, damage.fn(b)); err != nil {
					t.Fatal(err)
				}
				g, err := Open(ctx, s, &Options{AttrTimeout: -1, CacheSize: -1})
				if err != nil {
					t.Fatal(err)
				}
				if err := tg.read(g); !errors.Is(err, ErrCorrupt) {
					t.Errorf("reading through a %s %s = %v, want ErrCorrupt", damage.name, tg.name, err)
				}
				badIntact(t, g, tg.victim...)
				r, err := g.Fsck(ctx, FsckOptions{})
				if err != nil {
					// A damaged directory may stop the walk; the error
					// must say why.
					if !errors.Is(err, ErrCorrupt) {
						t.Errorf("fsck: %v, want ErrCorrupt", err)
					}
				} else if r.OK() {
					t.Errorf("fsck found nothing wrong with a %s %s", damage.name, tg.name)
				}
			})
		}
	}
	// A damaged superblock: Open refuses with ErrCorrupt.
	for _, damage := range []func([]byte) []byte{
		func(b []byte) []byte { return b[:len(b)-1] },
		func(b []byte) []byte { b = bytes.Clone(b); b[3] ^= 1; return b },
	} {
		_, s := badSetup(t)
		key := DefaultName + "/super"
		b, ver, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CAS(ctx, key, ver, damage(b)); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(ctx, s, nil); !errors.Is(err, ErrCorrupt) {
			t.Errorf("open with a damaged superblock = %v, want ErrCorrupt", err)
		}
	}
	// A damaged directory trie node (a large directory spills into blocks).
	t.Run("directory node", func(t *testing.T) {
		f, s := badSetup(t)
		if err := f.Mkdir("many", 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 400 {
			if err := f.WriteFile("many/"+strings.Repeat("x", 40)+string(rune('a'+i%26))+strings.Repeat("y", i/26), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		n := ninode(f, "many")
		var ref blockRef
		dirRefs(ctx, dirNodes{f.c}, n.inline, func(r blockRef) error {
			if ref.isZero() {
				ref = r
			}
			return nil
		})
		if ref.isZero() {
			t.Skip("directory stayed inline")
		}
		key := f.c.blockKey(ref)
		b, ver, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Clone(b)
		b[len(b)/2] ^= 4
		if _, err := s.CAS(ctx, key, ver, b); err != nil {
			t.Fatal(err)
		}
		g, err := Open(ctx, s, &Options{AttrTimeout: -1, CacheSize: -1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.ReadDir("many"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ReadDir through a damaged trie node = %v, want ErrCorrupt", err)
		}
		badIntact(t, g)
	})
}

// TestLegacyDirBlocks checks that a store written before directory nodes
// lost their second frame (the block layer used to seal the node record
// again) keeps opening: every directory block rewritten in the old layout
// still lists, looks up, changes and checks clean.
func TestLegacyDirBlocks(t *testing.T) {
	ctx := context.Background()
	f, s := badSetup(t)
	if err := f.Mkdir("many", 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 600
	for i := range n {
		if err := f.WriteFile(fmt.Sprintf("many/%s-%04d", strings.Repeat("x", 40), i), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, dn, err := f.walk(ctx, "many", false)
	if err != nil {
		t.Fatal(err)
	}
	rewrote := 0
	err = dirRefs(ctx, dirNodes{f.c}, dn.inline, func(r blockRef) error {
		key := f.c.blockKey(r)
		b, ver, err := s.Get(ctx, key)
		if err != nil {
			return err
		}
		if len(b) < 3 || b[2] == recDirNode {
			t.Fatalf("dir block %s is not a record with one frame: % x", key, b[:min(len(b), 8)])
		}
		if _, err := s.CAS(ctx, key, ver, seal(recDirNode, b)); err != nil {
			return err
		}
		rewrote++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rewrote == 0 {
		t.Fatal("directory stayed inline")
	}
	g, err := Open(ctx, s, &Options{AttrTimeout: -1, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	ents, err := g.ReadDir("many")
	if err != nil || len(ents) != n {
		t.Fatalf("ReadDir over %d legacy blocks: %d entries, %v; want %d", rewrote, len(ents), err, n)
	}
	if _, err := g.Stat(fmt.Sprintf("many/%s-%04d", strings.Repeat("x", 40), n/2)); err != nil {
		t.Errorf("lookup through legacy blocks: %v", err)
	}
	for i := range n / 2 {
		if err := g.Remove(fmt.Sprintf("many/%s-%04d", strings.Repeat("x", 40), i)); err != nil {
			t.Fatalf("remove through legacy blocks: %v", err)
		}
	}
	if ents, err := g.ReadDir("many"); err != nil || len(ents) != n-n/2 {
		t.Errorf("after removes: %d entries, %v; want %d", len(ents), err, n-n/2)
	}
	g.c.waitFrees()
	r, err := g.Fsck(ctx, FsckOptions{})
	if err != nil || !r.OK() {
		t.Errorf("fsck over legacy blocks: %v, %+v", err, r)
	}
	badIntact(t, g)
}
