package memcache

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/voldfs/voldfs/backend"
)

var _ backend.SpaceReporter = (*Store)(nil)

// Space implements backend.SpaceReporter from every server's "stats":
// limit_maxbytes (the -m limit) is the total, limit_maxbytes less bytes
// (what the items take) is free, summed over the servers. memcached
// allocates memory in slabs, so a server may refuse a write somewhat
// before bytes reaches its limit.
func (s *Store) Space(ctx context.Context) (backend.Space, error) {
	var sp backend.Space
	err := s.servers.Each(func(addr net.Addr) error {
		st, err := serverStats(ctx, addr, s.timeout)
		if err != nil {
			return err
		}
		limit, used := st["limit_maxbytes"], st["bytes"]
		sp.Total += limit
		if used < limit {
			sp.Free += limit - used
		}
		return nil
	})
	if err != nil {
		return backend.Space{}, fmt.Errorf("memcache: stats: %w", err)
	}
	return sp, nil
}

// serverStats returns the numeric general statistics of one server.
func serverStats(ctx context.Context, addr net.Addr, timeout time.Duration) (map[string]uint64, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, addr.Network(), addr.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := conn.Write([]byte("stats\r\n")); err != nil {
		return nil, err
	}
	st := map[string]uint64{}
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "END" {
			return st, nil
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "STAT" {
			return nil, fmt.Errorf("%s: unexpected stats line %q", addr, line)
		}
		if v, err := strconv.ParseUint(f[2], 10, 64); err == nil {
			st[f[1]] = v
		}
	}
}
