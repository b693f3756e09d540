package server

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A client that stops reading a large response releases its request, and the upstream
// connection, at the route's request timeout: the writes of the body are bounded by it when
// server.write_timeout is off.
func TestNonReadingClientReleasedAtRequestTimeout(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			return
		}
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 800 { // 50 MiB, far more than the sockets buffer
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(be.Close)
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { access_log: { enabled: false }, max_in_flight: 1 }
services: [{ name: b, targets: [{ url: "http://${B}" }] }]
routes: [{ name: all, match: { path: /** }, service: b, timeouts: { request: 1s } }]
`, map[string]string{"B": hostPort(be)})
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Read nothing. Once the request timeout has passed, its slot is free again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		time.Sleep(500 * time.Millisecond)
		resp, _ := g.get(t, "/small")
		if resp.StatusCode == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /small: %d 10s after a 1s request timeout: a client that stopped reading still holds the only slot", resp.StatusCode)
		}
	}
}
