package config

import (
	"fmt"
	"net/textproto"
	"strings"
	"time"
)

// Cache configures the response cache's storage, shared by every route with plugins.cache.
// The cache is an HTTP shared cache (RFC 9111): it honours the origin's Cache-Control, Expires,
// Age and Vary, revalidates with ETag and Last-Modified, and serves stale responses as
// stale-while-revalidate and stale-if-error (RFC 5861) allow.
type Cache struct {
	// Store holds the cached responses: "memory" (this gateway only, bounded by max_bytes) or
	// "redis" (shared by all replicas, in store.redis; entries expire with their freshness and
	// Redis's own maxmemory policy bounds the total). When Redis fails, requests are proxied
	// uncached; a cache failure never fails a request. Default: memory.
	Store string `yaml:"store"`
	// MaxBytes bounds the memory store: bodies, headers and keys of all entries. When full, the
	// entries least likely to be used again are evicted (W-TinyLFU). Default: 64MiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// Header names the response header that tells clients how the cache served them: HIT,
	// MISS, STALE (a stale copy: while revalidating, or because the origin failed),
	// REVALIDATED (the origin confirmed the stored copy with 304) or BYPASS (not cacheable by
	// method or request). "-" sends no such header. Default: X-Cache.
	Header string `yaml:"header"`
}

// CachePlugin caches a route's GET and HEAD responses. The origin's Cache-Control decides
// first; this policy fills the gaps (like nginx proxy_cache_valid) and bounds what is stored.
// Responses to unsafe methods (POST, PUT, PATCH, DELETE) on the route invalidate the stored
// responses of the same URL.
type CachePlugin struct {
	// TTL is how long a response without explicit freshness (no Cache-Control max-age or
	// s-maxage, no Expires) stays fresh. "0s" caches only responses with explicit freshness.
	// Default: 60s.
	TTL Duration `yaml:"ttl"`
	// Statuses are the response statuses that may be stored. Default: [200, 203, 204, 300,
	// 301, 308, 404, 410].
	Statuses []int `yaml:"statuses"`
	// MaxObjectBytes is the largest body stored; larger responses stream to the client
	// uncached. Default: 1MiB.
	MaxObjectBytes ByteSize `yaml:"max_object_bytes"`
	// Key selects what distinguishes two cached responses. The path, the method (HEAD is
	// answered from GET responses) and the route are always part of it; so are the request
	// headers the response names in Vary.
	Key CacheKey `yaml:"key"`
	// TagHeader names the upstream response header that lists the response's tags (surrogate
	// keys), separated by spaces or commas; the admin API purges by tag. The header is not
	// sent to clients. Default: Surrogate-Key.
	TagHeader string `yaml:"tag_header"`
	// LockTimeout bounds how long concurrent requests for a missing entry wait for the one
	// request that was sent upstream (request coalescing); after it they go upstream
	// themselves. "0s" turns coalescing off. Default: 5s.
	LockTimeout Duration `yaml:"lock_timeout"`
	// KeepStale is how long an entry that has an ETag or Last-Modified is kept after it went
	// stale, so that it can be revalidated with a conditional request (and, if the origin
	// answers 304, served again) instead of being fetched whole. Default: 5m.
	KeepStale Duration `yaml:"keep_stale"`
}

// CacheKey selects the parts of the cache key beyond path, method and route.
type CacheKey struct {
	// Host includes the request's Host (without port) in the key. Default: true.
	Host *bool `yaml:"host"`
	// Query includes the query string, with its parameters sorted, in the key; false ignores
	// it. Default: true.
	Query *bool `yaml:"query"`
	// Headers are request headers whose values are part of the key, e.g. [Accept-Language].
	Headers []string `yaml:"headers"`
	// User caches per authenticated user: the issuer and subject of a jwt, the consumer of an
	// api_key, the subject of forward_auth. With it, responses to authenticated requests are
	// stored without the origin marking them public, since only the same user can be served
	// them; responses marked private are still never stored, nor, unless the origin marks them
	// shareable, responses to callers without a subject to tell them apart (a token without
	// sub). Without it, a response to a request that carries Authorization or that the gateway
	// authenticated in any way (even with the credential hidden) is shared only if the origin
	// marks it public, s-maxage or must-revalidate. Default: false.
	User bool `yaml:"user"`
}

