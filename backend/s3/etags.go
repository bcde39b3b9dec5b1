package s3

import (
	"sync"

	"github.com/voldfs/voldfs/backend"
)

// etagCache remembers the ETag of the last version of each key this Store
// read or wrote, so that a CAS or Delete with that version sends If-Match
// without asking the server for the ETag first, and the ETag of a key's
// tombstone, so that a create over it need not fail once to learn it. A
// miss costs one HEAD. It
// holds at most max keys; when full, it forgets an arbitrary eighth.
type etagCache struct {
	mu  sync.Mutex
	max int
	m   map[string]etagEntry
}

type etagEntry struct {
	ver  backend.Version
	etag string
	tomb bool
}

func newETagCache(max int) *etagCache {
	return &etagCache{max: max, m: make(map[string]etagEntry)}
}

// get returns the ETag of key at ver, if known.
func (c *etagCache) get(key string, ver backend.Version) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || e.tomb || e.ver != ver {
		return "", false
	}
	return e.etag, true
}

// tombstone returns the ETag of key's tombstone, if it is known to be one.
func (c *etagCache) tombstone(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || !e.tomb {
		return "", false
	}
	return e.etag, true
}

// put records that key is at the version of etag, or a tombstone.
func (c *etagCache) put(key, etag string, tomb bool) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		n := c.max/8 + 1
		for k := range c.m { // map order is random enough
			delete(c.m, k)
			if n--; n == 0 {
				break
			}
		}
	}
	c.m[key] = etagEntry{ver: versionOf(etag), etag: etag, tomb: tomb}
}

// forget drops what the cache knows of key.
func (c *etagCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}
