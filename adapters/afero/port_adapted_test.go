// Tests adapted from afero v1.15.0 (iofs_test.go, lstater_test.go,
// symlink_test.go; Copyright © 2014 Steve Francia and the afero authors,
// Apache License 2.0): there they run against OsFs and the wrappers
// (CopyOnWriteFs, BasePathFs, ReadOnlyFs) over it, with os calls to set up
// symlinks; here the voldfs Fs takes OsFs's place and the wrappers are
// built with their exported constructors.

package voldafero_test

import (
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	. "github.com/spf13/afero"
)

func TestIOFS(t *testing.T) {
	t.Parallel()
	for name, vfs := range map[string]Fs{
		"voldfs":          newVoldFs(),
		"BasePathFs over": NewBasePathFs(newVoldFs(), os.TempDir()),
	} {
		t.Run(name, func(t *testing.T) {
			err := vfs.MkdirAll("dir1/dir2", os.ModePerm)
			if err != nil {
				t.Fatal("MkdirAll failed:", err)
			}
			f, err := vfs.OpenFile("dir1/dir2/test.txt", os.O_RDWR|os.O_CREATE, os.ModePerm)
			if err != nil {
				t.Fatal("OpenFile (O_CREATE) failed:", err)
			}
			f.Close()
			if err := fstest.TestFS(NewIOFS(vfs), "dir1/dir2/test.txt"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestIOFSNativeDirEntryWhenPossible(t *testing.T) {
	t.Parallel()
	vfs := newVoldFs()
	if err := vfs.MkdirAll("dir1/dir2", os.ModePerm); err != nil {
		t.Fatal(err)
	}
	const numFiles = 10
	var fileNumbers []int
	for i := 0; i < numFiles; i++ {
		fileNumbers = append(fileNumbers, i)
	}
	rand.Shuffle(len(fileNumbers), func(i, j int) {
		fileNumbers[i], fileNumbers[j] = fileNumbers[j], fileNumbers[i]
	})
	for _, i := range fileNumbers {
		f, err := vfs.Create(fmt.Sprintf("dir1/dir2/test%d.txt", i))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	dir2, err := vfs.Open("dir1/dir2")
	if err != nil {
		t.Fatal(err)
	}
	defer dir2.Close()

	// Adapted: afero checks the entries are not its internal
	// common.FileInfoDirEntry wrapper; here, that they are voldfs's own
	// (whose Info has an *voldfs.Attr as Sys).
	assertDirEntries := func(entries []fs.DirEntry, ordered bool) {
		if len(entries) != numFiles {
			t.Fatalf("expected %d, got %d", numFiles, len(entries))
		}
		for i, entry := range entries {
			if strings.Contains(fmt.Sprintf("%T", entry), "afero") {
				t.Fatalf("DirEntry not native: %T", entry)
			}
			if ordered && entry.Name() != fmt.Sprintf("test%d.txt", i) {
				t.Fatalf("expected %s, got %s", fmt.Sprintf("test%d.txt", i), entry.Name())
			}
		}
	}
	dirEntries, err := dir2.(fs.ReadDirFile).ReadDir(-1)
	if err != nil {
		t.Fatal(err)
	}
	assertDirEntries(dirEntries, false)

	iofs := NewIOFS(vfs)
	dirEntries, err = iofs.ReadDir("dir1/dir2")
	if err != nil {
		t.Fatal(err)
	}
	assertDirEntries(dirEntries, true)

	fileCount := 0
	err = fs.WalkDir(iofs, "dir1", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			fileCount++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fileCount != numFiles {
		t.Fatalf("expected %d, got %d", numFiles, fileCount)
	}
}

func TestLstatIfPossible(t *testing.T) {
	vfs := newVoldFs()
	workDir, err := TempDir(vfs, "", "afero-lstate")
	if err != nil {
		t.Fatal(err)
	}
	memWorkDir := "/lstate"
	memFs := NewMemMapFs()
	overlayFs1 := NewCopyOnWriteFs(vfs, memFs)
	overlayFs2 := NewCopyOnWriteFs(memFs, vfs)
	overlayFsMemOnly := NewCopyOnWriteFs(memFs, NewMemMapFs())
	basePathFs := NewBasePathFs(vfs, workDir)
	basePathFsMem := NewBasePathFs(memFs, memWorkDir)
	roFs := NewReadOnlyFs(vfs)
	roFsMem := NewReadOnlyFs(memFs)

	pathFileMem := filepath.Join(memWorkDir, "aferom.txt")
	WriteFile(vfs, filepath.Join(workDir, "afero.txt"), []byte("Hi, Afero!"), 0o777)
	WriteFile(memFs, filepath.Join(pathFileMem), []byte("Hi, Afero!"), 0o777)
	// Adapted: afero makes the link with os.Symlink after os.Chdir.
	if err := vfs.(Linker).SymlinkIfPossible("afero.txt", filepath.Join(workDir, "symafero.txt")); err != nil {
		t.Fatal(err)
	}
	pathFile := filepath.Join(workDir, "afero.txt")
	pathSymlink := filepath.Join(workDir, "symafero.txt")

	checkLstat := func(l Lstater, name string, shouldLstat bool) os.FileInfo {
		statFile, isLstat, err := l.LstatIfPossible(name)
		if err != nil {
			t.Fatalf("Lstat check failed: %s", err)
		}
		if isLstat != shouldLstat {
			t.Fatalf("Lstat status was %t for %s", isLstat, name)
		}
		return statFile
	}
	testLstat := func(l Lstater, pathFile, pathSymlink string) {
		shouldLstat := pathSymlink != ""
		statRegular := checkLstat(l, pathFile, shouldLstat)
		statSymlink := checkLstat(l, pathSymlink, shouldLstat)
		if statRegular == nil || statSymlink == nil {
			t.Fatal("got nil FileInfo")
		}
		symSym := statSymlink.Mode()&os.ModeSymlink == os.ModeSymlink
		if symSym == (pathSymlink == "") {
			t.Fatal("expected the FileInfo to describe the symlink")
		}
		_, _, err := l.LstatIfPossible("this-should-not-exist.txt")
		if err == nil || !os.IsNotExist(err) {
			t.Fatalf("expected file to not exist, got %s", err)
		}
	}
	testLstat(vfs.(Lstater), pathFile, pathSymlink)
	testLstat(overlayFs1.(Lstater), pathFile, pathSymlink)
	testLstat(overlayFs2.(Lstater), pathFile, pathSymlink)
	testLstat(basePathFs.(Lstater), "afero.txt", "symafero.txt")
	testLstat(overlayFsMemOnly.(Lstater), pathFileMem, "")
	testLstat(basePathFsMem.(Lstater), "aferom.txt", "")
	testLstat(roFs.(Lstater), pathFile, pathSymlink)
	testLstat(roFsMem.(Lstater), pathFileMem, "")
}

func TestSymlinkIfPossible(t *testing.T) {
	vfs := newVoldFs()
	workDir, err := TempDir(vfs, "", "afero-symlink")
	if err != nil {
		t.Fatal(err)
	}
	memWorkDir := "/sym"
	memFs := NewMemMapFs()
	overlayFs1 := NewCopyOnWriteFs(vfs, memFs)
	overlayFs2 := NewCopyOnWriteFs(memFs, vfs)
	overlayFsMemOnly := NewCopyOnWriteFs(memFs, NewMemMapFs())
	basePathFs := NewBasePathFs(vfs, workDir)
	basePathFsMem := NewBasePathFs(memFs, memWorkDir)
	roFs := NewReadOnlyFs(vfs)
	roFsMem := NewReadOnlyFs(memFs)

	pathFileMem := filepath.Join(memWorkDir, "aferom.txt")
	vPath := filepath.Join(workDir, "afero.txt")
	WriteFile(vfs, vPath, []byte("Hi, Afero!"), 0o777)
	WriteFile(memFs, filepath.Join(pathFileMem), []byte("Hi, Afero!"), 0o777)

	testLink := func(l Linker, source, destination string, output *string) {
		if fs, ok := l.(Fs); ok {
			dir := filepath.Dir(destination)
			if dir != "" {
				fs.MkdirAll(dir, 0o777)
			}
		}
		err := l.SymlinkIfPossible(source, destination)
		if (err == nil) && (output != nil) {
			t.Fatalf("Error creating symlink, succeeded when expecting error %v", *output)
		} else if (err != nil) && (output == nil) {
			t.Fatalf("Error creating symlink, expected success, got %v", err)
		} else if err != nil && err.Error() != *output && !strings.HasSuffix(err.Error(), *output) {
			t.Fatalf("Error creating symlink, expected error '%v', instead got output '%v'", *output, err)
		} else if output == nil {
			if lst, ok := l.(Lstater); ok {
				_, ok, err := lst.LstatIfPossible(destination)
				if !ok {
					t.Fatalf("Error calling lstat on file after successful link: %v", err)
				}
			}
		}
	}
	notSupported := ErrNoSymlink.Error()
	testLink(vfs.(Linker), vPath, filepath.Join(workDir, "os/link.txt"), nil)
	testLink(overlayFs1.(Linker), vPath, filepath.Join(workDir, "overlay/link1.txt"), &notSupported)
	testLink(overlayFs2.(Linker), pathFileMem, filepath.Join(workDir, "overlay2/link2.txt"), nil)
	testLink(overlayFsMemOnly.(Linker), pathFileMem, filepath.Join(memWorkDir, "overlay3/link.txt"), &notSupported)
	testLink(basePathFs.(Linker), "afero.txt", "basepath/link.txt", nil)
	testLink(basePathFsMem.(Linker), pathFileMem, "link/file.txt", &notSupported)
	testLink(roFs.(Linker), vPath, filepath.Join(workDir, "ro/link.txt"), &notSupported)
	testLink(roFsMem.(Linker), pathFileMem, filepath.Join(memWorkDir, "ro/link.txt"), &notSupported)
}

func TestReadlinkIfPossible(t *testing.T) {
	vfs := newVoldFs()
	workDir, err := TempDir(vfs, "", "afero-readlink")
	if err != nil {
		t.Fatal(err)
	}
	memWorkDir := "/read"
	memFs := NewMemMapFs()
	overlayFs1 := NewCopyOnWriteFs(vfs, memFs)
	overlayFs2 := NewCopyOnWriteFs(memFs, vfs)
	overlayFsMemOnly := NewCopyOnWriteFs(memFs, NewMemMapFs())
	basePathFs := NewBasePathFs(vfs, workDir)
	basePathFsMem := NewBasePathFs(memFs, memWorkDir)
	roFs := NewReadOnlyFs(vfs)
	roFsMem := NewReadOnlyFs(memFs)

	pathFileMem := filepath.Join(memWorkDir, "aferom.txt")
	vPath := filepath.Join(workDir, "afero.txt")
	WriteFile(vfs, vPath, []byte("Hi, Afero!"), 0o777)
	WriteFile(memFs, filepath.Join(pathFileMem), []byte("Hi, Afero!"), 0o777)

	createLink := func(l Linker, source, destination string) error {
		if fs, ok := l.(Fs); ok {
			dir := filepath.Dir(destination)
			if dir != "" {
				fs.MkdirAll(dir, 0o777)
			}
		}
		return l.SymlinkIfPossible(source, destination)
	}
	testRead := func(r LinkReader, name string, output *string) {
		_, err := r.ReadlinkIfPossible(name)
		if (err != nil) && (output == nil) {
			t.Fatalf("Error reading link, expected success, got error: %v", err)
		} else if (err == nil) && (output != nil) {
			t.Fatalf("Error reading link, succeeded when expecting error: %v", *output)
		} else if err != nil && err.Error() != *output && !strings.HasSuffix(err.Error(), *output) {
			t.Fatalf("Error reading link, expected error '%v', instead received '%v'", *output, err)
		}
	}
	notSupported := ErrNoReadlink.Error()
	if err := createLink(vfs.(Linker), vPath, filepath.Join(workDir, "os/link.txt")); err != nil {
		t.Fatal("Error creating test link: ", err)
	}
	testRead(vfs.(LinkReader), filepath.Join(workDir, "os/link.txt"), nil)
	testRead(overlayFs1.(LinkReader), filepath.Join(workDir, "os/link.txt"), nil)
	testRead(overlayFs2.(LinkReader), filepath.Join(workDir, "os/link.txt"), nil)
	testRead(overlayFsMemOnly.(LinkReader), pathFileMem, &notSupported)
	testRead(basePathFs.(LinkReader), "os/link.txt", nil)
	testRead(basePathFsMem.(LinkReader), pathFileMem, &notSupported)
	testRead(roFs.(LinkReader), filepath.Join(workDir, "os/link.txt"), nil)
	testRead(roFsMem.(LinkReader), pathFileMem, &notSupported)
}
