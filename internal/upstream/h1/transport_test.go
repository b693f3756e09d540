package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/reqctx"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// countingRT is a fallback that records its use.
type countingRT struct {
	n  atomic.Int32
	rt http.RoundTripper
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

func (c *countingRT) CloseIdleConnections() {
	if ci, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

func newTransport(t *testing.T, o Options) (*Transport, *countingRT) {
	t.Helper()
	std := &http.Transport{DisableCompression: true}
	fb := &countingRT{rt: std}
	o.Fallback = fb
	tr, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr, fb
}

// echoServer answers with the client's port, the request body and framing.
func echoServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, port, _ := net.SplitHostPort(r.RemoteAddr)
		w.Header().Set("X-Port", port)
		w.Header().Set("X-TE", strings.Join(r.TransferEncoding, ","))
		w.Header().Set("X-CL", fmt.Sprint(r.ContentLength))
		w.Header().Set("X-UA", r.UserAgent())
		switch r.URL.Path {
		case "/chunked":
			_, _ = w.Write([]byte("part1;"))
			w.(http.Flusher).Flush()
			_, _ = w.Write(b)
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/close":
			w.Header().Set("Connection", "close")
			_, _ = w.Write([]byte("bye"))
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 1<<20)))
		default:
			_, _ = w.Write(b)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, rt http.RoundTripper, method, url string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	_ = resp.Body.Close()
	return resp, string(b)
}

func hostOf(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

func TestKeepAliveReuse(t *testing.T) {
	srv := echoServer(t)
	tr, fb := newTransport(t, Options{})
	r1, _ := do(t, tr, "GET", srv.URL+"/a", nil)
	r2, _ := do(t, tr, "GET", srv.URL+"/b", nil)
	if r1.Header.Get("X-Port") != r2.Header.Get("X-Port") {
		t.Fatalf("connection not reused: ports %s, %s", r1.Header.Get("X-Port"), r2.Header.Get("X-Port"))
	}
	if st := tr.Stats(hostOf(srv)); st.Idle != 1 || st.Open != 1 {
		t.Fatalf("stats %+v, want 1 idle of 1", st)
	}
	if r1.Header.Get("X-UA") != "Go-http-client/1.1" {
		t.Fatalf("default user agent %q", r1.Header.Get("X-UA"))
	}
	if fb.n.Load() != 0 {
		t.Fatal("fallback used")
	}
}

func TestBodies(t *testing.T) {
	srv := echoServer(t)
	tr, fb := newTransport(t, Options{})
	tests := []struct {
		name, path, body string
		chunkedReq       bool
		wantTE, wantCL   string
		wantBody         string
		wantRespChunked  bool
	}{
		{name: "content-length both ways", path: "/cl", body: "hello", wantTE: "", wantCL: "5", wantBody: "hello"},
		{name: "chunked request", path: "/cl", body: "streamed", chunkedReq: true, wantTE: "chunked", wantCL: "-1", wantBody: "streamed"},
		{name: "chunked response", path: "/chunked", body: "abc", wantTE: "", wantCL: "3", wantBody: "part1;abc", wantRespChunked: true},
		{name: "chunked both ways", path: "/chunked", body: "xyz", chunkedReq: true, wantTE: "chunked", wantCL: "-1", wantBody: "part1;xyz", wantRespChunked: true},
		{name: "empty post", path: "/cl", body: "", wantTE: "", wantCL: "0", wantBody: ""},
	}
	var port string
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunkedReq {
				body = io.MultiReader(strings.NewReader(tc.body)) // unknown length
			}
			resp, got := do(t, tr, "POST", srv.URL+tc.path, body)
			if got != tc.wantBody || resp.Header.Get("X-TE") != tc.wantTE || resp.Header.Get("X-CL") != tc.wantCL {
				t.Fatalf("body %q TE %q CL %q", got, resp.Header.Get("X-TE"), resp.Header.Get("X-CL"))
			}
			if chunked := len(resp.TransferEncoding) > 0; chunked != tc.wantRespChunked {
				t.Fatalf("response chunked = %v", chunked)
			}
			if port != "" && resp.Header.Get("X-Port") != port {
				t.Fatal("connection not reused")
			}
			port = resp.Header.Get("X-Port")
		})
	}
	if fb.n.Load() != 0 {
		t.Fatal("fallback used")
	}
}

