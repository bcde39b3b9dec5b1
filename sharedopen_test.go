package voldfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

// Open files of one inode in one FS share one state: these tests hold
// several handles at once and check that each sees the others' writes
// before any commit, and that a second FS value on the same store (another
// machine) sees them only once committed.

const sharedBS = 4096

// sharedFS returns an FS and a second FS value on the same store.
func sharedFS(t *testing.T, o *Options) (a, b *FS) {
	t.Helper()
	s := memory.New()
	t.Cleanup(func() { s.Close() })
	if o == nil {
		o = &Options{}
	}
	o.BlockSize = sharedBS
	a, err := Format(context.Background(), s, o)
	must(t, err)
	b, err = Open(context.Background(), s, &Options{AttrTimeout: -1})
	must(t, err)
	return a, b
}

func openf(t *testing.T, f *FS, name string, flag int) *File {
	t.Helper()
	file, err := f.OpenFile(name, flag, 0o644)
	must(t, err)
	return file
}

// readAll reads the whole file through h, which must report size bytes.
func readAll(t *testing.T, h *File) []byte {
	t.Helper()
	fi, err := h.Stat()
	must(t, err)
	buf := make([]byte, fi.Size()+10)
	n, err := h.ReadAt(buf, 0)
	if err != io.EOF {
		t.Fatalf("ReadAt past the end: %v, want io.EOF", err)
	}
	if int64(n) != fi.Size() {
		t.Fatalf("read %d bytes, Stat says %d", n, fi.Size())
	}
	return buf[:n]
}

func wantBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: got %d bytes, want %d; first difference at %d", what, len(got), len(want), i)
	}
}

// wantSize checks that every attribute path of this FS reports size for name.
func wantSize(t *testing.T, f *FS, name string, size int64) {
	t.Helper()
	fi, err := f.Stat(name)
	must(t, err)
	if fi.Size() != size {
		t.Errorf("Stat %s: size %d, want %d", name, fi.Size(), size)
	}
	if a := attr(t, f, name); int64(a.Size) != size {
		t.Errorf("Lstat %s: size %d, want %d", name, a.Size, size)
	} else if a.Blocks*512 < uint64(size) {
		t.Errorf("Lstat %s: %d blocks for %d bytes", name, a.Blocks, size)
	}
	ents, err := f.ReadDir(".")
	must(t, err)
	found := false
	for _, e := range ents {
		if e.Name() != name {
			continue
		}
		found = true
		info, err := e.Info()
		must(t, err)
		if info.Size() != size {
			t.Errorf("ReadDir entry %s: size %d, want %d", name, info.Size(), size)
		}
		ino := info.Sys().(*Attr).Ino
		ga, err := f.Inodes().GetAttr(t.Context(), ino)
		must(t, err)
		if int64(ga.Size) != size {
			t.Errorf("GetAttr %s: size %d, want %d", name, ga.Size, size)
		}
	}
	if !found {
		t.Fatalf("ReadDir: no %s", name)
	}
	la, err := f.Inodes().Lookup(t.Context(), RootIno, name)
	must(t, err)
	if int64(la.Size) != size {
		t.Errorf("Lookup %s: size %d, want %d", name, la.Size, size)
	}
}

