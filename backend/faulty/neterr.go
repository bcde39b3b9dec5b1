package faulty

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// NetError returns an error shaped like the ones a client library returns
// when a connection fails: a *net.OpError around an *os.SyscallError around
// errno (syscall.ECONNRESET, EPIPE, ETIMEDOUT, ...), as from a read or write
// on a TCP socket. errors.Is(err, errno) holds, and so does errors.As with
// *net.OpError.
func NetError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
}

// Typical network failures, for the injectors below.
var (
	// ErrConnReset is a connection reset by the peer during a read.
	ErrConnReset = NetError("read", syscall.ECONNRESET)
	// ErrBrokenPipe is a write to a connection the peer closed.
	ErrBrokenPipe = NetError("write", syscall.EPIPE)
	// ErrTimedOut is a read that timed out in the kernel.
	ErrTimedOut = NetError("read", syscall.ETIMEDOUT)
)

// injected is an error an injector returns in place of ErrInjected: it
// reads as err and also wraps ErrInjected (and ErrReplyLost if lost), so
// that a sweep can still tell injected failures from real ones.
type injected struct {
	err  error
	lost bool
}

func (e *injected) Error() string {
	if e.lost {
		return e.err.Error() + " (injected after the operation was applied)"
	}
	return e.err.Error() + " (injected)"
}

func (e *injected) Unwrap() []error {
	if e.lost {
		return []error{e.err, ErrReplyLost}
	}
	return []error{e.err, ErrInjected}
}

// FailWith returns an injector that fails the operations inj fails, but with
// err (such as ErrConnReset) wrapped together with inj's error, instead of
// inj's error alone. errors.Is(err, ErrInjected) still holds, and an
// operation inj makes apply (Ambiguous) still applies. With After(i), it is
// a client whose connection broke at operation i.
func FailWith(inj Injector, err error) Injector {
	return &failWith{inner: inj, err: err}
}

type failWith struct {
	inner Injector
	err   error
}

func (f *failWith) MaybeError(op Op, key string) error {
	e := f.inner.MaybeError(op, key)
	if e == nil {
		return nil
	}
	return &injected{err: f.err, lost: errors.Is(e, ErrReplyLost)}
}

// LostReply makes the i-th operation (0-based) run and then fail with err
// (wrapped with ErrReplyLost): a write is applied but the caller gets, say,
// ErrConnReset or ErrTimedOut, as when a connection breaks after the server
// applied a request and before its reply arrived.
func LostReply(i int64, err error) Injector { return FailWith(Ambiguous(i), err) }
