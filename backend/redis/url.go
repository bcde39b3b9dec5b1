package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/voldfs/voldfs/backend"
)

// Scheme and ClusterScheme are the URL schemes this package registers with
// backend.Register (importing the package is enough for backend.OpenURL to
// know them):
//
//	redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTIONS]
//	redis+cluster://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][?OPTIONS]
//
// The first names one server (port 6379 where none is given) and,
// optionally, its database number, as in go-redis's own URLs; the second
// names some of a Redis Cluster's nodes, from which the client learns the
// others. Options are query parameters: prefix=P puts the store's keys under
// P (WithPrefix; no hash tags, see there), max-value-size=BYTES
// (WithMaxValueSize) and dial-timeout=D (default 5s). Opening checks that
// the server answers (PING), so a wrong address is an error at once. The
// client is made with ContextTimeoutEnabled.
const (
	Scheme        = "redis"
	ClusterScheme = "redis+cluster"
)

func init() {
	backend.Register(Scheme, openURL)
	backend.Register(ClusterScheme, openURL)
}

// defaultDialTimeout bounds connecting to a server opened by URL.
const defaultDialTimeout = 5 * time.Second

func openURL(ctx context.Context, u *url.URL) (backend.Store, error) {
	cluster := u.Scheme == ClusterScheme
	want := "want redis://HOST[:PORT][/DB]"
	if cluster {
		want = "want redis+cluster://HOST[:PORT][,HOST[:PORT]...]"
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, backend.BadURL("no server: %s", want)
	}
	hosts, err := backend.URLHosts(u, "6379")
	if err != nil {
		return nil, err
	}
	if !cluster && len(hosts) > 1 {
		return nil, backend.BadURL("redis:// names one server; for a Redis Cluster write redis+cluster://%s", u.Host)
	}
	q, err := backend.URLQuery(u, "prefix", "max-value-size", "dial-timeout")
	if err != nil {
		return nil, err
	}
	db := 0
	if p := strings.Trim(u.Path, "/"); p != "" {
		if cluster {
			return nil, backend.BadURL("path %q: a Redis Cluster has only database 0 (a key prefix is ?prefix=P): %s", u.Path, want)
		}
		if db, err = strconv.Atoi(p); err != nil || db < 0 {
			return nil, backend.BadURL("path %q: the path of a redis URL is a database number (a key prefix is ?prefix=P): %s", u.Path, want)
		}
	}
	var opts []Option
	if p, ok := q["prefix"]; ok {
		opts = append(opts, WithPrefix(p))
	}
	if v, ok := q["max-value-size"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, backend.BadURL("option max-value-size=%s: want a positive number of bytes", v)
		}
		opts = append(opts, WithMaxValueSize(n))
	}
	dial := defaultDialTimeout
	if v, ok := q["dial-timeout"]; ok {
		if dial, err = time.ParseDuration(v); err != nil || dial <= 0 {
			return nil, backend.BadURL("option dial-timeout=%s: want a positive duration such as 5s", v)
		}
	}
	uo := &goredis.UniversalOptions{
		Addrs:                 hosts,
		DB:                    db,
		IsClusterMode:         cluster,
		DialTimeout:           dial,
		ContextTimeoutEnabled: true,
	}
	if u.User != nil {
		uo.Username = u.User.Username()
		uo.Password, _ = u.User.Password()
	}
	s := New(goredis.NewUniversalClient(uo), opts...)
	pctx, cancel := context.WithTimeout(ctx, dial)
	defer cancel()
	if err := s.client.Ping(pctx).Err(); err != nil {
		s.Close()
		if errors.Is(err, context.DeadlineExceeded) {
			err = dialErrors(hosts, err)
		}
		return nil, fmt.Errorf("redis: connect to %s: %w", strings.Join(hosts, ","), err)
	}
	return s, nil
}

// dialErrors explains a client's timeout, which is all it reports
// when no node can be reached: the nodes that refuse a plain connection,
// and why. If every node accepts one, it returns err.
func dialErrors(hosts []string, err error) error {
	var msgs []string
	for _, h := range hosts {
		c, derr := net.DialTimeout("tcp", h, time.Second)
		if derr != nil {
			msgs = append(msgs, derr.Error())
			continue
		}
		c.Close()
	}
	if len(msgs) == 0 {
		return err
	}
	return fmt.Errorf("%s: %w", strings.Join(msgs, "; "), err)
}
