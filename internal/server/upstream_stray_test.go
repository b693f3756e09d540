package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestExcessBodyBytesNeverReachAnotherClient: a target that sends more than its
// Content-Length (a miscount, or a second response behind the first, in the same write) must
// not hand those bytes to the next client whose request reuses the connection. The body's
// last read was sized to what was left and bypassed the reader's buffer, so the extra bytes
// stayed in the kernel, the pool found the buffer empty, and a GET reused within a
// millisecond (not checked) read them as its response (found by a review: 9 times in 10).
func TestExcessBodyBytesNeverReachAnotherClient(t *testing.T) {
	big := strings.Repeat("a", 8192)
	be := serveConns(t, func(c net.Conn, br *bufio.Reader) error {
		req, err := http.ReadRequest(br)
		if err != nil {
			return err
		}
		if req.URL.Path == "/big" {
			_, err = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8192\r\n\r\n"+big+
				"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL")
			return err
		}
		_, err = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return err
	})
	g := rawTargetGateway(t, be)
	c1, br1 := dialRawClient(t, g.addr)
	c2, br2 := dialRawClient(t, g.addr)
	for i := range 10 {
		_, _ = io.WriteString(c1, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, b, err := readRawResponse(br1, "GET"); err != nil || b != big {
			t.Fatalf("#%d: client 1: %d bytes, %v", i, len(b), err)
		}
		_, _ = io.WriteString(c2, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
		if code, b, err := readRawResponse(br2, "GET"); err != nil || b != "ok" {
			t.Errorf("#%d: client 2 got %d %q (%v), want 200 \"ok\": bytes left over from client 1's exchange", i, code, b, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRequestTrailersCannotCarryForwardingFields: a client that is not a trusted proxy may
// not send X-Forwarded-For, Forwarded, X-Real-IP, X-Original-URL or X-Request-Id in the
// header, and declaring them as trailers must not bring them to the target either (an
// upstream that merges trailers into the header would believe them).
func TestRequestTrailersCannotCarryForwardingFields(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	be := serveConns(t, func(c net.Conn, br *bufio.Reader) error {
		req, err := http.ReadRequest(br)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, req.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("header=%v trailer=%v", req.Header, req.Trailer))
		mu.Unlock()
		_, err = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return err
	})
	g := rawTargetGateway(t, be)
	c, br := dialRawClient(t, g.addr)
	_, _ = io.WriteString(c, "POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"+
		"Trailer: X-Original-Url, X-Forwarded-For, X-Real-Ip, Forwarded, X-Request-Id, X-Kept\r\n\r\n"+
		"2\r\nhi\r\n0\r\nX-Original-Url: /admin\r\nX-Forwarded-For: 6.6.6.6\r\nX-Real-Ip: 6.6.6.6\r\n"+
		"Forwarded: for=6.6.6.6\r\nX-Request-Id: spoofed\r\nX-Kept: yes\r\n\r\n")
	if code, b, err := readRawResponse(br, "POST"); code != 200 || err != nil {
		t.Fatalf("%d %q %v", code, b, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("the target saw %q", seen)
	}
	for _, spoof := range []string{"6.6.6.6", "/admin", "spoofed"} {
		if strings.Contains(seen[0], spoof) {
			t.Errorf("an untrusted client's %q reached the target: %s", spoof, seen[0])
		}
	}
	if !strings.Contains(seen[0], "X-Kept:[yes]") {
		t.Errorf("an ordinary declared trailer was lost: %s", seen[0])
	}
}

// rawTargetGateway starts a gateway whose one route sends everything to the target at addr.
func rawTargetGateway(t *testing.T, addr string) *gateway {
	t.Helper()
	return startGateway(t, `version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services: [{ name: be, targets: [{ url: "http://${BE}" }] }]
routes: [{ name: all, match: { path: /** }, service: be }]
`, map[string]string{"BE": addr})
}

// dialRawClient opens a client connection with a 10 s deadline, closed when the test ends.
func dialRawClient(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// readRawResponse reads one response to a request of method and its whole body.
func readRawResponse(br *bufio.Reader, method string) (int, string, error) {
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), err
}
