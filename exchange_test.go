package voldfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/voldfs/voldfs/backend/faulty"
	"github.com/voldfs/voldfs/backend/memory"
)

func exchangeFS(t *testing.T) (*FS, *memory.Store) {
	t.Helper()
	s := memory.New()
	f, err := Format(context.Background(), s, &Options{BlockSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a", "b", "a/sub", "a/sub/deep"} {
		if err := f.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string]string{"a/f": "file in a", "a/g": "file g", "b/h": "file in b"} {
		if err := f.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f, s
}

func inoOf(t *testing.T, f *FS, name string) uint64 {
	t.Helper()
	fi, err := f.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*Attr).Ino
}

func wantFsckClean(t *testing.T, f *FS) {
	t.Helper()
	r, err := f.Fsck(context.Background(), FsckOptions{Grace: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.GarbageBlocks != 0 {
		t.Fatalf("fsck: %v, %d garbage blocks", r.Problems, r.GarbageBlocks)
	}
}

func TestRenameExchange(t *testing.T) {
	t.Run("same directory", func(t *testing.T) {
		f, _ := exchangeFS(t)
		fi, gi := inoOf(t, f, "a/f"), inoOf(t, f, "a/g")
		if err := f.RenameFlags("a/f", "a/g", RenameExchange); err != nil {
			t.Fatal(err)
		}
		if inoOf(t, f, "a/f") != gi || inoOf(t, f, "a/g") != fi {
			t.Fatal("inodes not swapped")
		}
		if b, _ := f.ReadFile("a/g"); string(b) != "file in a" {
			t.Fatalf("a/g holds %q", b)
		}
		wantFsckClean(t, f)
	})
	t.Run("directory and file across directories", func(t *testing.T) {
		f, _ := exchangeFS(t)
		sub, h := inoOf(t, f, "a/sub"), inoOf(t, f, "b/h")
		if err := f.RenameFlags("a/sub", "b/h", RenameExchange); err != nil {
			t.Fatal(err)
		}
		if inoOf(t, f, "b/h") != sub || inoOf(t, f, "a/sub") != h {
			t.Fatal("inodes not swapped")
		}
		if b, _ := f.ReadFile("a/sub"); string(b) != "file in b" {
			t.Fatalf("a/sub holds %q", b)
		}
		if _, err := f.Stat("b/h/deep"); err != nil {
			t.Fatalf("moved directory's child: %v", err)
		}
		if ci, err := f.c.getInode(context.Background(), sub, 0); err != nil || ci.n.parent != inoOf(t, f, "b") {
			t.Fatalf("moved directory's .. is not b: %v", err)
		}
		// nlink of the directories follows their subdirectory counts.
		for name, want := range map[string]uint32{"a": 2, "b": 3} {
			fi, _ := f.Stat(name)
			if n := fi.Sys().(*Attr).Nlink; n != want {
				t.Fatalf("%s nlink %d, want %d", name, n, want)
			}
		}
		wantFsckClean(t, f)
	})
	t.Run("errors", func(t *testing.T) {
		f, _ := exchangeFS(t)
		for _, tc := range []struct {
			old, new string
			flags    uint32
			want     error
		}{
			{"a/f", "a/missing", RenameExchange, syscall.ENOENT},
			{"a/missing", "a/f", RenameExchange, syscall.ENOENT},
			{"a", "a/sub/deep", RenameExchange, syscall.EINVAL},
			{"a/sub/deep", "a", RenameExchange, syscall.EINVAL},
			{"a/f", "b/h", RenameExchange | RenameNoReplace, syscall.EINVAL},
		} {
			err := f.RenameFlags(tc.old, tc.new, tc.flags)
			var le *fs.PathError
			if !errors.Is(err, tc.want) || errors.As(err, &le) {
				t.Errorf("exchange %s %s: %v, want a LinkError wrapping %v", tc.old, tc.new, err, tc.want)
			}
		}
		wantFsckClean(t, f)
	})
}

// TestRenameExchangeCrash sweeps "the store stops answering after
// operation i" over a cross-directory exchange: it is one commit, so after
// the crash either both names hold their old files or both are swapped
// (never one file under two names, nothing in lost+found), no rename intent
// is left, and fsck with repair leaves the tree clean.
func TestRenameExchangeCrash(t *testing.T) {
	for _, mode := range []struct {
		name string
		inj  func(i int64) faulty.Injector
	}{{"stops", faulty.After}, {"lost reply", faulty.Ambiguous}} {
		t.Run(mode.name, func(t *testing.T) { exchangeSweep(t, mode.inj) })
	}
}

func exchangeSweep(t *testing.T, inj func(i int64) faulty.Injector) {
	ctx := context.Background()
	for i := int64(0); ; i++ {
		f0, s := exchangeFS(t)
		f0.WaitFrees()
		fs := faulty.Wrap(s, nil)
		f, err := Open(ctx, fs, nil)
		if err != nil {
			t.Fatal(err)
		}
		fs.SetInjector(inj(fs.Ops() + i))
		xerr := f.RenameFlags("a/f", "b/h", RenameExchange)
		f.WaitFrees()
		fs.SetInjector(nil)
		if ageIntent(t, s) {
			t.Fatalf("crash after %d: the exchange left a rename intent", i)
		}
		g, err := Open(ctx, s, nil)
		if err != nil {
			t.Fatalf("crash after %d: reopen: %v", i, err)
		}
		if _, err := g.Fsck(ctx, FsckOptions{Repair: true, GC: true, Grace: -1}); err != nil {
			t.Fatalf("crash after %d: fsck: %v", i, err)
		}
		wantFsckClean(t, g)
		af, _ := g.ReadFile("a/f")
		bh, _ := g.ReadFile("b/h")
		ok := string(af) == "file in a" && string(bh) == "file in b" || string(af) == "file in b" && string(bh) == "file in a"
		if !ok {
			t.Fatalf("crash after %d: a/f=%q b/h=%q: the exchange is neither undone nor applied", i, af, bh)
		}
		if ents, _ := g.ReadDir("lost+found"); len(ents) != 0 {
			t.Fatalf("crash after %d: lost+found holds %v", i, ents)
		}
		if xerr == nil {
			if string(af) != "file in b" || string(bh) != "file in a" {
				t.Fatalf("exchange succeeded, then a/f=%q b/h=%q", af, bh)
			}
			t.Logf("%d crash points swept", i)
			return
		}
		if !errors.Is(xerr, faulty.ErrInjected) {
			t.Fatalf("crash after %d: %v", i, xerr)
		}
		if i > 200 {
			t.Fatal(fmt.Sprint("no end: ", xerr))
		}
	}
}
