package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// framingServer serves echo responses behind the framing guard, answering refused heads the
// way the gateway does.
func framingServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		ConnContext: withFraming,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if reason, ok := refusedFraming(r); ok {
				w.Header().Set("Connection", "close")
				w.WriteHeader(400)
				fmt.Fprintf(w, "refused: %s", reason)
				return
			}
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s body=%q", r.Method, r.URL.Path, b)
		}),
	}
	go srv.Serve(&framingListener{Listener: ln, maxHead: 1 << 16})
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// exchange writes raw and reads every response until the server closes or goes quiet.
func exchange(t *testing.T, addr, raw string, chunks ...string) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, raw)
	for _, ch := range chunks {
		time.Sleep(10 * time.Millisecond)
		io.WriteString(c, ch)
	}
	br := bufio.NewReader(c)
	var out []string
	for {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, fmt.Sprintf("%d %s", resp.StatusCode, b))
	}
}

func TestFramingGuard(t *testing.T) {
	addr := framingServer(t)
	cases := []struct {
		name   string
		raw    string
		chunks []string
		want   []string
	}{
		{"pipelined keep-alive with bodies",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: 1\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n", nil,
			[]string{`200 POST /a body="hello"`, `200 POST /b body="abcde"`, `200 GET /c body=""`}},
		{"head split across writes", "GET /sp", []string{"lit HTTP/1.1\r\nHo", "st: x\r\n\r\n"}, []string{`200 GET /split body=""`}},
		{"body containing a fake head",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\nGET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n", nil,
			[]string{`200 POST /a body="GET /x HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: x\r\n\r\n"`, `200 GET /after body=""`}},
		{"CL and TE refused",
			"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", nil,
			[]string{"400 refused: both Content-Length and Transfer-Encoding"}},
		{"TE and CL after a good request",
			"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nPOST /a HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 10\r\n\r\n0\r\n\r\n", nil,
			[]string{`200 GET /ok body=""`, "400 refused: both Content-Length and Transfer-Encoding"}},
		{"duplicate TE refused", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", nil,
			[]string{"400 refused: several Transfer-Encoding headers"}},
		{"conflicting CL rejected by net/http", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", nil,
			[]string{"400 400 Bad Request"}},
		{"CL and TE after a chunked request",
			"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", nil,
			[]string{`200 POST /a body="abc"`, "400 refused: both Content-Length and Transfer-Encoding"}},
		{"TE on HTTP/1.0 refused",
			"POST /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", nil,
			[]string{"400 refused: Transfer-Encoding on HTTP/1.0"}},
		{"obfuscated TE rejected by net/http", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", nil,
			[]string{"501 Unsupported transfer encoding"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, addr, tc.raw, tc.chunks...)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d responses %q, want %q", len(got), got, tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("response %d = %q, want prefix %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestFramingLargeBody(t *testing.T) {
	addr := framingServer(t)
	body := strings.Repeat("z", 1<<20)
	resp, err := http.Post("http://"+addr+"/big", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), "POST /big body=\"zzz") || len(b) < 1<<20 {
		t.Fatalf("large body mangled: %d bytes", len(b))
	}
}

// A head just over MaxHeaderBytes is still read by net/http (it allows 4096 bytes of slack), so
// the guard must not give up on it and let an ambiguous head through.
func TestFramingGuardLargeHead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		ConnContext:    withFraming,
		MaxHeaderBytes: 4096,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if reason, ok := refusedFraming(r); ok {
				w.Header().Set("Connection", "close")
				w.WriteHeader(400)
				fmt.Fprintf(w, "refused: %s", reason)
				return
			}
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s body=%q", r.Method, r.URL.Path, b)
		}),
	}
	go srv.Serve(newFramingListener(ln, srv.MaxHeaderBytes))
	t.Cleanup(func() { srv.Close() })
	pad := "X-Pad: " + strings.Repeat("a", 6000) + "\r\n"
	got := exchange(t, ln.Addr().String(), "POST /a HTTP/1.1\r\nHost: x\r\n"+pad[:5000], pad[5000:],
		"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if len(got) != 1 || !strings.HasPrefix(got[0], "400 refused") {
		t.Fatalf("got %q, want the head refused", got)
	}
}

