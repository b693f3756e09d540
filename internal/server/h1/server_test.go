package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
)

// echo answers with the method, path and request body.
func echo(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
}

func TestKeepAlive(t *testing.T) {
	t.Parallel()
	peers := make(chan string, 100)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		peers <- r.RemoteAddr
		echo(w, r)
	})
	c := dial(t, ts.addr)
	for i := range 50 {
		body := strconv.Itoa(i)
		c.send(fmt.Sprintf("POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", i, len(body), body))
		r := c.read("POST")
		if want := fmt.Sprintf("POST /%d %d", i, i); r.StatusCode != 200 || r.body != want || r.Close {
			t.Fatalf("request %d: %d %q close=%v, want %q", i, r.StatusCode, r.body, r.Close, want)
		}
	}
	first := <-peers
	for range 49 {
		if p := <-peers; p != first || p != c.LocalAddr().String() {
			t.Fatalf("RemoteAddr %s, want %s", p, c.LocalAddr())
		}
	}
}

func TestPipelining(t *testing.T) {
	t.Parallel()
	ts := start(t, echo)
	c := dial(t, ts.addr)
	c.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" +
		"HEAD /4 HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /5 HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, want := range []struct{ method, body string }{
		{"GET", "GET /1 "}, {"POST", "POST /2 hello"}, {"POST", "POST /3 abcde"}, {"HEAD", ""}, {"GET", "GET /5 "},
	} {
		r := c.read(want.method)
		if r.StatusCode != 200 || r.body != want.body {
			t.Fatalf("%s: %d %q, want %q", want.method, r.StatusCode, r.body, want.body)
		}
	}
	// Pipelined requests that arrive while a slow handler runs are answered in order too.
	c.send("GET /6 HTTP/1.1\r\nHost: x\r\n\r\nGET /7 HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, p := range []string{"/6", "/7"} {
		if r := c.read("GET"); r.body != "GET "+p+" " {
			t.Fatalf("got %q, want %s", r.body, p)
		}
	}
}

// TestPipelinedWhileHandlerRuns sends the next request while a handler is still running (past
// the point where the connection is watched for the client going away): the request is kept
// and answered, and the first handler's context is not canceled.
func TestPipelinedWhileHandlerRuns(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
			time.Sleep(2 * watchDelay)
			if err := r.Context().Err(); err != nil {
				t.Errorf("slow request's context: %v", err)
			}
		}
		echo(w, r)
	})
	c := dial(t, ts.addr)
	c.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	within(t, entered, "the handler")
	time.Sleep(3 * watchDelay) // let the background read start
	c.send("POST /next HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody")
	close(release)
	if r := c.read("GET"); r.body != "GET /slow " {
		t.Fatalf("first: %q", r.body)
	}
	if r := c.read("POST"); r.body != "POST /next body" {
		t.Fatalf("second: %q", r.body)
	}
}

func TestHTTP10(t *testing.T) {
	t.Parallel()
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/flush" {
			_, _ = io.WriteString(w, "streamed")
			http.NewResponseController(w).Flush()
			return
		}
		echo(w, r)
	})

	t.Run("closes by default", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.send("GET /a HTTP/1.0\r\n\r\n")
		r := c.read("GET")
		if r.body != "GET /a " || !r.Close || r.ContentLength != 7 {
			t.Fatalf("%q close=%v cl=%d", r.body, r.Close, r.ContentLength)
		}
		c.expectClosed()
	})
	t.Run("keep-alive", func(t *testing.T) {
		c := dial(t, ts.addr)
		for i := range 3 {
			c.send("POST /k HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi")
			r := c.read("POST")
			if r.body != "POST /k hi" || r.Close || r.Header.Get("Connection") != "keep-alive" {
				t.Fatalf("request %d: %q close=%v Connection=%q", i, r.body, r.Close, r.Header.Get("Connection"))
			}
		}
	})
	t.Run("keep-alive with an unknown length closes", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.send("GET /flush HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		r := c.read("GET")
		if r.body != "streamed" || !r.Close || len(r.TransferEncoding) != 0 {
			t.Fatalf("%q close=%v te=%v", r.body, r.Close, r.TransferEncoding)
		}
		c.expectClosed()
	})
	t.Run("no 1xx", func(t *testing.T) {
		ts := start(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			_, _ = io.WriteString(w, "final")
		})
		c := dial(t, ts.addr)
		c.send("GET / HTTP/1.0\r\n\r\n")
		if r := c.read("GET"); r.StatusCode != 200 || r.body != "final" {
			t.Fatalf("%d %q", r.StatusCode, r.body)
		}
	})
}

