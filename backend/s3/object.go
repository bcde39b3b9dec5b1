package s3

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"strings"

	"github.com/voldfs/voldfs/backend"
)

// An object's body is a header, then the value: the format byte and a
// random nonce, so that two writes of the same bytes have different
// bodies, hence different ETags, hence different versions (see the package
// comment: no ABA). A tombstone, which stands for a deleted key, is a nonce
// alone: tombLen bytes, shorter than any value's body, so that a HEAD or a
// listing tells it by its size.
const (
	formatV1  = 0x01
	headerLen = 1 + 8
	tombLen   = 8
)

// errCorrupt reports an object under the Store's prefix that this package
// did not write (or that was damaged).
var errCorrupt = errors.New("s3: object is not a voldfs value")

// encodeBody returns the object body for value, with a fresh nonce.
func encodeBody(value []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(value))
	b[0] = formatV1
	binary.BigEndian.PutUint64(b[1:], rand.Uint64())
	return append(b, value...)
}

// tombstone returns a fresh tombstone body.
func tombstone() []byte { return binary.BigEndian.AppendUint64(nil, rand.Uint64()) }

// decodeBody returns the value in an object body, as a non-nil slice, or
// tomb set for a tombstone.
func decodeBody(body []byte) (value []byte, tomb bool, err error) {
	if len(body) == tombLen {
		return nil, true, nil
	}
	if len(body) < headerLen || body[0] != formatV1 {
		return nil, false, errCorrupt
	}
	return body[headerLen:len(body):len(body)], false, nil
}

// versionOf maps an ETag to a Version: the first 8 bytes of the SHA-256 of
// the ETag without its quotes (and weak marker), never NoVersion or
// AnyVersion. Every client computes the same version from the same ETag,
// as the multi-key commit fallback needs (it records versions in locks).
func versionOf(etag string) backend.Version {
	sum := sha256.Sum256([]byte(normETag(etag)))
	v := backend.Version(binary.BigEndian.Uint64(sum[:8]))
	if v == backend.NoVersion || v == backend.AnyVersion {
		v = 1
	}
	return v
}

// normETag strips the weak marker and quotes from an ETag header.
func normETag(etag string) string {
	etag = strings.TrimPrefix(etag, "W/")
	return strings.Trim(etag, `"`)
}

// Object names. A key's slashes are stored as U+00F7 (÷) and a leading dot
// as U+00B7 (·), so an object name holds no path separator and is never "."
// or "..". S3 servers that keep objects as files (versitygw's posix backend,
// MinIO) cannot hold both "a" and "a/b", which are distinct keys to voldfs;
// valid keys are ASCII, so the two marks never occur in one. The mapping
// keeps prefixes, so List lists a key prefix as an object name prefix.
const (
	slashMark = "\u00f7"
	dotMark   = "\u00b7"
)

// objectName returns the name of key's object, after the Store's prefix.
func objectName(key string) string {
	var b strings.Builder
	b.Grow(len(key) + 8)
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c == '/':
			b.WriteString(slashMark)
		case c == '.' && i == 0:
			b.WriteString(dotMark)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// keyOf inverts objectName; ok is false for a name objectName never
// returns (an object some other program put under the prefix).
func keyOf(name string) (key string, ok bool) {
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); {
		switch {
		case strings.HasPrefix(name[i:], slashMark):
			b.WriteByte('/')
			i += len(slashMark)
		case i == 0 && strings.HasPrefix(name, dotMark):
			b.WriteByte('.')
			i += len(dotMark)
		case name[i] == '/' || name[i] >= 0x80 || (i == 0 && name[i] == '.'):
			return "", false
		default:
			b.WriteByte(name[i])
			i++
		}
	}
	key = b.String()
	return key, backend.ValidKey(key)
}
