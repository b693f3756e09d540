package auth

import (
	"sync"
	"time"
)

// cacheKey is the SHA-256 of a credential: the cache never holds a token or key itself.
type cacheKey [32]byte

const cacheShards = 16

// ttlCache is a bounded map of values that expire. It never holds more than max entries: when a
// shard is full, expired entries are dropped first, then an arbitrary one (Go's map iteration
// order is random, which makes this random eviction; good enough for a cache whose misses only
// cost a signature check or an auth call). Expired entries are also dropped when read.
type ttlCache[V any] struct {
	shards   [cacheShards]cacheShard[V]
	perShard int
}

type cacheShard[V any] struct {
	mu sync.Mutex
	m  map[cacheKey]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v       V
	expires time.Time
}

// newTTLCache returns a cache of at most max entries (nil when max <= 0: caching off).
func newTTLCache[V any](max int) *ttlCache[V] {
	if max <= 0 {
		return nil
	}
	per := (max + cacheShards - 1) / cacheShards
	c := &ttlCache[V]{perShard: per}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]cacheEntry[V])
	}
	return c
}

func (c *ttlCache[V]) get(k cacheKey, now time.Time) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	s := &c.shards[k[0]%cacheShards]
	s.mu.Lock()
	e, ok := s.m[k]
	if ok && !now.Before(e.expires) {
		delete(s.m, k)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(k cacheKey, v V, expires time.Time, now time.Time) {
	if c == nil || !now.Before(expires) {
		return
	}
	s := &c.shards[k[0]%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; !ok && len(s.m) >= c.perShard {
		evicted := false
		scanned := 0
		for key, e := range s.m {
			if !now.Before(e.expires) {
				delete(s.m, key)
				evicted = true
			}
			if scanned++; scanned >= 8 {
				break
			}
		}
		if !evicted {
			for key := range s.m {
				delete(s.m, key)
				break
			}
		}
	}
	s.m[k] = cacheEntry[V]{v: v, expires: expires}
}

func (c *ttlCache[V]) len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.shards {
		c.shards[i].mu.Lock()
		n += len(c.shards[i].m)
		c.shards[i].mu.Unlock()
	}
	return n
}
