package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/middleware/auth"
)

func inboundYAML(underscore string) string {
	return `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { access_log: { enabled: false }` + underscore + ` }
auth:
  consumers: [{ name: partner-a, tier: gold, keys: ["${KEY_HASH}"] }]
  identity_headers: { X-User-ID: sub, X-Consumer: consumer, X-Tier: tier }
services:
  - name: a
    targets: [{ url: "http://${A}" }]
routes:
  - name: private
    match: { path: /private/** }
    service: a
    plugins:
      api_key: { header: X-API-Key }
  - name: public
    match: { path: /public/** }
    service: a
`
}

// A client's Connection header may nominate only its own fields as hop-by-hop: the headers the
// gateway sets (identity, forwarding, request ID) still reach the upstream, while the client's
// nominated fields do not.
func TestConnectionCannotStripGatewayHeaders(t *testing.T) {
	a := newEcho(t, "a")
	g := startGateway(t, inboundYAML(""), map[string]string{"A": hostPort(a), "KEY_HASH": auth.HashKey(partnerKey)})

	resp, body := g.get(t, "/private/x", "X-API-Key", partnerKey, "X-Custom", "client",
		"Connection", "keep-alive, X-Consumer, X-Tier, X-Forwarded-For, X-Request-Id, Forwarded, X-Custom")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	h := http.Header(decodeEcho(t, body).Header)
	for name, want := range map[string]string{"X-Consumer": "partner-a", "X-Tier": "gold", "X-Forwarded-For": "127.0.0.1"} {
		if got := h.Get(name); got != want {
			t.Errorf("upstream %s = %q, want the gateway's %q", name, got, want)
		}
	}
	for _, name := range []string{"X-Request-Id", "Forwarded"} {
		if h.Get(name) == "" {
			t.Errorf("upstream lost the gateway's %s", name)
		}
	}
	if got := h.Get("X-Custom"); got != "" {
		t.Errorf("upstream got the nominated X-Custom %q", got)
	}
	if c := h.Get("Connection"); strings.Contains(strings.ToLower(c), "x-") {
		t.Errorf("upstream Connection %q carries the client's nominations", c)
	}
}

// Header names with underscores are dropped by default (CGI/WSGI servers read X_User_ID as
// X-User-ID, so they could spoof an identity header), refused with 400 by "reject" and forwarded
// by "allow".
func TestUnderscoreHeaders(t *testing.T) {
	a := newEcho(t, "a")
	env := map[string]string{"A": hostPort(a), "KEY_HASH": auth.HashKey(partnerKey)}
	spoof := []string{"X_User_ID", "admin", "X_Consumer", "root", "X-Fine", "yes"}

	g := startGateway(t, inboundYAML(""), env)
	for _, path := range []string{"/public/x", "/private/x"} {
		resp, body := g.get(t, path, append([]string{"X-API-Key", partnerKey}, spoof...)...)
		if resp.StatusCode != 200 {
			t.Fatalf("drop %s: status %d: %s", path, resp.StatusCode, body)
		}
		for k, vv := range decodeEcho(t, body).Header {
			if strings.Contains(k, "_") {
				t.Errorf("drop %s: upstream got %s: %q", path, k, vv)
			}
		}
		if got := http.Header(decodeEcho(t, body).Header).Get("X-Fine"); got != "yes" {
			t.Errorf("drop %s: X-Fine = %q, want it forwarded", path, got)
		}
	}

	g = startGateway(t, inboundYAML(", underscore_headers: reject"), env)
	resp, body := g.get(t, "/public/x", spoof...)
	if resp.StatusCode != 400 || decodeError(t, resp, body).Error != "bad_request" {
		t.Fatalf("reject: %d %s, want 400 bad_request", resp.StatusCode, body)
	}
	if resp, _ := g.get(t, "/public/x", "X-Fine", "yes"); resp.StatusCode != 200 {
		t.Fatalf("reject: a request without underscores got %d", resp.StatusCode)
	}

	g = startGateway(t, inboundYAML(", underscore_headers: allow"), env)
	resp, body = g.get(t, "/public/x", spoof...)
	if resp.StatusCode != 200 {
		t.Fatalf("allow: status %d", resp.StatusCode)
	}
	if got := http.Header(decodeEcho(t, body).Header)["X_user_id"]; len(got) != 1 || got[0] != "admin" {
		t.Fatalf("allow: upstream X_user_id = %q, want it forwarded", got)
	}
}