func TestConnectionClose(t *testing.T) {
	t.Parallel()
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/handler-closes" {
			w.Header().Set("Connection", "close")
		}
		if r.URL.Path != "/handler-closes" && !r.Close {
			t.Errorf("r.Close is false with Connection %q", r.Header.Get("Connection"))
		}
		ok(w, r)
	})
	for _, tc := range []struct{ name, req string }{
		{"client", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"},
		{"client token list", "GET / HTTP/1.1\r\nHost: x\r\nConnection: TE, Close\r\n\r\n"},
		{"handler", "GET /handler-closes HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ts.addr)
			c.send(tc.req + "GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
			if r := c.read("GET"); r.body != "ok" || !r.Close {
				t.Fatalf("%q close=%v", r.body, r.Close)
			}
			c.expectClosed()
		})
	}
	if n := ts.calls.Load(); n != 3 {
		t.Errorf("handler ran %d times, want 3", n)
	}
}

func TestHead(t *testing.T) {
	t.Parallel()
	writeErr := make(chan error, 4)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cl" {
			w.Header().Set("Content-Length", "5")
		}
		_, err := io.WriteString(w, "hello")
		if r.URL.Path == "/big" {
			_, err = w.Write(make([]byte, 64<<10))
		}
		if r.Method == "HEAD" {
			writeErr <- err
		}
	})
	c := dial(t, ts.addr)
	// Each HEAD is followed by a GET on the same connection: a stray body byte would break it.
	for _, tc := range []struct {
		path string
		cl   int64
	}{{"/cl", 5}, {"/nocl", -1}, {"/big", -1}} {
		c.send("HEAD " + tc.path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		r := c.read("HEAD")
		if r.StatusCode != 200 || r.body != "" || r.ContentLength != tc.cl {
			t.Fatalf("HEAD %s: %d %q cl=%d, want cl %d", tc.path, r.StatusCode, r.body, r.ContentLength, tc.cl)
		}
		if len(r.TransferEncoding) != 0 {
			t.Errorf("HEAD %s: Transfer-Encoding %v", tc.path, r.TransferEncoding)
		}
		if err := <-writeErr; err != nil {
			t.Errorf("HEAD %s: Write: %v", tc.path, err)
		}
		c.send("GET /cl HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := c.read("GET"); r.body != "hello" {
			t.Fatalf("GET after HEAD %s: %q", tc.path, r.body)
		}
	}
}

func TestNoBodyStatuses(t *testing.T) {
	t.Parallel()
	writeErr := make(chan error, 2)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Path[1:])
		w.Header().Set("Content-Length", "4")
		w.WriteHeader(code)
		_, err := io.WriteString(w, "body")
		writeErr <- err
	})
	c := dial(t, ts.addr)
	for _, code := range []int{204, 304} {
		c.send(fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", code))
		head := readRawHead(t, c)
		if !strings.HasPrefix(head[0], "HTTP/1.1 "+strconv.Itoa(code)) {
			t.Fatalf("status line %q", head[0])
		}
		if hasField(head, "Transfer-Encoding") || code == 204 && hasField(head, "Content-Length") {
			t.Errorf("%d: head %q", code, head)
		}
		if err := <-writeErr; !errors.Is(err, http.ErrBodyNotAllowed) {
			t.Errorf("%d: Write error %v, want ErrBodyNotAllowed", code, err)
		}
	}
	// Nothing followed either head: the next response starts right away.
	c.expectOpen()
}

// readRawHead reads a response head line by line.
func readRawHead(t *testing.T, c *client) []string {
	t.Helper()
	var lines []string
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading head: %v (so far %q)", err, lines)
		}
		if !strings.HasSuffix(l, "\r\n") {
			t.Fatalf("line %q does not end in CRLF", l)
		}
		if l == "\r\n" {
			return lines
		}
		lines = append(lines, strings.TrimSuffix(l, "\r\n"))
	}
}