func TestNoBodyResponsesKeepConnection(t *testing.T) {
	srv := echoServer(t)
	tr, _ := newTransport(t, Options{})
	var port string
	for _, tc := range []struct{ method, path string }{{"HEAD", "/big"}, {"GET", "/204"}, {"GET", "/304"}, {"GET", "/x"}} {
		resp, body := do(t, tr, tc.method, srv.URL+tc.path, nil)
		if body != "" {
			t.Fatalf("%s %s: body %q", tc.method, tc.path, body)
		}
		if port != "" && resp.Header.Get("X-Port") != port {
			t.Fatalf("%s %s: connection not reused", tc.method, tc.path)
		}
		port = resp.Header.Get("X-Port")
	}
	if st := tr.Stats(hostOf(srv)); st.Open != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUpstreamConnectionClose(t *testing.T) {
	srv := echoServer(t)
	tr, _ := newTransport(t, Options{})
	r1, body := do(t, tr, "GET", srv.URL+"/close", nil)
	if body != "bye" || !r1.Close {
		t.Fatalf("body %q close %v", body, r1.Close)
	}
	if st := tr.Stats(hostOf(srv)); st.Open != 0 || st.Idle != 0 {
		t.Fatalf("closed connection kept: %+v", st)
	}
	r2, _ := do(t, tr, "GET", srv.URL+"/x", nil)
	if r1.Header.Get("X-Port") == r2.Header.Get("X-Port") {
		t.Fatal("closed connection reused")
	}
}

// rawServer serves each accepted connection with handle(connection index, conn, reader).
func rawServer(t *testing.T, handle func(i int, c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(i, c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "http://" + ln.Addr().String()
}

// readReq reads one request from br.
func readReq(br *bufio.Reader) (*http.Request, error) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, r.Body)
	return r, nil
}

const okResp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

func TestStaleConnectionRetriedOnce(t *testing.T) {
	var conns atomic.Int32
	// Every connection answers one request, then closes without a word.
	url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		conns.Add(1)
		if _, err := readReq(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, okResp)
		_, _ = readReq(br) // a second request gets no answer
	})
	tr, _ := newTransport(t, Options{})
	for i := range 3 {
		if _, body := do(t, tr, "GET", url+"/", nil); body != "ok" {
			t.Fatalf("GET %d: body %q", i, body)
		}
	}
	// The POST's idle connection looks alive (the server waits for a request), so it is sent;
	// it cannot be replayed, so the broken exchange is an error.
	req, _ := http.NewRequest("POST", url+"/", strings.NewReader("x"))
	if _, err := tr.RoundTrip(req); err == nil {
		t.Fatal("POST on a broken connection succeeded")
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3 (the first, then one redial per later GET)", n)
	}
}

func TestIdleClosedByUpstream(t *testing.T) {
	// The server answers once, then closes the idle connection.
	url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, okResp)
	})
	tr, _ := newTransport(t, Options{})
	for _, m := range []string{"GET", "POST", "GET", "PATCH"} {
		if _, body := do(t, tr, m, url+"/", strings.NewReader("b")); body != "ok" {
			t.Fatalf("%s: body %q", m, body)
		}
		time.Sleep(20 * time.Millisecond) // let the close arrive
	}
}

// TestResetAfterResponse: a target that resets each connection right after its response (a
// crash, an idle close with SO_LINGER 0). The reset arrives before or after the next request
// is written; either way the replayable request goes again on a new connection and no error
// reaches the caller.
func TestResetAfterResponse(t *testing.T) {
	url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, okResp)
		_ = c.(*net.TCPConn).SetLinger(0)
	})
	tr, _ := newTransport(t, Options{})
	for i := range 100 {
		if _, body := do(t, tr, "GET", url+"/", nil); body != "ok" {
			t.Fatalf("GET %d: body %q", i, body)
		}
		if i%2 == 1 {
			time.Sleep(time.Millisecond) // let the reset arrive first, half of the time
		}
	}
}

