package voldfs_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

// Format a filesystem in an in-memory store, write a file and read it back.
func Example() {
	ctx := context.Background()
	store := memory.New()
	fsys, err := voldfs.Format(ctx, store, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := fsys.MkdirAll("docs/notes", 0o755); err != nil {
		log.Fatal(err)
	}
	if err := fsys.WriteFile("docs/notes/hello.txt", []byte("hello, voldfs\n"), 0o644); err != nil {
		log.Fatal(err)
	}

	// Another client opens the same store and reads what the first wrote.
	other, err := voldfs.Open(ctx, store, nil)
	if err != nil {
		log.Fatal(err)
	}
	b, err := fs.ReadFile(other, "docs/notes/hello.txt")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(b))
	// Output: hello, voldfs
}

// Open a log with O_APPEND: every write lands at the end of the file, even
// when other handles or other clients append at the same time.
func ExampleFS_OpenFile() {
	fsys, err := voldfs.Format(context.Background(), memory.New(), nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range []string{"first\n", "second\n", "third\n"} {
		f, err := fsys.OpenFile("app.log", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := f.Write([]byte(line)); err != nil {
			log.Fatal(err)
		}
		// Close commits the buffered writes.
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
	b, _ := fsys.ReadFile("app.log")
	fmt.Print(string(b))
	// Output:
	// first
	// second
	// third
}

// Rename follows rename(2): a file replaces a file, a directory may move
// into another directory but not into itself.
func ExampleFS_Rename() {
	fsys, err := voldfs.Format(context.Background(), memory.New(), nil)
	if err != nil {
		log.Fatal(err)
	}
	_ = fsys.MkdirAll("src/pkg", 0o755)
	_ = fsys.Mkdir("dst", 0o755)
	_ = fsys.WriteFile("src/pkg/a.txt", []byte("A"), 0o644)

	// Move a directory to another parent.
	if err := fsys.Rename("src/pkg", "dst/pkg"); err != nil {
		log.Fatal(err)
	}
	b, _ := fsys.ReadFile("dst/pkg/a.txt")
	fmt.Println(string(b))

	// Moving a directory into itself is refused.
	err = fsys.Rename("dst", "dst/pkg/dst")
	var le *os.LinkError
	fmt.Println(errors.As(err, &le), errors.Is(err, syscall.EINVAL))

	// With RenameNoReplace an existing target is an error.
	_ = fsys.WriteFile("dst/b.txt", []byte("B"), 0o644)
	err = fsys.RenameFlags("dst/pkg/a.txt", "dst/b.txt", voldfs.RenameNoReplace)
	fmt.Println(errors.Is(err, fs.ErrExist))
	// Output:
	// A
	// true true
	// true
}

// hangingStore forwards to a store until hang is set; then every Get
// waits for its context, like a store that stopped answering.
type hangingStore struct {
	backend.Store
	hang atomic.Bool
}

func (h *hangingStore) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	if h.hang.Load() {
		<-ctx.Done()
		return nil, 0, ctx.Err()
	}
	return h.Store.Get(ctx, key)
}

// WithContext bounds each operation: when the store hangs, the operation
// returns the context's error instead of waiting forever.
func ExampleFS_WithContext() {
	store := &hangingStore{Store: memory.New()}
	// AttrTimeout -1: every lookup asks the store (no attribute cache).
	fsys, err := voldfs.Format(context.Background(), store, &voldfs.Options{AttrTimeout: -1})
	if err != nil {
		log.Fatal(err)
	}
	_ = fsys.WriteFile("f", []byte("x"), 0o644)

	store.hang.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = fsys.WithContext(ctx).Stat("f")
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	// Output: true
}

// ReadDir lists a directory sorted by name; each entry's Info carries the
// inode attributes in Sys.
func ExampleFS_ReadDir() {
	fsys, err := voldfs.Format(context.Background(), memory.New(), nil)
	if err != nil {
		log.Fatal(err)
	}
	_ = fsys.Mkdir("d", 0o755)
	_ = fsys.Mkdir("d/sub", 0o700)
	_ = fsys.WriteFile("d/b.txt", []byte("bee"), 0o644)
	_ = fsys.WriteFile("d/a.txt", []byte("a"), 0o600)
	_ = fsys.Symlink("a.txt", "d/link")

	ents, err := fsys.ReadDir("d")
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range ents {
		info, _ := e.Info()
		attr := info.Sys().(*voldfs.Attr)
		fmt.Printf("%-6s %v size=%d nlink=%d\n", e.Name(), info.Mode(), info.Size(), attr.Nlink)
	}
	// Output:
	// a.txt  -rw------- size=1 nlink=1
	// b.txt  -rw-r--r-- size=3 nlink=1
	// link   Lrwxrwxrwx size=5 nlink=1
	// sub    drwx------ size=524288 nlink=2
}

// The inode-level API works on inode numbers and single names, as a FUSE
// server does; new inodes belong to the owner the caller names.
func ExampleInodes() {
	ctx := context.Background()
	fsys, err := voldfs.Format(ctx, memory.New(), nil)
	if err != nil {
		log.Fatal(err)
	}
	ino := fsys.Inodes()
	caller := &voldfs.Owner{Uid: 1000, Gid: 100}
	dir, err := ino.Mkdir(ctx, voldfs.RootIno, "home", 0o755, caller)
	if err != nil {
		log.Fatal(err)
	}
	f, err := ino.Create(ctx, dir.Ino, "notes", os.O_RDWR|os.O_EXCL, 0o600, caller)
	if err != nil {
		log.Fatal(err)
	}
	_, _ = f.Write([]byte("hello"))
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	a, err := ino.Lookup(ctx, dir.Ino, "notes")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("notes: size %d, owner %d:%d, mode %v\n", a.Size, a.Uid, a.Gid, a.FileMode())
	ents, _ := ino.ReadDir(ctx, dir.Ino, 0, 0)
	for _, e := range ents {
		fmt.Println(e.Name, e.Ino == a.Ino)
	}
	_, err = ino.Lookup(ctx, dir.Ino, "missing")
	fmt.Println(errors.Is(err, syscall.ENOENT))
	// Output:
	// notes: size 5, owner 1000:100, mode -rw-------
	// notes true
	// true
}
