package voldfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/voldfs/voldfs/backend/memory"
)

// Crash consistency of special files: creating a FIFO, a socket and a
// character device, renaming the FIFO over a file, linking the device,
// changing its mode, and removing the socket runs against a store that
// stops answering (or loses a reply) after operation i, for every i; the
// recovered filesystem must be clean after a repair, and each special file
// must exist with its type and device number, or not at all, as some prefix
// of the workload leaves it.

const specialDev = 0x0801 // major 8, minor 1

func specialWorkload(f *FS) (int, error) {
	steps := []func() error{
		func() error { return f.Mknod("fifo", fs.ModeNamedPipe|0o644, 0) },
		func() error { return f.Mknod("sock", fs.ModeSocket|0o755, 0) },
		func() error { return f.Mknod("dev", fs.ModeDevice|fs.ModeCharDevice|0o600, specialDev) },
		func() error { return f.Rename("fifo", "file") },
		func() error { return f.Link("dev", "dev2") },
		func() error { return f.Chmod("dev2", 0o640) },
		func() error { return f.Remove("sock") },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return i, err
		}
	}
	return len(steps), nil
}

// specialState is what a name holds: absent, or a file of a type.
func specialState(t *testing.T, f *FS, name string) string {
	t.Helper()
	fi, err := f.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "absent"
	}
	if err != nil {
		t.Fatalf("lstat %s: %v", name, err)
	}
	a := fi.Sys().(*Attr)
	return fmt.Sprintf("%v nlink %d rdev %#x", fi.Mode(), a.Nlink, a.Rdev)
}

func TestSpecialCrashSweep(t *testing.T) {
	ctx := context.Background()
	setup := func() *memory.Store {
		s := memory.New()
		f, err := Format(ctx, s, &Options{BlockSize: crashBS})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.WriteFile("file", []byte("a regular file"), 0o644); err != nil {
			t.Fatal(err)
		}
		return s
	}
	const (
		fifo   = "prw-r--r-- nlink 1 rdev 0x0"
		sock   = "Srwxr-xr-x nlink 1 rdev 0x0"
		dev1   = "Dcrw------- nlink 1 rdev 0x801"
		dev2   = "Dcrw------- nlink 2 rdev 0x801"
		dev2m  = "Dcrw-r----- nlink 2 rdev 0x801"
		plain  = "-rw-r--r-- nlink 1 rdev 0x0"
		absent = "absent"
	)
	// states[name][k] is what name holds after k steps; after a workload
	// that completed done steps, step done may or may not have happened.
	states := map[string][]string{
		"fifo": {absent, fifo, fifo, fifo, absent, absent, absent, absent},
		"file": {plain, plain, plain, plain, fifo, fifo, fifo, fifo},
		"sock": {absent, absent, sock, sock, sock, sock, sock, absent},
		"dev":  {absent, absent, absent, dev1, dev1, dev2, dev2m, dev2m},
		"dev2": {absent, absent, absent, absent, absent, dev2, dev2m, dev2m},
	}
	allowed := func(name string, done int) []string {
		st := states[name]
		return []string{st[done], st[min(done+1, len(st)-1)]}
	}
	sweepWorkload(t, setup, specialWorkload, 7, func(t *testing.T, g *FS, done int) {
		for name := range states {
			got, want := specialState(t, g, name), allowed(name, done)
			if got != want[0] && got != want[1] {
				t.Errorf("after %d steps: %s is %q, want one of %q", done, name, got, want)
			}
		}
	})
}
