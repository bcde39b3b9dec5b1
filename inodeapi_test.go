package voldfs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/memory"
)

// hangStore forwards to a store until hang is set; then every Get waits
// for its context.
type hangStore struct {
	backend.Store
	hang atomic.Bool
}

func (h *hangStore) Get(ctx context.Context, key string) ([]byte, backend.Version, error) {
	if h.hang.Load() {
		<-ctx.Done()
		return nil, 0, ctx.Err()
	}
	return h.Store.Get(ctx, key)
}

// TestInodesOwner: Create, Mkdir and Symlink make the inode with the
// caller's owner in the commit that creates it (one inode CAS for the new
// inode, one for the parent), and nil is the FS's default.
func TestInodesOwner(t *testing.T) {
	ctx := context.Background()
	uid, gid := uint32(7), uint32(8)
	f, err := Format(ctx, memory.New(), &Options{Uid: &uid, Gid: &gid})
	must(t, err)
	ino := f.Inodes()
	o := &Owner{Uid: 1234, Gid: 5678}
	for _, tc := range []struct {
		name string
		make func(name string, o *Owner) (*Attr, error)
	}{
		{"create", func(name string, o *Owner) (*Attr, error) {
			file, err := ino.Create(ctx, RootIno, name, os.O_RDWR|os.O_EXCL, 0o644, o)
			if err != nil {
				return nil, err
			}
			defer file.Close()
			fi, err := file.Stat()
			if err != nil {
				return nil, err
			}
			return fi.Sys().(*Attr), nil
		}},
		{"mkdir", func(name string, o *Owner) (*Attr, error) { return ino.Mkdir(ctx, RootIno, name, 0o755, o) }},
		{"symlink", func(name string, o *Owner) (*Attr, error) { return ino.Symlink(ctx, RootIno, name, "t", o) }},
	} {
		before := f.Stats().InodeCAS
		a, err := tc.make(tc.name, o)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if n := f.Stats().InodeCAS - before; n != 1 {
			t.Errorf("%s: %d inode commits, want 1 (the new inode and the entry together)", tc.name, n)
		}
		if a.Uid != 1234 || a.Gid != 5678 {
			t.Errorf("%s: result owned by %d:%d", tc.name, a.Uid, a.Gid)
		}
		st, err := f.Lstat(tc.name)
		must(t, err)
		sa := st.Sys().(*Attr)
		if sa.Uid != 1234 || sa.Gid != 5678 {
			t.Errorf("%s: stored owner %d:%d", tc.name, sa.Uid, sa.Gid)
		}

		a, err = tc.make(tc.name+"-default", nil)
		must(t, err)
		if a.Uid != 7 || a.Gid != 8 {
			t.Errorf("%s: default owner %d:%d, want 7:8", tc.name, a.Uid, a.Gid)
		}
	}
	// An existing file opened by Create keeps its owner.
	file, err := ino.Create(ctx, RootIno, "create", os.O_RDWR, 0o600, &Owner{Uid: 1, Gid: 1})
	must(t, err)
	fi, err := file.Stat()
	must(t, err)
	must(t, file.Close())
	if fi.Sys().(*Attr).Uid != 1234 || fi.Mode().Perm() != 0o644 {
		t.Errorf("existing file opened by Create: %v owned by %d", fi.Mode(), fi.Sys().(*Attr).Uid)
	}
}

// TestInodesContext: every call is bounded by its context, and by
// OpTimeout when the context has no deadline.
func TestInodesContext(t *testing.T) {
	store := &hangStore{Store: memory.New()}
	f, err := Format(context.Background(), store, &Options{AttrTimeout: -1, OpTimeout: 100 * time.Millisecond})
	must(t, err)
	must(t, f.WriteFile("f", []byte("x"), 0o644))
	ino := f.Inodes()
	a, err := ino.Lookup(context.Background(), RootIno, "f")
	must(t, err)

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = ino.GetAttr(canceled, a.Ino)
	var pe *fs.PathError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &pe) || pe.Path != inoPath(a.Ino) {
		t.Errorf("GetAttr with a canceled context: %v", err)
	}

	store.hang.Store(true)
	start := time.Now()
	_, err = ino.Lookup(context.Background(), RootIno, "f")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Lookup on a hung store: %v after %v, want OpTimeout's deadline", err, time.Since(start))
	}
	store.hang.Store(false)

	// The File Open returns outlives the context of the call.
	ctx, cancel := context.WithCancel(context.Background())
	file, err := ino.Open(ctx, a.Ino, os.O_RDONLY)
	must(t, err)
	cancel()
	b := make([]byte, 1)
	if _, err := file.ReadAt(b, 0); err != nil {
		t.Errorf("read after the open's context ended: %v", err)
	}
	must(t, file.Close())

	must(t, f.Close())
	_, err = ino.Lookup(context.Background(), RootIno, "f")
	if !errors.Is(err, fs.ErrClosed) || !errors.As(err, &pe) || pe.Path != "f" || errors.Is(err, syscall.ENOENT) {
		t.Errorf("Lookup after Close: %v", err)
	}
}

// TestInodesGetAttrDuringCommit: while one handle writes and commits, the
// size GetAttr reports never goes back (a commit finishing between the
// inode's lookup and the read of the handles' buffers used to report the
// size from before the commit without the buffered growth).
func TestInodesGetAttrDuringCommit(t *testing.T) {
	ctx := context.Background()
	f, err := Format(ctx, memory.New(), &Options{BlockSize: 4 << 10})
	must(t, err)
	file, err := f.Inodes().Create(ctx, RootIno, "grow", os.O_RDWR|os.O_EXCL, 0o644, nil)
	must(t, err)
	defer file.Close()
	ino := file.Ino()
	const writes = 3000
	done := make(chan error, 1)
	go func() {
		p := make([]byte, 100)
		for i := range writes {
			if _, err := file.WriteAt(p, int64(i*len(p))); err != nil {
				done <- err
				return
			}
			if i%3 == 0 {
				if err := file.Commit(); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	var last uint64
	for {
		select {
		case err := <-done:
			must(t, err)
			return
		default:
		}
		a, err := f.Inodes().GetAttr(ctx, ino)
		must(t, err)
		if a.Size < last {
			t.Fatalf("GetAttr size went from %d to %d while the file only grew", last, a.Size)
		}
		last = a.Size
	}
}
