package main

import (
	"errors"
	"fmt"
	neturl "net/url"
	"strings"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
)

// openStore opens the store a -store URL names: bolt:PATH[?OPTIONS], mem:,
// or memcache://HOST:PORT[,HOST:PORT...].
//
// A bolt store's OPTIONS are URL query parameters after the last '?' (a
// PATH that itself contains '?' needs a trailing '?'):
//
//	sync=interval  group commit (the default): writes are acknowledged from
//	               memory and written to the file, in order, within the
//	               interval; fsync and close make them durable; a crash
//	               loses at most the last interval, never an earlier write
//	               without a later one
//	interval=D     the group commit interval (default 20ms)
//	sync=always    a write is acknowledged once it is in the file (an fsync
//	               per commit, shared by concurrent writers)
//	sync=none      no fsync at all: a machine crash can lose or corrupt the
//	               file (for benchmarks)
func openStore(url string) (backend.Store, error) {
	scheme, rest, ok := strings.Cut(url, ":")
	if !ok {
		return nil, fmt.Errorf("store %q: want bolt:PATH, mem: or memcache://HOST:PORT[,...]", url)
	}
	switch scheme {
	case "bolt":
		path, opts, err := boltOptions(rest)
		if err != nil {
			return nil, fmt.Errorf("store %q: %w", url, err)
		}
		// A file another process holds is an error, not a hang.
		opts.Timeout = time.Second
		s, err := bolt.Open(path, opts)
		if errors.Is(err, bolterrors.ErrTimeout) {
			err = fmt.Errorf("%w (is another process using it?)", err)
		}
		return s, err
	case "mem":
		if rest != "" {
			return nil, fmt.Errorf("store %q: mem: takes no argument", url)
		}
		return memory.New(), nil
	case "memcache":
		servers, ok := strings.CutPrefix(rest, "//")
		if !ok || servers == "" {
			return nil, fmt.Errorf("store %q: want memcache://HOST:PORT[,HOST:PORT...]", url)
		}
		return memcache.New(strings.Split(servers, ",")...)
	}
	return nil, fmt.Errorf("store %q: unknown scheme %q (want bolt, mem or memcache)", url, scheme)
}

// boltOptions splits a bolt store's PATH[?OPTIONS] (see openStore).
func boltOptions(rest string) (string, *bolt.Options, error) {
	path, query := rest, ""
	if i := strings.LastIndex(rest, "?"); i >= 0 {
		path, query = rest[:i], rest[i+1:]
	}
	if path == "" {
		return "", nil, errors.New("bolt: needs a file path")
	}
	q, err := neturl.ParseQuery(query)
	if err != nil {
		return "", nil, fmt.Errorf("bolt options %q: %w", query, err)
	}
	opts := &bolt.Options{}
	for k, v := range q {
		if len(v) != 1 {
			return "", nil, fmt.Errorf("bolt option %s given %d times", k, len(v))
		}
		switch k {
		case "sync":
			switch v[0] {
			case "interval":
			case "always":
				opts.Durability = bolt.SyncAlways
			case "none":
				opts.NoSync = true
			default:
				return "", nil, fmt.Errorf("bolt option sync=%s: want interval, always or none", v[0])
			}
		case "interval":
			d, err := time.ParseDuration(v[0])
			if err != nil || d <= 0 {
				return "", nil, fmt.Errorf("bolt option interval=%s: want a positive duration such as 20ms", v[0])
			}
			opts.Interval = d
		default:
			return "", nil, fmt.Errorf("unknown bolt option %q (want sync or interval)", k)
		}
	}
	if opts.Interval != 0 && opts.Durability == bolt.SyncAlways {
		return "", nil, errors.New("bolt option interval is for sync=interval, not sync=always")
	}
	return path, opts, nil
}
