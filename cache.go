package voldfs

import (
	"container/list"
	"sync"
)

// blockCache is a byte-bounded LRU of decoded block payloads. Blocks are
// immutable, so an entry never needs invalidation: a key names one content
// forever. Payloads are shared: callers must not modify them.
type blockCache struct {
	mu    sync.Mutex
	max   int64
	bytes int64
	ll    *list.List
	m     map[blockRef]*list.Element
	hits  int64
	miss  int64
}

type cacheEntry struct {
	ref  blockRef
	v    any // a payload ([]byte) or a decoded node
	size int64
}

func newBlockCache(max int64) *blockCache {
	return &blockCache{max: max, ll: list.New(), m: make(map[blockRef]*list.Element)}
}

func (c *blockCache) get(ref blockRef) ([]byte, bool) {
	v, ok := c.getAny(ref)
	if !ok {
		return nil, false
	}
	p, ok := v.([]byte)
	return p, ok
}

func (c *blockCache) getAny(ref blockRef) (any, bool) {
	if c.max <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[ref]; ok {
		c.ll.MoveToFront(e)
		c.hits++
		return e.Value.(*cacheEntry).v, true
	}
	c.miss++
	return nil, false
}

func (c *blockCache) add(ref blockRef, p []byte) { c.addAny(ref, p, len(p)) }

// addAny caches v, which takes about n bytes. A ref maps to one value kind:
// payloads for data blocks, decoded nodes for index nodes.
func (c *blockCache) addAny(ref blockRef, v any, n int) {
	size := int64(n) + 64
	if c.max <= 0 || size > c.max/4 && size > 1<<20 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[ref]; ok {
		return
	}
	c.m[ref] = c.ll.PushFront(&cacheEntry{ref, v, size})
	c.bytes += size
	for c.bytes > c.max && c.ll.Len() > 0 {
		e := c.ll.Back()
		ce := e.Value.(*cacheEntry)
		c.ll.Remove(e)
		delete(c.m, ce.ref)
		c.bytes -= ce.size
	}
}

func (c *blockCache) remove(ref blockRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[ref]; ok {
		ce := e.Value.(*cacheEntry)
		c.ll.Remove(e)
		delete(c.m, ref)
		c.bytes -= ce.size
	}
}