// A lower-case method is refused: "post" would match no route limited to POST, fall through to
// a public route for the same path, and run as POST on an upstream that upper-cases methods.
func TestLowerCaseMethodRefused(t *testing.T) {
	g := startKeyGateway(t, `
  - name: writes
    match: { path: /items/**, methods: [POST, PUT, DELETE, PATCH] }
    service: a
    plugins:
      api_key: { header: X-API-Key }
  - name: reads
    match: { path: /items/** }
    service: a
`)
	for _, m := range []string{"post", "Post", "pOST", "get"} {
		got := g.raw(t, m+" /items/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 400 ") {
			t.Errorf("%s: got %q, want 400", m, firstLine(got))
		}
	}
	if got := g.raw(t, "POST /items/1 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 401 ") {
		t.Errorf("POST without a key: got %q, want 401", firstLine(got))
	}
	if got := g.raw(t, "GET /items/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Errorf("GET: got %q, want 200", firstLine(got))
	}
}

// Request trailers follow the header's rules: a declared trailer named like an identity header
// (or with an underscore) does not reach the upstream, undeclared ones are not read, and an
// ordinary declared one is forwarded.
func TestRequestTrailersCannotSpoofIdentity(t *testing.T) {
	got := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got <- r.Trailer.Clone()
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, inboundYAML(""), map[string]string{"A": hostPort(up), "KEY_HASH": auth.HashKey(partnerKey)})
	resp := g.raw(t, "POST /private/x HTTP/1.1\r\nHost: a\r\nX-API-Key: "+partnerKey+"\r\nConnection: close\r\n"+
		"Transfer-Encoding: chunked\r\nTrailer: X-User-Id, X-Consumer, X_Tier, X-Digest\r\n\r\n"+
		"3\r\nabc\r\n0\r\nX-User-Id: admin\r\nX-Consumer: root\r\nX_Tier: platinum\r\nX-Digest: d1\r\nX-Undeclared: u\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 200 ") {
		t.Fatalf("got %q", firstLine(resp))
	}
	var tr http.Header
	select {
	case tr = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream saw no request")
	}
	if tr.Get("X-Digest") != "d1" {
		t.Errorf("declared X-Digest not forwarded: %v", tr)
	}
	for k, v := range tr {
		if k != "X-Digest" && len(v) > 0 {
			t.Errorf("upstream trailer %s: %q", k, v)
		}
	}
}

// An h2c upgrade is not passed on: an upstream that switched would read every later request on
// the tunnel as HTTP/2, past the policies of the route the upgrade came in on.
func TestH2CUpgradeNotForwarded(t *testing.T) {
	a := newEcho(t, "a")
	g := startGateway(t, inboundYAML(""), map[string]string{"A": hostPort(a), "KEY_HASH": auth.HashKey(partnerKey)})
	for _, conn := range []string{"Upgrade", "Upgrade, HTTP2-Settings"} {
		resp, body := g.get(t, "/public/x", "Connection", conn, "Upgrade", "h2c", "HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")
		if resp.StatusCode != 200 {
			t.Fatalf("Connection: %s: status %d, want the plain answer", conn, resp.StatusCode)
		}
		h := http.Header(decodeEcho(t, body).Header)
		for _, k := range []string{"Upgrade", "Http2-Settings", "Connection"} {
			if v := h.Get(k); v != "" {
				t.Errorf("Connection: %s: upstream got %s: %q", conn, k, v)
			}
		}
	}
}

// CONNECT is refused: the gateway is not a forward proxy.
func TestConnectRefused(t *testing.T) {
	a := newEcho(t, "a")
	g := startGateway(t, inboundYAML(""), map[string]string{"A": hostPort(a), "KEY_HASH": auth.HashKey(partnerKey)})
	got := g.raw(t, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(got, "HTTP/1.1 405 ") {
		t.Fatalf("CONNECT: %q, want 405", firstLine(got))
	}
}

// startKeyGateway starts a gateway with partner-a's API key and one echo service "a", serving
// routes (a YAML list of routes).
func startKeyGateway(t *testing.T, routes string) *gateway {
	t.Helper()
	a := newEcho(t, "a")
	return startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { access_log: { enabled: false } }
auth:
  consumers: [{ name: partner-a, keys: ["${KEY_HASH}"] }]
services:
  - name: a
    targets: [{ url: "http://${A}" }]
routes:`+routes, map[string]string{"A": hostPort(a), "KEY_HASH": auth.HashKey(partnerKey)})
}
