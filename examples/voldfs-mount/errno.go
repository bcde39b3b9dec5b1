package main

import (
	"context"
	"errors"
	"io/fs"
	"log"
	"syscall"

	"github.com/voldfs/voldfs"
)

// toErrno maps a library error to the errno the kernel returns. Corrupt
// data and errors the map does not know are EIO (and logged), never ENOSYS,
// which FUSE reads as "operation not implemented".
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	switch {
	case errors.Is(err, voldfs.ErrCorrupt):
		errno = syscall.EIO
	case errors.As(err, &errno):
		if errno == syscall.ENOSYS {
			errno = syscall.ENOTSUP
		}
		return errno
	case errors.Is(err, voldfs.ErrStale):
		return syscall.ESTALE
	case errors.Is(err, fs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, fs.ErrExist):
		return syscall.EEXIST
	case errors.Is(err, fs.ErrPermission):
		return syscall.EACCES
	case errors.Is(err, fs.ErrInvalid):
		return syscall.EINVAL
	case errors.Is(err, fs.ErrClosed):
		return syscall.EBADF
	case errors.Is(err, errors.ErrUnsupported):
		return syscall.ENOTSUP
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.Is(err, context.DeadlineExceeded):
		return syscall.ETIMEDOUT
	default:
		errno = syscall.EIO
	}
	log.Printf("voldfs-mount: %v", err)
	return errno
}
