package voldfs

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExploreTxnReplays checks that a seeded random run through the txn
// fallback replays: run again from its picks, every case makes the same
// store calls in the same order, with the default timeout and with
// aggressive aborts (one step), with no fault and with a lost reply.
func TestExploreTxnReplays(t *testing.T) {
	e := newXenv(t, true)
	cases := pairCases()
	for _, steps := range []int{10, 1} {
		e.steps = steps
		for i, c := range cases {
			if testing.Short() && i%5 != 0 {
				continue
			}
			for _, f := range []xfault{{}, {client: 1, call: 3, kind: "lost"}} {
				r := e.run(t, c, f, nil, rand.New(rand.NewPCG(uint64(i), 7)))
				t.Setenv("VOLDFS_EXPLORE_TXN_SEED", strconv.FormatUint(r.seed, 10))
				again := e.run(t, c, f, r.picks, nil)
				assert.True(t, slices.Equal(r.picks, again.picks), "%s under %v, %d steps: picks %s then %s",
					c.name, f, steps, picksString(r.picks), picksString(again.picks))
				assert.Equal(t, r.calls, again.calls, "%s under %v: calls per client", c.name, f)
				for k := range min(len(r.trace), len(again.trace)) {
					if r.trace[k] != again.trace[k] {
						t.Errorf("%s: step %d: %s then %s; before: %v", c.name, k, r.trace[k], again.trace[k], r.trace[max(0, k-6):k])
						break
					}
				}
			}
		}
	}
}

// TestExploreReplaysInAnotherProcess replays fault runs through the txn
// fallback in a new process of the test binary, from the string a failure
// would print, and checks that it makes the same store calls in the same
// order (a digest of the trace). Session 3's fault runs did not replay so:
// the setup tree's inode numbers, and so the keys and the order of a
// commit's locks, differed from process to process.
func TestExploreReplaysInAnotherProcess(t *testing.T) {
	e := newXenv(t, true)
	cases := pairCases()
	for _, k := range []struct {
		c     int
		f     xfault
		steps int
	}{{32, xfault{0, 21, "lost"}, 1}, {57, xfault{1, 3, "crash-applied"}, 10}, {100, xfault{}, 1}} {
		c := cases[k.c]
		e.steps = k.steps
		r := e.run(t, c, k.f, nil, rand.New(rand.NewPCG(uint64(k.c), 9)))
		require.True(t, r.hit || k.f.kind == "", "%s: the run never reached its fault %v", c.name, k.f)
		cmd := exec.Command(os.Args[0], "-test.run", "^TestExplorePairsTxn$/^abort-after-10$", "-test.v")
		cmd.Env = append(os.Environ(),
			"VOLDFS_EXPLORE_TXN_STEPS="+strconv.Itoa(k.steps),
			"VOLDFS_EXPLORE_TXN_SEED="+strconv.FormatUint(r.seed, 10),
			"VOLDFS_EXPLORE="+c.name+"/"+k.f.String()+"/"+picksString(r.picks))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		want := fmt.Sprintf("%d steps, trace %s", len(r.picks), traceSum(r.trace))
		assert.Contains(t, string(out), want, "%s under %v, %d steps: the replay in a new process differs", c.name, k.f, k.steps)
	}
}
