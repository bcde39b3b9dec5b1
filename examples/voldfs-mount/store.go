package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/voldfs/voldfs/backend"
	"github.com/voldfs/voldfs/backend/bolt"
	"github.com/voldfs/voldfs/backend/memcache"
	"github.com/voldfs/voldfs/backend/memory"
)

// openStore opens the store a -store URL names: bolt:PATH, mem:, or
// memcache://HOST:PORT[,HOST:PORT...].
func openStore(url string) (backend.Store, error) {
	scheme, rest, ok := strings.Cut(url, ":")
	if !ok {
		return nil, fmt.Errorf("store %q: want bolt:PATH, mem: or memcache://HOST:PORT[,...]", url)
	}
	switch scheme {
	case "bolt":
		if rest == "" {
			return nil, fmt.Errorf("store %q: bolt: needs a file path", url)
		}
		// A file another process holds is an error, not a hang.
		s, err := bolt.Open(rest, &bolt.Options{Timeout: time.Second})
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