func hasField(head []string, name string) bool {
	for _, l := range head[1:] {
		if k, _, _ := strings.Cut(l, ":"); strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

func TestResponseFraming(t *testing.T) {
	t.Parallel()
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		switch r.URL.Path {
		case "/small":
			_, _ = io.WriteString(w, "small")
			_, _ = w.Write([]byte(" body"))
		case "/empty":
		case "/large":
			_, _ = w.Write([]byte(strings.Repeat("x", 10000)))
		case "/many-small":
			for range 100 {
				_, _ = io.WriteString(w, strings.Repeat("y", 100))
			}
		case "/flushed":
			_, _ = io.WriteString(w, "flushed")
			if err := rc.Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
			_, _ = io.WriteString(w, " more")
		case "/declared":
			w.Header().Set("Content-Length", "9")
			_, _ = w.Write([]byte(strings.Repeat("z", 9)))
			_ = rc.Flush()
		case "/cl-after-writeheader":
			// A Content-Length set after WriteHeader is not the one the length was chosen
			// by: it must not end up next to chunked framing.
			w.WriteHeader(200)
			w.Header().Set("Content-Length", "100000")
			_, _ = w.Write([]byte(strings.Repeat("w", 8000)))
		case "/bad-cl":
			w.Header().Set("Content-Length", "abc")
			_, _ = io.WriteString(w, "fixed")
		case "/te":
			w.Header().Set("Transfer-Encoding", "gzip")
			_, _ = io.WriteString(w, "te")
		}
	})
	c := dial(t, ts.addr)
	for _, tc := range []struct {
		path    string
		body    string
		cl      int64
		chunked bool
	}{
		{"/small", "small body", 10, false},
		{"/empty", "", 0, false},
		{"/large", strings.Repeat("x", 10000), -1, true},
		{"/many-small", strings.Repeat("y", 10000), -1, true},
		{"/flushed", "flushed more", -1, true},
		{"/declared", "zzzzzzzzz", 9, false},
		{"/cl-after-writeheader", strings.Repeat("w", 8000), -1, true},
		{"/bad-cl", "fixed", 5, false},
		{"/te", "te", 2, false},
	} {
		c.send("GET " + tc.path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		head := readRawHead(t, c)
		if hasField(head, "Content-Length") && hasField(head, "Transfer-Encoding") {
			t.Fatalf("%s: both Content-Length and Transfer-Encoding: %q", tc.path, head)
		}
		if hasField(head, "Connection") {
			t.Fatalf("%s: %q", tc.path, head)
		}
		cl, chunked := int64(-1), false
		for _, l := range head[1:] {
			k, v, _ := strings.Cut(l, ": ")
			switch {
			case strings.EqualFold(k, "Content-Length"):
				cl, _ = strconv.ParseInt(v, 10, 64)
			case strings.EqualFold(k, "Transfer-Encoding"):
				chunked = v == "chunked"
			}
		}
		var b []byte
		var err error
		if chunked {
			b, err = io.ReadAll(httputil.NewChunkedReader(c.br))
			if err == nil {
				var end string
				if end, err = c.br.ReadString('\n'); end != "\r\n" {
					t.Fatalf("%s: after the last chunk: %q", tc.path, end)
				}
			}
		} else {
			b = make([]byte, max(cl, 0))
			_, err = io.ReadFull(c.br, b)
		}
		if err != nil {
			t.Fatalf("%s: body: %v", tc.path, err)
		}
		if string(b) != tc.body || cl != tc.cl || chunked != tc.chunked {
			t.Errorf("%s: %q cl=%d chunked=%v, want cl %d chunked %v", tc.path, b, cl, chunked, tc.cl, tc.chunked)
		}
	}
}

func TestResponseTrailers(t *testing.T) {
	t.Parallel()
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum, X-Empty-Later")
		_, _ = io.WriteString(w, "body")
		w.Header().Set("X-Sum", "42")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late\r\nX-Injected: 1")
		// Fields that frame or route a message are never sent as trailers.
		w.Header().Set(http.TrailerPrefix+"Content-Length", "4")
		w.Header().Set(http.TrailerPrefix+"Host", "evil")
	})
	c := dial(t, ts.addr)
	for range 2 {
		c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		r := c.read("GET")
		if r.body != "body" || len(r.TransferEncoding) == 0 {
			t.Fatalf("%q te=%v", r.body, r.TransferEncoding)
		}
		if got := r.Trailer.Get("X-Sum"); got != "42" {
			t.Errorf("X-Sum trailer %q", got)
		}
		if got := r.Trailer.Get("X-Late"); got != "late  X-Injected: 1" {
			t.Errorf("X-Late trailer %q", got)
		}
		if _, ok := r.Trailer["X-Injected"]; ok {
			t.Errorf("a trailer value split the trailers: %v", r.Trailer)
		}
		for _, k := range []string{"Content-Length", "Host"} {
			if _, ok := r.Trailer[k]; ok {
				t.Errorf("%s sent as a trailer: %v", k, r.Trailer)
			}
		}
		if _, ok := r.Header[http.TrailerPrefix+"X-Late"]; ok {
			t.Errorf("prefixed trailer in the head: %v", r.Header)
		}
	}
}

