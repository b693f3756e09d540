package store

import (
	"context"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
)

// MemoryCache is the in-process CacheStore: an otter cache (W-TinyLFU eviction, which keeps
// the entries most likely to be hit again) bounded by the bytes of its entries, with a
// per-entry time to live. It is safe for concurrent use.
type MemoryCache struct {
	c *otter.Cache[string, memItem]
}

type memItem struct {
	e   *CacheEntry
	ttl time.Duration
}

var _ CacheStore = (*MemoryCache)(nil)

// memExpiry gives each entry the ttl it was stored with, reset by every Set.
type memExpiry struct{}

func (memExpiry) ExpireAfterCreate(e otter.Entry[string, memItem]) time.Duration {
	return e.Value.ttl
}

func (memExpiry) ExpireAfterUpdate(e otter.Entry[string, memItem], _ memItem) time.Duration {
	return e.Value.ttl
}

func (memExpiry) ExpireAfterRead(e otter.Entry[string, memItem]) time.Duration {
	return e.ExpiresAfter()
}

// NewMemoryCache returns a memory cache holding at most about maxBytes of entries.
func NewMemoryCache(maxBytes int64) (*MemoryCache, error) {
	if maxBytes < 1 {
		return nil, errors.New("memory cache: max bytes must be positive")
	}
	c, err := otter.New(&otter.Options[string, memItem]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(k string, v memItem) uint32 {
			return uint32(min(entrySize(k, v.e), math.MaxUint32))
		},
		ExpiryCalculator: memExpiry{},
	})
	if err != nil {
		return nil, err
	}
	return &MemoryCache{c: c}, nil
}

// MemoryCacheKey is the resource registry key of the memory cache of maxBytes.
func MemoryCacheKey(maxBytes int64) string {
	return "store/cache-memory|max_bytes=" + strconv.FormatInt(maxBytes, 10)
}

// AcquireMemoryCache returns the memory cache shared by every Runtime with the same size, so
// a reload that keeps it keeps its entries.
func AcquireMemoryCache(acquire AcquireFunc, maxBytes int64) (*MemoryCache, error) {
	c, err := acquire(MemoryCacheKey(maxBytes), func() (io.Closer, error) { return NewMemoryCache(maxBytes) })
	if err != nil {
		return nil, err
	}
	return c.(*MemoryCache), nil
}

// Get implements CacheStore.
func (m *MemoryCache) Get(_ context.Context, key string) (*CacheEntry, error) {
	it, ok := m.c.GetIfPresent(key)
	if !ok {
		return nil, nil
	}
	return it.e, nil
}

// Set implements CacheStore.
func (m *MemoryCache) Set(_ context.Context, key string, e *CacheEntry, ttl time.Duration) error {
	if ttl <= 0 {
		m.c.Invalidate(key)
		return nil
	}
	m.c.Set(key, memItem{e: e, ttl: ttl})
	return nil
}

// Delete implements CacheStore.
func (m *MemoryCache) Delete(_ context.Context, keys ...string) (int, error) {
	n := 0
	for _, k := range keys {
		if _, ok := m.c.Invalidate(k); ok {
			n++
		}
	}
	return n, nil
}

// DeleteMatching implements CacheStore by walking every entry: purges are rare, and the walk
// does not block requests.
func (m *MemoryCache) DeleteMatching(ctx context.Context, prefix string, keep func(string) bool) (int, error) {
	if !validCacheKey(prefix) {
		return 0, errors.New("memory cache: purge prefix outside the cache's keys")
	}
	var victims []string
	for k := range m.c.Keys() {
		if strings.HasPrefix(k, prefix) && (keep == nil || keep(k)) {
			victims = append(victims, k)
		}
	}
	return m.Delete(ctx, victims...)
}

// DeleteTag implements CacheStore.
func (m *MemoryCache) DeleteTag(ctx context.Context, tag string) (int, error) {
	var victims []string
	for k, it := range m.c.All() {
		if hasTag(it.e, tag) {
			victims = append(victims, k)
		}
	}
	return m.Delete(ctx, victims...)
}

// Len reports how many entries are held.
func (m *MemoryCache) Len() int { return m.c.EstimatedSize() }

// Close stops the cache's maintenance goroutine and drops every entry.
func (m *MemoryCache) Close() error {
	m.c.InvalidateAll()
	m.c.StopAllGoroutines()
	return nil
}