// Cache field values and defaults.
const (
	CacheHeaderOff         = "-"
	defaultCacheMaxBytes   = 64 << 20
	defaultCacheObjectSize = 1 << 20
	defaultCacheTTL        = 60 * time.Second
	defaultCacheLock       = 5 * time.Second
	defaultCacheKeepStale  = 5 * time.Minute
)

// DefaultCacheStatuses are the statuses stored when a route does not list its own.
var DefaultCacheStatuses = []int{200, 203, 204, 300, 301, 308, 404, 410}

func (c *Config) defaultCache() {
	if c.Cache.Store == "" {
		c.Cache.Store = StoreMemory
	}
	defSize(&c.Cache.MaxBytes, defaultCacheMaxBytes)
	if c.Cache.Header == "" {
		c.Cache.Header = "X-Cache"
	}
	for i := range c.Routes {
		p := c.Routes[i].Plugins.Cache
		if p == nil {
			continue
		}
		defDur(&p.TTL, defaultCacheTTL)
		if p.Statuses == nil {
			p.Statuses = append([]int(nil), DefaultCacheStatuses...)
		}
		defSize(&p.MaxObjectBytes, defaultCacheObjectSize)
		if p.TagHeader == "" {
			p.TagHeader = "Surrogate-Key"
		}
		defDur(&p.LockTimeout, defaultCacheLock)
		defDur(&p.KeepStale, defaultCacheKeepStale)
		t := true
		if p.Key.Host == nil {
			p.Key.Host = &t
		}
		if p.Key.Query == nil {
			p.Key.Query = &t
		}
	}
}

func (s *Source) validateCache(add func(path, format string, args ...any)) {
	c := s.Config
	switch c.Cache.Store {
	case StoreMemory:
	case StoreRedis:
		if c.Store.Redis == nil {
			add("cache.store", "is redis but store.redis is not configured")
		}
	default:
		add("cache.store", "%q must be memory or redis", c.Cache.Store)
	}
	if c.Cache.MaxBytes.Bytes < 1<<20 {
		add("cache.max_bytes", "must be at least 1MiB")
	}
	if h := c.Cache.Header; h != CacheHeaderOff && !validToken(h) {
		add("cache.header", "%q is not a valid header name (or \"-\" for none)", h)
	}
	for i := range c.Routes {
		p := c.Routes[i].Plugins.Cache
		if p == nil {
			continue
		}
		rp := fmt.Sprintf("routes[%d].plugins.cache", i)
		if p.TTL.Duration > 365*24*time.Hour {
			add(rp+".ttl", "%s is longer than a year", p.TTL.Duration)
		}
		if len(p.Statuses) == 0 {
			add(rp+".statuses", "must list at least one status (leave it out for the default)")
		}
		for j, st := range p.Statuses {
			if st < 200 || st > 599 || st == 206 || st == 304 {
				add(fmt.Sprintf("%s.statuses[%d]", rp, j), "%d is not a storable status (200-599, except 206 and 304)", st)
			}
		}
		if p.MaxObjectBytes.Bytes < 1 {
			add(rp+".max_object_bytes", "must be at least 1 byte")
		} else if p.MaxObjectBytes.Bytes > 64<<20 || c.Cache.Store == StoreMemory && p.MaxObjectBytes.Bytes > c.Cache.MaxBytes.Bytes/8 {
			add(rp+".max_object_bytes", "%d is too large: at most 64MiB and an eighth of cache.max_bytes", p.MaxObjectBytes.Bytes)
		}
		if !validToken(p.TagHeader) {
			add(rp+".tag_header", "%q is not a valid header name", p.TagHeader)
		}
		if p.LockTimeout.Duration > time.Minute {
			add(rp+".lock_timeout", "%s is longer than a minute", p.LockTimeout.Duration)
		}
		if p.KeepStale.Duration > 7*24*time.Hour {
			add(rp+".keep_stale", "%s is longer than a week", p.KeepStale.Duration)
		}
		seen := map[string]bool{}
		for j, h := range p.Key.Headers {
			hp := fmt.Sprintf("%s.key.headers[%d]", rp, j)
			if !validToken(h) {
				add(hp, "%q is not a valid header name", h)
				continue
			}
			ch := textproto.CanonicalMIMEHeaderKey(h)
			if seen[ch] {
				add(hp, "%q is repeated", h)
			}
			seen[ch] = true
			if strings.EqualFold(h, "Authorization") || strings.EqualFold(h, "Cookie") {
				add(hp, "%q would put credentials in cache keys; use key.user for per-user caching", h)
			}
		}
	}
}
