package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const basicYAML = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services:
  - name: users
    targets: [{ url: "http://${USERS}" }]
  - name: users-v2
    targets: [{ url: "http://${USERS_V2}/base" }]
  - name: orders
    targets: [{ url: "http://${ORDERS}" }]
routes:
  - name: users-v1
    match: { path: /api/v1/users/**, methods: [GET, POST] }
    service: users
    strip_prefix: /api/v1
    request_headers:
      set: { X-Gateway: gatehouse }
      add: { X-Tag: a }
      remove: [X-Secret]
    response_headers:
      set: { X-Served-Via: gatehouse }
      remove: [X-Backend]
  - name: users-v2
    match: { path: /api/v2/users/** }
    service: users-v2
    strip_prefix: /api/v2
  - name: users-header-v2
    match: { path: /api/users/**, headers: { Accept-Version: v2 } }
    service: users-v2
    rewrite: /users/{**}
  - name: users-header-default
    match: { path: /api/users/** }
    service: users
    rewrite: /users/{**}
  - name: order-by-id
    match: { path: "/orders/{id}", methods: [GET] }
    service: orders
    rewrite: "/v3/orders/{id}/detail"
    preserve_host: true
  - name: tenant
    match: { hosts: ["*.tenants.example.com"], path: /** }
    service: orders
  - name: by-query
    match: { path: /search, query: { engine: { regex: "^(fast|slow)$" } } }
    service: orders
`

func basicGateway(t *testing.T) (*gateway, map[string]*httptest.Server) {
	t.Helper()
	b := map[string]*httptest.Server{
		"users":    newEcho(t, "users"),
		"users-v2": newEcho(t, "users-v2"),
		"orders":   newEcho(t, "orders"),
	}
	g := startGateway(t, basicYAML, map[string]string{
		"USERS": hostPort(b["users"]), "USERS_V2": hostPort(b["users-v2"]), "ORDERS": hostPort(b["orders"]),
	})
	return g, b
}

func TestRoutingAndRewrites(t *testing.T) {
	g, _ := basicGateway(t)
	tests := []struct {
		name       string
		path       string
		hdr        []string
		wantBack   string
		wantURI    string
		wantHost   string // "" = don't check
		wantStatus int
	}{
		{name: "url version v1 strip prefix", path: "/api/v1/users/7?x=1&y=%20", wantBack: "users", wantURI: "/users/7?x=1&y=%20"},
		{name: "url version v2 target base path", path: "/api/v2/users/7", wantBack: "users-v2", wantURI: "/base/users/7"},
		{name: "header version v2", path: "/api/users/7", hdr: []string{"Accept-Version", "v2"}, wantBack: "users-v2", wantURI: "/base/users/7"},
		{name: "header version default", path: "/api/users/7", wantBack: "users", wantURI: "/users/7"},
		{name: "header version unknown value", path: "/api/users/7", hdr: []string{"Accept-Version", "v9"}, wantBack: "users", wantURI: "/users/7"},
		{name: "rewrite with param and preserve host", path: "/orders/42", hdr: []string{"Host", "shop.example.com"}, wantBack: "orders", wantURI: "/v3/orders/42/detail", wantHost: "shop.example.com"},
		{name: "wildcard host", path: "/anything/here", hdr: []string{"Host", "acme.tenants.example.com"}, wantBack: "orders", wantURI: "/anything/here"},
		{name: "wildcard host does not match apex", path: "/anything/here", hdr: []string{"Host", "tenants.example.com"}, wantStatus: 404},
		{name: "query regex match", path: "/search?engine=fast&q=go", wantBack: "orders", wantURI: "/search?engine=fast&q=go"},
		{name: "query regex mismatch", path: "/search?engine=other", wantStatus: 404},
		{name: "dot segments resolved before routing", path: "/api/v1/users/../users/5", wantBack: "users", wantURI: "/users/5"},
		{name: "encoded unreserved decoded", path: "/api/v1/users/%7Eada", wantBack: "users", wantURI: "/users/~ada"},
		{name: "duplicate slashes collapsed", path: "/api/v1//users///9", wantBack: "users", wantURI: "/users/9"},
		{name: "reserved escape kept", path: "/api/v1/users/a%20b", wantBack: "users", wantURI: "/users/a%20b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.get(t, tc.path, tc.hdr...)
			if tc.wantStatus != 0 {
				if resp.StatusCode != tc.wantStatus {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.wantStatus, body)
				}
				return
			}
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			e := decodeEcho(t, body)
			if e.Backend != tc.wantBack {
				t.Errorf("backend %q, want %q", e.Backend, tc.wantBack)
			}
			if e.RequestURI != tc.wantURI {
				t.Errorf("upstream request URI %q, want %q", e.RequestURI, tc.wantURI)
			}
			if tc.wantHost != "" && e.Host != tc.wantHost {
				t.Errorf("upstream Host %q, want %q", e.Host, tc.wantHost)
			}
		})
	}
}

func TestHeaderOpsAndHopByHop(t *testing.T) {
	g, b := basicGateway(t)
	resp, body := g.get(t, "/api/v1/users/1",
		"X-Secret", "s3cr3t", "X-Tag", "client", "X-Gateway", "spoofed",
		"Connection", "X-Drop-Me, keep-alive", "X-Drop-Me", "1", "Keep-Alive", "timeout=5",
		"Proxy-Authorization", "Basic Zm9v", "Te", "trailers, deflate")
	e := decodeEcho(t, body)
	h := http.Header(e.Header)
	if h.Get("X-Secret") != "" {
		t.Error("X-Secret was not removed")
	}
	if got := h.Values("X-Tag"); strings.Join(got, ",") != "client,a" {
		t.Errorf("X-Tag = %v, want [client a]", got)
	}
	if got := h.Values("X-Gateway"); len(got) != 1 || got[0] != "gatehouse" {
		t.Errorf("X-Gateway = %v, want [gatehouse]", got)
	}
	for _, hop := range []string{"X-Drop-Me", "Keep-Alive", "Proxy-Authorization"} {
		if h.Get(hop) != "" {
			t.Errorf("hop-by-hop header %s reached the upstream", hop)
		}
	}
	if h.Get("Te") != "trailers" {
		t.Errorf("Te = %q, want only \"trailers\" forwarded", h.Get("Te"))
	}
	// Response side.
	if resp.Header.Get("X-Served-Via") != "gatehouse" {
		t.Error("response header set missing")
	}
	if resp.Header.Get("X-Backend") != "" {
		t.Error("response header remove not applied")
	}
	if resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("X-Request-Id") != h.Get("X-Request-Id") {
		t.Errorf("request ID not the same upstream (%q) and in the response (%q)", h.Get("X-Request-Id"), resp.Header.Get("X-Request-Id"))
	}
	_ = b
}

func TestForwardedHeadersUntrusted(t *testing.T) {
	g, _ := basicGateway(t)
	_, body := g.get(t, "/api/v1/users/1",
		"X-Forwarded-For", "6.6.6.6", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example",
		"Forwarded", "for=6.6.6.6;proto=https")
	h := http.Header(decodeEcho(t, body).Header)
	if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For = %v, want the peer only", got)
	}
	if h.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("X-Forwarded-Proto = %q, want http (client value must not be trusted)", h.Get("X-Forwarded-Proto"))
	}
	if h.Get("X-Forwarded-Host") != g.addr {
		t.Errorf("X-Forwarded-Host = %q, want %q", h.Get("X-Forwarded-Host"), g.addr)
	}
	if got := h.Values("Forwarded"); len(got) != 1 || strings.Contains(got[0], "6.6.6.6") || !strings.HasPrefix(got[0], "for=127.0.0.1;") {
		t.Errorf("Forwarded = %v, want only the gateway's element", got)
	}
}

func TestForwardedHeadersTrusted(t *testing.T) {
	be := newEcho(t, "users")
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { trusted_proxies: [127.0.0.0/8] }
services: [{ name: users, targets: [{ url: "http://${USERS}" }] }]
routes: [{ name: all, match: { path: /** }, service: users }]
`, map[string]string{"USERS": hostPort(be)})
	_, body := g.get(t, "/x", "X-Forwarded-For", "203.0.113.9, 10.1.1.1", "X-Forwarded-Proto", "https",
		"X-Forwarded-Host", "api.example.com", "Forwarded", "for=203.0.113.9")
	h := http.Header(decodeEcho(t, body).Header)
	if got := h.Get("X-Forwarded-For"); got != "203.0.113.9, 10.1.1.1, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the chain with the peer appended", got)
	}
	if h.Get("X-Forwarded-Proto") != "https" || h.Get("X-Forwarded-Host") != "api.example.com" {
		t.Errorf("trusted proto/host not kept: %q %q", h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"))
	}
	if got := h.Get("Forwarded"); !strings.HasPrefix(got, "for=203.0.113.9, for=127.0.0.1;") {
		t.Errorf("Forwarded = %q, want the client's element kept and ours appended", got)
	}
	g.srv.accessW.Flush()
	if !strings.Contains(g.access.String(), `"client_ip":"10.1.1.1"`) {
		t.Errorf("access log client_ip should be the first untrusted hop from the right (10.1.1.1):\n%s", g.access.String())
	}
}

func TestRequestID(t *testing.T) {
	g, _ := basicGateway(t)
	tests := []struct {
		name, header, value string
		keep                bool
	}{
		{"valid x-request-id kept", "X-Request-ID", "abc-123_DEF.9", true},
		{"valid correlation id kept", "X-Correlation-ID", "corr:42", true},
		{"too long replaced", "X-Request-ID", strings.Repeat("a", 129), false},
		{"bad characters replaced", "X-Request-ID", "id with spaces", false},
		{"header injection replaced", "X-Request-ID", "a\"b", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.get(t, "/api/v1/users/1", tc.header, tc.value)
			got := resp.Header.Get("X-Request-Id")
			up := http.Header(decodeEcho(t, body).Header).Get("X-Request-Id")
			if up != got {
				t.Fatalf("upstream saw %q, client got %q", up, got)
			}
			if tc.keep != (got == tc.value) {
				t.Fatalf("request ID %q (keep=%v, sent %q)", got, tc.keep, tc.value)
			}
			if !tc.keep && len(got) != 36 {
				t.Fatalf("generated ID %q is not a UUID", got)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	g, _ := basicGateway(t)
	t.Run("404 json", func(t *testing.T) {
		resp, body := g.get(t, "/nope")
		if resp.StatusCode != 404 || decodeError(t, resp, body).Error != "not_found" {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("405 allow", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodDelete, g.base+"/orders/5", nil)
		resp, body := g.do(t, req)
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" || decodeError(t, resp, body).Error != "method_not_allowed" {
			t.Fatalf("got %d Allow=%q %s", resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	})
	t.Run("HEAD allowed via GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodHead, g.base+"/orders/5", nil)
		if resp, _ := g.do(t, req); resp.StatusCode != 200 {
			t.Fatalf("HEAD status %d", resp.StatusCode)
		}
	})
	for _, p := range []string{"/api/v1/users/a%2Fb", "/api/v1/users/%2e%2e%5cadmin", "/api/v1/users/a%00", "/api/v1/users/%c0%af", "/api/v1/users/a\\b"} {
		t.Run("400 "+p, func(t *testing.T) {
			out := g.raw(t, "GET "+p+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(out, "HTTP/1.1 400") || !strings.Contains(out, `"error":"invalid_path"`) {
				t.Fatalf("got %q", out)
			}
		})
	}
	t.Run("413 by content-length", func(t *testing.T) {
		g2 := limitGateway(t)
		req, _ := http.NewRequest(http.MethodPost, g2.base+"/up", strings.NewReader(strings.Repeat("x", 2048)))
		resp, body := g2.do(t, req)
		if resp.StatusCode != 413 || decodeError(t, resp, body).Error != "request_entity_too_large" {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("413 chunked", func(t *testing.T) {
		g2 := limitGateway(t)
		out := g2.raw(t, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n800\r\n"+strings.Repeat("y", 2048)+"\r\n0\r\n\r\n")
		if !strings.HasPrefix(out, "HTTP/1.1 413") || !strings.Contains(out, "request_entity_too_large") {
			t.Fatalf("got %q", out)
		}
	})
	t.Run("small body passes", func(t *testing.T) {
		g2 := limitGateway(t)
		req, _ := http.NewRequest(http.MethodPost, g2.base+"/up", strings.NewReader("hello"))
		resp, body := g2.do(t, req)
		if resp.StatusCode != 200 || decodeEcho(t, body).Body != "hello" {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("431 json", func(t *testing.T) {
		resp, body := g.get(t, "/api/v1/users/1", "X-Big", strings.Repeat("b", 40<<10))
		if resp.StatusCode != 431 || decodeError(t, resp, body).Error != "request_header_fields_too_large" {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
	})
}

func limitGateway(t *testing.T) *gateway {
	be := newEcho(t, "up")
	return startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services: [{ name: up, targets: [{ url: "http://${UP}" }] }]
routes: [{ name: up, match: { path: /up }, service: up, max_body_bytes: 1KiB }]
`, map[string]string{"UP": hostPort(be)})
}

func TestUpstreamFailuresDoNotLeak(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	// A port with nothing listening: connection refused. Taken after the slow server's, so
	// the kernel cannot hand the freed port to it.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := hostPort(dead)
	dead.Close()
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services:
  - { name: dead, targets: [{ url: "http://${DEAD}" }] }
  - { name: slow, targets: [{ url: "http://${SLOW}" }], timeouts: { response_header: 200ms } }
routes:
  - { name: dead, match: { path: /dead }, service: dead }
  - { name: slow, match: { path: /slow }, service: slow }
  - { name: slow-overall, match: { path: /slow-overall }, service: slow, timeouts: { request: 150ms, response_header: 5s } }
`, map[string]string{"DEAD": deadAddr, "SLOW": hostPort(slow)})
	for _, tc := range []struct {
		path   string
		status int
		code   string
	}{{"/dead", 502, "bad_gateway"}, {"/slow", 504, "gateway_timeout"}, {"/slow-overall", 504, "gateway_timeout"}} {
		t.Run(tc.path, func(t *testing.T) {
			start := time.Now()
			resp, body := g.get(t, tc.path)
			if resp.StatusCode != tc.status || decodeError(t, resp, body).Error != tc.code {
				t.Fatalf("got %d %s", resp.StatusCode, body)
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("took %v: the timeout did not bound the call", time.Since(start))
			}
			if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "dial") || strings.Contains(body, "timeout awaiting") {
				t.Fatalf("error body leaks internals: %s", body)
			}
		})
	}
	// The detail is in the operator's log instead.
	if !strings.Contains(g.logs.String(), "connection refused") {
		t.Errorf("upstream error detail missing from the log")
	}
}

func TestLoadBalancingAcrossTargets(t *testing.T) {
	a, b := newEcho(t, "a"), newEcho(t, "b")
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services:
  - name: rr
    targets: [{ url: "http://${A}" }, { url: "http://${B}" }]
  - name: weighted
    targets: [{ url: "http://${A}", weight: 3 }, { url: "http://${B}", weight: 1 }]
  - name: sticky
    balancer: consistent_hash
    hash_on: header:X-User
    targets: [{ url: "http://${A}" }, { url: "http://${B}" }]
routes:
  - { name: rr, match: { path: /rr }, service: rr }
  - { name: weighted, match: { path: /w }, service: weighted }
  - { name: sticky, match: { path: /s }, service: sticky }
`, map[string]string{"A": hostPort(a), "B": hostPort(b)})
	count := func(path string, n int, hdr ...string) map[string]int {
		c := map[string]int{}
		for i := 0; i < n; i++ {
			_, body := g.get(t, path, hdr...)
			c[decodeEcho(t, body).Backend]++
		}
		return c
	}
	if c := count("/rr", 10); c["a"] != 5 || c["b"] != 5 {
		t.Errorf("round robin %v, want 5/5", c)
	}
	if c := count("/w", 8); c["a"] != 6 || c["b"] != 2 {
		t.Errorf("weighted %v, want 6/2", c)
	}
	for _, user := range []string{"u1", "u2", "u3", "u4"} {
		if c := count("/s", 6, "X-User", user); len(c) != 1 {
			t.Errorf("consistent hash for %s spread over %v", user, c)
		}
	}
}
