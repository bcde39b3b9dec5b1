package etcd

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/voldfs/voldfs/backend"
)

// Scheme is the URL scheme this package registers with backend.Register
// (importing the package is enough for backend.OpenURL to know it):
//
//	etcd://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][/PREFIX][?OPTIONS]
//
// names the cluster's client endpoints (plain HTTP, port 2379 where none is
// given). A PREFIX puts the store's keys under PREFIX/ (WithPrefix; a
// trailing slash is added if missing), so one cluster can hold several
// stores. Options are query parameters: max-request-bytes=N and
// max-txn-ops=N tell the store the cluster's limits (WithMaxRequestBytes,
// WithMaxTxnOps), and dial-timeout=D (default 5s) bounds the wait for the
// cluster to answer: opening reads a key under the prefix, so a wrong address, a
// cluster without quorum or credentials that cannot read there are an error
// at once, not at the first request.
const Scheme = "etcd"

func init() { backend.Register(Scheme, openURL) }

// defaultDialTimeout bounds the reachability check of a store opened by URL.
const defaultDialTimeout = 5 * time.Second

func openURL(ctx context.Context, u *url.URL) (backend.Store, error) {
	const want = "want etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]"
	if u.Opaque != "" || u.Host == "" {
		return nil, backend.BadURL("no endpoint: %s", want)
	}
	hosts, err := backend.URLHosts(u, "2379")
	if err != nil {
		return nil, err
	}
	q, err := backend.URLQuery(u, "max-request-bytes", "max-txn-ops", "dial-timeout")
	if err != nil {
		return nil, err
	}
	var opts []Option
	if prefix := strings.TrimPrefix(u.Path, "/"); prefix != "" {
		if !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		opts = append(opts, WithPrefix(prefix))
	}
	for _, o := range []struct {
		name string
		opt  func(int) Option
	}{{"max-request-bytes", WithMaxRequestBytes}, {"max-txn-ops", WithMaxTxnOps}} {
		if v, ok := q[o.name]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, backend.BadURL("option %s=%s: want a positive number", o.name, v)
			}
			opts = append(opts, o.opt(n))
		}
	}
	dial := defaultDialTimeout
	if v, ok := q["dial-timeout"]; ok {
		if dial, err = time.ParseDuration(v); err != nil || dial <= 0 {
			return nil, backend.BadURL("option dial-timeout=%s: want a positive duration such as 5s", v)
		}
	}
	cfg := clientv3.Config{DialTimeout: dial, Logger: zap.NewNop()}
	for _, h := range hosts {
		cfg.Endpoints = append(cfg.Endpoints, "http://"+h)
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	s, err := New(cfg, opts...)
	if err != nil {
		return nil, err
	}
	if err := s.ping(ctx, dial); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// ping waits up to timeout for the cluster to serve a read of the store's
// prefix, which also proves the credentials. It first connects to every
// endpoint at once, so that when none can be reached the error says why
// (gRPC reports a refused connection only as the deadline it waited out).
func (s *Store) ping(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	eps := s.cli.Endpoints()
	errc := make(chan error, len(eps))
	for _, ep := range eps {
		go func() {
			host := strings.TrimPrefix(ep, "http://")
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", host)
			if err != nil {
				errc <- fmt.Errorf("%s: %w", host, err)
				return
			}
			c.Close()
			errc <- nil
		}()
	}
	var errs oneLineErrors
	for range eps {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == len(eps) {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return fmt.Errorf("etcd: no endpoint answers within %v: %w", timeout, errs)
	}
	// Any key under the prefix will do; this one is read, never written.
	if _, err := s.cli.Get(ctx, s.prefix+"open-check", clientv3.WithCountOnly()); err != nil {
		return fmt.Errorf("etcd: read under prefix %q: %w", s.prefix, err)
	}
	return nil
}

// oneLineErrors is errors.Join's error on one line.
type oneLineErrors []error

func (e oneLineErrors) Unwrap() []error { return e }

func (e oneLineErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}
