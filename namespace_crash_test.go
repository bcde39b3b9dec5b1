package voldfs

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend/faulty"
	"github.com/voldfs/voldfs/backend/memory"
)

// TestNamespaceCrashSweep fails every store operation index of each
// namespace operation in turn (the store stops answering, or one reply is
// lost): the operation is applied entirely or not at all, link counts match
// names, and the only thing fsck may find is an unlinked inode a failure
// after the commit left unfreed (an orphan with no link: a leak, which fsck
// deletes). A lost commit reply is resolved by reading: the operation
// succeeds.
func TestNamespaceCrashSweep(t *testing.T) {
	setup := func(t *testing.T, f *FS) {
		mkdirs(t, f, "a", "b", "a/d", "a/d/s", "b/e")
		writeFile(t, f, "a/f", []byte("file f"))
		writeFile(t, f, "b/g", []byte("file g"))
	}
	ops := []struct {
		name string
		run  func(f *FS) error
	}{
		{"create", func(f *FS) error {
			h, err := f.Create("b/new")
			if err != nil {
				return err
			}
			return h.Close()
		}},
		{"mkdir", func(f *FS) error { return f.Mkdir("a/d/m", 0o755) }},
		{"link", func(f *FS) error { return f.Link("a/f", "b/f2") }},
		{"unlink", func(f *FS) error { return f.Remove("b/g") }},
		{"rmdir", func(f *FS) error { return f.Remove("b/e") }},
		{"move file", func(f *FS) error { return f.Rename("a/f", "b/f") }},
		{"move file over file", func(f *FS) error { return f.Rename("a/f", "b/g") }},
		{"move dir", func(f *FS) error { return f.Rename("a/d", "b/d") }},
		{"move dir over empty dir", func(f *FS) error { return f.Rename("a/d", "b/e") }},
		{"exchange dir and file", func(f *FS) error { return f.RenameFlags("a/d", "b/g", RenameExchange) }},
	}
	ctx := context.Background()
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			fresh := func() (*FS, *memory.Store) {
				s := memory.New()
				f, err := Format(ctx, s, nil)
				require.NoError(t, err)
				setup(t, f)
				f.WaitFrees()
				return f, s
			}
			f, _ := fresh()
			before := treeContents(t, f)
			require.NoError(t, op.run(f))
			after := treeContents(t, f)
			for _, mode := range crashModes {
				for i := int64(0); ; i++ {
					_, s := fresh()
					fst := faulty.Wrap(s, nil)
					g, err := Open(ctx, fst, &Options{AttrTimeout: -1})
					require.NoError(t, err)
					start := fst.Ops()
					fst.SetInjector(mode.inj(start + i))
					oerr := op.run(g)
					g.WaitFrees()
					fst.SetInjector(nil)
					reached := fst.Ops()-start > i
					h, err := Open(ctx, s, &Options{AttrTimeout: -1})
					require.NoError(t, err)
					tree := treeContents(t, h)
					switch {
					case oerr == nil && !maps.EqualFunc(tree, after, bytesEq):
						t.Fatalf("%s at op %d: acknowledged, but the tree is %v", mode.name, i, tree)
					case !maps.EqualFunc(tree, after, bytesEq) && !maps.EqualFunc(tree, before, bytesEq):
						t.Fatalf("%s at op %d (%v): half applied: %v", mode.name, i, oerr, tree)
					}
					readModel(t, h)
					r, err := h.Fsck(ctx, FsckOptions{Grace: -1})
					require.NoError(t, err)
					for _, p := range r.Problems {
						if p.Kind != "orphan" || !strings.Contains(p.Detail, "nlink 0") {
							t.Errorf("%s at op %d: fsck: %v", mode.name, i, p)
						}
					}
					if !reached {
						require.NoError(t, oerr)
						t.Logf("%s: %d failure points swept", mode.name, i)
						break
					}
					if oerr == nil {
						continue // a lost reply, resolved by reading
					}
					require.Truef(t, errors.Is(oerr, faulty.ErrInjected) || errors.Is(oerr, faulty.ErrReplyLost), "%s at op %d: %v", mode.name, i, oerr)
					require.Less(t, i, int64(100), "no end")
				}
			}
		})
	}
}

func bytesEq(a, b []byte) bool { return string(a) == string(b) && (a == nil) == (b == nil) }
