package bolt

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/voldfs/voldfs/backend"
)

// Scheme is the URL scheme this package registers with backend.Register
// (importing the package is enough for backend.OpenURL to know it). A bolt
// URL names a bbolt file, created if missing:
//
//	bolt:PATH           a relative or absolute path (bolt:voldfs.db, bolt:/var/lib/voldfs.db)
//	bolt:///ABS/PATH    an absolute path, in the form of a file: URL
//
// bolt://NAME is refused: NAME would be a host, and a bolt file has none.
// The path is URL-encoded: write % as %25, ? as %3F and # as %23. Options
// are query parameters:
//
//	sync=interval  group commit (the default, GroupCommit): writes are
//	               acknowledged from memory and written to the file, in
//	               order, within the interval; fsync and close make them
//	               durable; a crash loses at most the last interval, never
//	               an earlier write without a later one
//	interval=D     the group commit interval (default 20ms)
//	sync=always    a write is acknowledged once it is in the file (an fsync
//	               per commit, shared by concurrent writers: SyncAlways)
//	sync=none      no fsync at all: a machine crash can lose or corrupt the
//	               file (NoSync, for benchmarks)
//
// A file another process holds is an error after a second, not a wait.
const Scheme = "bolt"

func init() { backend.Register(Scheme, openURL) }

// lockTimeout is how long a store opened by URL waits for the file lock.
const lockTimeout = time.Second

func openURL(_ context.Context, u *url.URL) (backend.Store, error) {
	path, opts, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	opts.Timeout = lockTimeout
	s, err := Open(path, opts)
	if errors.Is(err, bolterrors.ErrTimeout) {
		err = fmt.Errorf("%w (is another process using it?)", err)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ParseURL returns the path and options of a bolt URL (see Scheme); an
// error is a backend.BadURL one. Options.Timeout is left zero.
func ParseURL(u *url.URL) (string, *Options, error) {
	const want = "want bolt:PATH (relative or absolute) or bolt:///ABSOLUTE/PATH"
	if u.Host != "" || u.User != nil {
		return "", nil, backend.BadURL("bolt://%s names a host, and a bolt file has none: write bolt:%s for a relative path, or bolt:///%s for an absolute one", u.Host, u.Host+u.Path, u.Host+u.Path)
	}
	path := u.Path
	if u.Opaque != "" {
		p, err := url.PathUnescape(u.Opaque)
		if err != nil {
			return "", nil, backend.BadURL("path %q: %v (write %% as %%25)", u.Opaque, err)
		}
		path = p
	}
	if path == "" {
		return "", nil, backend.BadURL("no file path: %s", want)
	}
	q, err := backend.URLQuery(u, "sync", "interval")
	if err != nil {
		return "", nil, err
	}
	opts := &Options{}
	switch q["sync"] {
	case "", "interval":
	case "always":
		opts.Durability = SyncAlways
	case "none":
		opts.NoSync = true
	default:
		return "", nil, backend.BadURL("option sync=%s: want sync=interval, always or none", q["sync"])
	}
	if v, ok := q["interval"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return "", nil, backend.BadURL("option interval=%s: want a positive duration such as 20ms", v)
		}
		if opts.Durability == SyncAlways {
			return "", nil, backend.BadURL("option interval is for sync=interval, not sync=always")
		}
		opts.Interval = d
	}
	return path, opts, nil
}
