package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/certs"
)

// A client that connected to a TLS listener just before a reload changed that listener (same
// address) must still be served: the commit says the old generation lets the connections it
// accepted send their first request.
// TestTLSConnAcceptedBeforeReloadIsServed checks that a TLS connection the old generation
// accepted just before a reload changed its listener still has its request served: the TLS
// listener hands the connections whose handshakes it runs to its server before it stops.
func TestTLSConnAcceptedBeforeReloadIsServed(t *testing.T) {
	dir := t.TempDir()
	ca := certs.NewCA(t, "server CA")
	crt, key := ca.IssueFiles(t, dir, "api", "api.example.com", "127.0.0.1")
	echo := newEcho(t, "echo")
	y := fmt.Sprintf(`
version: 1
listeners:
  - name: public
    address: "${LISTEN}"
    max_conns: ${MC}
    tls: { certificates: [{ cert: "%s", key: "%s" }] }
services: [{ name: echo, targets: [{ url: "http://${ECHO}" }] }]
routes: [{ name: r, match: { path: /** }, service: echo }]
`, crt, key)
	g := startGateway(t, y, map[string]string{"ECHO": hostPort(echo), "MC": "1000"})
	for _, plainH1 := range []bool{false} {
		_ = plainH1
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		time.Sleep(200 * time.Millisecond) // the old generation accepts it
		g.env["MC"] = "1001"
		if err := g.reload(y); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		tc := tls.Client(c, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}})
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(tc, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			t.Fatalf("request on a connection made just before the reload: %v", err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
		if err != nil {
			t.Fatalf("connection made just before the reload lost its request: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
}
