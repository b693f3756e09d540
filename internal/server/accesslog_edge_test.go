package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// accessRecord is one JSON access-log line, as far as these tests read it.
type accessRecord struct {
	RequestID string `json:"request_id"`
	Method    string `json:"method"`
	Path      string `json:"path"`
	Route     string `json:"route"`
	Status    int    `json:"status"`
	Bytes     int64  `json:"bytes"`
	Error     string `json:"error"`
}

// waitAccess waits for an access-log line that match accepts and returns it.
func (g *gateway) waitAccess(t *testing.T, what string, match func(accessRecord) bool) accessRecord {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, line := range strings.Split(g.access.String(), "\n") {
			var rec accessRecord
			if line != "" && json.Unmarshal([]byte(line), &rec) == nil && match(rec) {
				return rec
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access-log line for %s in:\n%s", what, g.access.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEdgeAnswersAreLogged checks that answers given before the runtime (refused framing, a
// malformed head, a URI too long, load shedding, the HTTPS redirect) get an access-log line
// and are counted in the request metrics, as every other answer is.
func TestEdgeAnswersAreLogged(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{}, 1)
	var once sync.Once
	releaseOnce := func() { once.Do(func() { close(release) }) }
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	defer slow.Close()
	defer releaseOnce()
	g := startGateway(t, `
version: 1
listeners:
  - { name: public, address: "${LISTEN}" }
  - { name: redirect, address: "127.0.0.1:0", redirect_https: true, https_port: 8443 }
server: { max_in_flight: 1, max_uri_bytes: 256 }
services: [{ name: b, targets: [{ url: "http://${B}" }] }]
routes: [{ name: all, match: { path: /** }, service: b }]
`, map[string]string{"B": hostPort(slow)})

	// 414: the guard.
	resp, _ := g.get(t, "/"+strings.Repeat("a", 300))
	if resp.StatusCode != http.StatusRequestURITooLong {
		t.Fatalf("long URI: status %d", resp.StatusCode)
	}
	id414 := resp.Header.Get("X-Request-Id")

	// 400: ambiguous framing, and a malformed head, both refused by the HTTP/1.x server.
	out := g.raw(t, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 400") {
		t.Fatalf("CL+TE: %q", out)
	}
	out = g.raw(t, "GET /x HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 400") {
		t.Fatalf("malformed head: %q", out)
	}

	// 503: one request holds the only in-flight slot; the next is shed.
	held := make(chan error, 1)
	go func() {
		resp, err := http.Get(g.base + "/slow")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		held <- err
	}()
	select {
	case <-arrived:
	case err := <-held:
		t.Fatalf("the held request ended early: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, _ := g.get(t, "/shed")
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never shed: last status %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	releaseOnce()
	if err := <-held; err != nil {
		t.Fatal(err)
	}

	// 308: the redirect listener.
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get("http://" + g.srv.Addrs()["redirect"] + "/r?q=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect {
		t.Fatalf("redirect: status %d", resp.StatusCode)
	}

	// Every answer has its line (the access log is flushed once a second).
	rec := g.waitAccess(t, "414", func(r accessRecord) bool { return r.Status == 414 })
	if rec.RequestID != id414 || id414 == "" || rec.Error != "uri_too_long" || rec.Method != "GET" || rec.Bytes == 0 {
		t.Errorf("414 line %+v, response request ID %q", rec, id414)
	}
	g.waitAccess(t, "request_smuggling", func(r accessRecord) bool { return r.Status == 400 && r.Error == "request_smuggling" })
	g.waitAccess(t, "malformed head", func(r accessRecord) bool {
		return r.Status == 400 && r.Error != "" && r.Error != "request_smuggling"
	})
	rec = g.waitAccess(t, "503", func(r accessRecord) bool { return r.Status == 503 })
	if rec.Error != "overloaded" || rec.RequestID == "" {
		t.Errorf("503 line %+v", rec)
	}
	rec = g.waitAccess(t, "308", func(r accessRecord) bool { return r.Status == 308 })
	if rec.RequestID == "" || rec.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("308 line %+v, response request ID %q", rec, resp.Header.Get("X-Request-Id"))
	}

	// The same answers are counted under no route.
	mrec := httptest.NewRecorder()
	g.srv.Metrics().Handler().ServeHTTP(mrec, httptest.NewRequest("GET", "/metrics", nil))
	text := mrec.Body.String()
	for _, class := range []string{"3xx", "4xx", "5xx"} {
		found := false
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "gatehouse_requests_total{") && strings.Contains(l, `route="-"`) && strings.Contains(l, `status="`+class+`"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("no unrouted %s requests counted:\n%s", class, text)
		}
	}
}

// TestAbortedResponsesAreLogged checks that a response cut short after its status line went
// out still gets its access-log line, with the status and bytes sent and whose side broke it.
func TestAbortedResponsesAreLogged(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cut":
			// Promise 1000 bytes, send 10, and drop the connection.
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
			_ = brw.Flush()
			conn.Close()
		case "/stream":
			// Stream until the gateway gives up on this request.
			rc := http.NewResponseController(w)
			for {
				if _, err := w.Write([]byte(strings.Repeat("x", 1024))); err != nil {
					return
				}
				_ = rc.Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
	}))
	defer be.Close()
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services: [{ name: b, targets: [{ url: "http://${B}" }] }]
routes: [{ name: all, match: { path: /** }, service: b }]
`, map[string]string{"B": hostPort(be)})

	// The client sees a reset: before the head or in the body, as the gateway's buffers fall.
	if resp, err := http.Get(g.base + "/cut"); err == nil {
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Error("a cut body read as complete")
		}
		resp.Body.Close()
	}
	rec := g.waitAccess(t, "/cut", func(r accessRecord) bool { return r.Path == "/cut" })
	if rec.Status != 200 || rec.Error != "upstream_response_aborted" || rec.Bytes != 10 || rec.Route != "all" {
		t.Errorf("cut response logged as %+v", rec)
	}

	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("stream status line %q, %v", line, err)
	}
	if _, err := br.Peek(2048); err != nil {
		t.Fatal(err)
	}
	c.Close()
	rec = g.waitAccess(t, "/stream", func(r accessRecord) bool { return r.Path == "/stream" })
	if rec.Status != 200 || rec.Error != "client_closed_request" || rec.Bytes == 0 {
		t.Errorf("stream the client left logged as %+v", rec)
	}
}
