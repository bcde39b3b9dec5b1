package voldfs

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/voldfs/voldfs/backend/memory"
)

// Crash consistency of reflink copies: a workload of clones, a write to a
// clone, a clone range, removing the source and truncating the copy runs
// against a store that stops answering (or loses a reply) after operation
// i, for every i; then a new FS opens what survived, Fsck repairs and
// collects garbage, a second Fsck (which checks every reference count)
// must be clean, and every file must hold a version some prefix of the
// workload gives it.

var (
	rcSrc   = crashPattern("SRC", 5*crashBS+100)
	rcWrite = crashPattern("WRI", crashBS)
	rcD2    = func() []byte { b := bytes.Clone(rcSrc); copy(b[2*crashBS:], rcWrite); return b }()
	rcD3    = func() []byte {
		b := bytes.Clone(rcD2)
		copy(b[4*crashBS:5*crashBS], rcSrc[crashBS:2*crashBS])
		return b
	}()
	rcD5 = rcD3[:crashBS]
)

func rcWorkload(f *FS) (int, error) {
	steps := []func() error{
		func() error { return f.Clone("src", "dst") },
		func() error {
			h, err := f.OpenFile("dst", os.O_RDWR, 0)
			if err != nil {
				return err
			}
			if _, err := h.WriteAt(rcWrite, 2*crashBS); err != nil {
				h.Close()
				return err
			}
			return h.Close()
		},
		func() error {
			s, err := f.Open("src")
			if err != nil {
				return err
			}
			defer s.Close()
			d, err := f.OpenFile("dst", os.O_RDWR, 0)
			if err != nil {
				return err
			}
			if err := d.CloneRange(s.(*File), crashBS, 4*crashBS, crashBS); err != nil {
				d.Close()
				return err
			}
			return d.Close()
		},
		func() error { return f.Remove("src") },
		func() error { return f.Truncate("dst", crashBS) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return i, err
		}
	}
	return len(steps), nil
}

func rcCheck(t *testing.T, tree map[string][]byte, done int) {
	t.Helper()
	expect := func(p string, allowed ...[]byte) {
		t.Helper()
		got, ok := tree[p]
		if !oneOf(got, ok, allowed...) {
			t.Errorf("after %d steps: %s is %d bytes (present %v) %s", done, p, len(got), ok, describeMix(got, allowed))
		}
	}
	switch {
	case done < 3:
		expect("src", rcSrc)
	case done == 3:
		expect("src", rcSrc, nil)
	default:
		expect("src", nil)
	}
	dst := [][][]byte{
		{nil, {}, rcSrc},
		{rcSrc, rcD2},
		{rcD2, rcD3},
		{rcD3},
		{rcD3, rcD5},
		{rcD5},
	}
	expect("dst", dst[done]...)
}

func TestCloneCrashSweep(t *testing.T) {
	ctx := context.Background()
	setup := func() *memory.Store {
		s := memory.New()
		f, err := Format(ctx, s, &Options{BlockSize: crashBS})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.WriteFile("src", rcSrc, 0o644); err != nil {
			t.Fatal(err)
		}
		return s
	}
	sweepWorkload(t, setup, rcWorkload, 5, func(t *testing.T, g *FS, done int) {
		rcCheck(t, treeContents(t, g), done)
	})
}
