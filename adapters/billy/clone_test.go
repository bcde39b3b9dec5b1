package voldbilly_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-billy/v5/util"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/filesystem"
	gitmemory "github.com/go-git/go-git/v5/storage/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/voldfs/voldfs"
	voldbilly "github.com/voldfs/voldfs/adapters/billy"
	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
	"github.com/voldfs/voldfs/internal/testserver"
)

// TestGitClone clones a repository of nested files, a symlink, an
// executable and a file larger than a voldfs block, over two commits, into
// voldfs; then a second voldfs client of the same store opens the clone
// with go-git, finds the work tree clean, commits to it and checks out the
// first commit again; fsck finds nothing wrong. It runs on the memory store,
// a bolt file and a real memcached server.
func TestGitClone(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testGitClone(t, memory.New(), nil) })
	t.Run("bolt", func(t *testing.T) {
		s, err := bolt.Open(filepath.Join(t.TempDir(), "fs.db"), nil)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		testGitClone(t, s, nil)
	})
	t.Run("memcached", func(t *testing.T) {
		s, err := memcache.New(testserver.Memcached(t))
		require.NoError(t, err)
		testGitClone(t, s, nil)
	})
}

func testGitClone(t *testing.T, store backend.Store, o *voldfs.Options) {
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: time.Unix(1e9, 0).UTC()}
	origin, err := git.Init(gitmemory.NewStorage(), memfs.New())
	require.NoError(t, err)
	owt, err := origin.Worktree()
	require.NoError(t, err)
	ofs := owt.Filesystem
	big := make([]byte, 1<<20+12345) // random: the pack spans three 512 KiB blocks
	_, _ = rand.NewChaCha8([32]byte{1}).Read(big)
	files := map[string]string{"README.md": "first\n"}
	for i := range 40 {
		files[fmt.Sprintf("dir%d/sub/file%d.txt", i%5, i)] = fmt.Sprintf("content %d\n", i)
	}
	for name, content := range files {
		require.NoError(t, util.WriteFile(ofs, name, []byte(content), 0o644))
	}
	require.NoError(t, util.WriteFile(ofs, "big.bin", big, 0o644))
	require.NoError(t, util.WriteFile(ofs, "run.sh", []byte("#!/bin/sh\necho hi\n"), 0o755))
	require.NoError(t, ofs.Symlink("dir0/sub/file0.txt", "link"))
	require.NoError(t, owt.AddWithOptions(&git.AddOptions{All: true}))
	first, err := owt.Commit("first", &git.CommitOptions{Author: sig, Committer: sig})
	require.NoError(t, err)
	require.NoError(t, util.WriteFile(ofs, "README.md", []byte("second\n"), 0o644))
	_, err = owt.Add("README.md")
	require.NoError(t, err)
	_, err = owt.Commit("second", &git.CommitOptions{Author: sig, Committer: sig})
	require.NoError(t, err)

	client.InstallProtocol("inproc", server.NewClient(server.MapLoader{"inproc://test/clone": origin.Storer}))

	ctx := context.Background()
	fsys, err := voldfs.Format(ctx, store, o)
	require.NoError(t, err)
	t.Cleanup(func() { fsys.Close() })
	wt := voldbilly.New(fsys)
	dotgit, err := wt.Chroot(".git")
	require.NoError(t, err)
	_, err = git.Clone(filesystem.NewStorage(dotgit, cache.NewObjectLRUDefault()), wt,
		&git.CloneOptions{URL: "inproc://test/clone"})
	require.NoError(t, err)

	// The files, read through voldfs.
	for name, content := range files {
		if name == "README.md" {
			content = "second\n"
		}
		b, err := fsys.ReadFile(name)
		require.NoError(t, err, name)
		assert.Equal(t, content, string(b), name)
	}
	b, err := fsys.ReadFile("big.bin")
	require.NoError(t, err)
	assert.Equal(t, big, b)
	fi, err := fsys.Stat("run.sh")
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode().Perm()&0o100, "run.sh is executable: %v", fi.Mode())
	target, err := fsys.Readlink("link")
	require.NoError(t, err)
	assert.Equal(t, "dir0/sub/file0.txt", target)

	// Another client of the same store opens the clone.
	other, err := voldfs.Open(ctx, store, o)
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	owt2 := voldbilly.New(other)
	dotgit2, err := owt2.Chroot(".git")
	require.NoError(t, err)
	repo, err := git.Open(filesystem.NewStorage(dotgit2, cache.NewObjectLRUDefault()), owt2)
	require.NoError(t, err)
	w, err := repo.Worktree()
	require.NoError(t, err)
	st, err := w.Status()
	require.NoError(t, err)
	assert.True(t, st.IsClean(), "status after clone: %v", st)

	require.NoError(t, util.WriteFile(owt2, "new.txt", []byte("new\n"), 0o644))
	_, err = w.Add("new.txt")
	require.NoError(t, err)
	third, err := w.Commit("third", &git.CommitOptions{Author: sig, Committer: sig})
	require.NoError(t, err)
	head, err := repo.Head()
	require.NoError(t, err)
	assert.Equal(t, third, head.Hash())

	require.NoError(t, w.Checkout(&git.CheckoutOptions{Hash: first}))
	b, err = other.ReadFile("README.md")
	require.NoError(t, err)
	assert.Equal(t, "first\n", string(b))
	_, err = other.Stat("new.txt")
	assert.ErrorIs(t, err, os.ErrNotExist, "new.txt is gone at the first commit")
	st, err = w.Status()
	require.NoError(t, err)
	assert.True(t, st.IsClean(), "status after checkout: %v", st)
	require.NoError(t, w.Checkout(&git.CheckoutOptions{Branch: plumbing.Master}))
	b, err = other.ReadFile("new.txt")
	require.NoError(t, err)
	assert.Equal(t, "new\n", string(b))

	require.NoError(t, other.Sync())
	rep, err := other.Fsck(ctx, voldfs.FsckOptions{})
	require.NoError(t, err)
	assert.True(t, rep.OK(), "fsck: %v", rep.Problems)
}

