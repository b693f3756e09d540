package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestUnroutedAnswersCarrySecurityHeaders checks that the gateway's own answers outside any
// route (no route, a method the route does not serve, an invalid path, a refused head, a URI
// too long) carry the server's security headers, as routed responses do.
func TestUnroutedAnswersCarrySecurityHeaders(t *testing.T) {
	be := newEcho(t, "b")
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server:
  max_uri_bytes: 256
  security_headers: { frame_options: DENY, content_security_policy: "default-src 'none'" }
services: [{ name: b, targets: [{ url: "http://${B}" }] }]
routes: [{ name: r, match: { path: /api/**, methods: [GET] }, service: b }]
`, map[string]string{"B": hostPort(be)})
	check := func(what string, h http.Header, status, want int) {
		t.Helper()
		if status != want || h.Get("X-Frame-Options") != "DENY" || h.Get("Content-Security-Policy") != "default-src 'none'" {
			t.Errorf("%s: status %d (want %d), X-Frame-Options %q, CSP %q", what, status, want, h.Get("X-Frame-Options"), h.Get("Content-Security-Policy"))
		}
	}
	resp, _ := g.get(t, "/api/x")
	check("routed", resp.Header, resp.StatusCode, 200)
	resp, _ = g.get(t, "/nowhere")
	check("404", resp.Header, resp.StatusCode, 404)
	req, _ := http.NewRequest(http.MethodDelete, g.base+"/api/x", nil)
	resp, _ = g.do(t, req)
	check("405", resp.Header, resp.StatusCode, 405)
	resp, _ = g.get(t, "/"+strings.Repeat("a", 300))
	check("414", resp.Header, resp.StatusCode, 414)
	out := g.raw(t, "GET /a%2Fb HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 400") || !strings.Contains(out, "X-Frame-Options: DENY") {
		t.Errorf("invalid path: %.300q", out)
	}
	out = g.raw(t, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 400") || !strings.Contains(out, "X-Frame-Options: DENY") {
		t.Errorf("refused head: %.300q", out)
	}
}