func TestRequestTrailers(t *testing.T) {
	t.Parallel()
	type seen struct {
		before, after http.Header
		body          string
		te            []string
	}
	got := make(chan seen, 1)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		before := r.Trailer.Clone()
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("body: %v", err)
		}
		got <- seen{before, r.Trailer, string(b), r.TransferEncoding}
	})
	c := dial(t, ts.addr)
	c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Digest, x-other\r\n\r\n" +
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Digest: abc\r\nX-Digest: def\r\nX-Undeclared: u\r\nHost: evil\r\nContent-Length: 5\r\n\r\n")
	if r := c.read("POST"); r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	s := within(t, got, "the handler")
	if s.body != "hello world" || strings.Join(s.te, ",") != "chunked" {
		t.Errorf("body %q te %v", s.body, s.te)
	}
	if len(s.before) != 2 || s.before["X-Digest"] != nil || s.before["X-Other"] != nil {
		t.Errorf("declared trailers before EOF: %v", s.before)
	}
	if strings.Join(s.after["X-Digest"], ",") != "abc,def" {
		t.Errorf("trailers after EOF: %v", s.after)
	}
	if _, ok := s.after["X-Undeclared"]; ok {
		// Only declared trailers are kept: a policy that cleaned the header of a field (and
		// deleted its declaration) must not see it come back as a trailer.
		t.Errorf("an undeclared trailer was kept: %v", s.after)
	}
	if _, ok := s.after["Host"]; ok {
		t.Errorf("Host accepted as a trailer: %v", s.after)
	}
	if _, ok := s.after["Content-Length"]; ok {
		t.Errorf("Content-Length accepted as a trailer: %v", s.after)
	}
	c.expectOpen()
}

func TestExpectContinue(t *testing.T) {
	t.Parallel()
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			echo(w, r)
			return
		}
		w.WriteHeader(http.StatusForbidden)
	})

	t.Run("handler reads the body", func(t *testing.T) {
		c := dial(t, ts.addr)
		for range 2 {
			c.send("POST /read HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n")
			if r := c.read("POST"); r.StatusCode != http.StatusContinue {
				t.Fatalf("status %d, want 100", r.StatusCode)
			}
			c.send("hello")
			if r := c.read("POST"); r.StatusCode != 200 || r.body != "POST /read hello" || r.Close {
				t.Fatalf("%d %q close=%v", r.StatusCode, r.body, r.Close)
			}
		}
	})
	t.Run("chunked body", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.send("POST /read HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
		if r := c.read("POST"); r.StatusCode != http.StatusContinue {
			t.Fatalf("status %d, want 100", r.StatusCode)
		}
		c.send("2\r\nhi\r\n0\r\n\r\n")
		if r := c.read("POST"); r.body != "POST /read hi" {
			t.Fatalf("%q", r.body)
		}
	})
	t.Run("handler answers without reading", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.send("POST /deny HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		r := c.read("POST")
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403 and no 100 before it", r.StatusCode)
		}
		if !r.Close {
			t.Errorf("the client may still send the body: the connection must close")
		}
		c.expectClosed()
	})
	t.Run("client sends the body anyway", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.send("POST /deny HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello" +
			"GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := c.read("POST"); r.StatusCode != http.StatusForbidden || !r.Close {
			t.Fatalf("status %d close=%v", r.StatusCode, r.Close)
		}
		c.expectClosed()
	})
	t.Run("explicit 100 from the handler", func(t *testing.T) {
		ts := start(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusContinue)
			echo(w, r)
		})
		c := dial(t, ts.addr)
		c.send("POST /read HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
		if r := c.read("POST"); r.StatusCode != http.StatusContinue {
			t.Fatalf("status %d, want 100", r.StatusCode)
		}
		c.send("hi")
		if r := c.read("POST"); r.StatusCode != 200 || r.body != "POST /read hi" {
			t.Fatalf("%d %q (a second 100?)", r.StatusCode, r.body)
		}
		c.expectOpen()
	})
	t.Run("no body", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.send("POST /read HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n")
		if r := c.read("POST"); r.StatusCode != 200 {
			t.Fatalf("status %d, want 200 straight away", r.StatusCode)
		}
		c.expectOpen()
	})
}

func TestUnreadBody(t *testing.T) {
	t.Parallel()
	ts := start(t, ok)

	t.Run("small fixed body is drained", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + strings.Repeat("b", 1000))
		if r := c.read("POST"); r.body != "ok" || r.Close {
			t.Fatalf("%q close=%v", r.body, r.Close)
		}
		c.expectOpen()
	})
	t.Run("small chunked body is drained", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + strings.Repeat("b", 1000) + "\r\n0\r\n\r\n")
		if r := c.read("POST"); r.body != "ok" || r.Close {
			t.Fatalf("%q close=%v", r.body, r.Close)
		}
		c.expectOpen()
	})
	t.Run("body sent after the response is drained", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
		// The response comes before the rest of the body: the server does not hold it back
		// until the body is drained.
		if r := c.read("POST"); r.body != "ok" || r.Close {
			t.Fatalf("%q close=%v", r.body, r.Close)
		}
		c.send("world")
		c.expectOpen()
	})
	t.Run("large fixed body closes", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.send(fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 10<<20) + strings.Repeat("b", 64<<10))
		r := c.read("POST")
		if r.body != "ok" || !r.Close {
			t.Fatalf("%q close=%v", r.body, r.Close)
		}
		c.expectClosed()
	})
	t.Run("large chunked body closes", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
		done := make(chan struct{})
		go func() { // the client goes on sending while it reads the answer
			defer close(done)
			chunk := fmt.Sprintf("%x\r\n%s\r\n", 32<<10, strings.Repeat("b", 32<<10))
			for range 64 {
				if _, err := io.WriteString(c.Conn, chunk); err != nil {
					return
				}
			}
		}()
		if r := c.read("POST"); r.body != "ok" {
			t.Fatalf("%q", r.body)
		}
		c.expectClosed()
		_ = c.Close()
		<-done
	})
}

