package voldfs_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend/memory"
)

// Make a reflink copy of a large file: no data is copied, and writing the
// copy leaves the original as it was.
func ExampleFS_Clone() {
	fsys, err := voldfs.Format(context.Background(), memory.New(), nil)
	if err != nil {
		log.Fatal(err)
	}
	big := bytes.Repeat([]byte("voldfs "), 1<<20) // 7 MiB
	if err := fsys.WriteFile("image", big, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := fsys.Clone("image", "copy"); err != nil {
		log.Fatal(err)
	}
	f, err := fsys.OpenFile("copy", os.O_RDWR, 0)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("VOLDFS"), 0); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	orig, _ := fsys.ReadFile("image")
	cp, _ := fsys.ReadFile("copy")
	fmt.Printf("%s| %s| %d bytes each\n", orig[:7], cp[:7], len(cp))
	// Output: voldfs | VOLDFS | 7340032 bytes each
}
