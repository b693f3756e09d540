package server

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

// A request body the client breaks — a malformed chunk, one over max_body_bytes, one cut short
// by a half-close, one that stalls past read_timeout — is the client's fault: it gets a 4xx, and
// the failure counts neither against the breaker nor passive health, so no client can open a
// breaker or eject a target for everyone else by sending bad bodies.
func TestClientBodyErrorsDoNotBlameTheTarget(t *testing.T) {
	echo := newEcho(t, "echo")
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { access_log: { enabled: false }, max_body_bytes: 64KiB, read_timeout: 400ms }
services:
  - name: s
    targets: [{ url: "http://${B}" }]
    circuit_breaker: { failure_threshold: 2, recovery_timeout: 10s }
    health_check:
      passive: { consecutive_failures: 2, ejection_time: 10s }
routes:
  - { name: main, match: { path: /** }, service: s }
`, map[string]string{"B": hostPort(echo)})

	big, half := strings.Repeat("x", 70<<10), strings.Repeat("x", 30000)
	cases := []struct {
		name, head, body string
		halfClose        bool
		want             string
	}{
		{name: "malformed chunk", head: "Transfer-Encoding: chunked", body: "1\r\nab\r\n0\r\n\r\n", want: "400"},
		{name: "chunked over max_body_bytes", head: "Transfer-Encoding: chunked\r\nConnection: close",
			body: "11800\r\n" + big + "\r\n0\r\n\r\n", want: "413"},
		{name: "cut short", head: "Content-Length: 60000", body: half, halfClose: true, want: "400"},
		// Not completed: the gateway's read_timeout ends it.
		{name: "stalled", head: "Content-Length: 60000", body: half, want: "408"},
	}
	for _, tc := range cases {
		for i := range 3 {
			got := sendBody(t, g.addr, tc.head, tc.body, tc.halfClose)
			if !strings.HasPrefix(got, "HTTP/1.1 "+tc.want+" ") {
				t.Fatalf("%s #%d: got %q, want %s", tc.name, i, firstLine(got), tc.want)
			}
			if strings.Contains(got, "127.0.0.1") {
				t.Fatalf("%s: the answer leaks an address: %q", tc.name, got)
			}
		}
		st := upstreamState(t, g, "s")
		if st.Breaker != upstream.BreakerClosed {
			t.Fatalf("after 3 × %s: breaker %q, want closed", tc.name, st.Breaker)
		}
		if resp, body := g.get(t, "/ok"); resp.StatusCode != 200 {
			t.Fatalf("after 3 × %s: GET /ok = %d %s: the target was blamed", tc.name, resp.StatusCode, body)
		}
	}
}

// sendBody sends a POST with the given framing header and body on a new connection, half-closes
// it if asked, and returns the answer.
func sendBody(t *testing.T, addr, head, body string, halfClose bool) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "POST /x HTTP/1.1\r\nHost: a\r\n"+head+"\r\n\r\n"+body); err != nil {
		t.Fatal(err)
	}
	if halfClose {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	out, _ := io.ReadAll(c)
	return string(out)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}
