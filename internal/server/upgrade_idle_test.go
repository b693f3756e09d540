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

// upgradeBackend answers a request with 101 and then echoes what it reads.
func upgradeBackend(t *testing.T) string {
	return serveConns(t, func(c net.Conn, br *bufio.Reader) error {
		if _, err := http.ReadRequest(br); err != nil {
			return err
		}
		fmt.Fprint(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_, _ = io.Copy(c, br)
		return io.EOF
	})
}

// TestUpgradedConnectionIdleTimeout checks that an upgraded connection (WebSocket) silent both
// ways for server.idle_timeout is closed, and that one in use is not.
func TestUpgradedConnectionIdleTimeout(t *testing.T) {
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { idle_timeout: 300ms }
services: [{ name: s, targets: [{ url: "http://${S}" }] }]
routes: [{ name: s, match: { path: /** }, service: s }]
`, map[string]string{"S": upgradeBackend(t)})
	open := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		return c, br
	}

	// In use: a message every 100 ms for 900 ms keeps it open, and each is echoed.
	c, br := open()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	for i := range 9 {
		fmt.Fprintf(c, "m%d\n", i)
		if line, err := br.ReadString('\n'); err != nil || line != fmt.Sprintf("m%d\n", i) {
			t.Fatalf("message %d on a busy tunnel: %q %v", i, line, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Silent: closed after about the idle timeout, well before the client's own 5 s.
	c, br = open()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := br.ReadByte()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("an idle upgraded connection was still open after 5 s (idle_timeout 300ms)")
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Fatalf("idle upgraded connection closed after %v, want about 300ms", d)
	}
}
