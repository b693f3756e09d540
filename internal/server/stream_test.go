package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// streamBackend serves SSE, an upgrade echo, trailers and a large streamed body.
func streamBackend(t *testing.T, release chan struct{}) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sse":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			fmt.Fprint(w, "data: second\n\n")
		case "/ws":
			if r.Header.Get("Upgrade") != "echo" {
				http.Error(w, "want upgrade", 400)
				return
			}
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			_ = brw.Flush()
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			fmt.Fprint(brw, "echo:"+line)
			_ = brw.Flush()
		case "/trailers":
			w.Header().Set("Trailer", "X-Checksum")
			fmt.Fprint(w, "body")
			w.Header().Set("X-Checksum", "abc123")
		case "/big":
			chunk := strings.Repeat("z", 64<<10)
			for i := 0; i < 64; i++ { // 4 MiB
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

const streamYAML = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services: [{ name: s, targets: [{ url: "http://${S}" }] }]
routes: [{ name: s, match: { path: /** }, service: s }]
`

func TestServerSentEventsFlushImmediately(t *testing.T) {
	release := make(chan struct{})
	be := streamBackend(t, release)
	g := startGateway(t, streamYAML, map[string]string{"S": hostPort(be)})
	resp, err := http.Get(g.base + "/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() {
		line, _ := r.ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "data: first\n" {
			t.Fatalf("first event line %q", line)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("first event not delivered while the upstream stream is still open: the proxy buffers")
	}
	close(release)
	rest, _ := io.ReadAll(r)
	if !strings.Contains(string(rest), "data: second") {
		t.Fatalf("second event missing: %q", rest)
	}
}

func TestUpgradePassThrough(t *testing.T) {
	be := streamBackend(t, nil)
	g := startGateway(t, streamYAML, map[string]string{"S": hostPort(be)})
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	fmt.Fprint(c, "hello over the upgraded connection\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "echo:hello over the upgraded connection\n" {
		t.Fatalf("echo %q %v", line, err)
	}
}

func TestTrailersAndLargeBodies(t *testing.T) {
	be := streamBackend(t, nil)
	g := startGateway(t, streamYAML, map[string]string{"S": hostPort(be)})
	resp, err := http.Get(g.base + "/trailers")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "body" || resp.Trailer.Get("X-Checksum") != "abc123" {
		t.Fatalf("body %q trailer %q", body, resp.Trailer.Get("X-Checksum"))
	}
	resp, err = http.Get(g.base + "/big")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != 4<<20 {
		t.Fatalf("streamed %d bytes (%v), want 4 MiB", n, err)
	}
}

// An upstream's 103 Early Hints reaches the client before the final response, with its Link
// field, and the field does not leak into the final response.
func TestEarlyHintsForwarded(t *testing.T) {
	_, hp := earlyHintsBackend(t, false)
	g := startGateway(t, streamYAML, map[string]string{"S": hp})
	expectEarlyHints(t, g.addr)
}
