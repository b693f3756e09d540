package cache

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/store"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a settable time source shared by the cache and the test origin.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// origin is an upstream that counts its hits and records the last request.
type origin struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	last *http.Request
	fn   http.HandlerFunc
}

func (o *origin) setHandler(fn http.HandlerFunc) {
	o.mu.Lock()
	o.fn = fn
	o.mu.Unlock()
}

func (o *origin) lastRequest() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last
}

// fixture is a cache handler in front of a ReverseProxy to an origin, served over HTTP.
type fixture struct {
	t      *testing.T
	clock  *clock
	origin *origin
	h      *handler
	store  store.CacheStore
	front  *httptest.Server
	hub    *Hub
	// subject, when set, is the authenticated user of every request.
	subject atomic.Value
}

const testYAML = `
version: 1
listeners: [{ name: public, address: "127.0.0.1:0" }]
services: [{ name: s, targets: [{ url: "http://127.0.0.1:1" }] }]
routes:
  - name: r
    match: { path: /** }
    service: s
    plugins:
      cache: %s
`

// newFixture builds a cache with the route plugin given as a YAML flow mapping (e.g.
// "{ ttl: 10s }") and an origin running fn.
func newFixture(t *testing.T, plugin string, fn http.HandlerFunc) *fixture {
	return newFixtureStore(t, plugin, fn, nil)
}

func newFixtureStore(t *testing.T, plugin string, fn http.HandlerFunc, st store.CacheStore) *fixture {
	t.Helper()
	cfg, err := config.Load("test.yaml", []byte(strings.Replace(testYAML, "%s", plugin, 1)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	f := &fixture{t: t, clock: newClock()}
	o := &origin{fn: fn}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		o.mu.Lock()
		o.last = r.Clone(r.Context())
		h := o.fn
		o.mu.Unlock()
		w.Header().Set("Date", f.clock.Now().UTC().Format(http.TimeFormat))
		h(w, r)
	}))
	t.Cleanup(o.Close)
	f.origin = o
	if st == nil {
		mc, err := store.NewMemoryCache(64 << 20)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = mc.Close() })
		st = mc
	}
	f.store = st
	f.hub = newHub()
	f.hub.register("test", st)
	u, _ := url.Parse(o.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, "the upstream service failed to respond")
	}
	rp.ModifyResponse = func(resp *http.Response) error {
		if info := httpx.InfoFrom(resp.Request.Context()); info != nil {
			resp.Header["X-Request-Id"] = []string{info.RequestID}
		}
		return nil
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := newHandler(cfg, &cfg.Routes[0], st, logger)
	h.now = f.clock.Now
	f.h = h.wrap(rp)
	var n atomic.Int64
	f.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := &httpx.Info{RequestID: "req-" + string(rune('a'+n.Add(1)%26)), Path: r.URL.EscapedPath()}
		if s, _ := f.subject.Load().(string); s != "" {
			info.Identity = &httpx.Identity{Subject: s}
		}
		// Outer middleware (rate limiting) sets headers before the cache runs.
		w.Header().Set("Ratelimit", `"per-client";r=9;t=1`)
		f.h.ServeHTTP(w, r.WithContext(httpx.WithInfo(r.Context(), info)))
	}))
	t.Cleanup(func() {
		f.front.Close()
		f.h.bgWG.Wait()
	})
	return f
}

type result struct {
	status int
	header http.Header
	body   string
}

func (r result) xcache() string { return r.header.Get("X-Cache") }

// do sends method path with header pairs.
func (f *fixture) do(method, path string, hdr ...string) result {
	f.t.Helper()
	req, err := http.NewRequest(method, f.front.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := f.front.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("read: %v", err)
	}
	return result{resp.StatusCode, resp.Header, string(b)}
}

func (f *fixture) get(path string, hdr ...string) result {
	f.t.Helper()
	return f.do(http.MethodGet, path, hdr...)
}

// expect checks a response's status, X-Cache and body, and the origin's hit count.
func (f *fixture) expect(r result, status int, xcache, body string, hits int64) {
	f.t.Helper()
	if r.status != status || r.xcache() != xcache || (body != "*" && r.body != body) || f.origin.hits.Load() != hits {
		f.t.Fatalf("got %d %s %q with %d origin hits; want %d %s %q with %d hits (headers %v)",
			r.status, r.xcache(), r.body, f.origin.hits.Load(), status, xcache, body, hits, r.header)
	}
}

// counter answers "v<n>" with the given headers, n counting the origin's hits.
func counter(hdr ...string) (http.HandlerFunc, *atomic.Int64) {
	var n atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) {
		v := n.Add(1)
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Add(hdr[i], hdr[i+1])
		}
		_, _ = io.WriteString(w, "v"+strconv.FormatInt(v, 10))
	}, &n
}
