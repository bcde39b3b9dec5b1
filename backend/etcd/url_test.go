package etcd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/voldfs/voldfs"
	"github.com/voldfs/voldfs/backend"
)

// TestOpenURL opens etcd:// URLs on a real one-member cluster: one endpoint,
// a list with a dead endpoint first, a prefix and the options; a filesystem
// formatted through one URL opens through another.
func TestOpenURL(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, 1)
	ep := strings.TrimPrefix(c.endpoints()[0], "http://")
	raw, err := clientv3.New(c.config())
	require.NoError(t, err)
	defer raw.Close()

	for _, tc := range []struct {
		url, prefix string
		maxValue    int
	}{
		{url: "etcd://" + ep, maxValue: DefaultMaxRequestBytes - requestOverhead - 3*backend.MaxKeyLen},
		{url: "etcd://127.0.0.1:1," + ep + "/fs1", prefix: "fs1/"},
		{url: "etcd://" + ep + "/a/b/?max-request-bytes=100000&max-txn-ops=16&dial-timeout=2s", prefix: "a/b/", maxValue: 100000 - requestOverhead - 3*(4+backend.MaxKeyLen)},
	} {
		t.Run(tc.url, func(t *testing.T) {
			s, err := backend.OpenURL(ctx, tc.url)
			require.NoError(t, err)
			defer func() { assert.NoError(t, s.Close()) }()
			es := s.(*Store)
			assert.Equal(t, tc.prefix, es.prefix)
			if tc.maxValue != 0 {
				assert.Equal(t, tc.maxValue, es.MaxValueSize())
			}
			key := "url-" + strings.ReplaceAll(tc.prefix, "/", "-")
			_, err = s.CAS(ctx, key, backend.NoVersion, []byte("v"))
			require.NoError(t, err)
			r, err := raw.Get(ctx, tc.prefix+key)
			require.NoError(t, err)
			require.Len(t, r.Kvs, 1, "the key is not under the URL's prefix")
			assert.Equal(t, "v", string(r.Kvs[0].Value))
		})
	}

	t.Run("Filesystem", func(t *testing.T) {
		s, err := backend.OpenURL(ctx, "etcd://"+ep+"/fs2")
		require.NoError(t, err)
		f, err := voldfs.Format(ctx, s, nil)
		require.NoError(t, err)
		require.NoError(t, f.WriteFile("hello", []byte("world"), 0o644))
		f.Close()
		s.Close()
		s, err = backend.OpenURL(ctx, "etcd://127.0.0.1:1,"+ep+"/fs2/")
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

// TestOpenURLUnreachable: no endpoint answering is an error within the
// dial timeout, naming every endpoint.
func TestOpenURLUnreachable(t *testing.T) {
	start := time.Now()
	_, err := backend.OpenURL(context.Background(), "etcd://127.0.0.1:1,127.0.0.1:2?dial-timeout=300ms")
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.NotErrorIs(t, err, backend.ErrBadURL)
	msg := err.Error()
	assert.Equal(t, `store "etcd://127.0.0.1:1,127.0.0.1:2?dial-timeout=300ms": etcd: no endpoint answers within 300ms: `+
		`127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused; 127.0.0.1:2: dial tcp 127.0.0.1:2: connect: connection refused`, msg)
	assert.NotContains(t, msg, "\n")
}

// TestOpenURLErrors: bad etcd URLs are one line saying what was expected.
func TestOpenURLErrors(t *testing.T) {
	for _, c := range []struct{ url, msg string }{
		{"etcd:", `no endpoint: want etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]`},
		{"etcd:h:2379", `no endpoint: want etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]`},
		{"etcd:///fs", `no endpoint: want etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX]`},
		{"etcd://h:1,,h:2", `an empty server in "h:1,,h:2": want HOST[:PORT][,HOST[:PORT]...]`},
		{"etcd://h?max-txn-ops=0", `option max-txn-ops=0: want a positive number`},
		{"etcd://h?max-request-bytes=lots", `option max-request-bytes=lots: want a positive number`},
		{"etcd://h?dial-timeout=5", `option dial-timeout=5: want a positive duration such as 5s`},
		{"etcd://h?prefix=x", `unknown option "prefix" (want max-request-bytes, max-txn-ops, dial-timeout)`},
	} {
		_, err := backend.OpenURL(context.Background(), c.url)
		if assert.Error(t, err, c.url) {
			assert.Equal(t, `store "`+c.url+`": `+c.msg, err.Error())
			assert.ErrorIs(t, err, backend.ErrBadURL, c.url)
		}
	}
}

// TestOpenURLPassword: the URL's user and password reach a cluster with
// authentication on, and a wrong one is refused at open, redacted.
func TestOpenURLPassword(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, 1)
	ep := strings.TrimPrefix(c.endpoints()[0], "http://")
	admin, err := clientv3.New(c.config())
	require.NoError(t, err)
	_, err = admin.UserAdd(ctx, "root", "s3cret")
	require.NoError(t, err)
	_, err = admin.UserGrantRole(ctx, "root", "root")
	require.NoError(t, err)
	_, err = admin.AuthEnable(ctx)
	require.NoError(t, err)
	admin.Close()

	s, err := backend.OpenURL(ctx, "etcd://root:s3cret@"+ep+"/auth")
	require.NoError(t, err)
	_, err = s.CAS(ctx, "k", backend.NoVersion, []byte("v"))
	assert.NoError(t, err)
	s.Close()
	for _, u := range []string{"etcd://root:wrong@" + ep + "?dial-timeout=2s", "etcd://" + ep + "?dial-timeout=2s"} {
		s, err := backend.OpenURL(ctx, u)
		if !assert.Error(t, err, u) {
			s.Close()
			continue
		}
		assert.NotErrorIs(t, err, backend.ErrBadURL)
		assert.NotContains(t, err.Error(), "wrong")
		assert.Contains(t, err.Error(), `store "`+backend.RedactURL(u)+`": etcd: `)
		t.Log(err)
	}
}
