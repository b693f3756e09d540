package server

import (
	"net/http"
	"strings"
	"testing"
)

// TestPathParametersCannotBypassRoutes checks that "/admin;x/secret", which servlet containers
// serve as "/admin/secret", cannot reach the upstream past the /admin route's policies: a raw ";"
// is refused unless server.path_parameters allows it; an encoded "%3B" is data.
func TestPathParametersCannotBypassRoutes(t *testing.T) {
	be := newEcho(t, "b")
	const routes = `
services: [{ name: b, targets: [{ url: "http://${B}" }] }]
routes:
  - name: admin
    match: { path: /admin/** }
    service: b
    plugins:
      ip_rules: { allow: [10.0.0.0/8] }
  - name: public
    match: { path: /** }
    service: b
`
	g := startGateway(t, "version: 1\nlisteners: [{ name: public, address: \"${LISTEN}\" }]\n"+routes, map[string]string{"B": hostPort(be)})
	if resp, _ := g.get(t, "/admin/secret"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("control: /admin/secret = %d, want 403", resp.StatusCode)
	}
	for _, target := range []string{"/admin;x/secret", "/admin/secret;jsessionid=1", "/a/..;/admin/secret"} {
		out := g.raw(t, "GET "+target+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(out, "HTTP/1.1 400") || !strings.Contains(out, "invalid_path") {
			t.Errorf("%s: %.120q, want 400 invalid_path", target, out)
		}
	}
	resp, body := g.get(t, "/files/a%3Bb")
	if resp.StatusCode != 200 || decodeEcho(t, body).RawPath != "/files/a%3Bb" {
		t.Errorf("an encoded ';' is data: %d %s", resp.StatusCode, body)
	}

	allow := startGateway(t, "version: 1\nlisteners: [{ name: public, address: \"${LISTEN}\" }]\nserver: { path_parameters: allow }\n"+routes, map[string]string{"B": hostPort(be)})
	resp, body = allow.get(t, "/files/a;v=2")
	if resp.StatusCode != 200 || decodeEcho(t, body).RequestURI != "/files/a;v=2" {
		t.Errorf("path_parameters: allow: %d %s", resp.StatusCode, body)
	}
}

// TestStripPrefixIsNormalized checks that strip_prefix is compared in the same normalized form
// as the route's path: "/%7ebob" strips "/~bob".
func TestStripPrefixIsNormalized(t *testing.T) {
	g := echoGateway(t, `
routes:
  - name: home
    match: { path: "/%7ebob/**" }
    service: b
    strip_prefix: "/%7ebob"
`)
	resp, body := g.get(t, "/~bob/profile")
	if resp.StatusCode != 200 {
		t.Fatalf("route did not match: %d %s", resp.StatusCode, body)
	}
	if p := decodeEcho(t, body).Path; p != "/profile" {
		t.Fatalf("forwarded as %q, want /profile", p)
	}
}
