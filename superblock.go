package voldfs

// formatVersion is the on-store format this code reads and writes. Open
// refuses any other.
const formatVersion = 1

// superblock is the filesystem's identity and geometry. It is created once,
// with a create-only CAS, and never rewritten except by a format upgrade.
type superblock struct {
	version   uint32
	blockSize uint32
	root      uint64
	id        [16]byte
	created   int64
	split     bool // blocks live in a separate store

	// snapshots (Options.Snapshots): every client fences every commit from
	// Open on, so that snapshots can be taken on a store without native
	// commits (snapshot.go). Stores with native commits always fence.
	snapshots bool

	// A writable clone (snapshotclone.go): the filesystem and snapshot it
	// was cloned from. Inodes it never wrote are read from there.
	origin   string
	originID uint64
}

func (c *core) superKey() string { return c.prefix + "super" }

func encodeSuperblock(sb *superblock) []byte {
	e := enc{}
	e.raw([]byte("VOLDFS"))
	e.uv(uint64(sb.version))
	e.uv(uint64(sb.blockSize))
	e.uv(sb.root)
	e.raw(sb.id[:])
	e.sv(sb.created)
	var flags uint8
	if sb.split {
		flags |= 1
	}
	if sb.origin != "" {
		flags |= 2
	}
	if sb.snapshots {
		flags |= 4
	}
	e.u8(flags)
	if sb.origin != "" {
		e.bytes([]byte(sb.origin))
		e.uv(sb.originID)
	}
	return seal(recSuperblock, e.b)
}

func decodeSuperblock(key string, b []byte) (*superblock, error) {
	p, err := unseal(recSuperblock, key, b)
	if err != nil {
		return nil, err
	}
	d := dec{b: p, key: key}
	if string(d.raw(6)) != "VOLDFS" {
		return nil, corruptf("%s: not a voldfs superblock", key)
	}
	sb := &superblock{}
	sb.version = uint32(d.uv())
	if d.err == nil && sb.version != formatVersion {
		return nil, &formatError{key, sb.version}
	}
	sb.blockSize = uint32(d.uv())
	sb.root = d.uv()
	copy(sb.id[:], d.raw(16))
	sb.created = d.sv()
	flags := d.u8()
	sb.split = flags&1 != 0
	sb.snapshots = flags&4 != 0
	if flags&2 != 0 {
		sb.origin = string(d.bytes(64))
		sb.originID = d.uv()
		if d.err == nil && !validFSName(sb.origin) {
			return nil, corruptf("%s: origin %q", key, sb.origin)
		}
	}
	if flags&^7 != 0 {
		return nil, corruptf("%s: unknown flags %#x", key, flags)
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	if bs := sb.blockSize; bs < 4<<10 || bs > 16<<20 || bs&(bs-1) != 0 {
		return nil, corruptf("%s: block size %d", key, bs)
	}
	if sb.root != RootIno {
		return nil, corruptf("%s: root inode %d", key, sb.root)
	}
	return sb, nil
}

type formatError struct {
	key     string
	version uint32
}

func (e *formatError) Error() string {
	return "voldfs: " + e.key + ": format version " + itoa(uint64(e.version)) + " is not supported (this code reads version " + itoa(formatVersion) + ")"
}

func (e *formatError) Unwrap() error { return ErrFormatVersion }

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
