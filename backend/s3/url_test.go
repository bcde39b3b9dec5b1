package s3_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
	s3store "github.com/voldfs/voldfs/backend/s3"
)

func TestOpenURLErrors(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	for _, tc := range []struct{ url, want string }{
		{"s3:///prefix?access_key=a&secret_key=b", "s3: URL has no bucket: want s3://BUCKET[/PREFIX]"},
		{"s3://b", "s3: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or access_key and secret_key in the URL)"},
		{"s3://b?access_key=a&secret_key=b&bogus=1", `s3: unknown URL parameter "bogus" (want endpoint, region, access_key, secret_key, session_token, path_style, max_value_size or atomic_delete)`},
		{"s3://b?access_key=a&secret_key=b&endpoint=localhost:9000", `s3: endpoint "localhost:9000": want http://HOST:PORT or https://HOST[:PORT]`},
		{"s3://b?access_key=a&secret_key=b&path_style=maybe", `s3: path_style="maybe": want true or false`},
		{"s3://b?access_key=a&secret_key=b&atomic_delete=2", `s3: atomic_delete="2": want true or false`},
		{"s3://b?access_key=a&secret_key=b&max_value_size=-1", `s3: max_value_size="-1": want a positive number of bytes`},
		{"s3://user:pw@b", "s3: put credentials in access_key and secret_key (or the AWS_ variables), not in the URL's user part"},
		{"memcache://b", `s3: URL scheme "memcache", want "s3"`},
	} {
		u, err := url.Parse(tc.url)
		require.NoError(t, err, tc.url)
		_, err = s3store.OpenURL(context.Background(), u)
		if assert.Error(t, err, tc.url) {
			assert.Equal(t, tc.want, err.Error(), tc.url)
		}
	}
}

// TestOpenURL opens stores by URL on a real server: credentials from the
// environment, a prefix, a value limit, and two prefixes that do not see
// each other's keys.
func TestOpenURL(t *testing.T) {
	endpoint := startServer(t)
	t.Setenv("AWS_ACCESS_KEY_ID", testAccess)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testSecret)
	ctx := context.Background()
	open := func(raw string) backend.Store {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		s, err := s3store.OpenURL(ctx, u)
		require.NoError(t, err, raw)
		t.Cleanup(func() { s.Close() })
		return s
	}
	q := "?endpoint=" + url.QueryEscape(endpoint)
	a := open("s3://" + testBucket + "/url/a" + q + "&max_value_size=100")
	b := open("s3://" + testBucket + "/url/b/" + q)
	assert.Equal(t, 100, backend.MaxValueSize(a))
	_, err := a.CAS(ctx, "k", backend.NoVersion, make([]byte, 101))
	assert.ErrorIs(t, err, backend.ErrTooLarge)
	_, err = a.CAS(ctx, "k", backend.NoVersion, []byte("in a"))
	require.NoError(t, err)
	_, _, err = b.Get(ctx, "k")
	assert.ErrorIs(t, err, backend.ErrNotFound, "prefix b sees prefix a's key")
	got, _, err := open("s3://"+testBucket+"/url/a/"+q).Get(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "in a", string(got))

	// The wrong secret is a refusal the caller sees plainly.
	bad := open("s3://" + testBucket + "/url/a" + q + "&secret_key=wrong")
	_, _, err = bad.Get(ctx, "k")
	assert.Error(t, err)
	assert.NotErrorIs(t, err, backend.ErrNotFound)
}