// TestHalfClosedAfterResponse: a target that half-closes each connection after its response
// (a FIN without "Connection: close") and then drains whatever comes, never answering (a
// lingering close). A request that reuses such a connection, checked or not, must see the
// close at once and go again on a new connection: none may wait for the response-header
// timeout. (A request written from inside the response's first read, with the socket's read
// readiness reset first, would lose a FIN the poller had already reported, and wait.)
func TestHalfClosedAfterResponse(t *testing.T) {
	url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, okResp)
		_ = c.(*net.TCPConn).CloseWrite()
		_, _ = io.Copy(io.Discard, br)
	})
	tr, _ := newTransport(t, Options{ResponseHeaderTimeout: 2 * time.Second})
	for i := range 100 {
		start := time.Now()
		if _, body := do(t, tr, "GET", url+"/", nil); body != "ok" {
			t.Fatalf("GET %d: body %q", i, body)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("GET %d took %v: it waited for the response-header timeout", i, d)
		}
		if i%4 == 3 {
			time.Sleep(2 * aliveCheckAfter) // now and then, reuse after the liveness check's age
		}
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		<-release
	})
	defer close(release)
	tr, _ := newTransport(t, Options{ResponseHeaderTimeout: 50 * time.Millisecond})
	req, _ := http.NewRequest("GET", url+"/", nil)
	start := time.Now()
	_, err := tr.RoundTrip(req)
	if err == nil || !IsTimeoutErr(err) || !strings.Contains(err.Error(), "timeout awaiting response headers") {
		t.Fatalf("err = %v, want a response header timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
	if st := tr.Stats(strings.TrimPrefix(url, "http://")); st.Open != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// cancelKinds are the two kinds of request context the transport registers its abort with: a
// standard-library context (context.AfterFunc) and the gateway's reqctx.Scope (OnCancel).
var cancelKinds = []struct {
	name     string
	cancel   func() (context.Context, func())
	deadline func(time.Duration) (context.Context, func())
}{
	{"context",
		func() (context.Context, func()) { return context.WithCancel(context.Background()) },
		func(d time.Duration) (context.Context, func()) { return context.WithTimeout(context.Background(), d) }},
	{"scope",
		func() (context.Context, func()) { s := reqctx.New(context.Background()); return s, s.Cancel },
		func(d time.Duration) (context.Context, func()) {
			// Nothing else waits on the Scope, so its timer never starts: the transport
			// enforces the deadline with the connection's own deadlines.
			s := reqctx.WithTimeout(context.Background(), d)
			return s, s.Cancel
		}},
}

func TestCancelMidBody(t *testing.T) {
	for _, k := range cancelKinds {
		t.Run(k.name, func(t *testing.T) {
			release := make(chan struct{})
			url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
				if _, err := readReq(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst")
				<-release
			})
			defer close(release)
			tr, _ := newTransport(t, Options{})
			ctx, cancel := k.cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", url+"/", nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 5)
			if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
				t.Fatalf("read %q, %v", buf, err)
			}
			time.AfterFunc(30*time.Millisecond, cancel)
			_, err = io.ReadAll(resp.Body)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			_ = resp.Body.Close()
			if st := tr.Stats(strings.TrimPrefix(url, "http://")); st.Open != 0 {
				t.Fatalf("canceled connection kept: %+v", st)
			}
		})
	}
}

func TestCancelBeforeHeaders(t *testing.T) {
	for _, k := range cancelKinds {
		t.Run(k.name, func(t *testing.T) {
			release := make(chan struct{})
			url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
				_, _ = readReq(br)
				<-release
			})
			defer close(release)
			tr, _ := newTransport(t, Options{})
			ctx, cancel := k.deadline(50 * time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", url+"/", nil)
			if _, err := tr.RoundTrip(req); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want context.DeadlineExceeded", err)
			}
		})
	}
}

