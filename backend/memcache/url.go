package memcache

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/voldfs/voldfs/backend"
)

// Scheme is the URL scheme this package registers with backend.Register
// (importing the package is enough for backend.OpenURL to know it):
//
//	memcache://HOST[:PORT][,HOST[:PORT]...][?OPTIONS]
//
// names the memcached servers (port 11211 where none is given) over which
// keys are spread, as NewWithOptions spreads them. Options are query
// parameters: timeout=D (Options.Timeout, default 2s) and
// max-value-size=BYTES (Options.MaxValueSize; it must fit the servers' -I).
// Opening does not connect: an unreachable server shows at the first
// request.
const Scheme = "memcache"

func init() { backend.Register(Scheme, openURL) }

func openURL(_ context.Context, u *url.URL) (backend.Store, error) {
	const want = "want memcache://HOST[:PORT][,HOST[:PORT]...]"
	if u.Opaque != "" || u.Host == "" {
		return nil, backend.BadURL("no server: %s", want)
	}
	if u.User != nil {
		return nil, backend.BadURL("memcached has no users or passwords: %s", want)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, backend.BadURL("path %q: memcached has no key spaces (use -name for several filesystems): %s", u.Path, want)
	}
	servers, err := backend.URLHosts(u, "11211")
	if err != nil {
		return nil, err
	}
	q, err := backend.URLQuery(u, "timeout", "max-value-size")
	if err != nil {
		return nil, err
	}
	var opts Options
	if v, ok := q["timeout"]; ok {
		if opts.Timeout, err = time.ParseDuration(v); err != nil || opts.Timeout <= 0 {
			return nil, backend.BadURL("option timeout=%s: want a positive duration such as 2s", v)
		}
	}
	if v, ok := q["max-value-size"]; ok {
		if opts.MaxValueSize, err = strconv.Atoi(v); err != nil || opts.MaxValueSize <= 0 {
			return nil, backend.BadURL("option max-value-size=%s: want a positive number of bytes", v)
		}
	}
	return NewWithOptions(opts, servers...)
}
