package voldfs

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/voldfs/voldfs/backend/faulty"
	"github.com/voldfs/voldfs/backend/memory"
)

// sweepWorkload runs workload once without faults to count its store
// operations (it must complete steps steps), then, for every crash mode and
// every operation i, on a fresh store from setup: injects the fault at i,
// runs the workload, and checks the store with check (given a new client's
// FS and the steps the failed run completed) after fsck finds it clean.
func sweepWorkload(t *testing.T, setup func() *memory.Store, workload func(*FS) (int, error), steps int, check func(t *testing.T, g *FS, done int)) {
	ctx := context.Background()
	open := func(s *memory.Store) (*faulty.Store, *FS) {
		fst := faulty.Wrap(s, nil)
		f, err := Open(ctx, fst, &Options{AttrTimeout: -1})
		if err != nil {
			t.Fatal(err)
		}
		return fst, f
	}
	fst, f := open(setup())
	base := fst.Ops()
	if done, err := workload(f); err != nil || done != steps {
		t.Fatalf("workload without faults: %d steps, %v", done, err)
	}
	total := fst.Ops() - base
	for _, m := range crashModes {
		t.Run(m.name, func(t *testing.T) {
			for i := int64(0); i <= total; i++ {
				s := setup()
				fst, f := open(s)
				fst.SetInjector(m.inj(i))
				done, err := workload(f)
				if err != nil && !errors.Is(err, faulty.ErrInjected) {
					t.Errorf("op %d: step %d failed with %v, want the injected error", i, done, err)
				}
				fst.SetInjector(nil)
				f.c.waitFrees()
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					g, err := Open(ctx, s, &Options{AttrTimeout: -1})
					if err != nil {
						t.Fatalf("open after crash: %v", err)
					}
					fsckClean(t, g)
					check(t, g, done)
				})
				if t.Failed() && !testing.Verbose() {
					t.Fatalf("stopping the sweep at op %d of %d", i, total)
				}
			}
			t.Logf("%s: swept %d crash points", m.name, total+1)
		})
	}
}
