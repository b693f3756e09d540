package aggregate

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/router"
	"github.com/gatehouse/gatehouse/internal/upstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture is one aggregate handler over httptest backends, called without the server.
type fixture struct {
	h    *Handler
	seen atomic.Value // last request URI of any backend
}

// newFixture loads a config with services a and b (answering with the given handlers) and the
// aggregate given as YAML under the route "r" matching /r/{id}.
func newFixture(t *testing.T, aggregateYAML string, a, b http.HandlerFunc) *fixture {
	t.Helper()
	f := &fixture{}
	wrap := func(h http.HandlerFunc) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.seen.Store(r.RequestURI + " " + r.Header.Get("X-Extra"))
			h(w, r)
		}))
		t.Cleanup(s.Close)
		return s
	}
	sa, sb := wrap(a), wrap(b)
	yaml := "version: 1\nlisteners: [{ name: public, address: \"127.0.0.1:8080\" }, { name: m, address: \":9099\" }]\nservices:\n" +
		"  - { name: a, targets: [{ url: \"" + sa.URL + "\" }] }\n  - { name: b, targets: [{ url: \"" + sb.URL + "\" }] }\n" +
		"routes:\n  - name: r\n    match: { path: \"/r/{id}\" }\n    aggregate:\n" + aggregateYAML
	cfg, err := config.Load("t.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	services := map[string]*upstream.Service{}
	for _, s := range cfg.Services {
		u, _ := url.Parse(s.Targets[0].URL)
		tr, err := upstream.NewTransport(upstream.TransportSettings{Service: s.Name, Connect: time.Second, ResponseHeader: 5 * time.Second, MaxIdlePerTarget: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tr.CloseIdleConnections)
		svc, err := upstream.NewService(upstream.ServiceConfig{Name: s.Name, Targets: []*upstream.Target{upstream.NewTarget(u, 1)}, Balancer: "round_robin", Transport: tr})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(svc.Close)
		services[s.Name] = svc
	}
	f.h, err = New(cfg, &cfg.Routes[0], Deps{Upstream: func(n string) Doer { return services[n] }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// serve runs one request with the Info the edge and auth would have set.
func (f *fixture) serve(t *testing.T, ctx context.Context, method, target string, id *httpx.Identity, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	info := &httpx.Info{RequestID: "req-1", Identity: id}
	info.Match.Params = []router.Param{{Key: "id", Value: "x%20y"}}
	req := httptest.NewRequestWithContext(httpx.WithInfo(ctx, info), method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w
}

func jsonOK(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}
}

func TestTemplatesFromRequestAndIdentity(t *testing.T) {
	t.Parallel()
	f := newFixture(t, `      calls:
        - name: one
          service: a
          path: "/u/{claims.org.id}/{identity.consumer}/{id}?tier={identity.tier}"
          query: { q: "{query.q}", n: "{claims.n}" }
          headers: { X-Extra: "{header.X-In}" }
          required: true
`, jsonOK(`{"ok":true}`), jsonOK(`{}`))
	id := &httpx.Identity{Consumer: "acme", Tier: "gold", Claims: map[string]any{"org": map[string]any{"id": "o 1"}, "n": 3.0}}
	w := f.serve(t, context.Background(), http.MethodGet, "/r/x?q=a%26b", id, "X-In", "hello")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got := f.seen.Load(); got != "/u/o%201/acme/x%20y?tier=gold&n=3&q=a%26b hello" {
		t.Fatalf("backend saw %q", got)
	}

	// A required call whose input the request lacks: 400, and the backend is not called.
	f.seen.Store("")
	w = f.serve(t, context.Background(), http.MethodGet, "/r/x", id, "X-In", "hello")
	var e map[string]string
	_ = json.Unmarshal(w.Body.Bytes(), &e)
	if w.Code != 400 || e["error"] != "bad_request" || e["request_id"] != "req-1" || !strings.Contains(e["message"], "{query.q}") || f.seen.Load() != "" {
		t.Fatalf("missing input: %d %s (backend saw %q)", w.Code, w.Body, f.seen.Load())
	}
	// Anonymous: the claims are missing too.
	if w := f.serve(t, context.Background(), http.MethodGet, "/r/x?q=1", nil, "X-In", "x"); w.Code != 400 {
		t.Fatalf("anonymous: %d %s", w.Code, w.Body)
	}
	// A header value that would split the request is refused.
	if w := f.serve(t, context.Background(), http.MethodGet, "/r/x?q=1", id, "X-In", "a\rb"); w.Code == 200 {
		t.Fatalf("CR in a header template value: %d", w.Code)
	}
}

func TestMergeAndDegradedField(t *testing.T) {
	t.Parallel()
	f := newFixture(t, `      degraded_field: "-"
      response: { omit: [secret] }
      calls:
        - { name: one, service: a, path: /one, merge: true, required: true }
        - { name: two, service: b, path: /two, merge: true, default: { fallback: true } }
`, jsonOK(`{"a":1,"secret":"s"}`), jsonOK(`[1,2]`))
	w := f.serve(t, context.Background(), http.MethodGet, "/r/x", nil)
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"a":1,"fallback":true}` ||
		w.Header().Get(HeaderDegraded) != "two;reason=not_object" {
		t.Fatalf("%d %q %s", w.Code, w.Header().Get(HeaderDegraded), w.Body)
	}
	// HEAD gets the headers and no body.
	if w := f.serve(t, context.Background(), http.MethodHead, "/r/x", nil); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "" {
		t.Fatalf("HEAD: %d %q", w.Code, w.Body)
	}
}

func TestClientGoneStopsCalls(t *testing.T) {
	t.Parallel()
	canceled := make(chan struct{}, 2)
	hang := func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		canceled <- struct{}{}
	}
	f := newFixture(t, `      calls:
        - { name: one, service: a, path: /one, required: true }
        - { name: two, service: b, path: /two }
`, hang, hang)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	w := f.serve(t, ctx, http.MethodGet, "/r/x", nil)
	if w.Code != 499 || time.Since(start) > 2*time.Second {
		t.Fatalf("client gone: %d after %v", w.Code, time.Since(start))
	}
	for range 2 {
		select {
		case <-canceled:
		case <-time.After(2 * time.Second):
			t.Fatal("a backend call was not canceled")
		}
	}
}

func TestPassthroughFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t, `      calls:
        - { name: one, service: a, path: /one, passthrough: true, timeout: 100ms }
`, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, jsonOK(`{}`))
	w := f.serve(t, context.Background(), http.MethodGet, "/r/x", nil)
	if w.Code != 504 || !strings.Contains(w.Body.String(), "gateway_timeout") {
		t.Fatalf("passthrough timeout: %d %s", w.Code, w.Body)
	}
	if !strings.HasPrefix(f.h.Summary(), "aggregate passthrough one=a:/one") {
		t.Fatalf("summary %q", f.h.Summary())
	}
}

func TestProfileMatching(t *testing.T) {
	t.Parallel()
	f := newFixture(t, `      calls:
        - { name: one, service: a, path: /one }
      profiles:
        - { name: q, match: { query: { app: { regex: "^ios" } } } }
        - { name: h, match: { hosts: ["*.example.com"], headers: { X-V: { present: true } } } }
        - { name: l, match: { listeners: [m] } }
`, jsonOK(`{}`), jsonOK(`{}`))
	tests := []struct {
		target string
		host   string
		hdr    []string
		local  string
		want   string
	}{
		{"/r/x?app=ios17", "", nil, "", "q"},
		{"/r/x?app=android", "", nil, "", ""},
		{"/r/x", "api.example.com:443", []string{"X-V", "1"}, "", "h"},
		{"/r/x", "example.com", []string{"X-V", "1"}, "", ""},
		{"/r/x", "api.example.com", nil, "", ""},
		{"/r/x", "", nil, "10.0.0.1:9099", "l"},
		{"/r/x", "", nil, "10.0.0.1:9098", ""},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, tt.target, nil)
		if tt.host != "" {
			req.Host = tt.host
		}
		for i := 0; i+1 < len(tt.hdr); i += 2 {
			req.Header.Set(tt.hdr[i], tt.hdr[i+1])
		}
		if tt.local != "" {
			addr, _ := netAddr(tt.local)
			req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, addr))
		}
		got := ""
		if p := f.h.pick(req); p != nil {
			got = p.name
		}
		if got != tt.want {
			t.Errorf("%s host %q hdr %v local %q: profile %q, want %q", tt.target, tt.host, tt.hdr, tt.local, got, tt.want)
		}
	}
}

func netAddr(s string) (*net.TCPAddr, error) { return net.ResolveTCPAddr("tcp", s) }
