package server

import (
	"testing"
)

// The proxy forwards the Host with its port (X-Forwarded-Host, Forwarded host=, and Host with
// preserve_host), and upstreams build absolute URLs from it: the cache must not serve the
// response made for one port to a request for another. Only the scheme's default port is the
// same origin as no port.
func TestCacheHostPortNotShared(t *testing.T) {
	a := newEcho(t, "a")
	g := startGateway(t, cacheYAML(""), map[string]string{"A": hostPort(a)})

	steps := []struct {
		host, xcache, forwardedHost string
	}{
		{"shop.example:6666", "MISS", "shop.example:6666"},
		{"shop.example", "MISS", "shop.example"},
		{"shop.example:6666", "HIT", "shop.example:6666"},
		{"shop.example:80", "HIT", "shop.example"}, // the default port names the same origin
		{"Shop.Example", "HIT", "shop.example"},
	}
	for i, s := range steps {
		resp, body := g.get(t, "/c/page", "Host", s.host)
		e := decodeEcho(t, body)
		xfh := e.Header["X-Forwarded-Host"]
		if got := resp.Header.Get("X-Cache"); got != s.xcache || len(xfh) != 1 || xfh[0] != s.forwardedHost {
			t.Fatalf("step %d, Host %s: X-Cache %s, response made for X-Forwarded-Host %q (Forwarded %q); want %s for %q",
				i, s.host, got, xfh, e.Header["Forwarded"], s.xcache, s.forwardedHost)
		}
	}
}