func TestSharedOpenReadSeesWrites(t *testing.T) {
	a, b := sharedFS(t, nil)
	w := openf(t, a, "f", os.O_RDWR|os.O_CREATE)
	data := pattern(10000, 1)
	before := attr(t, a, "f").Mtime
	_, err := w.Write(data)
	must(t, err)

	// A second handle, opened after the write, sees it before any commit.
	r := openf(t, a, "f", os.O_RDONLY)
	wantBytes(t, "second handle", readAll(t, r), data)
	wantSize(t, a, "f", 10000)
	if m := attr(t, a, "f").Mtime; !m.After(before) {
		t.Errorf("mtime %v not after the write (before: %v)", m, before)
	}
	// Another FS value sees nothing yet: the write is buffered.
	wantContent(t, b, "f", nil)

	// Writes made after both are open show through the other at once,
	// including overwrites of committed bytes and growth into new blocks.
	must(t, w.Sync())
	wantContent(t, b, "f", data)
	copy(data[100:], "overwritten")
	_, err = w.WriteAt([]byte("overwritten"), 100)
	must(t, err)
	tail := pattern(3*sharedBS, 2)
	_, err = w.WriteAt(tail, 10000)
	must(t, err)
	data = append(data, tail...)
	wantBytes(t, "after overwrite", readAll(t, r), data)
	wantSize(t, a, "f", int64(len(data)))

	// Each handle has its own offset.
	buf := make([]byte, 11)
	_, err = r.Read(buf)
	must(t, err)
	wantBytes(t, "read at r's offset", buf, data[:11])

	// A read-only handle cannot write, but its Sync commits the others'.
	if _, err := r.Write([]byte("x")); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("write through a read-only handle: %v, want EBADF", err)
	}
	must(t, r.Sync())
	wantContent(t, b, "f", data)
	must(t, w.Close())
	must(t, r.Close())
}

func TestSharedOpenTruncate(t *testing.T) {
	a, b := sharedFS(t, nil)
	h1 := openf(t, a, "f", os.O_RDWR|os.O_CREATE)
	h2 := openf(t, a, "f", os.O_RDWR)
	data := pattern(10000, 3)
	_, err := h1.Write(data)
	must(t, err)

	must(t, h2.Truncate(5000))
	wantBytes(t, "h1 after h2's truncate", readAll(t, h1), data[:5000])
	wantSize(t, a, "f", 5000)

	// By path, while the handles are open.
	must(t, a.Truncate("f", 100))
	wantBytes(t, "h2 after truncate by path", readAll(t, h2), data[:100])
	wantSize(t, a, "f", 100)

	// Growth after a shrink reads zeros in between.
	_, err = h1.WriteAt([]byte("z"), 200)
	must(t, err)
	want := append(append(bytes.Clone(data[:100]), make([]byte, 100)...), 'z')
	wantBytes(t, "h2 after h1's write past the end", readAll(t, h2), want)

	// By inode number, as a FUSE server does.
	size := int64(50)
	_, err = a.Inodes().SetAttr(t.Context(), h1.Ino(), &SetAttr{Size: &size})
	must(t, err)
	wantBytes(t, "h1 after SetAttr", readAll(t, h1), data[:50])
	wantSize(t, a, "f", 50)

	// O_TRUNC on open empties the shared state too.
	_, err = h2.WriteAt([]byte("buffered"), 0)
	must(t, err)
	h3 := openf(t, a, "f", os.O_WRONLY|os.O_TRUNC)
	wantBytes(t, "h1 after O_TRUNC open", readAll(t, h1), nil)
	for _, h := range []*File{h1, h2, h3} {
		must(t, h.Close())
	}
	wantContent(t, b, "f", nil)
}

func TestSharedOpenLastClose(t *testing.T) {
	a, b := sharedFS(t, nil)
	h1 := openf(t, a, "f", os.O_RDWR|os.O_CREATE)
	h2 := openf(t, a, "f", os.O_RDWR)
	_, err := h1.Write([]byte("one"))
	must(t, err)
	must(t, h1.Close())
	wantContent(t, b, "f", []byte("one"))
	_, err = h2.WriteAt([]byte("two"), 3)
	must(t, err)
	wantContent(t, b, "f", []byte("one"))
	must(t, h2.Close())
	wantContent(t, b, "f", []byte("onetwo"))
	if err := h2.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

// An inode unlinked while open survives until its last handle closes, with
// the handles still sharing its state.
func TestSharedOpenUnlinked(t *testing.T) {
	a, _ := sharedFS(t, nil)
	h1 := openf(t, a, "f", os.O_RDWR|os.O_CREATE)
	h2 := openf(t, a, "f", os.O_RDONLY)
	ino := h1.Ino()
	_, err := h1.Write(pattern(3*sharedBS, 4))
	must(t, err)
	must(t, a.Remove("f"))
	must(t, h1.Close())
	wantBytes(t, "unlinked, through the other handle", readAll(t, h2), pattern(3*sharedBS, 4))
	must(t, h2.Close())
	if _, err := a.c.getInode(context.Background(), ino, 0); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("inode after the last close: %v, want ENOENT", err)
	}
	a.WaitFrees()
	r, err := a.Fsck(context.Background(), FsckOptions{Grace: -1})
	must(t, err)
	if !r.OK() || r.GarbageBlocks != 0 || r.GarbageInodes != 0 {
		t.Fatalf("fsck: %v, %d garbage blocks, %d garbage inodes", r.Problems, r.GarbageBlocks, r.GarbageInodes)
	}
}