// The request's deadline bounds the body too, and a write that cannot finish: with a Scope
// nothing but the connection's deadlines enforces it. Each case runs on a reused connection
// (dialing waits on the context's Done, which would start the Scope's timer), and ends with the
// connection closed.
func TestDeadlineDuringBodyAndWrite(t *testing.T) {
	for _, k := range cancelKinds {
		for _, stall := range []string{"body", "write"} {
			t.Run(k.name+"/"+stall, func(t *testing.T) {
				release := make(chan struct{})
				url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
					if _, err := readReq(br); err != nil {
						return
					}
					_, _ = io.WriteString(c, okResp)
					if stall == "body" {
						if _, err := readReq(br); err != nil {
							return
						}
						_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst")
					}
					<-release // a write stalls: nothing more is read
				})
				defer close(release)
				tr, _ := newTransport(t, Options{ResponseHeaderTimeout: 10 * time.Second, MaxBufferedBody: 64 << 20})
				warm, _ := http.NewRequest("GET", url+"/", nil)
				resp, err := tr.RoundTrip(warm)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()

				body := bytes.Repeat([]byte("x"), 16<<20) // for "write": more than both sockets' buffers hold
				d := 200 * time.Millisecond
				if stall == "write" {
					d = 2500 * time.Millisecond // for the transport to buffer the body first, even under -race and load
				}
				ctx, cancel := k.deadline(d)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "GET", url+"/", nil)
				if stall == "write" {
					req, _ = http.NewRequestWithContext(ctx, "PUT", url+"/", bytes.NewReader(body))
				}
				errc := make(chan error, 1)
				go func() {
					resp, err := tr.RoundTrip(req)
					if err == nil {
						_, err = io.ReadAll(resp.Body)
						_ = resp.Body.Close()
					}
					errc <- err
				}()
				select {
				case err := <-errc:
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("err = %v, want context.DeadlineExceeded", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("the exchange still runs 10s after it began; the deadline was %v", d)
				}
				if st := tr.Stats(strings.TrimPrefix(url, "http://")); st.Open != 0 {
					t.Fatalf("timed-out connection kept: %+v", st)
				}
			})
		}
	}
}

// Deadlines an exchange left on a connection never reach the next exchange on it, even once
// they have passed while the connection sat idle: a read deadline would fail the liveness peek
// and a write deadline the first write, and the connection would be given up for a new one.
func TestPastDeadlinesOnIdleConnection(t *testing.T) {
	var conns atomic.Int32
	url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		conns.Add(1)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if r.Method == "PUT" {
				time.Sleep(50 * time.Millisecond) // let the write fill the buffers and wait
			}
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				return
			}
			if _, err := io.WriteString(c, okResp); err != nil {
				return
			}
		}
	})
	tr, _ := newTransport(t, Options{ResponseHeaderTimeout: 400 * time.Millisecond, MaxBufferedBody: 64 << 20})
	do := func(method string, body []byte, d time.Duration) {
		t.Helper()
		ctx := context.Background()
		if d > 0 {
			s := reqctx.WithTimeout(ctx, d)
			defer s.Cancel()
			ctx = s
		}
		req, _ := http.NewRequestWithContext(ctx, method, url+"/", bytes.NewReader(body))
		if body == nil {
			req.Body = nil
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ok" {
			t.Fatalf("%s: body %q, %v", method, b, err)
		}
		_ = resp.Body.Close()
	}
	// A write that waits for the target to read sets the write deadline (1.5s ahead: room for
	// a loaded machine running the suite under -race); the response head sets a read deadline
	// 400ms ahead.
	do("PUT", bytes.Repeat([]byte("x"), 4<<20), 1500*time.Millisecond)
	time.Sleep(1700 * time.Millisecond) // both deadlines pass while the connection is idle
	do("GET", nil, 0)
	if n := conns.Load(); n != 1 {
		t.Fatalf("the target saw %d connections, want 1 (the idle one reused)", n)
	}
}

