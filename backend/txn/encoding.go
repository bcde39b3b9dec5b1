package txn

import (
	"encoding/binary"
	"errors"

	"github.com/voldfs/voldfs/backend"
)

// marker is the first byte of every value the wrapper stores in a form of
// its own. 0xC1 never starts valid UTF-8 and no voldfs record starts with it
// (voldfs records start with an ASCII kind letter), so existing filesystems
// read unchanged; a plain value that does start with it is stored escaped.
const marker byte = 0xC1

// The tags that follow the marker.
const (
	tagEscaped   byte = 'E' // a plain value that starts with the marker
	tagVersioned byte = 'V' // a value that keeps an earlier (logical) version
	tagLock      byte = 'L' // a lock naming its transaction's primary key
)

// Transaction states, kept in the primary lock.
const (
	statePending   byte = 'P'
	stateCommitted byte = 'C'
	stateAborted   byte = 'A'
)

// Lock kinds: what the op does when its transaction commits.
const (
	kindPut byte = iota
	kindDelete
	kindCheck
)

// idLen is the length of a transaction id.
const idLen = 16

// headerRoom bounds what a secondary lock adds to its two values: tag
// bytes, varints, the primary key and the id. A primary lock also holds the
// list of keys.
const headerRoom = 2 + 2 + 3*binary.MaxVarintLen64 + backend.MaxKeyLen + idLen

var errCorrupt = errors.New("txn: corrupt lock")

// slotKind is what a physical value turned out to be.
type slotKind int

const (
	slotAbsent slotKind = iota
	slotPlain           // a value: plain, escaped or versioned
	slotLock
)

// slot is one key as read from the inner store, decoded.
type slot struct {
	kind  slotKind
	phys  backend.Version // the inner store's version (NoVersion: absent)
	value []byte          // slotPlain: the value
	ver   backend.Version // slotPlain: its logical version
	lock  lock            // slotLock
}

// lock is the value a transaction puts in place of each of its keys. The
// lock of the first key (the primary) is the transaction's record: it holds
// the state and the list of keys; the others name the primary.
type lock struct {
	primary string
	id      string // idLen random bytes
	state   byte   // the primary: statePending, ...; 0 in the others
	keys    []string
	// the committed primary: its version when pending, which is the key's
	// logical version once committed. Its physical version cannot be: a
	// CAS with it would replace the primary before the other locks.
	commitVer backend.Version
	kind      byte
	preExists bool
	preVer    backend.Version // the pre-image's logical version
	pre       []byte
	value     []byte // kindPut: the new value
}

// txn names the lock's transaction (for the table of first sightings).
func (l *lock) txn() string { return l.primary + "\x00" + l.id }

func (l *lock) encode() []byte {
	n := headerRoom + len(l.pre) + len(l.value)
	for _, k := range l.keys {
		n += len(k) + binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	b = append(b, marker, tagLock)
	b = binary.AppendUvarint(b, uint64(len(l.primary)))
	b = append(b, l.primary...)
	b = append(b, l.id...)
	flags := l.kind
	if l.preExists {
		flags |= 0x80
	}
	b = append(b, flags, l.state)
	if l.state != 0 {
		b = binary.AppendUvarint(b, uint64(l.commitVer))
		b = binary.AppendUvarint(b, uint64(len(l.keys)))
		for _, k := range l.keys {
			b = binary.AppendUvarint(b, uint64(len(k)))
			b = append(b, k...)
		}
	}
	b = binary.AppendUvarint(b, uint64(l.preVer))
	b = binary.AppendUvarint(b, uint64(len(l.pre)))
	b = append(b, l.pre...)
	return append(b, l.value...)
}

// encodePlain returns the stored form of a caller's value.
func encodePlain(v []byte) []byte {
	if len(v) == 0 || v[0] != marker {
		return v
	}
	b := make([]byte, 0, len(v)+2)
	return append(append(b, marker, tagEscaped), v...)
}

// encodeVersioned returns the stored form of v that keeps logical version ver.
func encodeVersioned(ver backend.Version, v []byte) []byte {
	b := make([]byte, 0, len(v)+2+binary.MaxVarintLen64)
	b = append(b, marker, tagVersioned)
	b = binary.AppendUvarint(b, uint64(ver))
	return append(b, v...)
}

// decode interprets a value read from the inner store at version phys.
func decode(raw []byte, phys backend.Version) (slot, error) {
	if len(raw) == 0 || raw[0] != marker {
		return slot{kind: slotPlain, phys: phys, value: raw, ver: phys}, nil
	}
	if len(raw) < 2 {
		return slot{}, errCorrupt
	}
	body := raw[2:]
	switch raw[1] {
	case tagEscaped:
		return slot{kind: slotPlain, phys: phys, value: body, ver: phys}, nil
	case tagVersioned:
		ver, n := binary.Uvarint(body)
		if n <= 0 || ver == 0 {
			return slot{}, errCorrupt
		}
		return slot{kind: slotPlain, phys: phys, value: body[n:], ver: backend.Version(ver)}, nil
	case tagLock:
		d := reader{b: body}
		var l lock
		l.primary = string(d.bytes())
		l.id = string(d.fixed(idLen))
		flags := d.byte()
		l.kind, l.preExists = flags&0x7f, flags&0x80 != 0
		l.state = d.byte()
		switch l.state {
		case 0:
		case statePending, stateCommitted, stateAborted:
			l.commitVer = backend.Version(d.uvarint())
			n := d.uvarint()
			if n > uint64(len(d.b)) {
				return slot{}, errCorrupt
			}
			l.keys = make([]string, 0, n)
			for range n {
				l.keys = append(l.keys, string(d.bytes()))
			}
		default:
			return slot{}, errCorrupt
		}
		l.preVer = backend.Version(d.uvarint())
		l.pre = d.bytes()
		l.value = d.b
		if d.bad || l.kind > kindCheck || l.primary == "" {
			return slot{}, errCorrupt
		}
		return slot{kind: slotLock, phys: phys, lock: l}, nil
	}
	return slot{}, errCorrupt
}

// reader decodes varint-framed fields; the first error sticks.
type reader struct {
	b   []byte
	bad bool
}

func (d *reader) uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *reader) byte() byte {
	if d.bad || len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *reader) fixed(n int) []byte {
	if d.bad || n > len(d.b) {
		d.bad = true
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *reader) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

// IsLock reports whether value, as stored in the wrapped store (read without
// the wrapper), is a transaction's lock: fsck and tests use it to find what
// unfinished transactions left.
func IsLock(value []byte) bool {
	return len(value) >= 2 && value[0] == marker && value[1] == tagLock
}
