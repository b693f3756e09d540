package ratelimit

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/middleware"
	"github.com/gatehouse/gatehouse/internal/testutil/redisserver"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// registry is a minimal refcount-free stand-in for the runtime's shared resources.
type registry struct {
	mu sync.Mutex
	m  map[string]io.Closer
}

func (g *registry) acquire(key string, build func() (io.Closer, error)) (io.Closer, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if v, ok := g.m[key]; ok {
		return v, nil
	}
	v, err := build()
	if err == nil {
		g.m[key] = v
	}
	return v, err
}

func (g *registry) close() {
	for _, v := range g.m {
		_ = v.Close()
	}
}

// build loads yaml (routes[0] is the route under test) and wraps an OK handler.
func build(t *testing.T, yaml string) (http.Handler, *registry) {
	t.Helper()
	cfg, err := config.Load("t.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry{m: map[string]io.Closer{}}
	t.Cleanup(reg.close)
	mw, err := New(cfg, &cfg.Routes[0], &cfg.Services[0], middleware.Deps{Acquire: reg.acquire})
	if err != nil {
		t.Fatal(err)
	}
	if mw == nil {
		t.Fatal("no middleware built")
	}
	return mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })), reg
}

type call struct {
	ip       string
	id       *httpx.Identity
	headers  map[string]string
	wantCode int
}

func do(h http.Handler, c call) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	for k, v := range c.headers {
		r.Header.Set(k, v)
	}
	info := &httpx.Info{RequestID: "rid-1", ClientIP: netip.MustParseAddr(c.ip), Identity: c.id}
	r = r.WithContext(httpx.WithInfo(r.Context(), info))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

const head = `version: 1
listeners: [{ name: p, address: ":1" }]
services: [{ name: s, targets: [{ url: "http://127.0.0.1:1" }] }]
`

func route(plugins string) string {
	return head + "routes:\n  - name: r\n    match: { path: /** }\n    service: s\n    plugins:\n" + plugins
}

func TestDeniedResponse(t *testing.T) {
	t.Parallel()
	h, _ := build(t, route("      rate_limit: [{ name: per-ip, key: ip, limit: 2, per: 1m, burst: 1 }]\n"))
	for i, want := range []string{`"per-ip";r=2;t=30`, `"per-ip";r=1;t=60`, `"per-ip";r=0;t=30`} {
		w := do(h, call{ip: "10.0.0.1"})
		if w.Code != 200 || w.Header().Get("RateLimit") != want || w.Header().Get("RateLimit-Policy") != `"per-ip";q=2;w=60` {
			t.Fatalf("request %d: %d RateLimit=%q Policy=%q, want %q", i, w.Code, w.Header().Get("RateLimit"), w.Header().Get("RateLimit-Policy"), want)
		}
	}
	w := do(h, call{ip: "10.0.0.1"})
	if w.Code != 429 || w.Header().Get("Retry-After") != "30" || w.Header().Get("RateLimit") != `"per-ip";r=0;t=30` {
		t.Fatalf("denied: %d %v", w.Code, w.Header())
	}
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != "rate_limited" || body["request_id"] != "rid-1" {
		t.Fatalf("body %q (%v)", w.Body.String(), err)
	}
	if w := do(h, call{ip: "10.0.0.2"}); w.Code != 200 {
		t.Fatalf("another IP denied: %d", w.Code)
	}
}

func TestStackedLimitsAndMostRestrictiveHeaders(t *testing.T) {
	t.Parallel()
	yaml := head[:strings.Index(head, "services:")] +
		"rate_limits: [{ name: global, key: ip, limit: 100, per: 1s }]\n" +
		"services: [{ name: s, targets: [{ url: \"http://127.0.0.1:1\" }], rate_limits: [{ name: svc, key: ip, limit: 50, per: 1s, headers: none }] }]\n" +
		"routes:\n  - name: r\n    match: { path: /** }\n    service: s\n    plugins:\n" +
		"      rate_limit: [{ name: tenant, key: \"header:X-Tenant\", limit: 3, per: 1h, headers: legacy }]\n"
	h, _ := build(t, yaml)
	tenant := map[string]string{"X-Tenant": "acme"}
	for i := range 3 {
		w := do(h, call{ip: "10.0.0.1", headers: tenant})
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("RateLimit"), `"tenant";r=`) || w.Header().Get("X-RateLimit-Remaining") != string(rune('2'-i)) {
			t.Fatalf("request %d: %d %v", i, w.Code, w.Header())
		}
	}
	// Same tenant from another IP: the tenant limit is shared.
	if w := do(h, call{ip: "10.9.9.9", headers: tenant}); w.Code != 429 || w.Header().Get("X-RateLimit-Limit") != "3" {
		t.Fatalf("tenant over limit from another IP: %d %v", w.Code, w.Header())
	}
	// Without the header, the tenant key falls back to the client IP (10.0.0.1 is fresh there).
	if w := do(h, call{ip: "10.0.0.1"}); w.Code != 200 {
		t.Fatalf("no header: %d", w.Code)
	}
	// A hidden limit is never the one shown, even when most restrictive.
	h2, _ := build(t, strings.Replace(yaml, "limit: 3, per: 1h", "limit: 1000, per: 1h", 1))
	w := do(h2, call{ip: "10.0.0.3", headers: tenant})
	if got := w.Header().Get("RateLimit"); !strings.HasPrefix(got, `"global";r=99`) {
		t.Fatalf("RateLimit %q, want the global limit (svc is hidden, tenant has more left)", got)
	}
}

