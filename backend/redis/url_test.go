package redis

import (
	"context"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
)

// TestOpenURL opens redis:// and redis+cluster:// URLs on real servers and
// checks where the keys land: the database number, the prefix, the cluster.
func TestOpenURL(t *testing.T) {
	ctx := context.Background()
	addr := startStandalone(t)
	nodes := startCluster(t, 3)

	for _, tc := range []struct {
		url     string
		db      int
		prefix  string
		cluster bool
		max     int
	}{
		{url: "redis://" + addr, max: DefaultMaxValueSize},
		{url: "redis://" + addr + "/3?prefix=fs1/&max-value-size=1000&dial-timeout=2s", db: 3, prefix: "fs1/", max: 1000},
		{url: "redis+cluster://" + nodes[0], cluster: true},
		{url: "redis+cluster://" + strings.Join(nodes, ",") + "?prefix=c/", prefix: "c/", cluster: true},
	} {
		t.Run(tc.url, func(t *testing.T) {
			s, err := backend.OpenURL(ctx, tc.url)
			require.NoError(t, err)
			defer func() { assert.NoError(t, s.Close()) }()
			rs := s.(*Store)
			assert.Equal(t, tc.prefix, rs.prefix)
			if tc.max != 0 {
				assert.Equal(t, tc.max, rs.MaxValueSize())
			}
			_, isCluster := rs.client.(*goredis.ClusterClient)
			assert.Equal(t, tc.cluster, isCluster)
			// Keys spread over the cluster's slots, so over every node.
			var keys []string
			for i := range 30 {
				keys = append(keys, "url-key-"+strings.Repeat("x", i))
			}
			for _, k := range keys {
				_, err := s.CAS(ctx, k, backend.NoVersion, []byte("v"))
				require.NoError(t, err)
			}
			servers := []string{addr}
			if tc.cluster {
				servers = nodes
			}
			found := 0
			for _, srv := range servers {
				c := goredis.NewClient(&goredis.Options{Addr: srv, DB: tc.db})
				if !tc.cluster {
					n, err := c.Exists(ctx, tc.prefix+keys[0]).Result()
					require.NoError(t, err)
					assert.Equal(t, int64(1), n, "the key is not in database %d under %q", tc.db, tc.prefix)
				}
				nk, err := c.DBSize(ctx).Result()
				require.NoError(t, err)
				if nk > 0 {
					found++
				}
				c.Close()
			}
			assert.Equal(t, len(servers), found, "nodes holding keys")
			for _, k := range keys {
				_, _, err := s.Get(ctx, k)
				require.NoError(t, err)
				require.NoError(t, s.Delete(ctx, k, backend.AnyVersion))
			}
		})
	}

	t.Run("Filesystem", func(t *testing.T) {
		url := "redis+cluster://" + nodes[1] + "?prefix=fs/"
		s, err := backend.OpenURL(ctx, url)
		require.NoError(t, err)
		f, err := voldfs.Format(ctx, s, nil)
		require.NoError(t, err)
		require.NoError(t, f.WriteFile("hello", []byte("world"), 0o644))
		f.Close()
		s.Close()
		s, err = backend.OpenURL(ctx, "redis+cluster://"+nodes[2]+"?prefix=fs/")
		require.NoError(t, err)
		defer s.Close()
		f, err = voldfs.Open(ctx, s, nil)
		require.NoError(t, err)
		defer f.Close()
		b, err := f.ReadFile("hello")
		require.NoError(t, err)
		assert.Equal(t, "world", string(b))
	})
}

