package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A CORS preflight is answered by the route that serves the method it asks about, even when a
// catch-all route without methods also matches its OPTIONS request. Other OPTIONS requests
// keep the ordinary lookup.
func TestPreflightAnsweredByCORSRouteDespiteCatchAll(t *testing.T) {
	g := echoGateway(t, `
routes:
  - name: api
    match: { path: /api/items, methods: [GET, PUT] }
    service: b
    plugins:
      cors: { allowed_origins: ["https://app.example.com"], allowed_methods: [GET, PUT] }
  - name: fallback
    match: { path: /** }
    service: b
`)
	tests := []struct {
		name, path, ask string
		wantStatus      int
		wantACAO        string
		wantBackend     string
	}{
		{"preflight for the cors route", "/api/items", "PUT", http.StatusNoContent, "https://app.example.com", ""},
		{"preflight for a method only the catch-all serves", "/api/items", "DELETE", http.StatusOK, "", "b"},
		{"plain OPTIONS", "/api/items", "", http.StatusOK, "", "b"},
		{"preflight on a path only the catch-all serves", "/other", "PUT", http.StatusOK, "", "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodOptions, g.base+tt.path, nil)
			req.Header.Set("Origin", "https://app.example.com")
			if tt.ask != "" {
				req.Header.Set("Access-Control-Request-Method", tt.ask)
			}
			resp, body := g.do(t, req)
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("Access-Control-Allow-Origin") != tt.wantACAO ||
				resp.Header.Get("X-Backend") != tt.wantBackend {
				t.Fatalf("OPTIONS: %d ACAO=%q backend=%q body=%.80s; want %d ACAO=%q backend=%q",
					resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("X-Backend"), body,
					tt.wantStatus, tt.wantACAO, tt.wantBackend)
			}
		})
	}
}

// On a route with the cors plugin the gateway is the only source of Access-Control-*
// response headers: an upstream's own would give the client two Access-Control-Allow-Origin
// values (browsers reject the response) or allow an origin the route's policy refuses. Cached
// responses are no exception.
func TestCORSRouteReplacesUpstreamCORSHeaders(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Credentials", "true")
		w.Header().Set("Access-Control-Expose-Headers", "X-Internal")
		w.Header().Set("Vary", "Accept-Encoding")
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(be.Close)
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services: [{ name: b, targets: [{ url: "http://${B}" }] }]
routes:
  - name: api
    match: { path: /api/** }
    service: b
    plugins:
      cors: { allowed_origins: ["https://app.example.com"], exposed_headers: [X-Total] }
  - name: cached
    match: { path: /cached/** }
    service: b
    plugins:
      cors: { allowed_origins: ["https://app.example.com"], exposed_headers: [X-Total] }
      cache: { ttl: 30s }
  - name: plain
    match: { path: /plain/** }
    service: b
`, map[string]string{"B": hostPort(be)})
	tests := []struct {
		name, path, origin string
		acao, expose       []string // nil: absent
		credentials        []string
	}{
		{"allowed origin", "/api/x", "https://app.example.com", []string{"https://app.example.com"}, []string{"X-Total"}, nil},
		{"refused origin", "/api/x", "https://evil.example", nil, nil, nil},
		{"no origin", "/api/x", "", nil, nil, nil},
		{"cache miss", "/cached/x", "https://app.example.com", []string{"https://app.example.com"}, []string{"X-Total"}, nil},
		{"cache hit", "/cached/x", "https://app.example.com", []string{"https://app.example.com"}, []string{"X-Total"}, nil},
		{"cache hit, refused origin", "/cached/x", "https://evil.example", nil, nil, nil},
		{"route without cors keeps the upstream's", "/plain/x", "https://evil.example", []string{"*"}, []string{"X-Internal"}, []string{"true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.origin != "" {
				hdr = []string{"Origin", tt.origin}
			}
			resp, body := g.get(t, tt.path, hdr...)
			if resp.StatusCode != http.StatusOK || body != "ok" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			for _, c := range []struct {
				key  string
				want []string
			}{
				{"Access-Control-Allow-Origin", tt.acao},
				{"Access-Control-Expose-Headers", tt.expose},
				{"Access-Control-Allow-Credentials", tt.credentials},
			} {
				if got := resp.Header.Values(c.key); !equalStrings(got, c.want) {
					t.Errorf("%s = %q, want %q", c.key, got, c.want)
				}
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Forwarding headers other than X-Forwarded-For/-Proto/-Host and Forwarded, which frameworks
// read as the client's address, port, path prefix or URL (nginx realip, Spring, ASP.NET,
// Symfony/IIS), are dropped when an untrusted peer sends them; X-Real-IP is always the client
// IP the gateway determined.
func TestForwardingHeadersFromUntrustedPeersDropped(t *testing.T) {
	be := newEcho(t, "b")
	const yaml = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
%s
services: [{ name: b, targets: [{ url: "http://${B}" }] }]
routes:
  - name: api
    match: { path: /** }
    service: b
`
	spoofed := []string{"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Ssl",
		"X-Original-Url", "X-Rewrite-Url"}
	send := []string{"X-Real-IP", "10.1.2.3", "X-Forwarded-For", "203.0.113.9", "X-Forwarded-Port", "443",
		"X-Forwarded-Prefix", "/admin", "X-Forwarded-Server", "edge1", "X-Forwarded-Ssl", "on",
		"X-Original-URL", "/admin/delete", "X-Rewrite-URL", "/admin/delete"}

	t.Run("untrusted peer", func(t *testing.T) {
		g := startGateway(t, fmt.Sprintf(yaml, ""), map[string]string{"B": hostPort(be)})
		_, body := g.get(t, "/x", send...)
		h := http.Header(decodeEcho(t, body).Header)
		for _, k := range spoofed {
			if v := h.Values(k); len(v) != 0 {
				t.Errorf("client-supplied %s: %q reached the upstream from an untrusted peer", k, v)
			}
		}
		if got := h.Values("X-Real-Ip"); len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("X-Real-IP = %q, want [127.0.0.1] (the peer)", got)
		}
	})
	t.Run("trusted peer", func(t *testing.T) {
		g := startGateway(t, fmt.Sprintf(yaml, "server: { trusted_proxies: [127.0.0.0/8] }"), map[string]string{"B": hostPort(be)})
		_, body := g.get(t, "/x", send...)
		h := http.Header(decodeEcho(t, body).Header)
		if got := h.Get("X-Forwarded-Port"); got != "443" {
			t.Errorf("X-Forwarded-Port = %q, want a trusted proxy's 443 kept", got)
		}
		if got := h.Values("X-Real-Ip"); len(got) != 1 || got[0] != "203.0.113.9" {
			t.Errorf("X-Real-IP = %q, want [203.0.113.9] (the client IP from X-Forwarded-For)", got)
		}
	})
}

// strip_prefix with a trailing slash strips the bare prefix too: "/api" with strip_prefix
// "/api/" goes upstream as "/", as "/api/x" goes as "/x".
func TestStripPrefixTrailingSlashStripsBarePrefix(t *testing.T) {
	g := echoGateway(t, `
routes:
  - name: api
    match: { path: /api/** }
    service: b
    strip_prefix: /api/
`)
	for _, tt := range []struct{ in, want string }{
		{"/api/x", "/x"},
		{"/api/", "/"},
		{"/api", "/"},
	} {
		_, body := g.get(t, tt.in)
		if p := decodeEcho(t, body).Path; p != tt.want {
			t.Errorf("%s forwarded as %q, want %q", tt.in, p, tt.want)
		}
	}
}
