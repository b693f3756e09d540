package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/internal/store"
)

// Purger removes stored responses. Counts are entries removed (each Vary variant counts, and
// so does a URL's Vary marker).
type Purger interface {
	// PurgeKey removes every stored response of one URL: its path and query as a client sends
	// them ("/users/7?b=2&a=1"; the order of differently named parameters does not matter,
	// that of a repeated name does), for every host, route and variant.
	PurgeKey(ctx context.Context, key string) (int, error)
	// PurgePrefix removes every stored response whose URL (path and query sorted by parameter
	// name) starts with urlPrefix ("/users/"); "" removes everything.
	PurgePrefix(ctx context.Context, urlPrefix string) (int, error)
	// PurgeTag removes every stored response that carried tag in its route's tag_header.
	PurgeTag(ctx context.Context, tag string) (int, error)
}

// HubKey is the resource registry key of the process's Hub.
const HubKey = "cache/hub"

// Hub reaches the cache stores of every live Runtime (normally one memory or Redis store) and
// purges them. The admin API keeps one for the server's lifetime:
//
//	hub, release, err := cache.AcquireHub(registry.Resources) // release at shutdown
//
// A memory store is this process's only; purging a Redis store purges it for every replica.
type Hub struct {
	mu     sync.Mutex
	stores map[string]store.CacheStore
}

var _ Purger = (*Hub)(nil)

// Shared is the part of upstream.Shared that AcquireHub needs.
type Shared interface {
	Acquire(key string, build func() (io.Closer, error)) (io.Closer, func(), error)
}

// AcquireHub returns the process's Hub from the resource registry (building it on first use)
// and the function that releases it.
func AcquireHub(resources Shared) (*Hub, func(), error) {
	v, release, err := resources.Acquire(HubKey, func() (io.Closer, error) { return newHub(), nil })
	if err != nil {
		return nil, func() {}, err
	}
	return v.(*Hub), release, nil
}

func acquireHub(acquire func(string, func() (io.Closer, error)) (io.Closer, error)) (*Hub, error) {
	v, err := acquire(HubKey, func() (io.Closer, error) { return newHub(), nil })
	if err != nil {
		return nil, err
	}
	return v.(*Hub), nil
}

func newHub() *Hub { return &Hub{stores: map[string]store.CacheStore{}} }

// register records a store under its registry key. A store replaced under the same key (after
// its last Runtime closed it) is simply overwritten.
func (h *Hub) register(key string, s store.CacheStore) {
	h.mu.Lock()
	h.stores[key] = s
	h.mu.Unlock()
}

// Close forgets the stores (they are closed by their own owners).
func (h *Hub) Close() error {
	h.mu.Lock()
	clear(h.stores)
	h.mu.Unlock()
	return nil
}

func (h *Hub) each(fn func(store.CacheStore) (int, error)) (int, error) {
	h.mu.Lock()
	ss := make([]store.CacheStore, 0, len(h.stores))
	for _, s := range h.stores {
		ss = append(ss, s)
	}
	h.mu.Unlock()
	total := 0
	var errs []error
	for _, s := range ss {
		n, err := fn(s)
		total += n
		if err != nil && !isClosed(err) {
			errs = append(errs, err)
		}
	}
	return total, errors.Join(errs...)
}

// isClosed reports an error of a store whose last Runtime was retired meanwhile.
func isClosed(err error) bool { return strings.Contains(err.Error(), "client is closed") }

// PurgeKey implements Purger.
func (h *Hub) PurgeKey(ctx context.Context, key string) (int, error) {
	if key == "" || strings.ContainsAny(key, " \r\n") {
		return 0, errors.New("cache purge: give a URL path such as /users/7")
	}
	path, query, _ := strings.Cut(key, "?")
	u := path
	if query != "" {
		u += "?" + sortQuery(query)
	}
	return h.each(func(s store.CacheStore) (int, error) {
		return s.DeleteMatching(ctx, "c:"+u+" ", nil)
	})
}

// PurgePrefix implements Purger.
func (h *Hub) PurgePrefix(ctx context.Context, urlPrefix string) (int, error) {
	return h.Purge(ctx, "", urlPrefix)
}

// Purge removes the stored responses of route ("" for every route) whose URL starts with
// prefix ("" for all). It is the admin API's CachePurger.
func (h *Hub) Purge(ctx context.Context, route, prefix string) (int, error) {
	if strings.ContainsAny(prefix, " \r\n") {
		return 0, fmt.Errorf("cache purge: a URL prefix has no spaces")
	}
	var keep func(string) bool
	if route != "" {
		keep = func(k string) bool {
			_, rest, _ := strings.Cut(k, " ")
			r, _, _ := strings.Cut(rest, " ")
			return r == route
		}
	}
	return h.each(func(s store.CacheStore) (int, error) {
		return s.DeleteMatching(ctx, "c:"+prefix, keep)
	})
}

// PurgeTag implements Purger.
func (h *Hub) PurgeTag(ctx context.Context, tag string) (int, error) {
	if tag == "" {
		return 0, errors.New("cache purge: empty tag")
	}
	return h.each(func(s store.CacheStore) (int, error) { return s.DeleteTag(ctx, tag) })
}