// Opening an inode that has buffered writes keeps them, even when the store
// holds a newer version; with none buffered, an open picks up the newer
// version for every handle (close-to-open).
func TestSharedOpenKeepsBuffered(t *testing.T) {
	a, b := sharedFS(t, nil)
	writeFile(t, a, "f", pattern(2*sharedBS, 5))
	r := openf(t, a, "f", os.O_RDONLY)
	writeFile(t, b, "f", []byte("from b"))
	h := openf(t, a, "f", os.O_RDWR)
	wantBytes(t, "old handle after a new open", readAll(t, r), []byte("from b"))

	_, err := h.WriteAt([]byte("A"), 0)
	must(t, err)
	bw := openf(t, b, "f", os.O_WRONLY)
	_, err = bw.WriteAt([]byte("BB"), 10)
	must(t, err)
	must(t, bw.Close())
	h2 := openf(t, a, "f", os.O_RDONLY)
	wantBytes(t, "open with buffered writes", readAll(t, h2), []byte("Arom b"))
	// The commit rebases onto b's version: both writes survive.
	must(t, h2.Sync())
	want := []byte("Arom b\x00\x00\x00\x00BB")
	wantContent(t, b, "f", want)
	wantBytes(t, "after the rebase", readAll(t, r), want)
	for _, f := range []*File{r, h, h2} {
		must(t, f.Close())
	}
}

func TestSharedOpenWriteBuffer(t *testing.T) {
	a, b := sharedFS(t, &Options{WriteBuffer: 2 * sharedBS})
	h1 := openf(t, a, "f", os.O_WRONLY|os.O_CREATE)
	h2 := openf(t, a, "f", os.O_WRONLY)
	data := pattern(3*sharedBS, 6)
	half := 3 * sharedBS / 2
	_, err := h1.WriteAt(data[:half], 0)
	must(t, err)
	wantContent(t, b, "f", nil)
	// The buffer of both handles together passes the threshold.
	_, err = h2.WriteAt(data[half:], int64(half))
	must(t, err)
	wantContent(t, b, "f", data)
	must(t, h1.Close())
	must(t, h2.Close())
}

func TestSharedOpenSyncFlags(t *testing.T) {
	for _, flag := range []int{os.O_SYNC, oDSYNC} {
		if flag == 0 {
			continue
		}
		t.Run(fmt.Sprintf("%#x", flag), func(t *testing.T) {
			a, b := sharedFS(t, nil)
			h := openf(t, a, "f", os.O_WRONLY|os.O_CREATE|flag)
			_, err := h.Write([]byte("durable"))
			must(t, err)
			wantContent(t, b, "f", []byte("durable"))
			_, err = h.WriteAt([]byte("D"), 0)
			must(t, err)
			wantContent(t, b, "f", []byte("Durable"))
			ap := openf(t, a, "f", os.O_WRONLY|os.O_APPEND|flag)
			_, err = ap.Write([]byte("!"))
			must(t, err)
			wantContent(t, b, "f", []byte("Durable!"))
			must(t, h.Close())
			must(t, ap.Close())
		})
	}
}

