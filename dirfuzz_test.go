package voldfs

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// FuzzDecodeDirNode feeds arbitrary bytes to the node and root decoders
// (including the root's write buffer) and to the lookup, listing and fsck
// walks over them. Each input is tried as it is
// and, so that the fuzzer gets past the checksum, also as the body of a
// correctly framed leaf, branch and root. Decoding must fail with ErrCorrupt
// or succeed; what decodes must re-encode to the same bytes.
func FuzzDecodeDirNode(f *testing.F) {
	ns := newMemNodeStore(1024)
	d := &dirFixture{t: f, ns: ns}
	for i := range 120 {
		d.insert(dirEntry{name: fmt.Sprint("seed", i), ino: uint64(i) << 20, typ: uint8(i%4 + 1)}, false)
	}
	f.Add(d.root)
	n := 0
	for _, p := range ns.blocks {
		f.Add(p)
		f.Add(p[3 : len(p)-4]) // body alone, to be reframed
		if n++; n == 4 {
			break
		}
	}
	// A root with a write buffer of inserts, shadowing inserts and
	// tombstones.
	for i := range 6 {
		d.insert(dirEntry{name: fmt.Sprint("new", i), ino: uint64(i), typ: typeFile}, false)
		d.insert(dirEntry{name: fmt.Sprint("seed", i), ino: 1, typ: typeDir}, true)
		d.remove(fmt.Sprint("seed", 50+i))
	}
	f.Add(d.root)
	f.Add(d.root[3 : len(d.root)-4])
	small := &dirFixture{t: f, ns: newMemNodeStore(1024)}
	small.insert(dirEntry{name: "x", ino: 7, typ: typeSymlink}, false)
	f.Add(small.root)
	f.Add([]byte{})
	f.Add([]byte{0, 1, 1, 'a', 1, 1})

	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(what string, err error) {
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: error %v does not wrap ErrCorrupt", what, err)
			}
		}
		for _, in := range [][]byte{b, dirReframe(dirTypeLeaf, b), dirReframe(dirTypeBranch, b)} {
			n, err := decodeDirNode(in)
			check("decodeDirNode", err)
			if err != nil {
				continue
			}
			if out := encodeDirNode(n); string(out) != string(in) {
				t.Fatalf("re-encoding differs:\n in %x\nout %x", in, out)
			}
			n2, err := decodeDirNode(encodeDirNode(n))
			if err != nil || !reflect.DeepEqual(n, n2) {
				t.Fatalf("round trip: %v", err)
			}
		}
		// As a root: the walks may also meet missing blocks, which the
		// empty store reports with its own error.
		ctx := context.Background()
		empty := newMemNodeStore(1024)
		for _, in := range [][]byte{b, dirReframe(dirTypeRoot, b)} {
			r, err := decodeDirRoot(in)
			check("decodeDirRoot", err)
			if err == nil && len(in) != 0 {
				if out := encodeDirRootRaw(r.count, r.ops, r.inner); string(out) != string(in) {
					t.Fatalf("root re-encoding differs:\n in %x\nout %x", in, out)
				}
				if dirCount(in) != r.count || dirIsEmpty(in) {
					t.Fatalf("root of %d entries: dirCount %d, dirIsEmpty %v", r.count, dirCount(in), dirIsEmpty(in))
				}
			}
			if err == nil && r.top != nil {
				_, err = parseDirRootTop(r)
				check("parseDirRootTop", err)
			}
			err = dirRefs(ctx, empty, in, func(blockRef) error { return nil })
			if !errors.Is(err, errMemNodeMissing) {
				check("dirRefs", err)
			}
			_, _, err = dirList(ctx, empty, in, nameCookie("x"), 1)
			if !errors.Is(err, errMemNodeMissing) {
				check("dirList after", err)
			}
			_, _, err = dirLookup(ctx, empty, in, "x")
			if !errors.Is(err, errMemNodeMissing) {
				check("dirLookup", err)
			}
			_, _, err = dirList(ctx, empty, in, 0, 0)
			if !errors.Is(err, errMemNodeMissing) {
				check("dirList", err)
			}
			if dirIsEmpty(in) && dirCount(in) != 0 {
				t.Fatalf("empty root counts %d entries", dirCount(in))
			}
		}
	})
}
