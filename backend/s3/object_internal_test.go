package s3

import (
	"testing"

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
