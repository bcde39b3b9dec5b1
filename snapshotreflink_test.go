package voldfs

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSnapshotReflinkDelete: blocks a snapshot holds may also be held by a
// reflink copy made later, from an inode the snapshot's deletion walk does
// not see. Deleting the snapshot must leave the copy whole: after the
// deletion every copy reads back as written and fsck (with GC) is clean.
// Without everShared (snapshotdelete.go), "clone then remove source" loses
// the copy's blocks.
func TestSnapshotReflinkDelete(t *testing.T) {
	for _, st := range snapStores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			s := st.new(t)
			f, err := Format(ctx, s, &Options{BlockSize: 4096, Snapshots: true})
			require.NoError(t, err)
			defer f.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			data := func() []byte {
				b := make([]byte, 10*4096+100)
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				return b
			}
			want := map[string][]byte{}
			for _, name := range []string{"a", "b", "c", "early"} {
				want[name] = data()
				require.NoError(t, f.WriteFile(name, want[name], 0o644))
			}
			// A clone made before the snapshot: both sides change after it.
			require.NoError(t, f.Clone("early", "early.copy"))
			want["early.copy"] = want["early"]
			require.NoError(t, f.Snapshot(ctx, "s"))

			// Clone after the snapshot, then remove the source.
			require.NoError(t, f.Clone("a", "a.copy"))
			want["a.copy"] = want["a"]
			require.NoError(t, f.Remove("a"))
			delete(want, "a")
			// Clone after the snapshot, then overwrite the source.
			require.NoError(t, f.Clone("b", "b.copy"))
			want["b.copy"] = want["b"]
			want["b"] = data()
			require.NoError(t, f.WriteFile("b", want["b"], 0o644))
			// Both sides of the early clone change.
			for _, name := range []string{"early", "early.copy"} {
				w, err := f.OpenFile(name, os.O_WRONLY, 0)
				require.NoError(t, err)
				_, err = w.WriteAt(bytes.Repeat([]byte(name[:1]), 5000), 4096)
				require.NoError(t, err)
				require.NoError(t, w.Close())
				b := bytes.Clone(want[name])
				copy(b[4096:], bytes.Repeat([]byte(name[:1]), 5000))
				want[name] = b
			}
			f.WaitFrees()

			require.NoError(t, f.DeleteSnapshot(ctx, "s"))
			f.WaitFrees()
			g, err := Open(ctx, s, nil) // empty caches: every block from the store
			require.NoError(t, err)
			defer g.Close()
			for name, w := range want {
				got, err := g.ReadFile(name)
				if assert.NoError(t, err, name) {
					assert.True(t, bytes.Equal(w, got), "%s changed after the snapshot's deletion", name)
				}
			}
			r, err := f.Fsck(ctx, FsckOptions{GC: true, Grace: time.Nanosecond})
			require.NoError(t, err)
			assert.Empty(t, r.Problems)
			for name, w := range want {
				got, err := f.ReadFile(name)
				if assert.NoError(t, err, name) {
					assert.True(t, bytes.Equal(w, got), "%s changed after GC", name)
				}
			}
		})
	}
}

// TestSnapshotFsckRepairFenced: an Fsck repair is a commit like any other,
// so it preserves the record a snapshot holds. A file's link count is made
// wrong before the snapshot; the repair fixes the live inode and the
// snapshot still shows the record it froze.
func TestSnapshotFsckRepairFenced(t *testing.T) {
	for _, st := range snapStores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			s := st.new(t)
			f, err := Format(ctx, s, &Options{Snapshots: true})
			require.NoError(t, err)
			defer f.Close()
			require.NoError(t, f.WriteFile("f", []byte("data"), 0o644))
			fi, err := f.Stat("f")
			require.NoError(t, err)
			ino := fi.Sys().(*Attr).Ino
			// Break the link count behind the library's back.
			key := f.c.inodeKey(ino)
			b, ver, err := s.Get(ctx, key)
			require.NoError(t, err)
			n, err := decodeInode(key, b)
			require.NoError(t, err)
			n.nlink = 3
			_, err = s.CAS(ctx, key, ver, encodeInode(n))
			require.NoError(t, err)
			f.c.dropInode(ino)

			require.NoError(t, f.Snapshot(ctx, "s"))
			r, err := f.Fsck(ctx, FsckOptions{Repair: true, Grace: -1})
			require.NoError(t, err)
			require.Positive(t, r.Repaired)
			fi, err = f.Stat("f")
			require.NoError(t, err)
			assert.EqualValues(t, 1, fi.Sys().(*Attr).Nlink, "live link count repaired")
			v, err := f.OpenSnapshot(ctx, "s")
			require.NoError(t, err)
			fi, err = v.Stat("f")
			require.NoError(t, err)
			assert.EqualValues(t, 3, fi.Sys().(*Attr).Nlink, "the snapshot keeps the record it froze")
		})
	}
}