func TestEarlyHints(t *testing.T) {
	t.Parallel()
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "final")
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.read("GET")
	if r.StatusCode != http.StatusEarlyHints || r.Header.Get("Link") != "</style.css>; rel=preload; as=style" {
		t.Fatalf("first response %d %v", r.StatusCode, r.Header)
	}
	if r.Header.Get("Content-Type") != "" {
		t.Errorf("103 carries headers set after it: %v", r.Header)
	}
	r = c.read("GET")
	if r.StatusCode != 200 || r.body != "final" || r.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("final response %d %q %v", r.StatusCode, r.body, r.Header)
	}
	c.expectOpen()
}

func TestHijack(t *testing.T) {
	t.Parallel()
	hijacked := make(chan error, 1)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			hijacked <- err
			return
		}
		defer conn.Close()
		_, _ = w.Write([]byte("x"))
		if _, err := w.Write([]byte("x")); !errors.Is(err, http.ErrHijacked) {
			hijacked <- fmt.Errorf("Write after Hijack: %v", err)
			return
		}
		if _, _, err := w.(http.Hijacker).Hijack(); !errors.Is(err, http.ErrHijacked) {
			hijacked <- fmt.Errorf("second Hijack: %v", err)
			return
		}
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		hijacked <- nil
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = brw.WriteString("echo: " + line)
			_ = brw.Flush()
		}
	})
	c := dial(t, ts.addr)
	// The first line after the head arrives in the same packet: it is in the server's buffer.
	c.send("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nping\n")
	if err := within(t, hijacked, "the handler"); err != nil {
		t.Fatal(err)
	}
	r := c.read("GET")
	if r.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", r.StatusCode)
	}
	for _, msg := range []string{"ping\n", "pong\n"} {
		if msg == "pong\n" {
			c.send(msg)
		}
		line, err := c.br.ReadString('\n')
		if err != nil || line != "echo: "+msg {
			t.Fatalf("echo %q %v", line, err)
		}
	}
	_ = c.Close()
}

// TestSwitchingProtocolsHeader: a handler that answers 101 itself and then hijacks keeps its
// Connection: Upgrade header, whether it flushed the head or left it to the hijacked writer.
func TestSwitchingProtocolsHeader(t *testing.T) {
	t.Parallel()
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "echo")
		w.WriteHeader(http.StatusSwitchingProtocols)
		rc := http.NewResponseController(w)
		if r.URL.Path == "/flush" {
			if err := rc.Flush(); err != nil {
				t.Errorf("Flush: %v", err)
				return
			}
		}
		conn, brw, err := rc.Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		_ = brw.Flush()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo: " + line)
		_ = brw.Flush()
	})
	for _, path := range []string{"/flush", "/no-flush"} {
		t.Run(path, func(t *testing.T) {
			c := dial(t, ts.addr)
			c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			r := c.read("GET")
			if r.StatusCode != 101 || r.Header.Get("Connection") != "Upgrade" || r.Header.Get("Upgrade") != "echo" {
				t.Fatalf("%d %v", r.StatusCode, r.Header)
			}
			c.send("hi\n")
			if line, err := c.br.ReadString('\n'); line != "echo: hi\n" {
				t.Fatalf("%q %v", line, err)
			}
		})
	}
}

func TestFlushAfterClientGone(t *testing.T) {
	t.Parallel()
	flushed := make(chan struct{})
	result := make(chan error, 1)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_, _ = io.WriteString(w, "first")
		if err := rc.Flush(); err != nil {
			result <- fmt.Errorf("first Flush: %v", err)
			return
		}
		close(flushed)
		<-r.Context().Done() // the client goes away
		chunk := strings.Repeat("x", 1024)
		for range 1000 {
			_, _ = io.WriteString(w, chunk)
			if err := rc.Flush(); err != nil {
				if _, err2 := io.WriteString(w, "more"); err2 == nil {
					result <- errors.New("Write succeeds after a failed Flush")
					return
				}
				result <- nil
				return
			}
			time.Sleep(time.Millisecond)
		}
		result <- errors.New("Flush never failed")
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	within(t, flushed, "the first flush")
	buf := make([]byte, 5)
	if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("%q %v", buf, err)
	}
	_ = c.Close()
	if err := within(t, result, "the handler"); err != nil {
		t.Fatal(err)
	}
}

