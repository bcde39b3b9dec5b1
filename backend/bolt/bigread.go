package bolt

import (
	"bytes"
	"unsafe"
)

// bigValue is the size from which a value is read with pread(2) from the
// file rather than copied out of bbolt's memory map.
const bigValue = 64 << 10

// copyValue returns a copy of raw, a slice of bbolt's memory map returned in
// the read transaction still running. bbolt maps the file MADV_RANDOM, so
// copying a value whose pages are not in the page cache takes one 4 KiB
// page fault (one disk read) at a time; a big value is instead read from
// the same place in the file with pread(2), which the kernel reads ahead
// (across values, when they are read in file order). A value's bytes are
// contiguous in the file at their offset in the map, and the pages of a
// running read transaction are not rewritten.
func (s *Store) copyValue(raw []byte) []byte {
	if raw == nil || len(raw) < bigValue || s.file == nil {
		return bytes.Clone(raw)
	}
	off := int64(uintptr(unsafe.Pointer(unsafe.SliceData(raw))) - s.db.Info().Data)
	buf := make([]byte, len(raw))
	if n, err := s.file.ReadAt(buf, off); off < 0 || n != len(buf) || err != nil {
		return bytes.Clone(raw)
	}
	return buf
}
