package voldbilly_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-billy/v5/util"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/filesystem"
	gitmemory "github.com/go-git/go-git/v5/storage/memory"
	"github.com/voldfs/voldfs"
	voldbilly "github.com/voldfs/voldfs/adapters/billy"
	"github.com/voldfs/voldfs/backend/memory"
)

// go-git clones a repository into voldfs, with no FUSE mount: the work tree
// is the adapter's Filesystem and the repository (.git) a Chroot of it.
// The repository cloned is made here with go-git in memory and served in
// process, so the example needs no network and no git binary.
func Example_gitClone() {
	origin := newOrigin("README.md", "hello from go-git\n", "Initial commit")
	client.InstallProtocol("inproc", server.NewClient(server.MapLoader{
		"inproc://origin/repo": origin.Storer,
	}))

	fsys, err := voldfs.Format(context.Background(), memory.New(), nil)
	if err != nil {
		log.Fatal(err)
	}
	worktree := voldbilly.New(fsys)
	dotgit, err := worktree.Chroot(".git")
	if err != nil {
		log.Fatal(err)
	}
	// KeepDescriptors keeps the pack file open: go-git otherwise opens it
	// again for every object, and every voldfs open fetches the inode.
	storage := filesystem.NewStorageWithOptions(dotgit, cache.NewObjectLRUDefault(),
		filesystem.Options{KeepDescriptors: true})
	defer storage.Close()
	repo, err := git.Clone(storage, worktree, &git.CloneOptions{URL: "inproc://origin/repo"})
	if err != nil {
		log.Fatal(err)
	}

	head, err := repo.Head()
	if err != nil {
		log.Fatal(err)
	}
	commit, err := repo.CommitObject(head.Hash())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(commit.Message)
	// The checked-out file, read through voldfs itself.
	b, err := fsys.ReadFile("README.md")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(b))
	// Output:
	// Initial commit
	// hello from go-git
}

// newOrigin makes a repository in memory with one commit of one file.
func newOrigin(name, content, message string) *git.Repository {
	repo, err := git.Init(gitmemory.NewStorage(), memfs.New())
	if err != nil {
		log.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		log.Fatal(err)
	}
	if err := util.WriteFile(wt.Filesystem, name, []byte(content), 0o644); err != nil {
		log.Fatal(err)
	}
	if _, err := wt.Add(name); err != nil {
		log.Fatal(err)
	}
	sig := &object.Signature{Name: "Example", Email: "example@example.com", When: time.Unix(1e9, 0).UTC()}
	if _, err := wt.Commit(message, &git.CommitOptions{Author: sig, Committer: sig}); err != nil {
		log.Fatal(err)
	}
	return repo
}
