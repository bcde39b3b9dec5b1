package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// stderrMu serialises newServer's borrowing of os.Stderr.
var stderrMu sync.Mutex

// newServer is fuse.NewServer, keeping what fusermount says. go-fuse runs
// fusermount3 (always as a user, and as root when the direct mount(2) is
// refused) with this process's stderr, and reports a failure only as its
// wait status ("fusermount exited with code 256"). newServer lends it a
// pipe for os.Stderr instead, and turns a failure into one line with
// fusermount's own words and its real exit status; anything it says on
// success goes to stderr as it is.
func newServer(fs fuse.RawFileSystem, dir string, opts *fuse.MountOptions, stderr io.Writer) (*fuse.Server, error) {
	stderrMu.Lock()
	defer stderrMu.Unlock()
	r, w, err := os.Pipe()
	if err != nil {
		return fuse.NewServer(fs, dir, opts)
	}
	said := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, 16<<10))
		io.Copy(io.Discard, r)
		r.Close()
		said <- string(b)
	}()
	saved := os.Stderr
	os.Stderr = w
	server, err := fuse.NewServer(fs, dir, opts)
	os.Stderr = saved
	w.Close()
	// fusermount has exited (NewServer waited for it): the pipe is at its
	// end unless fusermount left a child holding it, which it does only
	// with auto_unmount; that child says nothing more.
	msg := strings.Join(strings.Fields(<-said), " ")
	if err == nil {
		if msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return server, nil
	}
	return nil, fusermountError(err, msg)
}

// fusermountError rewrites go-fuse's error for a failed fusermount run,
// whose number is a wait status, into fusermount's message and exit status.
func fusermountError(err error, msg string) error {
	var status uint32
	if _, serr := fmt.Sscanf(err.Error(), "fusermount exited with code %d", &status); serr != nil {
		if msg != "" {
			return fmt.Errorf("%w (fusermount: %s)", err, msg)
		}
		return err
	}
	ws := syscall.WaitStatus(status)
	how := fmt.Sprintf("wait status %d", status)
	switch {
	case ws.Exited():
		how = fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		how = "killed by " + ws.Signal().String()
	}
	if msg == "" {
		msg = "fusermount failed and said nothing"
	}
	return fmt.Errorf("%s (%s)", msg, how)
}