func TestFileChownAndAppendWriteAt(t *testing.T) {
	a, _ := sharedFS(t, nil)
	h := openf(t, a, "f", os.O_RDWR|os.O_CREATE|os.O_APPEND)
	defer h.Close()
	before := attr(t, a, "f")
	must(t, h.Chown(-1, 4242))
	got := attr(t, a, "f")
	if got.Uid != before.Uid || got.Gid != 4242 {
		t.Fatalf("Chown(-1, 4242): uid %d gid %d, want %d 4242", got.Uid, got.Gid, before.Uid)
	}
	must(t, h.Chown(4343, -1))
	if got := attr(t, a, "f"); got.Uid != 4343 || got.Gid != 4242 {
		t.Fatalf("Chown(4343, -1): uid %d gid %d", got.Uid, got.Gid)
	}
	_, err := h.WriteAt([]byte("x"), 0)
	var pe *fs.PathError
	if !errors.As(err, &pe) || !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("WriteAt on O_APPEND: %v, want a *fs.PathError wrapping EINVAL", err)
	}
}

func TestCommitOpen(t *testing.T) {
	a, b := sharedFS(t, nil)
	h1 := openf(t, a, "f", os.O_WRONLY|os.O_CREATE)
	h2 := openf(t, a, "g", os.O_WRONLY|os.O_CREATE|os.O_APPEND)
	_, err := h1.Write([]byte("ff"))
	must(t, err)
	_, err = h2.Write([]byte("gg"))
	must(t, err)
	wantContent(t, b, "f", nil)
	must(t, a.c.commitOpen(context.Background()))
	wantContent(t, b, "f", []byte("ff"))
	wantContent(t, b, "g", []byte("gg"))
	// Commit publishes without closing.
	_, err = h1.Write([]byte("FF"))
	must(t, err)
	must(t, h1.Commit())
	wantContent(t, b, "f", []byte("ffFF"))
	// FS.Sync (syncfs) commits every open file too.
	_, err = h2.Write([]byte("GG"))
	must(t, err)
	wantContent(t, b, "g", []byte("gg"))
	must(t, a.Sync())
	wantContent(t, b, "g", []byte("ggGG"))
	must(t, h1.Close())
	must(t, h2.Close())
}

// Appenders on several handles of one FS and on two FS values, writing and
// syncing concurrently: every record lands whole, once.
func TestSharedOpenAppend(t *testing.T) {
	a, b := sharedFS(t, &Options{WriteBuffer: 2 * sharedBS})
	writeFile(t, a, "log", nil)
	const recLen, handles, perHandle = 40, 3, 60
	var wg sync.WaitGroup
	errc := make(chan error, 2*handles)
	for fi, f := range []*FS{a, b} {
		for h := range handles {
			file := openf(t, f, "log", os.O_WRONLY|os.O_APPEND)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer file.Close()
				for i := range perHandle {
					rec := fmt.Sprintf("<fs%d h%d rec%04d>", fi, h, i)
					rec += string(bytes.Repeat([]byte("."), recLen-len(rec)-1)) + "\n"
					if _, err := file.Write([]byte(rec)); err != nil {
						errc <- err
						return
					}
					if i%7 == h {
						if err := file.Sync(); err != nil {
							errc <- err
							return
						}
					}
				}
				errc <- file.Close()
			}()
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		must(t, err)
	}
	got := readFile(t, a, "log")
	if len(got) != 2*handles*perHandle*recLen {
		t.Fatalf("log has %d bytes, want %d", len(got), 2*handles*perHandle*recLen)
	}
	seen := make(map[string]bool)
	for i := 0; i < len(got); i += recLen {
		rec := string(got[i : i+recLen])
		var fi, h, n int
		if _, err := fmt.Sscanf(rec, "<fs%d h%d rec%04d>", &fi, &h, &n); err != nil || rec[recLen-1] != '\n' {
			t.Fatalf("torn record at %d: %q", i, rec)
		}
		if seen[rec] {
			t.Fatalf("record twice: %q", rec)
		}
		seen[rec] = true
	}
}

