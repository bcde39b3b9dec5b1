package main

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voldfs/voldfs/backend"
)

// TestSchemes: the mount knows every store's scheme (stores.go).
func TestSchemes(t *testing.T) {
	assert.Subset(t, backend.Schemes(), []string{"bolt", "etcd", "mem", "memcache", "redis", "redis+cluster"})
}

func TestOpenBoltStoreURL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	s, err := openStore("bolt:" + path + "?sync=always")
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = openStore("bolt:" + path + "?sync=bad")
	assert.ErrorIs(t, err, backend.ErrBadURL)
}