func TestKeysAndTiers(t *testing.T) {
	t.Parallel()
	h, _ := build(t, route(`      rate_limit:
        - { name: gold, key: user, limit: 3, per: 1h, tiers: [gold] }
        - { name: free, key: [consumer, route], limit: 1, per: 1h, tiers: [free] }
        - { name: anon, key: ip, limit: 2, per: 1h, tiers: [anonymous] }
`))
	gold := &httpx.Identity{Subject: "alice", Consumer: "app1", Tier: "gold"}
	free := &httpx.Identity{Subject: "bob", Consumer: "app2", Tier: "free"}
	codes := func(c call, n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(map[int]string{200: "+", 429: "-"}[do(h, c).Code])
		}
		return b.String()
	}
	if got := codes(call{ip: "10.0.0.1", id: gold}, 4); got != "+++-" {
		t.Fatalf("gold user: %s", got)
	}
	// Same user from another IP shares the user's budget.
	if got := codes(call{ip: "10.0.0.2", id: gold}, 1); got != "-" {
		t.Fatalf("gold user elsewhere: %s", got)
	}
	if got := codes(call{ip: "10.0.0.1", id: free}, 2); got != "+-" {
		t.Fatalf("free consumer: %s", got)
	}
	if got := codes(call{ip: "10.0.0.7"}, 3); got != "++-" {
		t.Fatalf("anonymous: %s", got)
	}
	// A tier with no limit is not limited.
	if got := codes(call{ip: "10.0.0.7", id: &httpx.Identity{Subject: "x", Tier: "platinum"}}, 5); got != "+++++" {
		t.Fatalf("platinum: %s", got)
	}
}

func TestKeyEncodingUnambiguous(t *testing.T) {
	t.Parallel()
	h := &handler{route: "r"}
	parts := compileParts(config.RateLimitKey{"header:A", "header:B"})
	key := func(a, b string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("A", a)
		r.Header.Set("B", b)
		return string(h.appendKey(nil, []byte("p:"), parts, r, &httpx.Info{ClientIP: netip.MustParseAddr("10.0.0.1")}))
	}
	if key("a;h1:b", "c") == key("a", "b;h1:c") || key("x", "y") != key("x", "y") {
		t.Fatal("keys collide or are unstable")
	}
	long := key(strings.Repeat("v", 1000), "{tag}")
	if len(long) > 64 || strings.ContainsAny(long, "{}") {
		t.Fatalf("long/braced values must be hashed: %q", long)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("t.yaml", []byte(route("      concurrency_limit: { key: consumer, max: 2 }\n")), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry{m: map[string]io.Closer{}}
	defer reg.close()
	mw, err := New(cfg, &cfg.Routes[0], &cfg.Services[0], middleware.Deps{Acquire: reg.acquire})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{}, 10)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	app := &httpx.Identity{Consumer: "app"}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { do(h, call{ip: "10.0.0.1", id: app}) })
	}
	<-entered
	<-entered
	if w := do(h, call{ip: "10.0.0.1", id: app}); w.Code != 429 || !strings.Contains(w.Body.String(), "concurrency_limited") || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("third in flight: %d %s", w.Code, w.Body)
	}
	other := make(chan int, 1)
	go func() { other <- do(h, call{ip: "10.0.0.1", id: &httpx.Identity{Consumer: "other"}}).Code }()
	<-entered // another consumer has its own count
	close(release)
	wg.Wait()
	if c := <-other; c != 200 {
		t.Fatalf("other consumer: %d", c)
	}
	if w := do(h, call{ip: "10.0.0.1", id: app}); w.Code != 200 {
		t.Fatalf("after release: %d", w.Code)
	}
}

