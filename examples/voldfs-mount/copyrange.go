package main

import (
	"context"
	"errors"
	"io"
	"math"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// Reflink copies through the mount. The kernel handles the FICLONE and
// FICLONERANGE ioctls in the VFS (remap_file_range), which FUSE does not
// implement, so they never reach a FUSE server and cp --reflink=always
// fails on any FUSE filesystem. copy_file_range(2) does reach it
// (FUSE_COPY_FILE_RANGE), and cp uses it (coreutils 9: by default and with
// --reflink=auto): here it shares the blocks of the block-aligned part of
// the range (File.CloneRange) and copies the bytes of the rest.

var _ gofs.NodeCopyFileRanger = (*node)(nil)

// copyChunk bounds one copy_file_range answer (it is a uint32) and the
// bytes copied through memory at a time.
const (
	copyMax   = 1 << 30
	copyChunk = 1 << 20
)

// CopyFileRange is copy_file_range(2): it copies up to length bytes from
// offIn of fhIn's file to offOut of fhOut's and returns how many, fewer
// only at the end of the source. Where the two offsets sit at the same
// place in a block, the whole blocks of the range are shared rather than
// copied.
func (n *node) CopyFileRange(ctx context.Context, fhIn gofs.FileHandle, offIn uint64, out *gofs.Inode, fhOut gofs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	in, errno := handleOf(fhIn)
	if errno != 0 {
		return 0, errno
	}
	dst, errno := handleOf(fhOut)
	if errno != 0 {
		return 0, errno
	}
	if flags != 0 {
		return 0, syscall.EINVAL
	}
	if offIn > math.MaxInt64 || offOut > math.MaxInt64 {
		return 0, syscall.EFBIG
	}
	fi, err := in.f.Stat()
	if err != nil {
		return 0, toErrno(err)
	}
	size := uint64(fi.Size())
	if offIn >= size {
		return 0, 0
	}
	count := min(length, size-offIn, copyMax)
	done := uint64(0)
	if bs := uint64(n.vol.vfs.BlockSize()); offIn%bs == offOut%bs {
		// Copy up to a block boundary, then share the whole blocks (and
		// a last partial one at the source's end).
		head := min((bs-offIn%bs)%bs, count)
		if head > 0 {
			if errno := copyBytes(in, dst, offIn, offOut, head); errno != 0 {
				return 0, errno
			}
			done = head
		}
		body := count - done
		if offIn+count != size {
			body -= body % bs
		}
		if body > 0 {
			err := dst.f.CloneRange(in.f, int64(offIn+done), int64(offOut+done), int64(body))
			switch {
			case err == nil:
				done += body
			case !errors.Is(err, syscall.EINVAL):
				// Not a refusal of the range (which copying answers):
				// report what was done, or the error.
				if done > 0 {
					return uint32(done), 0
				}
				return 0, toErrno(err)
			}
		}
	}
	if done < count {
		if errno := copyBytes(in, dst, offIn+done, offOut+done, count-done); errno != 0 {
			if done > 0 {
				return uint32(done), 0
			}
			return 0, errno
		}
	}
	return uint32(count), 0
}

// copyBytes copies n bytes through memory (the source has them: n stops
// at its end).
func copyBytes(in, out *fileHandle, offIn, offOut, n uint64) syscall.Errno {
	buf := make([]byte, min(n, copyChunk))
	for n > 0 {
		k, err := in.f.ReadAt(buf[:min(n, uint64(len(buf)))], int64(offIn))
		if err != nil && err != io.EOF {
			return toErrno(err)
		}
		if k == 0 {
			return syscall.EIO // the source shrank under the copy
		}
		if _, err := out.f.WriteAt(buf[:k], int64(offOut)); err != nil {
			return toErrno(err)
		}
		offIn, offOut, n = offIn+uint64(k), offOut+uint64(k), n-uint64(k)
	}
	return 0
}
