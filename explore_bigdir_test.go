package voldfs

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend/memory"
)

// xsetupBig is xsetup with directory b grown past its inode: b's entries
// live in a trie of blocks with a write buffer in the inode, and the buffer
// is full to within 2 bytes, so that every explored change to b (a rename
// into or out of it, an unlink, a link, a create, a mkdir) merges the
// buffer into new trie blocks, freeing the old ones while the other client
// may hold them in its cache. The padding is hard links to one file, b/p0
// (one inode more), with long names so that a few dozen fill the inode,
// and the last one's length is adjusted to the byte.
func xsetupBig(t testing.TB, f *FS) {
	xsetup(t, f)
	require.NoError(t, f.WriteFile("b/p0", []byte("p"), 0o644))
	fi, err := f.Stat("b")
	require.NoError(t, err)
	b := fi.Sys().(*Attr).Ino
	inlineLeaf := false
	room := func() int {
		ci, err := f.c.getInode(context.Background(), b, 0)
		require.NoError(t, err)
		r, err := decodeDirRoot(ci.n.inline)
		require.NoError(t, err)
		inlineLeaf = r.inlineLeaf()
		return dirInlineMax - len(ci.n.inline)
	}
	last, n := "", 0
	for range 200 {
		r := room()
		switch {
		case r >= 0 && r <= 2 && !inlineLeaf:
			return
		case inlineLeaf && r < 300:
			// Still all in the inode: one more name spills it.
			n++
			last = fmt.Sprintf("b/p%d-%s", n, strings.Repeat("x", 200))
			require.NoError(t, f.Link("b/p0", last))
		case r > 300 || last == "" || len(last)-2+r-1 > 250:
			// A new pad; if it spills b out of its inode or merges the
			// buffer, the next rounds fill the new buffer.
			n++
			last = fmt.Sprintf("b/p%d-%s", n, strings.Repeat("x", min(200, max(1, r-16))))
			require.NoError(t, f.Link("b/p0", last))
		default:
			// Lengthen the last pad by r-1 bytes: its buffered insert
			// is replaced.
			next := last + strings.Repeat("y", r-1)
			require.NoError(t, f.Rename(last, next))
			last = next
		}
	}
	t.Fatalf("could not fill b's buffer: %d bytes left", room())
}

// TestExplorePairsBigDir runs the pairs that touch b on xsetupBig's tree,
// natively and through the txn fallback (there half of them, or all with
// VOLDFS_EXPLORE_BIG_ALL=1): seeded random runs
// (VOLDFS_EXPLORE_BIG_RUNS per pair, default 4) and one with a fault at
// every call, its kind in turn (VOLDFS_EXPLORE_FAULT_RUNS,
// VOLDFS_EXPLORE_FAULT_KINDS as in TestExplorePairsTxn). Block reads and writes are not scheduled,
// so a merge's frees land at once: a client with the old trie in its cache
// must meet the missing block and retry, never fail or lose a name.
func TestExplorePairsBigDir(t *testing.T) {
	for _, useTxn := range []bool{false, true} {
		t.Run(map[bool]string{false: "native", true: "txn"}[useTxn], func(t *testing.T) {
			e := newXenvWith(t, useTxn, xsetupBig)
			if replayExplore(t, e) {
				return
			}
			// The premise: one more name in b merges its buffer.
			mem := e.copyStore(t)
			before := blockKeys(t, mem)
			f := e.open(t, mem, nil)
			require.NoError(t, xop{"create", "b/f", ""}.run(f))
			f.WaitFrees()
			after := blockKeys(t, mem)
			for _, k := range e.garbage {
				delete(before, k)
			}
			require.NotEmpty(t, before, "b's trie is in blocks")
			for k := range before {
				require.NotContains(t, after, k, "a create in b merged its buffer: every trie block is new")
			}
			var cases []xcase
			for i, c := range pairCases() {
				// Through the fallback, half the pairs unless
				// VOLDFS_EXPLORE_BIG_ALL=1 (CI time).
				every := 1
				switch {
				case testing.Short():
					every = 4
				case useTxn && os.Getenv("VOLDFS_EXPLORE_BIG_ALL") != "1":
					every = 2
				}
				if strings.Contains(c.ops[0].String()+c.ops[1].String(), " b") && i%every == 0 {
					cases = append(cases, c)
				}
			}
			e.explorePairs(t, cases, xplan{free: envInt("VOLDFS_EXPLORE_BIG_RUNS", 4), perFault: envInt("VOLDFS_EXPLORE_FAULT_RUNS", 1),
				random: true, oneKind: true})
		})
	}
}

func padName(i int) string { return fmt.Sprintf("b/p%d-%s", i, strings.Repeat("x", 200)) }

// blockKeys returns the set of s's block keys.
func blockKeys(t testing.TB, s *memory.Store) map[string]bool {
	m := map[string]bool{}
	require.NoError(t, s.List(context.Background(), "x/b/", func(k string) error { m[k] = true; return nil }))
	return m
}
