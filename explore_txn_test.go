package voldfs

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestExploreTxnReplays checks that a seeded random run through the txn
// fallback replays: run again from its picks, every case makes the same
// store calls in the same order, with the default timeout and with
// aggressive aborts (one step), with no fault and with a lost reply.
func TestExploreTxnReplays(t *testing.T) {
	e := newXenv(t, true)
	cases := pairCases()
	for _, steps := range []string{"10", "1"} {
		t.Setenv("VOLDFS_EXPLORE_TXN_STEPS", steps)
		for i, c := range cases {
			if testing.Short() && i%5 != 0 {
				continue
			}
			for _, f := range []xfault{{}, {client: 1, call: 3, kind: "lost"}} {
				r := e.run(t, c, f, nil, rand.New(rand.NewPCG(uint64(i), 7)))
				t.Setenv("VOLDFS_EXPLORE_TXN_SEED", strconv.FormatUint(r.seed, 10))
				again := e.run(t, c, f, r.picks, nil)
				assert.True(t, slices.Equal(r.picks, again.picks), "%s under %v, %s steps: picks %s then %s",
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
