package s3_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
)

// TestOpenURLErrors: every bad s3: URL is one line, naming the URL (its
// secrets redacted) and what was expected, and wraps backend.ErrBadURL.
func TestOpenURLErrors(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	const creds = "access-key=a&secret-key=b"
	for _, tc := range []struct{ url, want string }{
		{"s3:///prefix?" + creds, `store "s3:///prefix?access-key=a&secret-key=xxxxx": no bucket: want s3://BUCKET[/PREFIX][?endpoint=http://HOST:PORT]`},
		{"s3:bucket", `store "s3:bucket": no bucket: want s3://BUCKET[/PREFIX][?endpoint=http://HOST:PORT]`},
		{"s3://b", `store "s3://b": no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the options access-key and secret-key)`},
		{"s3://b?" + creds + "&bogus=1", `store "s3://b?access-key=a&bogus=1&secret-key=xxxxx": unknown option "bogus" (want endpoint, region, access-key, secret-key, session-token, path-style, max-value-size, atomic-delete)`},
		{"s3://b?" + creds + "&endpoint=localhost:9000", `store "s3://b?access-key=a&endpoint=localhost%3A9000&secret-key=xxxxx": option endpoint=localhost:9000: want http://HOST:PORT or https://HOST[:PORT]`},
		{"s3://b?" + creds + "&path-style=maybe", `store "s3://b?access-key=a&path-style=maybe&secret-key=xxxxx": option path-style=maybe: want true or false`},
		{"s3://b?" + creds + "&atomic-delete=2", `store "s3://b?access-key=a&atomic-delete=2&secret-key=xxxxx": option atomic-delete=2: want true or false`},
		{"s3://b?" + creds + "&max-value-size=-1", `store "s3://b?access-key=a&max-value-size=-1&secret-key=xxxxx": option max-value-size=-1: want a positive number of bytes`},
		{"s3://user:pw@b", `store "s3://user:xxxxx@b": credentials go in access-key and secret-key (or the AWS_ variables), not before the bucket`},
	} {
		_, err := backend.OpenURL(context.Background(), tc.url)
		if assert.Error(t, err, tc.url) {
			assert.Equal(t, tc.want, err.Error(), tc.url)
			assert.ErrorIs(t, err, backend.ErrBadURL, tc.url)
		}
	}
}

// TestOpenURL opens stores by URL on a real server: credentials from the
// environment, a prefix, a value limit, two prefixes that do not see each
// other's keys; and a missing bucket, a wrong secret and a dead endpoint
// fail at open, in plain words.
func TestOpenURL(t *testing.T) {
	endpoint := startServer(t)
	t.Setenv("AWS_ACCESS_KEY_ID", testAccess)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testSecret)
	ctx := context.Background()
	q := "?endpoint=" + url.QueryEscape(endpoint)
	open := func(raw string) backend.Store {
		s, err := backend.OpenURL(ctx, raw)
		require.NoError(t, err, raw)
		t.Cleanup(func() { s.Close() })
		return s
	}
	a := open("s3://" + testBucket + "/url/a" + q + "&max-value-size=100")
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

	for _, tc := range []struct{ url, want string }{
		{"s3://nosuch" + q, `store "s3://nosuch?endpoint=` + url.QueryEscape(endpoint) + `": s3: bucket "nosuch" at ` + endpoint + `: no such bucket`},
		{"s3://" + testBucket + q + "&secret-key=wrong", `store "s3://` + testBucket + `?endpoint=` + url.QueryEscape(endpoint) + `&secret-key=xxxxx": s3: bucket "` + testBucket + `" at ` + endpoint + `: access denied (check the credentials)`},
	} {
		_, err := backend.OpenURL(ctx, tc.url)
		if assert.Error(t, err, tc.url) {
			assert.Equal(t, tc.want, err.Error())
			assert.NotErrorIs(t, err, backend.ErrBadURL)
		}
	}
	_, err = backend.OpenURL(ctx, "s3://"+testBucket+"?endpoint=http://127.0.0.1:1")
	assert.ErrorContains(t, err, `s3: bucket "voldfs" at http://127.0.0.1:1: `)
}