func TestEarlyCloseDiscardsConnection(t *testing.T) {
	srv := echoServer(t)
	tr, _ := newTransport(t, Options{})
	req, _ := http.NewRequest("GET", srv.URL+"/big", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadFull(resp.Body, make([]byte, 10))
	_ = resp.Body.Close()
	if st := tr.Stats(hostOf(srv)); st.Open != 0 || st.Idle != 0 {
		t.Fatalf("partly read connection kept: %+v", st)
	}
	r2, _ := do(t, tr, "GET", srv.URL+"/x", nil)
	if r2.Header.Get("X-Port") == resp.Header.Get("X-Port") {
		t.Fatal("partly read connection reused")
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after close succeeded")
	}
}

func TestInterimResponses(t *testing.T) {
	url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readReq(br); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+okResp)
		}
	})
	tr, _ := newTransport(t, Options{})
	var got []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		got = append(got, code)
		if code == 103 && h.Get("Link") == "" {
			t.Error("103 without its Link header")
		}
		return nil
	}}
	for range 2 {
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url+"/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("%d %q", resp.StatusCode, b)
		}
	}
	if fmt.Sprint(got) != "[100 103 100 103]" {
		t.Fatalf("1xx seen: %v", got)
	}
	if st := tr.Stats(strings.TrimPrefix(url, "http://")); st.Open != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestWireFormat(t *testing.T) {
	got := make(chan string, 1)
	url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		var b strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			b.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		got <- b.String()
		_, _ = io.WriteString(c, okResp)
	})
	tr, _ := newTransport(t, Options{})
	req, _ := http.NewRequest("GET", url+"/a%2Fb/c?q=1&r", nil)
	req.Host = "example.com"
	req.Header["User-Agent"] = []string{""}
	req.Header.Set("X-One", "1")
	req.Close = true
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	head := <-got
	want := "GET /a%2Fb/c?q=1&r HTTP/1.1\r\nHost: example.com\r\nX-One: 1\r\nConnection: close\r\n\r\n"
	if head != want {
		t.Fatalf("head\n%q\nwant\n%q", head, want)
	}
}

func TestInvalidHeaderRefused(t *testing.T) {
	srv := echoServer(t)
	tr, _ := newTransport(t, Options{})
	for _, h := range [][2]string{{"X-Bad", "a\r\nInjected: 1"}, {"Bad Name", "v"}} {
		req, _ := http.NewRequest("GET", srv.URL+"/", nil)
		req.Header[h[0]] = []string{h[1]}
		if _, err := tr.RoundTrip(req); err == nil {
			t.Fatalf("header %q: %q sent", h[0], h[1])
		}
	}
}

