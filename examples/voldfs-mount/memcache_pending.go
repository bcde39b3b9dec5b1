package main

import (
	"errors"

	"github.com/voldfs/voldfs/backend"
)

func openMemcache(servers []string) (backend.Store, error) {
	return nil, errors.New("memcache: not yet available")
}