// Goroutines write their own region through their own handle and read it
// back through another handle while everything stays open.
func TestSharedOpenConcurrent(t *testing.T) {
	a, b := sharedFS(t, &Options{WriteBuffer: 4 * sharedBS})
	const workers, region, rounds = 4, 3000, 40
	hs := make([]*File, workers)
	hs[0] = openf(t, a, "f", os.O_RDWR|os.O_CREATE)
	for i := 1; i < workers; i++ {
		hs[i] = openf(t, a, "f", os.O_RDWR)
	}
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, r := hs[g], hs[(g+1)%workers]
			buf := make([]byte, region)
			for v := range rounds {
				want := bytes.Repeat([]byte{byte(g*rounds + v)}, region)
				if _, err := w.WriteAt(want, int64(g*region)); err != nil {
					errc <- err
					return
				}
				if _, err := r.ReadAt(buf, int64(g*region)); err != nil && err != io.EOF {
					errc <- err
					return
				}
				if !bytes.Equal(buf, want) {
					errc <- fmt.Errorf("worker %d round %d: read back other bytes", g, v)
					return
				}
				switch v % 5 {
				case 1:
					if err := r.Sync(); err != nil {
						errc <- err
						return
					}
				case 3:
					if _, err := r.Stat(); err != nil {
						errc <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		must(t, err)
	}
	for _, h := range hs {
		must(t, h.Close())
	}
	want := make([]byte, 0, workers*region)
	for g := range workers {
		want = append(want, bytes.Repeat([]byte{byte(g*rounds + rounds - 1)}, region)...)
	}
	wantContent(t, b, "f", want)
}

// A seeded random model: handles of one file (one of them O_APPEND) do
// random writes, ReadAt, Truncate (by handle and by path), Sync, Stat,
// Close and reopen against a byte slice; every read and every size is
// checked, and after each Sync the second FS value sees the model too.
// VOLDFS_SEED replays a seed.
func TestSharedOpenModel(t *testing.T) {
	seed := tortureSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	a, b := sharedFS(t, &Options{WriteBuffer: 4 * sharedBS})
	steps := 4000
	if testing.Short() {
		steps = 800
	}
	const handles, span = 5, 6 * sharedBS
	flags := func(i int) int {
		if i == handles-1 {
			return os.O_RDWR | os.O_CREATE | os.O_APPEND
		}
		return os.O_RDWR | os.O_CREATE
	}
	hs := make([]*File, handles)
	for i := range hs {
		hs[i] = openf(t, a, "f", flags(i))
	}
	var model []byte
	for step := range steps {
		hi := rng.IntN(handles)
		h := hs[hi]
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d step %d: "+format, append([]any{seed, step}, args...)...)
		}
		switch op := rng.IntN(100); {
		case op < 40:
			off := rng.IntN(span)
			n := rng.IntN(2 * sharedBS)
			if rng.IntN(4) == 0 {
				n = rng.IntN(64)
			}
			p := pattern(n, byte(step))
			if flags(hi)&os.O_APPEND != 0 {
				if _, err := h.Write(p); err != nil {
					fail("append %d: %v", n, err)
				}
				model = append(model, p...)
				break
			}
			if _, err := h.WriteAt(p, int64(off)); err != nil {
				fail("WriteAt(%d, %d): %v", off, n, err)
			}
			if n == 0 {
				break // an empty write does not extend the file
			}
			if end := off + n; end > len(model) {
				model = append(model, make([]byte, end-len(model))...)
			}
			copy(model[off:], p)
		case op < 75:
			off := rng.IntN(span)
			buf := make([]byte, rng.IntN(2*sharedBS)+1)
			n, err := h.ReadAt(buf, int64(off))
			want := []byte{}
			if off < len(model) {
				want = model[off:min(len(model), off+len(buf))]
			}
			if n < len(buf) && err != io.EOF || n == len(buf) && err != nil {
				fail("ReadAt(%d, %d): %d, %v", off, len(buf), n, err)
			}
			if !bytes.Equal(buf[:n], want) {
				fail("ReadAt(%d, %d): got %d bytes, not the model's %d", off, len(buf), n, len(want))
			}
		case op < 82:
			size := rng.IntN(span)
			var err error
			if rng.IntN(3) == 0 {
				err = a.Truncate("f", int64(size))
			} else {
				err = h.Truncate(int64(size))
			}
			if err != nil {
				fail("Truncate(%d): %v", size, err)
			}
			if size < len(model) {
				model = model[:size]
			} else {
				model = append(model, make([]byte, size-len(model))...)
			}
		case op < 88:
			if err := h.Sync(); err != nil {
				fail("Sync: %v", err)
			}
			if got, err := b.ReadFile("f"); err != nil || !bytes.Equal(got, model) {
				fail("other FS after Sync: %d bytes, %v; model %d", len(got), err, len(model))
			}
		case op < 94:
			fi, err := h.Stat()
			if err != nil || fi.Size() != int64(len(model)) {
				fail("File.Stat: %v, %v; model %d", fi, err, len(model))
			}
			if fi, err := a.Stat("f"); err != nil || fi.Size() != int64(len(model)) {
				fail("Stat: %v, %v; model %d", fi, err, len(model))
			}
		default:
			i := rng.IntN(handles)
			if err := hs[i].Close(); err != nil {
				fail("Close: %v", err)
			}
			hs[i] = openf(t, a, "f", flags(i)&^os.O_CREATE)
		}
	}
	for _, h := range hs {
		must(t, h.Close())
	}
	wantContent(t, b, "f", model)
}

// An empty write past the end does not grow the file (pwrite(2) of zero
// bytes changes nothing).
func TestEmptyWritePastEnd(t *testing.T) {
	a, b := sharedFS(t, nil)
	h := openf(t, a, "f", os.O_RDWR|os.O_CREATE)
	_, err := h.WriteAt(nil, 100)
	must(t, err)
	wantSize(t, a, "f", 0)
	_, err = h.WriteAt([]byte("x"), 0)
	must(t, err)
	must(t, h.Close())
	wantContent(t, b, "f", []byte("x"))
}

// gatedStore holds every block read while armed, so a test can keep a read
// waiting for the store.
type gatedStore struct {
	backend.Store
	armed   atomic.Bool
	entered chan struct{} // one send per held read
	release chan struct{} // closed to let held reads go
}

func (g *gatedStore) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	if g.armed.Load() && strings.Contains(key, "/b/") {
		g.entered <- struct{}{}
		<-g.release
	}
	return g.Store.Get(ctx, key)
}