func TestHandlerPanic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		value   any
		flushed bool
		logged  bool
	}{
		{"before flush", "boom", false, true},
		{"after flush", "boom", true, true},
		{"ErrAbortHandler", http.ErrAbortHandler, true, false},
		{"ErrAbortHandler before flush", http.ErrAbortHandler, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			late := make(chan error, 1)
			proceed := make(chan struct{})
			ts := start(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/panic" {
					ok(w, r)
					return
				}
				go func() {
					// A goroutine the handler started writes after the panic: refused, and
					// nothing reaches a buffer another connection may be using by now.
					<-proceed
					_, err := io.WriteString(w, "late")
					if err == nil {
						err = http.NewResponseController(w).Flush()
					}
					late <- err
				}()
				_, _ = io.WriteString(w, "partial")
				if tc.flushed {
					http.NewResponseController(w).Flush()
				}
				panic(tc.value)
			})
			c := dial(t, ts.addr)
			c.send("GET /panic HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
			if tc.flushed {
				res, err := http.ReadResponse(c.br, nil)
				if err != nil {
					t.Fatal(err)
				}
				if b, err := io.ReadAll(res.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("body %q %v: a complete response after a panic", b, err)
				}
			} else {
				c.expectClosed()
			}
			close(proceed)
			if err := within(t, late, "the late write"); err == nil {
				t.Errorf("a write after the panic succeeded")
			}
			// The server keeps serving.
			c2 := dial(t, ts.addr)
			c2.expectOpen()
			if logged := strings.Contains(ts.logs.String(), "handler panic"); logged != tc.logged {
				t.Errorf("panic logged %v, want %v: %s", logged, tc.logged, ts.logs.String())
			}
			if n := ts.calls.Load(); n != 2 {
				t.Errorf("handler ran %d times, want 2", n)
			}
		})
	}
}

// TestWriteAfterHandlerReturned: a goroutine the handler started writes once the handler has
// returned; its writes fail and the next response on the connection is intact.
func TestWriteAfterHandlerReturned(t *testing.T) {
	t.Parallel()
	proceed := make(chan struct{})
	late := make(chan []error, 1)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/first" {
			_, _ = io.WriteString(w, "second")
			return
		}
		go func() {
			<-proceed
			var errs []error
			_, err := io.WriteString(w, "late-string")
			errs = append(errs, err)
			_, err = w.Write([]byte("late-bytes"))
			errs = append(errs, err)
			w.WriteHeader(http.StatusTeapot)
			errs = append(errs, http.NewResponseController(w).Flush())
			late <- errs
		}()
		_, _ = io.WriteString(w, "first")
	})
	c := dial(t, ts.addr)
	c.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read("GET"); r.body != "first" {
		t.Fatalf("%q", r.body)
	}
	close(proceed)
	for i, err := range within(t, late, "the late writes") {
		if err == nil {
			t.Errorf("late call %d succeeded", i)
		}
	}
	for range 3 {
		c.send("GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
		if r := c.read("GET"); r.StatusCode != 200 || r.body != "second" {
			t.Fatalf("%d %q", r.StatusCode, r.body)
		}
	}
}

func TestHeaderInjection(t *testing.T) {
	t.Parallel()
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-A", "a\r\nX-Injected: 1")
		w.Header().Set("X-B", "b\nSet-Cookie: evil=1")
		w.Header()["X-C\r\nX-Injected-Name: 1"] = []string{"c"}
		w.Header().Set("X-D", "d\x00e")
		_, _ = io.WriteString(w, "ok")
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.read("GET")
	if r.body != "ok" {
		t.Fatalf("%q", r.body)
	}
	for _, k := range []string{"X-Injected", "Set-Cookie", "X-Injected-Name"} {
		if _, ok := r.Header[k]; ok {
			t.Errorf("header %s injected: %v", k, r.Header)
		}
	}
	if r.Header.Get("X-A") != "a  X-Injected: 1" || r.Header.Get("X-D") != "d e" {
		t.Errorf("sanitized values: %q %q", r.Header.Get("X-A"), r.Header.Get("X-D"))
	}
	c.expectOpen()
}

func TestDateHeader(t *testing.T) {
	t.Parallel()
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/own" {
			w.Header().Set("Date", "Mon, 02 Jan 2006 15:04:05 GMT")
		}
		ok(w, r)
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.read("GET")
	d, err := http.ParseTime(r.Header.Get("Date"))
	if err != nil {
		t.Fatalf("Date %q: %v", r.Header.Get("Date"), err)
	}
	if age := time.Since(d); age < -2*time.Second || age > time.Minute {
		t.Errorf("Date %v is off by %v", d, age)
	}
	c.send("GET /own HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read("GET"); len(r.Header["Date"]) != 1 || r.Header.Get("Date") != "Mon, 02 Jan 2006 15:04:05 GMT" {
		t.Errorf("handler's Date: %q", r.Header["Date"])
	}
}

