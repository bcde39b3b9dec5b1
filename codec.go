package voldfs

import (
	"encoding/binary"
	"hash/crc32"
)

// Every record voldfs writes (superblock, inode, block, rename intent) is
// framed as
//
//	kind (1 byte) | format version (1 byte) | payload | crc32c(kind..payload) (4 bytes)
//
// so that a value of the wrong kind, an unknown version, a truncated value or
// a flipped bit is detected before the payload is decoded.
const (
	recSuperblock byte = 'S'
	recInode      byte = 'I'
	recData       byte = 'D'
	recIndex      byte = 'X'
	recDirNode    byte = 'N'
	recIntent     byte = 'R'

	recVersion byte = 1

	recOverhead = 2 + 4 // the frame's bytes around the payload
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// seal frames payload as a record of the given kind.
func seal(kind byte, payload []byte) []byte {
	b := make([]byte, 2, len(payload)+6)
	b = append(b, payload...)
	return sealInPlace(kind, b)
}

// sealInPlace frames a record whose payload is already at b[2:], writing the
// header into b[:2] and appending the checksum (in place when b has the
// capacity): the write path keeps full data blocks in such buffers, so
// framing a block does not copy it.
func sealInPlace(kind byte, b []byte) []byte {
	b[0], b[1] = kind, recVersion
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// unseal checks a record's frame and returns its payload (a sub-slice of b).
// key names the store key in errors.
func unseal(kind byte, key string, b []byte) ([]byte, error) {
	if len(b) < 6 {
		return nil, corruptf("%s: record of %d bytes is too short", key, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, corruptf("%s: checksum mismatch", key)
	}
	if body[0] != kind {
		return nil, corruptf("%s: record kind %q, want %q", key, body[0], kind)
	}
	if body[1] != recVersion {
		return nil, corruptf("%s: record format version %d unknown", key, body[1])
	}
	return body[2:], nil
}

// enc appends fields to a payload.
type enc struct{ b []byte }

func (e *enc) u8(v uint8)   { e.b = append(e.b, v) }
func (e *enc) uv(v uint64)  { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) sv(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) raw(p []byte) { e.b = append(e.b, p...) }
func (e *enc) bytes(p []byte) {
	e.uv(uint64(len(p)))
	e.b = append(e.b, p...)
}

// dec reads fields from a payload. The first error sticks: every later read
// returns zero values, so a decoder checks err once at the end. It never
// allocates more than the input holds.
type dec struct {
	b   []byte
	err error
	key string
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = corruptf("%s: truncated or malformed %s", d.key, what)
	}
}

func (d *dec) u8() uint8 {
	if d.err != nil || len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) uv() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) sv() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) raw(n int) []byte {
	if d.err != nil || n < 0 || len(d.b) < n {
		d.fail("field")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// bytes reads a length-prefixed field, refusing lengths over max.
func (d *dec) bytes(max int) []byte {
	n := d.uv()
	if d.err != nil {
		return nil
	}
	if n > uint64(max) || n > uint64(len(d.b)) {
		d.fail("length")
		return nil
	}
	return d.raw(int(n))
}

// done fails if bytes remain.
func (d *dec) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = corruptf("%s: %d trailing bytes", d.key, len(d.b))
	}
	return d.err
}
