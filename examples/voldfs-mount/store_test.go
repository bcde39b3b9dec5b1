package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/voldfs/voldfs/backend/bolt"
)

func TestBoltOptions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		path string
		opts bolt.Options
		bad  bool
	}{
		{in: "/x/v.db", path: "/x/v.db"},
		{in: "v.db?", path: "v.db"},
		{in: "v.db?sync=interval&interval=5ms", path: "v.db", opts: bolt.Options{Interval: 5 * time.Millisecond}},
		{in: "v.db?sync=always", path: "v.db", opts: bolt.Options{Durability: bolt.SyncAlways}},
		{in: "v.db?sync=none&interval=1s", path: "v.db", opts: bolt.Options{NoSync: true, Interval: time.Second}},
		{in: "odd?name.db?", path: "odd?name.db"},
		{in: "", bad: true},
		{in: "?sync=always", bad: true},
		{in: "v.db?sync=sometimes", bad: true},
		{in: "v.db?interval=0", bad: true},
		{in: "v.db?interval=fast", bad: true},
		{in: "v.db?sync=always&interval=5ms", bad: true},
		{in: "v.db?sync=always&sync=none", bad: true},
		{in: "v.db?fsync=1", bad: true},
	} {
		path, opts, err := boltOptions(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if path != tc.path || *opts != tc.opts {
			t.Errorf("%q: path %q, options %+v; want %q, %+v", tc.in, path, *opts, tc.path, tc.opts)
		}
	}
}

func TestOpenBoltStoreURL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	s, err := openStore("bolt:" + path + "?sync=always")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := openStore("bolt:" + path + "?sync=bad"); err == nil {
		t.Errorf("a bad option opened the store")
	}
}
