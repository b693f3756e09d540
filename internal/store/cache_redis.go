package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/redis/go-redis/v9"
)

// RedisCache is the CacheStore shared by every replica: each entry is one Redis string
// (EncodeEntry) with the entry's time to live, and each tag a set of the keys stored with it
// (expiring with the longest-lived of them). It has a connection pool of its own, so large
// cache values never queue behind the rate limiter's calls, and a failure state of its own:
// after a failed call Redis is bypassed for store.redis.retry_after_error, so a Redis outage
// costs requests at most one timeout each until then.
type RedisCache struct {
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	outages
}

var _ CacheStore = (*RedisCache)(nil)

// NewRedisCache builds a Redis cache store for cfg (defaults applied). Prefer
// AcquireRedisCache, which shares it across reloads.
func NewRedisCache(cfg *config.RedisStore, logger *slog.Logger) (*RedisCache, error) {
	c, err := NewRedisClient(cfg)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &RedisCache{client: c, prefix: cfg.KeyPrefix, timeout: cfg.Timeout.Duration,
		outages: outages{backoff: cfg.RetryAfterError.Duration, logger: logger}}, nil
}

// RedisCacheKey is the resource registry key of cfg's cache store.
func RedisCacheKey(cfg *config.RedisStore) string {
	return "store/cache-redis|" + strings.TrimPrefix(RedisKey(cfg), "store/redis|")
}

// AcquireRedisCache returns the Redis cache store shared by every Runtime with an equal cfg.
func AcquireRedisCache(acquire AcquireFunc, cfg *config.RedisStore, logger *slog.Logger) (*RedisCache, error) {
	c, err := acquire(RedisCacheKey(cfg), func() (io.Closer, error) { return NewRedisCache(cfg, logger) })
	if err != nil {
		return nil, err
	}
	return c.(*RedisCache), nil
}

// Close closes the store's connections.
func (r *RedisCache) Close() error { return r.client.Close() }

// Failures reports how many calls failed or timed out since the store was built.
func (r *RedisCache) Failures() uint64 { return r.failures.Load() }

func (r *RedisCache) available() error {
	if time.Now().UnixNano() < r.downUntil.Load() {
		return fmt.Errorf("redis cache: %w (recent failure)", ErrUnavailable)
	}
	return nil
}

// fail notes a failed call made for parent (see outages.fail).
func (r *RedisCache) fail(parent context.Context, err error) error {
	return r.outages.fail(parent, err, "redis cache",
		"redis cache store unavailable; requests are proxied uncached",
		"redis refused a cache key; that request is proxied uncached")
}

func (r *RedisCache) tagKey(tag string) string { return r.prefix + "ctag:" + tag }

// Get implements CacheStore.
func (r *RedisCache) Get(ctx context.Context, key string) (*CacheEntry, error) {
	if err := r.available(); err != nil {
		return nil, err
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	b, err := r.client.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, r.fail(parent, err)
	}
	e, err := DecodeEntry(b)
	if err != nil {
		return nil, nil // written by another version: a miss, overwritten on the next store
	}
	return e, nil
}

// Set implements CacheStore: one pipelined round trip stores the entry and adds it to its
// tags' sets.
func (r *RedisCache) Set(ctx context.Context, key string, e *CacheEntry, ttl time.Duration) error {
	if err := r.available(); err != nil {
		return err
	}
	ttl = max(ttl, time.Millisecond)
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	pipe := r.client.Pipeline()
	pipe.Set(ctx, r.prefix+key, EncodeEntry(e), ttl)
	for _, t := range e.Tags {
		tk := r.tagKey(t)
		pipe.SAdd(ctx, tk, key)
		// A new set has no TTL (NX sets it); an existing one keeps the longest (GT).
		pipe.ExpireNX(ctx, tk, ttl)
		pipe.ExpireGT(ctx, tk, ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return r.fail(parent, err)
	}
	return nil
}

// Delete implements CacheStore. Keys are deleted one command each (pipelined), so it works on
// Redis Cluster, where keys live on different nodes.
func (r *RedisCache) Delete(ctx context.Context, keys ...string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	if err := r.available(); err != nil {
		return 0, err
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, max(r.timeout, time.Second))
	defer cancel()
	n, err := r.del(ctx, r.client, keys, r.prefix)
	if err != nil {
		return n, r.fail(parent, err)
	}
	return n, nil
}

func (r *RedisCache) del(ctx context.Context, c redis.Cmdable, keys []string, prefix string) (int, error) {
	n := 0
	for len(keys) > 0 {
		batch := keys[:min(len(keys), 500)]
		keys = keys[len(batch):]
		pipe := c.Pipeline()
		cmds := make([]*redis.IntCmd, len(batch))
		for i, k := range batch {
			cmds[i] = pipe.Del(ctx, prefix+k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return n, err
		}
		for _, c := range cmds {
			n += int(c.Val())
		}
	}
	return n, nil
}

// DeleteMatching implements CacheStore with SCAN over every master (a purge walks the
// keyspace; it is an administrative operation, never done on a request path).
func (r *RedisCache) DeleteMatching(ctx context.Context, prefix string, keep func(string) bool) (int, error) {
	if !validCacheKey(prefix) {
		return 0, errors.New("redis cache: purge prefix outside the cache's keys")
	}
	pattern := globEscape(r.prefix+prefix) + "*"
	var mu sync.Mutex
	total := 0
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			victims := keys[:0]
			for _, k := range keys {
				k = strings.TrimPrefix(k, r.prefix)
				if keep == nil || keep(k) {
					victims = append(victims, k)
				}
			}
			n, err := r.del(ctx, r.client, victims, r.prefix)
			mu.Lock()
			total += n
			mu.Unlock()
			if err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	var err error
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, r.client)
	}
	if err != nil {
		return total, fmt.Errorf("redis cache purge: %w", err)
	}
	return total, nil
}

// DeleteTag implements CacheStore.
func (r *RedisCache) DeleteTag(ctx context.Context, tag string) (int, error) {
	tk := r.tagKey(tag)
	keys, err := r.client.SMembers(ctx, tk).Result()
	if err != nil {
		return 0, fmt.Errorf("redis cache purge: %w", err)
	}
	n, err := r.del(ctx, r.client, keys, r.prefix)
	if err != nil {
		return n, fmt.Errorf("redis cache purge: %w", err)
	}
	if err := r.client.Del(ctx, tk).Err(); err != nil {
		return n, fmt.Errorf("redis cache purge: %w", err)
	}
	return n, nil
}

// globEscape escapes the characters SCAN MATCH treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