// BenchmarkGitClone clones a repository of 500 small files in 50
// directories into voldfs on the memory store, and reports the store round
// trips of one clone: with go-git's default storage, which opens the pack
// file again for every object it reads (and a voldfs open fetches the inode:
// close-to-open), and with KeepDescriptors, which keeps it open.
func BenchmarkGitClone(b *testing.B) {
	sig := &object.Signature{Name: "Bench", Email: "bench@example.com", When: time.Unix(1e9, 0).UTC()}
	origin, err := git.Init(gitmemory.NewStorage(), memfs.New())
	require.NoError(b, err)
	owt, err := origin.Worktree()
	require.NoError(b, err)
	for i := range 500 {
		name := fmt.Sprintf("d%02d/f%03d.go", i%50, i)
		require.NoError(b, util.WriteFile(owt.Filesystem, name, []byte(fmt.Sprintf("package d\n\n// %d\n", i)), 0o644))
	}
	require.NoError(b, owt.AddWithOptions(&git.AddOptions{All: true}))
	_, err = owt.Commit("bench", &git.CommitOptions{Author: sig, Committer: sig})
	require.NoError(b, err)
	client.InstallProtocol("inproc", server.NewClient(server.MapLoader{"inproc://bench/clone": origin.Storer}))

	for _, keep := range []bool{false, true} {
		b.Run(fmt.Sprintf("KeepDescriptors=%v", keep), func(b *testing.B) {
			var trips int64
			for b.Loop() {
				fsys, err := voldfs.Format(context.Background(), memory.New(), nil)
				require.NoError(b, err)
				wt := voldbilly.New(fsys)
				dotgit, err := wt.Chroot(".git")
				require.NoError(b, err)
				storage := filesystem.NewStorageWithOptions(dotgit, cache.NewObjectLRUDefault(),
					filesystem.Options{KeepDescriptors: keep})
				_, err = git.Clone(storage, wt, &git.CloneOptions{URL: "inproc://bench/clone"})
				require.NoError(b, err)
				require.NoError(b, storage.Close())
				trips += fsys.Stats().RoundTrips()
				fsys.Close()
			}
			b.ReportMetric(float64(trips)/float64(b.N), "roundtrips/op")
		})
	}
}
