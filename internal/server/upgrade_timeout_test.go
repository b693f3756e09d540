package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestUpgradeHeaderDoesNotLiftRouteTimeout checks that a client cannot escape the route's
// request timeout by asking for an upgrade the upstream does not grant: the answer (a slow
// 200) is still cut at the timeout.
func TestUpgradeHeaderDoesNotLiftRouteTimeout(t *testing.T) {
	// A slow 200 (no switch): a byte every 100 ms for 1.5 s.
	addr := serveConns(t, func(c net.Conn, br *bufio.Reader) error {
		if _, err := http.ReadRequest(br); err != nil {
			return err
		}
		fmt.Fprint(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range 15 {
			if _, err := fmt.Fprint(c, "1\r\nx\r\n"); err != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
		}
		fmt.Fprint(c, "0\r\n\r\n")
		return io.EOF
	})
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services: [{ name: s, targets: [{ url: "http://${S}" }], timeouts: { request: 300ms } }]
routes: [{ name: s, match: { path: /** }, service: s }]
`, map[string]string{"S": addr})
	for _, up := range []string{"", "h2c", "foo"} {
		req, _ := http.NewRequest(http.MethodGet, g.base+"/slow", nil)
		if up != "" {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", up)
		}
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Upgrade %q: the exchange ran %v past the route's 300ms request timeout", up, d)
		}
	}
}