func TestFallback(t *testing.T) {
	srv := echoServer(t)
	tests := []struct {
		name string
		mod  func(r *http.Request)
		body string
	}{
		{name: "upgrade", mod: func(r *http.Request) { r.Header.Set("Connection", "Upgrade"); r.Header.Set("Upgrade", "websocket") }},
		{name: "expect", mod: func(r *http.Request) { r.Header.Set("Expect", "100-continue") }, body: "x"},
		{name: "large body", body: strings.Repeat("b", 100<<10)},
		{name: "large body of unknown length", body: strings.Repeat("u", 100<<10), mod: func(r *http.Request) { r.ContentLength = -1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, fb := newTransport(t, Options{})
			req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader(tc.body))
			if tc.mod != nil {
				tc.mod(req)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if string(b) != tc.body {
				t.Fatalf("body of %d bytes, want %d", len(b), len(tc.body))
			}
			if fb.n.Load() != 1 {
				t.Fatal("fallback not used")
			}
		})
	}
	t.Run("https", func(t *testing.T) {
		tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		defer tls.Close()
		fb := &countingRT{rt: tls.Client().Transport}
		tr, _ := New(Options{Fallback: fb})
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", tls.URL, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if fb.n.Load() != 1 {
			t.Fatal("fallback not used")
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	srv := echoServer(t)
	tr, _ := newTransport(t, Options{IdleTimeout: 50 * time.Millisecond})
	r1, _ := do(t, tr, "GET", srv.URL+"/", nil)
	deadline := time.Now().Add(2 * time.Second)
	for tr.Stats(hostOf(srv)).Open != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle connection not expired: %+v", tr.Stats(hostOf(srv)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	r2, _ := do(t, tr, "GET", srv.URL+"/", nil)
	if r1.Header.Get("X-Port") == r2.Header.Get("X-Port") {
		t.Fatal("expired connection reused")
	}
}

func TestMaxPerTargetWaitBoundedByContext(t *testing.T) {
	srv := echoServer(t)
	tr, _ := newTransport(t, Options{MaxPerTarget: 1})
	req, _ := http.NewRequest("GET", srv.URL+"/big", nil)
	held, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req2, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/", nil)
	if _, err := tr.RoundTrip(req2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want to wait for the held connection until the deadline", err)
	}
	done := make(chan string, 1)
	go func() {
		r, err := http.NewRequest("GET", srv.URL+"/", nil)
		if err == nil {
			var resp *http.Response
			if resp, err = tr.RoundTrip(r); err == nil {
				_ = resp.Body.Close()
				done <- resp.Header.Get("X-Port")
				return
			}
		}
		done <- "error: " + err.Error()
	}()
	time.Sleep(20 * time.Millisecond)
	_, _ = io.Copy(io.Discard, held.Body)
	_ = held.Body.Close()
	if port := <-done; port != held.Header.Get("X-Port") {
		t.Fatalf("waiter got %q, want the released connection %s", port, held.Header.Get("X-Port"))
	}
}

func TestConcurrent(t *testing.T) {
	srv := echoServer(t)
	tr, fb := newTransport(t, Options{MaxPerTarget: 4, MaxIdlePerTarget: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				body := fmt.Sprintf("g%d-%d", g, i)
				req, _ := http.NewRequest("POST", srv.URL+"/", strings.NewReader(body))
				resp, err := tr.RoundTrip(req)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil || string(b) != body {
					errs <- fmt.Errorf("got %q, %v; want %q", b, err, body)
					return
				}
				if i%7 == 0 {
					if st := tr.Stats(hostOf(srv)); st.Open > 4 {
						errs <- fmt.Errorf("%d connections open, cap 4", st.Open)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if st := tr.Stats(hostOf(srv)); st.Open > 2 || st.Idle != st.Open {
		t.Fatalf("after the burst: %+v, want at most 2 idle and nothing busy", st)
	}
	if fb.n.Load() != 0 {
		t.Fatal("fallback used")
	}
}

func TestDialError(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	_ = ln.Close()
	tr, _ := newTransport(t, Options{ConnectTimeout: time.Second})
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	_, err := tr.RoundTrip(req)
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		t.Fatalf("err = %v, want a dial error", err)
	}
	if st := tr.Stats(addr); st.Open != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestUnsolicitedBytesAfterNoBodyResponse: a buggy target that sends a body after the head of
// a HEAD (or 204/304) response leaves bytes on the idle connection; the next request, even an
// idempotent one, must not read them as its response (net/http closes such a connection too).
func TestUnsolicitedBytesAfterNoBodyResponse(t *testing.T) {
	url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		for {
			r, err := readReq(br)
			if err != nil {
				return
			}
			if r.Method == http.MethodHead {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
				time.Sleep(30 * time.Millisecond)
				_, _ = io.WriteString(c, "hello") // the body a HEAD response must not have
				continue
			}
			_, _ = io.WriteString(c, okResp)
		}
	})
	tr, _ := newTransport(t, Options{})
	if resp, body := do(t, tr, "HEAD", url+"/", nil); resp.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, body)
	}
	time.Sleep(80 * time.Millisecond) // the stray body arrives on the idle connection
	req, _ := http.NewRequest("GET", url+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET after a HEAD with a stray body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("GET body %q", b)
	}
}

// TestCloseIdleClosesConnectionsFreedLater: when a pool is retired (CloseIdleConnections by the
// registry's last release), a request still in flight must not park its connection in the
// idle stack afterwards, where nothing would ever use or close it (net/http's closeIdle).
func TestCloseIdleClosesConnectionsFreedLater(t *testing.T) {
	srv := echoServer(t)
	tr, _ := newTransport(t, Options{})
	req, _ := http.NewRequest("GET", srv.URL+"/big", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections() // retired while the response is streaming
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if st := tr.Stats(hostOf(srv)); st.Open != 0 || st.Idle != 0 {
		t.Fatalf("connection freed after CloseIdleConnections kept: %+v", st)
	}
	// The Transport stays usable and pools again once used.
	do(t, tr, "GET", srv.URL+"/x", nil)
	if st := tr.Stats(hostOf(srv)); st.Idle != 1 {
		t.Fatalf("after reuse: %+v", st)
	}
}

func TestNeedsCheckPolicy(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name     string
		c        conn
		replay   bool
		wantPeek bool
	}{
		{"replayable, just used", conn{idleAt: now}, true, false},
		{"replayable, idle long", conn{idleAt: now.Add(-2 * aliveCheckAfter)}, true, true},
		{"replayable after a bodiless response", conn{idleAt: now, bodiless: true}, true, true},
		{"not replayable, just used", conn{idleAt: now}, false, true},
	} {
		if got := needsCheck(&tc.c, tc.replay); got != tc.wantPeek {
			t.Errorf("%s: needsCheck = %v, want %v", tc.name, got, tc.wantPeek)
		}
	}
}

// TestUnsolicitedResponseAfterBody: a target that sends a second, unasked response some time
// after a complete one must not have it read as the next request's response — through a
// gateway, that would hand one client the bytes of another exchange (found in review: the pool
// once skipped the check for replayable requests reused within a second).
func TestUnsolicitedResponseAfterBody(t *testing.T) {
	for _, method := range []string{"GET", "PUT", "DELETE", "POST"} {
		t.Run(method, func(t *testing.T) {
			var conns atomic.Int32
			url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
				conns.Add(1)
				first := true
				for {
					if _, err := readReq(br); err != nil {
						return
					}
					_, _ = io.WriteString(c, okResp)
					if first {
						first = false
						time.Sleep(30 * time.Millisecond)
						_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON")
					}
				}
			})
			tr, _ := newTransport(t, Options{})
			if _, body := do(t, tr, method, url+"/", strings.NewReader("x")); body != "ok" {
				t.Fatalf("first %s: %q", method, body)
			}
			time.Sleep(80 * time.Millisecond) // the stray response arrives on the idle connection
			if _, body := do(t, tr, method, url+"/", strings.NewReader("x")); body != "ok" {
				t.Fatalf("second %s read %q, the target's unsolicited response", method, body)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections, want 2 (the poisoned one dropped)", n)
			}
		})
	}
}

// TestInterimFramingIgnored: framing fields on a 1xx mean nothing (net/http ignores them); they
// must not fail the exchange.
func TestInterimFramingIgnored(t *testing.T) {
	url := rawServer(t, func(i int, c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nContent-Length: x\r\nTrailer: Content-Length\r\nLink: </a.css>\r\n\r\n"+okResp)
	})
	tr, _ := newTransport(t, Options{})
	if resp, body := do(t, tr, "GET", url+"/", nil); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after a 103 with odd framing fields: %d %q", resp.StatusCode, body)
	}
}

// TestBodyReadAfterEOF: reading a finished body again reports io.EOF, as net/http's bodies do.
func TestBodyReadAfterEOF(t *testing.T) {
	srv := echoServer(t)
	tr, _ := newTransport(t, Options{})
	req, _ := http.NewRequest("GET", srv.URL+"/", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if n, err := resp.Body.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("read after EOF: %d, %v; want 0, io.EOF", n, err)
	}
}