func TestNoLimitsNoMiddleware(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load("t.yaml", []byte(head+"routes: [{ name: r, match: { path: /** }, service: s }]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	mw, err := New(cfg, &cfg.Routes[0], &cfg.Services[0], middleware.Deps{})
	if mw != nil || err != nil {
		t.Fatalf("New = %v, %v; want nil, nil", mw != nil, err)
	}
}

func TestRedisFailurePolicies(t *testing.T) {
	t.Parallel()
	srv := redisserver.Start(t)
	yaml := head[:strings.Index(head, "services:")] +
		"store: { redis: { url: \"" + srv.URL() + "\", timeout: 100ms, retry_after_error: 50ms } }\n" +
		head[strings.Index(head, "services:"):] + `routes:
  - name: open
    match: { path: /open }
    service: s
    plugins: { rate_limit: [{ key: ip, limit: 2, per: 1h }] }
  - name: closed
    match: { path: /closed }
    service: s
    plugins: { rate_limit: [{ key: ip, limit: 100, per: 1h, on_error: fail_closed }] }
`
	hs := buildRoutes(t, yaml)
	open, closed := hs[0], hs[1]
	if c := do(open, call{ip: "10.0.0.1"}).Code; c != 200 {
		t.Fatalf("open with Redis up: %d", c)
	}
	srv.Kill()
	// fail_open: local limit, with its own count starting fresh: 2 more, then 429.
	got := ""
	for range 3 {
		got += map[int]string{200: "+", 429: "-"}[do(open, call{ip: "10.0.0.1"}).Code]
	}
	if got != "++-" {
		t.Fatalf("fail_open under outage: %s", got)
	}
	if w := do(closed, call{ip: "10.0.0.1"}); w.Code != 503 || !strings.Contains(w.Body.String(), "service_unavailable") {
		t.Fatalf("fail_closed under outage: %d %s", w.Code, w.Body)
	}
}

// BenchmarkMiddleware is the per-request cost of the middleware itself with three stacked
// memory limits (global per IP, service per route, route per user).
func BenchmarkMiddleware(b *testing.B) {
	cfg, err := config.Load("t.yaml", []byte(head[:strings.Index(head, "services:")]+
		"rate_limits: [{ key: ip, limit: 1000000000, per: 1s }]\n"+
		"services: [{ name: s, targets: [{ url: \"http://127.0.0.1:1\" }], rate_limits: [{ key: route, limit: 1000000000, per: 1s }] }]\n"+
		"routes:\n  - name: r\n    match: { path: /** }\n    service: s\n    plugins: { rate_limit: [{ key: user, limit: 1000000000, per: 1s }] }\n"), nil)
	if err != nil {
		b.Fatal(err)
	}
	reg := &registry{m: map[string]io.Closer{}}
	defer reg.close()
	mw, err := New(cfg, &cfg.Routes[0], &cfg.Services[0], middleware.Deps{Acquire: reg.acquire})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r = r.WithContext(httpx.WithInfo(r.Context(), &httpx.Info{ClientIP: netip.MustParseAddr("10.1.2.3"),
		Identity: &httpx.Identity{Subject: "alice"}}))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &nopWriter{h: http.Header{}}
		for pb.Next() {
			h.ServeHTTP(w, r)
		}
	})
}

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// A request a Redis limit refuses uses up none of the memory limits stacked with it: the
// memory limits are counted only once Redis admits the request.
func TestRedisDenialDoesNotCountMemoryLimits(t *testing.T) {
	t.Parallel()
	srv := redisserver.Start(t)
	yaml := head[:strings.Index(head, "services:")] +
		"store: { redis: { url: \"" + srv.URL() + "\" } }\n" +
		"rate_limits: [{ name: per-ip, key: ip, limit: 5, per: 1h, store: memory }]\n" +
		head[strings.Index(head, "services:"):] + `routes:
  - name: r
    match: { path: /r }
    service: s
    plugins: { rate_limit: [{ name: route-redis, key: ip, limit: 2, per: 1h }] }
  - name: other
    match: { path: /other }
    service: s
`
	hs := buildRoutes(t, yaml)
	r, other := hs[0], hs[1]
	got := ""
	for range 6 {
		got += map[int]string{200: "+", 429: "-"}[do(r, call{ip: "10.0.0.9"}).Code]
	}
	if got != "++----" {
		t.Fatalf("route limited by Redis: %s, want ++----", got)
	}
	// per-ip (memory, 5) counted the 2 admitted requests only: 3 are left.
	got = ""
	for range 4 {
		got += map[int]string{200: "+", 429: "-"}[do(other, call{ip: "10.0.0.9"}).Code]
	}
	if got != "+++-" {
		t.Fatalf("memory limit after Redis refusals: %s, want +++- (the refused requests must not count)", got)
	}
}

// buildRoutes loads yaml and wraps an OK handler with the middleware of each route, in order.
func buildRoutes(t *testing.T, yaml string) []http.Handler {
	t.Helper()
	cfg, err := config.Load("t.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry{m: map[string]io.Closer{}}
	t.Cleanup(reg.close)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	var hs []http.Handler
	for i := range cfg.Routes {
		mw, err := New(cfg, &cfg.Routes[i], &cfg.Services[0], middleware.Deps{Acquire: reg.acquire})
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, mw(ok))
	}
	return hs
}