func TestContentLengthMismatch(t *testing.T) {
	t.Parallel()
	writeErr := make(chan error, 1)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		switch r.URL.Path {
		case "/short":
			_, _ = io.WriteString(w, "short")
		case "/long":
			_, _ = io.WriteString(w, "0123456789")
			_, err := io.WriteString(w, "x")
			writeErr <- err
		}
	})
	c := dial(t, ts.addr)
	c.send("GET /long HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read("GET"); r.body != "0123456789" {
		t.Fatalf("%q", r.body)
	}
	if err := <-writeErr; !errors.Is(err, http.ErrContentLength) {
		t.Errorf("overlong write: %v", err)
	}
	// The refused write left a complete response: the connection goes on.
	c.send("GET /long HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read("GET"); r.body != "0123456789" || r.Close {
		t.Fatalf("%q close=%v", r.body, r.Close)
	}
	<-writeErr
	// A short body can only be signalled by closing the connection.
	c.send("GET /short HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := c.tryRead("GET"); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short body: %v", err)
	}
}

// TestRequestFields checks what the handler sees: protocol, URL, Host, RemoteAddr, the local
// address in the context, and a body that fails after Close.
func TestRequestFields(t *testing.T) {
	t.Parallel()
	type seen struct {
		proto      string
		major      int
		minor      int
		path, raw  string
		query      string
		host       string
		remote     string
		local      net.Addr
		closeErr   error
		readClosed error
	}
	got := make(chan seen, 1)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		s := seen{proto: r.Proto, major: r.ProtoMajor, minor: r.ProtoMinor, path: r.URL.Path, raw: r.URL.RawPath,
			query: r.URL.RawQuery, host: r.Host, remote: r.RemoteAddr}
		s.local, _ = r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		s.closeErr = r.Body.Close()
		_, s.readClosed = r.Body.Read(make([]byte, 1))
		got <- s
	})
	c := dial(t, ts.addr)
	c.send("POST /a%2Fb/c?q=1&r HTTP/1.1\r\nHost: example.com:81\r\nContent-Length: 3\r\n\r\nabc")
	if r := c.read("POST"); r.StatusCode != 200 {
		t.Fatalf("status %d", r.StatusCode)
	}
	s := within(t, got, "the handler")
	if s.proto != "HTTP/1.1" || s.major != 1 || s.minor != 1 || s.path != "/a/b/c" || s.raw != "/a%2Fb/c" ||
		s.query != "q=1&r" || s.host != "example.com:81" || s.remote != c.LocalAddr().String() ||
		s.local == nil || s.local.String() != ts.addr {
		t.Errorf("handler saw %+v", s)
	}
	if s.closeErr != nil || !errors.Is(s.readClosed, http.ErrBodyReadAfterClose) {
		t.Errorf("Close %v, Read after Close %v", s.closeErr, s.readClosed)
	}
	// The closed body was drained: the connection goes on.
	c.expectOpen()
}

// TestFullDuplex: a goroutine reads the request body while the handler writes and flushes
// the response; the client only sends more body after it has seen the response start.
func TestFullDuplex(t *testing.T) {
	t.Parallel()
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			t.Errorf("EnableFullDuplex: %v", err)
		}
		lines := make(chan string)
		reading := make(chan struct{})
		go func() {
			defer close(lines)
			close(reading)
			br := bufio.NewReader(r.Body)
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				lines <- l
			}
		}()
		<-reading
		time.Sleep(20 * time.Millisecond) // the reader is (very likely) blocked in Read
		_, _ = io.WriteString(w, "ready\n")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
			return
		}
		for l := range lines {
			_, _ = io.WriteString(w, "echo: "+l)
			_ = rc.Flush()
		}
	})
	c := dial(t, ts.addr)
	c.send("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(res.Body)
	if l, err := br.ReadString('\n'); l != "ready\n" {
		t.Fatalf("%q %v", l, err)
	}
	for _, msg := range []string{"one\n", "two\n"} {
		c.send(fmt.Sprintf("%x\r\n%s\r\n", len(msg), msg))
		if l, err := br.ReadString('\n'); l != "echo: "+msg {
			t.Fatalf("%q %v", l, err)
		}
	}
	c.send("0\r\n\r\n")
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("%q %v", rest, err)
	}
	c.expectOpen()
}

// TestConcurrentConnections runs many connections at once (under -race) to shake out data
// races between connections sharing pooled buffers.
func TestConcurrentConnections(t *testing.T) {
	t.Parallel()
	ts := start(t, echo)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", ts.addr, wait)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(wait))
			br := bufio.NewReader(c)
			for j := range 20 {
				body := fmt.Sprintf("%d-%d", i, j)
				fmt.Fprintf(c, "POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(res.Body)
				if string(b) != "POST /c "+body {
					t.Errorf("got %q want %q", b, body)
					return
				}
			}
		}()
	}
	wg.Wait()
}

type ctxKey struct{}

