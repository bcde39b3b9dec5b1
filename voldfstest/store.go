package voldfstest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

// rewrite replaces the value of key with fn(value).
func rewrite(t *testing.T, s backend.Store, key string, fn func([]byte) []byte) {
	t.Helper()
	ctx := context.Background()
	v, ver, err := s.Get(ctx, key)
	require.NoError(t, err)
	if _, err := s.CAS(ctx, key, ver, fn(v)); err != nil {
		t.Fatalf("rewrite %s: %v", key, err)
	}
}

func testCorrupt(t *testing.T, e *env) {
	f := e.fs
	require.NoError(t, f.MkdirAll("d/sub", 0o755))
	writeFile(t, f, "d/f", []byte("small"))
	writeFile(t, f, "d/big", pattern(5*f.BlockSize(), 1))
	fino := attr(t, f, "d/f").Ino
	dino := attr(t, f, "d").Ino
	bigIno := attr(t, f, "d/big").Ino

	// Find the inode keys by listing where the store can, else by name.
	keys := map[uint64]string{}
	for _, ino := range []uint64{fino, dino, bigIno} {
		keys[ino] = inodeKey(ino)
	}
	{
		found := 0
		err := backend.List(context.Background(), e.store, prefix+"i/", func(k string) error {
			for _, want := range keys {
				if k == want {
					found++
				}
			}
			return nil
		})
		if !errors.Is(err, errors.ErrUnsupported) {
			require.NoError(t, err)
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
		require.ErrorIs(t, err, voldfs.ErrCorrupt, "%s: %v does not wrap voldfs.ErrCorrupt", what, err)
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
	_, err = g.Inodes().GetAttr(t.Context(), fino)
	checkCorrupt("GetAttr", err, keys[fino])
	// Other files are unaffected.
	wantContent(t, g, "d/big", pattern(5*f.BlockSize(), 1))

	// A corrupt directory inode.
	orig, _, err := e.store.Get(context.Background(), keys[dino])
	require.NoError(t, err)
	rewrite(t, e.store, keys[dino], flip(len(keys[dino])))
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
	require.NoError(t, err)
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
	{
		var bkey string
		err := backend.List(context.Background(), e.blockStore(), prefix+"b/", func(k string) error { bkey = k; return errors.New("stop") })
		if bkey != "" {
			rewrite(t, e.blockStore(), bkey, flip(3))
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
	_, err := voldfs.Format(ctx, e.store, e.options())
	require.ErrorIs(t, err, fs.ErrExist, "second Format")
	// The first FS still works.
	writeFile(t, e.fs, "f", []byte("x"))
	wantContent(t, e.reopen(t), "f", []byte("x"))
	// Another name in the same store is not formatted.
	_, err = voldfs.Open(ctx, e.store, &voldfs.Options{Name: "other", Blocks: e.blocks})
	require.ErrorIs(t, err, voldfs.ErrNotFormatted, "Open of an unformatted name")
	// A fresh store.
	s, o := e.newStores(t)
	_, err = voldfs.Open(ctx, s, o)
	require.ErrorIs(t, err, voldfs.ErrNotFormatted, "Open of an empty store")
	// Two filesystems in one store stay apart.
	o2, err := voldfs.Format(ctx, s, &voldfs.Options{Name: "fs2", BlockSize: 8192, Blocks: o.Blocks})
	require.NoError(t, err)
	writeFile(t, o2, "mine", []byte("2"))
	o2, err = voldfs.Open(ctx, s, &voldfs.Options{Name: "fs2", Blocks: o.Blocks})
	require.NoError(t, err)
	require.Equal(t, 8192, o2.BlockSize(), "block size after Open")
	wantContent(t, o2, "mine", []byte("2"))
	d, err := voldfs.Format(ctx, s, o)
	require.NoError(t, err)
	notExist(t, d, "mine")
	// Invalid options.
	for _, o := range []*voldfs.Options{{Name: "bad name"}, {Name: "a/b"}, {BlockSize: 1000}, {BlockSize: 3 << 10}, {BlockSize: 32 << 20}} {
		_, err := voldfs.Format(ctx, e.cfg.NewStore(t), o)
		require.ErrorIs(t, err, fs.ErrInvalid, "Format %+v", o)
	}
	// A corrupt superblock. (An unknown format version is checked by
	// TestFormatVersion in package voldfs: writing one needs the encoder.)
	rewrite(t, e.store, prefix+"super", func(b []byte) []byte { b[len(b)/2] ^= 1; return b })
	_, err = voldfs.Open(ctx, e.store, e.options())
	require.ErrorIs(t, err, voldfs.ErrCorrupt, "Open of a corrupt superblock")
}

// testBlocksPairing checks that a split filesystem records its blocks
// store: opening it without one, or with another, is refused.
func testBlocksPairing(t *testing.T, e *env) {
	ctx := context.Background()
	writeFile(t, e.fs, "f", []byte("x"))
	_, err := voldfs.Open(ctx, e.store, nil)
	require.ErrorIs(t, err, voldfs.ErrWrongStore, "Open without the blocks store")
	other := memory.New()
	defer other.Close()
	_, err = voldfs.Open(ctx, e.store, &voldfs.Options{Blocks: other})
	require.ErrorIs(t, err, voldfs.ErrWrongStore, "Open with another blocks store")
	_, err = voldfs.Open(ctx, e.store, &voldfs.Options{Blocks: e.cfg.NewBlocks(t)})
	require.ErrorIs(t, err, voldfs.ErrWrongStore, "Open with another, empty blocks store of the same kind")
	wantContent(t, e.reopen(t), "f", []byte("x"))
}

func testCancel(t *testing.T, e *env) {
	writeFile(t, e.fs, "f", pattern(3*4096, 1))
	require.NoError(t, e.fs.Mkdir("d", 0o755))
	f, blocker := e.openBlocked(t, &voldfs.Options{AttrTimeout: -1, CacheSize: -1})
	blocker.arm()
	defer blocker.release()
	ops := map[string]func(f *voldfs.FS) error{
		"Stat":      func(f *voldfs.FS) error { _, err := f.Stat("f"); return err },
		"ReadFile":  func(f *voldfs.FS) error { _, err := f.ReadFile("f"); return err },
		"WriteFile": func(f *voldfs.FS) error { return f.WriteFile("g", []byte("x"), 0o644) },
		"Mkdir":     func(f *voldfs.FS) error { return f.Mkdir("d/x", 0o755) },
		"Rename":    func(f *voldfs.FS) error { return f.Rename("f", "d/f") },
		"ReadDir":   func(f *voldfs.FS) error { _, err := f.ReadDir("d"); return err },
	}
	for name, op := range ops {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		err := op(f.WithContext(ctx))
		cancel()
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: returned after %v", name, d)
		}
		require.ErrorIs(t, err, context.DeadlineExceeded, "%s: %v, want context.DeadlineExceeded", name, err)
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
	require.NoError(t, err)
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
	f, blocker := e.openBlocked(t, &voldfs.Options{AttrTimeout: -1, OpTimeout: 150 * time.Millisecond})
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
		require.ErrorIs(t, err, context.DeadlineExceeded, "%s: %v, want context.DeadlineExceeded", name, err)
	}
	blocker.release()
	wantContent(t, f, "f", []byte("x"))
}

// openBlocked opens a second FS with o on the subtest's stores, each
// wrapped in a blockingStore behind one gate.
func (e *env) openBlocked(t *testing.T, o *voldfs.Options) (*voldfs.FS, *gate) {
	t.Helper()
	g := &gate{}
	if e.blocks != nil {
		o.Blocks = &blockingStore{Store: e.blocks, gate: g}
	}
	f, err := voldfs.Open(context.Background(), &blockingStore{Store: e.store, gate: g}, o)
	require.NoError(t, err, "Open")
	return f, g
}

// gate, while armed, holds every operation of the blockingStores that share
// it until the operation's context is done.
type gate struct {
	mu    sync.Mutex
	armed chan struct{} // closed when released; nil when not armed
}

func (b *gate) arm() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.armed == nil {
		b.armed = make(chan struct{})
	}
}

func (b *gate) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.armed != nil {
		close(b.armed)
		b.armed = nil
	}
}

func (b *gate) wait(ctx context.Context) error {
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

// blockingStore hangs every operation, while its gate is armed, until its
// context is done: a store that stopped answering.
type blockingStore struct {
	backend.Store
	*gate
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
