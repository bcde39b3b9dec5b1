package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestObjectNames(t *testing.T) {
	for _, tc := range []struct{ key, name string }{
		{"a", "a"},
		{"a/", "a÷"},
		{"a/b", "a÷b"},
		{"fs/i/1f", "fs÷i÷1f"},
		{".", "·"},
		{"..", "·."},
		{".a/.b", "·a÷.b"},
		{"%2F", "%2F"},
	} {
		name := objectName(tc.key)
		assert.Equal(t, tc.name, name, "objectName(%q)", tc.key)
		key, ok := keyOf(name)
		assert.True(t, ok, "keyOf(%q)", name)
		assert.Equal(t, tc.key, key, "keyOf(objectName(%q))", tc.key)
	}
	// Names the Store never writes: a raw slash (a folder), a leading dot
	// (versitygw's temporary files), other non-ASCII bytes, invalid keys.
	for _, name := range []string{"a/b", ".a.sgwtmp.123", "a\u00e9", "a b", ""} {
		_, ok := keyOf(name)
		assert.False(t, ok, "keyOf(%q)", name)
	}
	// Prefixes map to prefixes, so List can list by name prefix.
	assert.Equal(t, objectName("fs/b/"), objectName("fs/b/0123")[:len(objectName("fs/b/"))])
}

func TestBodies(t *testing.T) {
	a, b := encodeBody([]byte("v")), encodeBody([]byte("v"))
	assert.NotEqual(t, a, b, "two bodies of one value must differ (the nonce)")
	v, tomb, err := decodeBody(a)
	require.NoError(t, err)
	assert.False(t, tomb)
	assert.Equal(t, "v", string(v))
	v, tomb, err = decodeBody(encodeBody(nil))
	require.NoError(t, err)
	assert.False(t, tomb)
	assert.NotNil(t, v, "an empty value is a non-nil slice")
	assert.Empty(t, v)
	_, tomb, err = decodeBody(tombstone())
	require.NoError(t, err)
	assert.True(t, tomb)
	for _, bad := range [][]byte{nil, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 0, 'x'}} {
		_, _, err := decodeBody(bad)
		assert.ErrorIs(t, err, errCorrupt, "decodeBody(%q)", bad)
	}
}

func TestVersionOf(t *testing.T) {
	assert.Equal(t, versionOf(`"abc"`), versionOf("abc"), "quotes are not part of the ETag")
	assert.Equal(t, versionOf(`W/"abc"`), versionOf("abc"), "nor the weak marker")
	assert.NotEqual(t, versionOf("abc"), versionOf("abd"))
}

// TestClassify: which S3 errors are definite refusals and which leave the
// outcome unknown.
func TestClassify(t *testing.T) {
	ctx := context.Background()
	apiErr := func(code string, status int) error {
		return &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
				Err:      &smithy.GenericAPIError{Code: code},
			},
		}
	}
	for _, tc := range []struct {
		err  error
		want outcome
	}{
		{apiErr("NoSuchKey", 404), notFound},
		{apiErr("NotFound", 404), notFound},
		{apiErr("NoSuchBucket", 404), unknown},
		{apiErr("PreconditionFailed", 412), conflict},
		{apiErr("ConditionalRequestConflict", 409), conflict},
		{apiErr("", 412), conflict},
		{apiErr("EntityTooLarge", 400), tooLarge},
		{apiErr("InsufficientStorage", 507), noSpace},
		{apiErr("XMinioStorageFull", 507), noSpace},
		{apiErr("KeyTooLongError", 400), invalidKey},
		{apiErr("InternalError", 500), unknown},
		{apiErr("SlowDown", 503), unknown},
		{apiErr("AccessDenied", 403), unknown},
		{errors.New("connection reset by peer"), unknown},
	} {
		assert.Equal(t, tc.want, classify(ctx, tc.err), "%v", tc.err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.Equal(t, interrupted, classify(cctx, fmt.Errorf("op: %w", context.Canceled)))
	assert.Equal(t, unknown, classify(ctx, fmt.Errorf("op: %w", context.Canceled)), "a cancel that is not the caller's")
}
