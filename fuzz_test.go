package voldfs

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for every decoder of a store value, and for path
// validation. Decoders must never panic; garbage is an error wrapping
// ErrCorrupt (a superblock of another format version: ErrFormatVersion);
// what decodes must survive encode/decode unchanged. Each input is also
// tried inside a valid frame, so that the fuzzer gets past the checksum.

const fuzzKey = "fuzz/key"

func fuzzCheckErr(t *testing.T, what string, err error, also ...error) {
	t.Helper()
	if err == nil || errors.Is(err, ErrCorrupt) {
		return
	}
	for _, e := range also {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("%s: error %v does not wrap ErrCorrupt", what, err)
}

func fuzzInodes() []*inode {
	var ref blockRef
	copy(ref[:], "0123456789abcdef")
	return []*inode{
		{ino: RootIno, mode: sIFDIR | 0o755, nlink: 2, gen: 1, parent: RootIno, atime: 1, mtime: -5},
		{ino: 77, mode: sIFREG | 0o644, nlink: 1, size: 5, inline: []byte("hello"), uid: 1000, gid: 1000},
		{ino: 1 << 62, mode: sIFREG | 0o600, nlink: 3, size: 1 << 40, root: ref, height: 3},
		{ino: 9, mode: sIFLNK | 0o777, nlink: 1, size: 6, inline: []byte("target")},
		{ino: 10, mode: sIFDIR | 0o700, flags: flagDead, subdir: 4, parent: 3, inline: []byte{1, 2, 3}},
	}
}

func FuzzDecodeInode(f *testing.F) {
	for _, n := range fuzzInodes() {
		b := encodeInode(n)
		f.Add(b)
		f.Add(b[2 : len(b)-4]) // the payload alone, to be framed
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, seal(recInode, b)} {
			n, err := decodeInode(fuzzKey, in)
			fuzzCheckErr(t, "decodeInode", err)
			if err != nil {
				continue
			}
			n2, err := decodeInode(fuzzKey, encodeInode(n))
			if err != nil {
				t.Fatalf("re-encoded inode does not decode: %v", err)
			}
			if len(n.inline) == 0 { // nil and empty encode alike
				n.inline, n2.inline = nil, nil
			}
			if !reflect.DeepEqual(n, n2) {
				t.Fatalf("round trip:\n%+v\n%+v", n, n2)
			}
		}
	})
}

func FuzzDecodeSuperblock(f *testing.F) {
	for _, sb := range []*superblock{
		{version: formatVersion, blockSize: 4096, root: RootIno, created: 12345},
		{version: formatVersion, blockSize: 16 << 20, root: RootIno, id: [16]byte{1, 2, 3}, created: -1, split: true},
		{version: 2, blockSize: DefaultBlockSize, root: RootIno},
	} {
		b := encodeSuperblock(sb)
		f.Add(b)
		f.Add(b[2 : len(b)-4])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, seal(recSuperblock, b)} {
			sb, err := decodeSuperblock(fuzzKey, in)
			fuzzCheckErr(t, "decodeSuperblock", err, ErrFormatVersion)
			if err != nil {
				continue
			}
			sb2, err := decodeSuperblock(fuzzKey, encodeSuperblock(sb))
			if err != nil || !reflect.DeepEqual(sb, sb2) {
				t.Fatalf("round trip: %v\n%+v\n%+v", err, sb, sb2)
			}
		}
	})
}

// fuzzFans are the index fan-outs of the smallest, default and largest
// block sizes.
var fuzzFans = []uint64{1 << fanFor(4096), 1 << fanFor(DefaultBlockSize), 1 << fanFor(16<<20)}