// TestConnContext: ConnContext's context reaches the handler and Refuse.
func TestConnContext(t *testing.T) {
	t.Parallel()
	seen := make(chan any, 2)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Context().Value(ctxKey{})
		ok(w, r)
	}, func(s *Server) {
		s.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, ctxKey{}, c.RemoteAddr().String())
		}
		s.Refuse = func(w http.ResponseWriter, r *http.Request, e *RequestError) {
			seen <- r.Context().Value(ctxKey{})
			defaultRefuse(w, r, e)
		}
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\n\r\n")
	c.read("GET")
	c.read("GET")
	for range 2 {
		if v := within(t, seen, "the context"); v != c.LocalAddr().String() {
			t.Errorf("context value %v", v)
		}
	}
}

// TestDefaultRefuse: without a Refuse function, a refusal is a short JSON error.
func TestDefaultRefuse(t *testing.T) {
	t.Parallel()
	ts := start(t, ok, func(s *Server) { s.Refuse = nil })
	c := dial(t, ts.addr)
	c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
	r := c.read("POST")
	if r.StatusCode != 400 || r.Header.Get("Content-Type") != "application/json" ||
		!strings.HasPrefix(r.body, `{"error":"request_smuggling","message":"both Content-Length and Transfer-Encoding"}`) {
		t.Fatalf("%d %v %q", r.StatusCode, r.Header, r.body)
	}
}

// TestLargeResponseToUnreadBody: the handler answers a large body it does not read with a
// large response. The connection closes with the client's bytes unread, yet the whole
// response reaches the client: a plain close would reset the connection and drop what the
// socket still had to send.
func TestLargeResponseToUnreadBody(t *testing.T) {
	t.Parallel()
	const size = 4 << 20
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		_, _ = w.Write(make([]byte, size))
	})
	for range 2 {
		c := dial(t, ts.addr)
		c.send(fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 64<<20))
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = io.WriteString(c.Conn, strings.Repeat("b", 1<<20))
		}()
		res, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, res.Body)
		if err != nil || n != size || !res.Close {
			t.Fatalf("read %d bytes: %v (close=%v)", n, err, res.Close)
		}
		_ = c.Close()
		<-done
	}
}

// needsScrub finds exactly the bytes strings.ContainsAny(v, "\r\n\x00") would.
func TestNeedsScrub(t *testing.T) {
	for c := 0; c < 256; c++ {
		for _, v := range []string{string(rune(c)), "ab" + string([]byte{byte(c)}), string([]byte{byte(c)}) + "cd", "x" + string([]byte{byte(c)}) + "y"} {
			if got, want := needsScrub(v), strings.ContainsAny(v, "\r\n\x00"); got != want {
				t.Fatalf("needsScrub(%q) = %v, want %v", v, got, want)
			}
		}
	}
	if needsScrub("") || needsScrub("text/plain; charset=utf-8") {
		t.Fatal("a clean value needs scrubbing")
	}
}

// A response adopts a header map built elsewhere (the proxy's upstream response) while nobody
// has asked for its own; once someone has (even without setting a field: the map may be held
// and written later), or once the status is chosen, it declines, and the caller copies instead.
func TestAdoptHeader(t *testing.T) {
	t.Parallel()
	var declined, late atomic.Bool
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/own" {
			h := w.Header() // handed out, still empty
			declined.Store(!httpx.AdoptHeader(w, http.Header{"X-Up": {"u"}}))
			h.Set("X-Pre", "a")
			_, _ = io.WriteString(w, "ok")
			return
		}
		up := http.Header{"Vary": {"up"}, "X-Up": {"u"}, "Content-Length": {"2"}}
		if !httpx.AdoptHeader(w, up) {
			t.Error("the HTTP/1.x response did not adopt the header")
		}
		if w.Header().Get("X-Up") != "u" {
			t.Error("Header() is not the adopted map")
		}
		w.WriteHeader(http.StatusOK)
		late.Store(httpx.AdoptHeader(w, http.Header{"X-Late": {"l"}}))
		_, _ = io.WriteString(w, "ok")
	})
	c := dial(t, ts.addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	r := c.read("GET")
	if r.body != "ok" || r.Header.Get("X-Up") != "u" || r.Header.Get("Vary") != "up" {
		t.Fatalf("body %q, fields %v", r.body, r.Header)
	}
	if late.Load() || r.Header.Get("X-Late") != "" {
		t.Error("a header map was adopted after the status was written")
	}
	c.send("GET /own HTTP/1.1\r\nHost: x\r\n\r\n")
	r = c.read("GET")
	if !declined.Load() || r.Header.Get("X-Up") != "" || r.Header.Get("X-Pre") != "a" {
		t.Errorf("a response whose map was handed out adopted another (declined=%v, fields %v)", declined.Load(), r.Header)
	}
	c.expectOpen()
}
