package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/middleware/cache"
	"github.com/gatehouse/gatehouse/internal/testutil/redisserver"
)

// countingOrigin answers every request with handler and counts the hits.
func countingOrigin(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		handler(w, r)
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

func cacheYAML(store string) string {
	return `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { access_log: { enabled: false } }
` + store + `
services: [{ name: a, targets: [{ url: "http://${A}" }] }]
routes:
  - name: cached
    match: { path: /c/** }
    service: a
    plugins:
      rate_limit: [{ key: ip, limit: 100000, per: 1s, store: memory }]
      cache: { ttl: 30s }
  - name: plain
    match: { path: /p/** }
    service: a
`
}

func TestCacheThroughGateway(t *testing.T) {
	release := make(chan struct{})
	var gate sync.Once
	a, hits := countingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/c/hot" {
			<-release
		}
		if r.URL.Path == "/c/etag" {
			w.Header().Set("Cache-Control", "max-age=0")
			w.Header().Set("Etag", `"e1"`)
			if r.Header.Get("If-None-Match") == `"e1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		w.Header().Set("Surrogate-Key", "k1")
		_, _ = io.WriteString(w, "body of "+r.URL.Path)
	})
	g := startGateway(t, cacheYAML(""), map[string]string{"A": hostPort(a)})

	resp, body := g.get(t, "/c/one")
	if resp.Header.Get("X-Cache") != "MISS" || body != "body of /c/one" {
		t.Fatalf("first: %s %q", resp.Header.Get("X-Cache"), body)
	}
	resp, body = g.get(t, "/c/one")
	if resp.Header.Get("X-Cache") != "HIT" || body != "body of /c/one" || resp.Header.Get("Age") == "" ||
		resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("Ratelimit") == "" || resp.Header.Get("Surrogate-Key") != "" {
		t.Fatalf("second: %v %q", resp.Header, body)
	}
	if hits.Load() != 1 {
		t.Fatalf("origin hits %d, want 1", hits.Load())
	}
	// Routes without plugins.cache are untouched.
	if resp, _ := g.get(t, "/p/x"); resp.Header.Get("X-Cache") != "" {
		t.Fatalf("uncached route has X-Cache %q", resp.Header.Get("X-Cache"))
	}

	// Revalidation through the real proxy: the origin answers 304.
	g.get(t, "/c/etag")
	before := hits.Load()
	resp, body = g.get(t, "/c/etag")
	if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "REVALIDATED" || body != "body of /c/etag" || hits.Load() != before+1 {
		t.Fatalf("revalidation: %d %s %q", resp.StatusCode, resp.Header.Get("X-Cache"), body)
	}

	// 100 concurrent misses, one origin request.
	before = hits.Load()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	var bad atomic.Value
	for range 100 {
		wg.Go(func() {
			resp, err := client.Get(g.base + "/c/hot")
			if err != nil {
				bad.Store(err.Error())
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "body of /c/hot" {
				bad.Store(fmt.Sprintf("%d %q", resp.StatusCode, b))
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for hits.Load() == before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	gate.Do(func() { close(release) })
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Fatalf("coalesced request failed: %v", v)
	}
	if n := hits.Load() - before; n != 1 {
		t.Fatalf("100 concurrent misses made %d origin requests, want 1", n)
	}

	// The admin API's purge reaches the runtime's store.
	hub, releaseHub, err := cache.AcquireHub(g.srv.Registry().Resources)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseHub()
	if n, err := hub.PurgeTag(context.Background(), "k1"); err != nil || n < 2 {
		t.Fatalf("purge by tag: %d %v", n, err)
	}
	if resp, _ := g.get(t, "/c/one"); resp.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("after purge: %s", resp.Header.Get("X-Cache"))
	}
}

func TestCacheSharedThroughRedis(t *testing.T) {
	rs := redisserver.Start(t)
	a, hits := countingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = io.WriteString(w, strings.Repeat("r", 2000))
	})
	yaml := cacheYAML(fmt.Sprintf("store: { redis: { url: %q, timeout: 500ms } }\ncache: { store: redis }", rs.URL()))
	env := map[string]string{"A": hostPort(a)}
	g1 := startGateway(t, yaml, env)
	g2 := startGateway(t, yaml, env)

	if resp, body := g1.get(t, "/c/shared?b=2&a=1", "Host", "shop.example"); resp.Header.Get("X-Cache") != "MISS" || len(body) != 2000 {
		t.Fatalf("gateway 1: %s %d bytes", resp.Header.Get("X-Cache"), len(body))
	}
	resp, body := g2.get(t, "/c/shared?a=1&b=2", "Host", "shop.example")
	if resp.Header.Get("X-Cache") != "HIT" || len(body) != 2000 || hits.Load() != 1 {
		t.Fatalf("gateway 2 did not get gateway 1's entry: %s %d bytes, %d origin hits", resp.Header.Get("X-Cache"), len(body), hits.Load())
	}
	// A purge on one replica empties the shared store for both.
	hub, releaseHub, err := cache.AcquireHub(g2.srv.Registry().Resources)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseHub()
	if n, err := hub.PurgeKey(context.Background(), "/c/shared?a=1&b=2"); n != 1 || err != nil {
		t.Fatalf("purge: %d %v", n, err)
	}
	if resp, _ := g1.get(t, "/c/shared?a=1&b=2", "Host", "shop.example"); resp.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("after purge: %s", resp.Header.Get("X-Cache"))
	}
	// Redis down: requests are served uncached, promptly.
	rs.Kill()
	start := time.Now()
	for range 5 {
		if resp, body := g2.get(t, "/c/other"); resp.StatusCode != 200 || len(body) != 2000 {
			t.Fatalf("with redis down: %d", resp.StatusCode)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("5 requests with redis down took %v", d)
	}
}