func FuzzDecodeIndex(f *testing.F) {
	var r1, r2 blockRef
	copy(r1[:], "aaaaaaaaaaaaaaaa")
	copy(r2[:], "bbbbbbbbbbbbbbbb")
	for _, ents := range [][]idxEntry{nil, {{0, r1}}, {{0, r1}, {1, r2}, {100, r1}}, {{127, r2}}} {
		f.Add(encodeIndex(ents))
		f.Add(seal(recIndex, encodeIndex(ents)))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fan := range fuzzFans {
			// Index nodes are unsealed by getBlock before decoding: the
			// frame is checked as for every record.
			p, err := unseal(recIndex, fuzzKey, b)
			fuzzCheckErr(t, "unseal", err)
			for _, in := range [][]byte{b, p} {
				ents, err := decodeIndex(fuzzKey, in, fan)
				fuzzCheckErr(t, "decodeIndex", err)
				if err != nil {
					continue
				}
				for k, x := range ents {
					if uint64(x.i) >= fan || k > 0 && x.i <= ents[k-1].i || x.ref.isZero() {
						t.Fatalf("decoded entries out of order, range or zero: %v", ents)
					}
				}
				ents2, err := decodeIndex(fuzzKey, encodeIndex(ents), fan)
				if err != nil || len(ents) != len(ents2) || len(ents) > 0 && !reflect.DeepEqual(ents, ents2) {
					t.Fatalf("round trip: %v\n%v\n%v", err, ents, ents2)
				}
			}
		}
	})
}

func FuzzDecodeIntent(f *testing.F) {
	for _, in := range []*intent{
		nil,
		{at: 1700000000000000000, odir: 1, oname: "a", ndir: 2, nname: "b", ino: 99, typ: typeFile},
		{at: -1, odir: 5, oname: strings.Repeat("x", maxName), ndir: 6, nname: "ü", ino: 7, target: 8, typ: typeDir},
	} {
		b := encodeIntent(in)
		f.Add(b)
		f.Add(b[2 : len(b)-4])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, raw := range [][]byte{b, seal(recIntent, b)} {
			in, err := decodeIntent(fuzzKey, raw)
			fuzzCheckErr(t, "decodeIntent", err)
			if err != nil {
				continue
			}
			if in != nil && (len(in.oname) > maxName || len(in.nname) > maxName) {
				t.Fatalf("decoded a name over %d bytes", maxName)
			}
			in2, err := decodeIntent(fuzzKey, encodeIntent(in))
			if err != nil || !reflect.DeepEqual(in, in2) {
				t.Fatalf("round trip: %v\n%+v\n%+v", err, in, in2)
			}
		}
	})
}

func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{".", "a", "a/b", "a//b", "/a", "a/", "..", "a/../b", "a\x00b", "\xff",
		strings.Repeat("n", 255), strings.Repeat("n", 256), "a/" + strings.Repeat("n", 256), "ü/€", "./a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if err := checkPath("op", name); err == nil {
			if !fs.ValidPath(name) || !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0 {
				t.Fatalf("checkPath accepted %q", name)
			}
			for _, el := range strings.Split(name, "/") {
				if len(el) > maxName {
					t.Fatalf("checkPath accepted element of %d bytes", len(el))
				}
			}
			if name != "." {
				dir, base := split(name)
				if base == "" || base == "." || base == ".." || strings.Contains(base, "/") || checkName(base) != nil {
					t.Fatalf("split(%q) = %q, %q: base is no valid name", name, dir, base)
				}
				if dir != "." && checkPath("op", dir) != nil {
					t.Fatalf("split(%q) = %q: parent is no valid path", name, dir)
				}
			}
		} else {
			var pe *fs.PathError
			if !errors.As(err, &pe) || pe.Path != name {
				t.Fatalf("checkPath(%q) = %v: want a *fs.PathError naming the path", name, err)
			}
			if !errors.Is(err, fs.ErrInvalid) && !errors.Is(err, syscall.ENAMETOOLONG) {
				t.Fatalf("checkPath(%q) = %v: want ErrInvalid or ENAMETOOLONG", name, err)
			}
		}
		if err := checkName(name); err == nil {
			if len(name) == 0 || len(name) > maxName || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
				t.Fatalf("checkName accepted %q", name)
			}
		} else if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENAMETOOLONG) {
			t.Fatalf("checkName(%q) = %v", name, err)
		}
		// One check for every name: what the API accepts is what the
		// directory decoders accept, and every valid name is accepted.
		valid := len(name) > 0 && len(name) <= maxName && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
		if err := checkName(name); (err == nil) != valid {
			t.Fatalf("checkName(%q) = %v, valid %v", name, err, valid)
		}
		if checkName([]byte(name)) != checkName(name) {
			t.Fatalf("checkName(%q) differs for bytes: %v, %v", name, checkName([]byte(name)), checkName(name))
		}
	})
}