// TestOpenURLUnreachable: a server that does not answer is an error within
// the dial timeout, naming the server.
func TestOpenURLUnreachable(t *testing.T) {
	start := time.Now()
	_, err := backend.OpenURL(context.Background(), "redis://127.0.0.1:1?dial-timeout=300ms")
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.NotErrorIs(t, err, backend.ErrBadURL)
	msg := err.Error()
	assert.Equal(t, `store "redis://127.0.0.1:1?dial-timeout=300ms": redis: connect to 127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused: context deadline exceeded`, msg)

	// A client that times out says only that; the opener says why.
	_, err = backend.OpenURL(context.Background(), "redis+cluster://127.0.0.1:1,127.0.0.1:2?dial-timeout=300ms")
	require.Error(t, err)
	assert.Equal(t, `store "redis+cluster://127.0.0.1:1,127.0.0.1:2?dial-timeout=300ms": redis: connect to 127.0.0.1:1,127.0.0.1:2: `+
		`dial tcp 127.0.0.1:1: connect: connection refused; dial tcp 127.0.0.1:2: connect: connection refused: context deadline exceeded`, err.Error())
}

// TestOpenURLErrors: bad Redis URLs are one line saying what was expected.
func TestOpenURLErrors(t *testing.T) {
	for _, c := range []struct{ url, msg string }{
		{"redis:", `no server: want redis://HOST[:PORT][/DB]`},
		{"redis+cluster:", `no server: want redis+cluster://HOST[:PORT][,HOST[:PORT]...]`},
		{"redis://h:1,h:2", `redis:// names one server; for a Redis Cluster write redis+cluster://h:1,h:2`},
		{"redis://h/fs1", `path "/fs1": the path of a redis URL is a database number (a key prefix is ?prefix=P): want redis://HOST[:PORT][/DB]`},
		{"redis://h/-1", `path "/-1": the path of a redis URL is a database number (a key prefix is ?prefix=P): want redis://HOST[:PORT][/DB]`},
		{"redis+cluster://h/1", `path "/1": a Redis Cluster has only database 0 (a key prefix is ?prefix=P): want redis+cluster://HOST[:PORT][,HOST[:PORT]...]`},
		{"redis://h?max-value-size=0", `option max-value-size=0: want a positive number of bytes`},
		{"redis://h?dial-timeout=soon", `option dial-timeout=soon: want a positive duration such as 5s`},
		{"redis://h?db=1", `unknown option "db" (want prefix, max-value-size, dial-timeout)`},
		{"redis://:pw@h?db=1", `unknown option "db" (want prefix, max-value-size, dial-timeout)`},
	} {
		_, err := backend.OpenURL(context.Background(), c.url)
		if assert.Error(t, err, c.url) {
			assert.Equal(t, `store "`+backend.RedactURL(c.url)+`": `+c.msg, err.Error())
			assert.ErrorIs(t, err, backend.ErrBadURL, c.url)
			assert.NotContains(t, err.Error(), "pw")
		}
	}
}

// TestOpenURLPassword: the URL's user and password reach the server, and a
// wrong one is refused, with the password redacted from the message.
func TestOpenURLPassword(t *testing.T) {
	ctx := context.Background()
	addr := startStandalone(t)
	admin := goredis.NewClient(&goredis.Options{Addr: addr})
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "alice", "on", ">wonderland", "~*", "+@all").Err())
	require.NoError(t, admin.ConfigSet(ctx, "requirepass", "s3cret").Err())
	admin.Close()
	for _, u := range []string{"redis://:s3cret@" + addr, "redis://alice:wonderland@" + addr} {
		s, err := backend.OpenURL(ctx, u)
		require.NoError(t, err, u)
		_, err = s.CAS(ctx, "k-"+u[8:13], backend.NoVersion, []byte("v"))
		assert.NoError(t, err, u)
		s.Close()
	}
	for _, u := range []string{"redis://" + addr, "redis://:wrong@" + addr, "redis://alice:s3cret@" + addr} {
		_, err := backend.OpenURL(ctx, u)
		if assert.Error(t, err, u) {
			assert.True(t, strings.HasPrefix(err.Error(), `store "`+backend.RedactURL(u)+`": redis: connect to `+addr+`: `), err.Error())
			assert.NotContains(t, err.Error(), "wrong")
			assert.NotContains(t, err.Error(), "s3cret")
		}
	}
}
