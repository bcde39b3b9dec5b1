package voldfs_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"syscall"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend/memory"
)

// Take a snapshot, change the live tree, and read the snapshot as it was.
func ExampleFS_Snapshot() {
	ctx := context.Background()
	fsys, err := voldfs.Format(ctx, memory.New(), nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := fsys.WriteFile("report.txt", []byte("draft 1\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	// Constant time, whatever the tree's size.
	if err := fsys.Snapshot(ctx, "monday"); err != nil {
		log.Fatal(err)
	}
	if err := fsys.WriteFile("report.txt", []byte("draft 2\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := fsys.WriteFile("notes.txt", []byte("new\n"), 0o644); err != nil {
		log.Fatal(err)
	}

	monday, err := fsys.OpenSnapshot(ctx, "monday")
	if err != nil {
		log.Fatal(err)
	}
	old, _ := fs.ReadFile(monday, "report.txt")
	now, _ := fs.ReadFile(fsys, "report.txt")
	fmt.Printf("monday: %s", old)
	fmt.Printf("now: %s", now)
	_, err = fs.Stat(monday, "notes.txt")
	fmt.Println("notes.txt on monday exists:", !errors.Is(err, fs.ErrNotExist))
	err = monday.WriteFile("report.txt", nil, 0o644)
	fmt.Println("writing to a snapshot is EROFS:", errors.Is(err, syscall.EROFS))

	snaps, _ := fsys.Snapshots(ctx)
	for _, s := range snaps {
		fmt.Println("snapshot:", s.Name)
	}
	// Output:
	// monday: draft 1
	// now: draft 2
	// notes.txt on monday exists: false
	// writing to a snapshot is EROFS: true
	// snapshot: monday
}
