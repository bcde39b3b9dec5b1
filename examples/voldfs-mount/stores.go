package main

// The stores the mount knows: each package registers its URL schemes
// (backend.Register) when imported.
import (
	_ "github.com/voldfs/voldfs/backend/bolt"
	_ "github.com/voldfs/voldfs/backend/etcd"
	_ "github.com/voldfs/voldfs/backend/memcache"
	_ "github.com/voldfs/voldfs/backend/memory"
	_ "github.com/voldfs/voldfs/backend/redis"
	_ "github.com/voldfs/voldfs/backend/s3"
)
