package voldafero_test

import (
	"context"
	"os"
	"sort"
	"testing"

	"github.com/spf13/afero"
	"github.com/voldfs/voldfs"
	voldafero "github.com/voldfs/voldfs/adapters/afero"
	"github.com/voldfs/voldfs/backend/memory"
)

// newVoldFs formats a voldfs filesystem in a fresh memory store and wraps
// it, with os.TempDir created in it, since afero's TempFile and TempDir put
// their files there (MemMapFs creates missing parents; voldfs, like OsFs,
// does not).
func newVoldFs() afero.Fs {
	f, err := voldfs.Format(context.Background(), memory.New(), nil)
	if err != nil {
		panic(err)
	}
	a := voldafero.New(f)
	if err := a.MkdirAll(os.TempDir(), 0o777); err != nil {
		panic(err)
	}
	return a
}

// readDirNames is afero's unexported helper of the same name, which its
// tests use.
func readDirNames(fs afero.Fs, dirname string) ([]string, error) {
	f, err := fs.Open(dirname)
	if err != nil {
		return nil, err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// getData stands for MemMapFs's unexported getData, which TestMemMapFsRename
// uses to list every path: the paths under the root, by walking.
func getData(t *testing.T, fs afero.Fs) map[string]struct{} {
	paths := map[string]struct{}{}
	err := afero.Walk(fs, "/", func(p string, _ os.FileInfo, err error) error {
		paths[p] = struct{}{}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}