// A read waiting for the store does not hold up the inode's other handles.
func TestSharedOpenReadDoesNotBlock(t *testing.T) {
	s := memory.New()
	t.Cleanup(func() { s.Close() })
	g := &gatedStore{Store: s, entered: make(chan struct{}, 64), release: make(chan struct{})}
	a, err := Format(context.Background(), g, &Options{BlockSize: sharedBS})
	must(t, err)
	b, err := Open(context.Background(), s, nil)
	must(t, err)
	data := pattern(3*sharedBS, 7)
	writeFile(t, b, "f", data) // not in a's block cache
	h1 := openf(t, a, "f", os.O_RDONLY)
	h2 := openf(t, a, "f", os.O_RDWR)
	g.armed.Store(true)
	got := make(chan error, 1)
	buf := make([]byte, len(data))
	go func() {
		_, err := h1.ReadAt(buf, 0)
		got <- err
	}()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the read did not reach the store")
	}
	done := make(chan error, 1)
	go func() {
		if _, err := h2.Stat(); err != nil {
			done <- err
			return
		}
		_, err := a.Stat("f")
		done <- err
	}()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Stat through another handle waited for a read's store round trip")
	}
	g.armed.Store(false)
	close(g.release)
	must(t, <-got)
	wantBytes(t, "the held read", buf, data)
	must(t, h1.Close())
	must(t, h2.Close())
}