// cannedBackend answers each request with the raw response registered for its path (the path
// of the request line), then keeps the connection open for the next request.
func cannedBackend(t *testing.T, answers map[string]string) string {
	return serveConns(t, func(c net.Conn, br *bufio.Reader) error {
		req, err := http.ReadRequest(br)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, req.Body)
		_, err = io.WriteString(c, answers[req.URL.Path])
		return err
	})
}

// TestUpstreamResponseFraming sends backend responses framed every which way through the real
// gateway: ambiguous framing is a 502 (and never reaches the client in any form), tolerated
// oddities (bare LF, obs-fold, repeated equal lengths) are re-serialized cleanly.
func TestUpstreamResponseFraming(t *testing.T) {
	be := cannedBackend(t, map[string]string{
		"/both":     "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"/te10":     "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"/gzipte":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"/kelvin":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chun\u212aed\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"/conflict": "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
		"/badcl":    "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
		"/badname":  "HTTP/1.1 200 OK\r\nX Bad: 1\r\nContent-Length: 5\r\n\r\nhello",
		"/ctl":      "HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 5\r\n\r\nhello",
		"/badchunk": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
		"/http2":    "HTTP/2.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"/lf":       "HTTP/1.1 200 OK\nX-Lf: yes\nContent-Length: 5\n\nhello",
		"/fold":     "HTTP/1.1 200 OK\r\nX-Fold: a\r\n  b\r\nContent-Length: 5\r\n\r\nhello",
		"/dupcl":    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
		"/chunked":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\nX-Sum: 42\r\n\r\n",
		"/connlist": "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nContent-Length: 5\r\n\r\nhello",
	})
	g := startGateway(t, `version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services: [{ name: be, targets: [{ url: "http://${BE}" }] }]
routes: [{ name: all, match: { path: /** }, service: be }]
`, map[string]string{"BE": be})

	for _, path := range []string{"/both", "/te10", "/gzipte", "/kelvin", "/conflict", "/badcl", "/badname", "/ctl", "/http2"} {
		resp, err := http.Get(g.base + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), `"bad_gateway"`) || strings.Contains(string(body), "hello") {
			t.Errorf("%s: %d %q, want a 502 bad_gateway without the upstream body", path, resp.StatusCode, body)
		}
	}
	// A malformed chunk after the head was sent: the response is cut, never completed.
	if resp, err := http.Get(g.base + "/badchunk"); err == nil {
		_, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && rerr == nil {
			t.Errorf("/badchunk: a complete 200 response reached the client")
		}
	}

	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(g.base + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: body: %v", path, err)
		}
		return resp, string(b)
	}
	if resp, body := get("/lf"); resp.StatusCode != 200 || body != "hello" || resp.Header.Get("X-Lf") != "yes" {
		t.Errorf("/lf: %d %q X-Lf=%q", resp.StatusCode, body, resp.Header.Get("X-Lf"))
	}
	if resp, body := get("/fold"); resp.StatusCode != 200 || body != "hello" || resp.Header.Get("X-Fold") != "a b" {
		t.Errorf("/fold: %d %q X-Fold=%q, want the folded value joined by one space", resp.StatusCode, body, resp.Header.Get("X-Fold"))
	}
	if resp, body := get("/dupcl"); resp.StatusCode != 200 || body != "hello" || len(resp.Header["Content-Length"]) > 1 {
		t.Errorf("/dupcl: %d %q Content-Length=%q", resp.StatusCode, body, resp.Header["Content-Length"])
	}
	// Fields named in Connection are hop-by-hop even when Connection also says close.
	if resp, body := get("/connlist"); resp.StatusCode != 200 || body != "hello" || resp.Header.Get("X-Secret") != "" {
		t.Errorf("/connlist: %d %q X-Secret=%q, want it removed", resp.StatusCode, body, resp.Header.Get("X-Secret"))
	}
	if resp, body := get("/chunked"); resp.StatusCode != 200 || body != "hello" || resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("/chunked: %d %q trailer %v", resp.StatusCode, body, resp.Trailer)
	}
}
