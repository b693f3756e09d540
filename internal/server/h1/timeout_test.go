package h1

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// closedWithin checks that the server closes c, no sooner than min after since.
func closedWithin(t *testing.T, c *client, since time.Time, min time.Duration) {
	t.Helper()
	c.expectClosed()
	// The server starts its clock a little before or after the client's since (an accept that
	// returns before the client's dial does, a response flushed before the client read it), so
	// the bound has a small slack; a timeout not honoured at all still fails.
	const slack = 20 * time.Millisecond
	if d := time.Since(since); d < min-slack {
		t.Errorf("closed after %v, before the %v timeout", d, min)
	}
}

// trickleHead sends a head that never ends, a byte every 20ms, until the server closes c; the
// returned channel is closed when it stops.
func trickleHead(c *client) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, b := range []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("s", 200)) {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return done
}

func TestReadHeaderTimeout(t *testing.T) {
	t.Parallel()
	const rht = 150 * time.Millisecond
	ts := start(t, ok, func(s *Server) { s.ReadHeaderTimeout = rht })

	t.Run("partial head", func(t *testing.T) {
		t.Parallel()
		c := dial(t, ts.addr)
		begin := time.Now()
		c.send("GET / HTTP/1.1\r\nHost: x\r\n")
		closedWithin(t, c, begin, rht)
	})
	t.Run("slowloris trickle", func(t *testing.T) {
		t.Parallel()
		c := dial(t, ts.addr)
		begin := time.Now()
		// A byte every 20ms never completes the head: the timeout bounds the whole head, not
		// each read.
		done := trickleHead(c)
		closedWithin(t, c, begin, rht)
		<-done
	})
	t.Run("late first byte", func(t *testing.T) {
		t.Parallel()
		// A new connection's head timeout runs from the accept: a first byte sent just
		// before it does not buy a second timeout for the rest of the head.
		const rht = 400 * time.Millisecond
		ts := start(t, ok, func(s *Server) { s.ReadHeaderTimeout = rht })
		c := dial(t, ts.addr)
		begin := time.Now()
		time.Sleep(rht * 3 / 4)
		done := trickleHead(c)
		closedWithin(t, c, begin, rht)
		// With the timeout restarted at the first byte the close comes at 700ms.
		if d := time.Since(begin); d > rht+rht/2 {
			t.Errorf("closed after %v: the head timeout restarted at the first byte", d)
		}
		<-done
	})
	t.Run("nothing sent", func(t *testing.T) {
		t.Parallel()
		c := dial(t, ts.addr)
		closedWithin(t, c, time.Now(), rht)
	})
	t.Run("keep-alive serves on", func(t *testing.T) {
		t.Parallel()
		c := dial(t, ts.addr)
		for range 3 {
			c.expectOpen()
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 150 * time.Millisecond
	ts := startIdle(t, idle, 0, ok)
	idleClosed(t, ts.addr, idle)
}

// TestIdleTimeoutRenewed: a connection that keeps sending requests, more often than the idle
// deadline is renewed (an eighth of a short timeout), outlives the timeout many times over;
// once it falls silent, it is closed no sooner than the timeout less that eighth.
func TestIdleTimeoutRenewed(t *testing.T) {
	t.Parallel()
	const idle = 160 * time.Millisecond
	ts := startIdle(t, idle, 0, ok)
	c := dial(t, ts.addr)
	var last time.Time
	for end := time.Now().Add(4 * idle); time.Now().Before(end); {
		last = time.Now()
		c.expectOpen()
		time.Sleep(idle / 32)
	}
	closedWithin(t, c, last, idle-idle/8)
}

// TestIdleTimeoutAfterWatchedRequest: a request long enough for the client-gone watch (whose
// background read clears the read deadline) comes within the renewal window of the last
// idle deadline: the idle wait after it still gets a deadline of its own.
func TestIdleTimeoutAfterWatchedRequest(t *testing.T) {
	t.Parallel()
	const idle = 1600 * time.Millisecond // renewed at most every 200ms
	ts := startIdle(t, idle, 5*watchDelay, ok)
	for _, pipelined := range []bool{false, true} {
		c := dial(t, ts.addr)
		c.expectOpen()
		begin := time.Now()
		c.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		if pipelined {
			// The background read takes the first byte of the next request, and ends
			// before the handler does.
			time.Sleep(3 * watchDelay)
			c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			if r := c.read("GET"); r.StatusCode != 200 || r.Close {
				t.Fatalf("/slow: %d close=%v", r.StatusCode, r.Close)
			}
		}
		if r := c.read("GET"); r.StatusCode != 200 || r.Close {
			t.Fatalf("pipelined=%v: %d close=%v", pipelined, r.StatusCode, r.Close)
		}
		closedWithin(t, c, begin, idle-idle/8)
	}
}

// startIdle starts a server with the idle timeout idle (and a long head timeout) whose handler
// sleeps for sleep on "/slow" before handing the request to next.
func startIdle(t *testing.T, idle, sleep time.Duration, next http.HandlerFunc) *testServer {
	t.Helper()
	return start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(sleep)
		}
		next(w, r)
	}, func(s *Server) {
		s.IdleTimeout = idle
		s.ReadHeaderTimeout = 5 * time.Second
	})
}

// idleClosed checks that a connection left idle after one request is closed, no sooner than
// idle after it. The server's idle wait starts when it has sent the response, so the time
// before the request is a safe lower bound (the time after reading the response is not).
func idleClosed(t *testing.T, addr string, idle time.Duration) {
	t.Helper()
	c := dial(t, addr)
	begin := time.Now()
	c.expectOpen()
	closedWithin(t, c, begin, idle)
}

// TestReadTimeoutAlone: with only ReadTimeout set, it still bounds a connection's first wait
// and each head.
func TestReadTimeoutAlone(t *testing.T) {
	t.Parallel()
	const rt = 150 * time.Millisecond
	ts := start(t, ok, func(s *Server) { s.ReadTimeout = rt })

	t.Run("nothing sent", func(t *testing.T) {
		t.Parallel()
		c := dial(t, ts.addr)
		closedWithin(t, c, time.Now(), rt)
	})
	t.Run("partial head", func(t *testing.T) {
		t.Parallel()
		c := dial(t, ts.addr)
		begin := time.Now()
		c.send("GET / HTTP/1.1\r\n")
		closedWithin(t, c, begin, rt)
	})
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		idleClosed(t, ts.addr, rt)
	})
}

// TestPipelinedHeadAfterSlowHandler: a request whose head arrived in part while the previous
// request's handler ran longer than ReadTimeout gets a fresh deadline for the rest of its head.
func TestPipelinedHeadAfterSlowHandler(t *testing.T) {
	t.Parallel()
	const rt = 400 * time.Millisecond
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(rt + 100*time.Millisecond)
		}
		ok(w, r)
	}, func(s *Server) { s.ReadTimeout = rt })
	c := dial(t, ts.addr)
	c.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n")
	if r := c.read("GET"); r.body != "ok" {
		t.Fatalf("%q", r.body)
	}
	c.send("Host: x\r\n\r\n")
	if r := c.read("GET"); r.body != "ok" {
		t.Fatalf("%q", r.body)
	}
}

func TestReadTimeoutSlowBody(t *testing.T) {
	t.Parallel()
	const rt = 150 * time.Millisecond
	errc := make(chan error, 1)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		errc <- err
		w.WriteHeader(http.StatusRequestTimeout)
	}, func(s *Server) { s.ReadTimeout = rt })
	c := dial(t, ts.addr)
	begin := time.Now()
	c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
	err := within(t, errc, "the handler")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("body read error %v, want a timeout", err)
	}
	if d := time.Since(begin); d < rt {
		t.Errorf("timed out after %v", d)
	}
	if r := c.read("POST"); r.StatusCode != http.StatusRequestTimeout || !r.Close {
		t.Errorf("%d close=%v", r.StatusCode, r.Close)
	}
	c.expectClosed()
}

// TestReadTimeoutLongHandler: once the body is read, ReadTimeout no longer applies: a handler
// running past it is neither canceled nor cut off, and the connection stays usable.
func TestReadTimeoutLongHandler(t *testing.T) {
	t.Parallel()
	const rt = 100 * time.Millisecond
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("body: %v", err)
		}
		select {
		case <-r.Context().Done():
			t.Errorf("context canceled: %v", context.Cause(r.Context()))
		case <-time.After(4 * rt):
		}
		_, _ = w.Write(b)
	}, func(s *Server) { s.ReadTimeout = rt })
	c := dial(t, ts.addr)
	for _, req := range []string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		c.send(req)
		want := "body"
		if strings.HasPrefix(req, "GET") {
			want = ""
		}
		if r := c.read("POST"); r.StatusCode != 200 || r.body != want || r.Close {
			t.Fatalf("%d %q close=%v", r.StatusCode, r.body, r.Close)
		}
	}
}

func TestClientGoneCancelsContext(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, req string }{
		{"no body", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"body read", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"},
		{"chunked body read", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			entered := make(chan struct{})
			canceled := make(chan error, 1)
			ts := start(t, func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				close(entered)
				select {
				case <-r.Context().Done():
					canceled <- r.Context().Err()
				case <-time.After(wait):
					canceled <- errors.New("context not canceled")
				}
			})
			c := dial(t, ts.addr)
			c.send(tc.req)
			within(t, entered, "the handler")
			_ = c.Close()
			if err := within(t, canceled, "the handler's context"); !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
		})
	}
}

// TestWatchEndsWhileStarting covers a request that ends just as the background read starts:
// ending the watch must interrupt that read even if it has not begun yet.
func TestWatchEndsWhileStarting(t *testing.T) {
	release := make(chan struct{})
	atRead := make(chan struct{})
	var srv atomic.Pointer[Server]
	var once sync.Once
	hook := func(c *conn) {
		if c.srv == srv.Load() {
			once.Do(func() {
				close(atRead)
				<-release
			})
		}
	}
	testHookWatchRead.Store(&hook)
	t.Cleanup(func() { testHookWatchRead.Store(nil) }) // after the server's cleanup
	handlerDone := make(chan struct{})
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/first" {
			<-atRead // the watch started and is about to read
			close(handlerDone)
		}
		ok(w, r)
	})
	srv.Store(ts.Server)
	c := dial(t, ts.addr)
	c.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
	within(t, handlerDone, "the handler")
	// Let the connection's goroutine reach endWatch, which now waits for the background read.
	var cn *conn
	deadline := time.Now().Add(wait)
	for cn == nil || !cn.abortingNow() {
		if time.Now().After(deadline) {
			t.Fatal("endWatch never started waiting")
		}
		time.Sleep(time.Millisecond)
		ts.Server.mu.Lock()
		for k := range ts.conns {
			cn = k
		}
		ts.Server.mu.Unlock()
	}
	close(release)
	// The read returns at once (the deadline is in the past), and the response goes out.
	if r := c.read("GET"); r.body != "ok" {
		t.Fatalf("%q", r.body)
	}
	c.expectOpen()
}

func (c *conn) abortingNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.aborting
}

func TestWriteTimeout(t *testing.T) {
	t.Parallel()
	const wt = 150 * time.Millisecond
	errc := make(chan error, 1)
	ts := start(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for range 4096 { // 256 MiB: far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				errc <- err
				return
			}
		}
		errc <- errors.New("no write failed")
	}, func(s *Server) { s.WriteTimeout = wt })
	c := dial(t, ts.addr)
	begin := time.Now()
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	// The client reads nothing.
	err := within(t, errc, "the handler")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("write error %v, want a timeout", err)
	}
	if d := time.Since(begin); d < wt {
		t.Errorf("timed out after %v", d)
	}
}

// TestWriteTimeoutPerRequest: the write deadline is renewed for each request.
func TestWriteTimeoutPerRequest(t *testing.T) {
	t.Parallel()
	const wt = 150 * time.Millisecond
	ts := start(t, ok, func(s *Server) { s.WriteTimeout = wt })
	c := dial(t, ts.addr)
	for range 3 {
		c.expectOpen()
		time.Sleep(wt) // past the previous request's deadline
	}
}

// TestIdleDeadlineLeftDuringRequest: a request buffered whole gets no deadline of its own, so
// the connection's idle deadline is still set while it runs. A handler running past it, with
// or without a pipelined request behind it, is answered and the connection serves on; a body
// that arrives after the idle timeout (with no read timeout) is still read.
func TestIdleDeadlineLeftDuringRequest(t *testing.T) {
	t.Parallel()
	const idle = 100 * time.Millisecond
	// echo answers with the path and the body, or 408 when the body cannot be read.
	echo := func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusRequestTimeout)
			return
		}
		_, _ = w.Write(append([]byte(r.URL.Path), b...))
	}
	ts := startIdle(t, idle, 3*idle, echo)

	t.Run("slow handler", func(t *testing.T) {
		t.Parallel()
		c := dial(t, ts.addr)
		for _, path := range []string{"/slow", "/next"} {
			c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
			if r := c.read("GET"); r.StatusCode != 200 || r.body != path || r.Close {
				t.Fatalf("%s: %d %q close=%v", path, r.StatusCode, r.body, r.Close)
			}
		}
	})
	t.Run("pipelined behind a slow handler", func(t *testing.T) {
		t.Parallel()
		c := dial(t, ts.addr)
		c.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
		for _, path := range []string{"/slow", "/next"} {
			if r := c.read("GET"); r.StatusCode != 200 || r.body != path {
				t.Fatalf("%s: %d %q", path, r.StatusCode, r.body)
			}
		}
		c.expectOpen()
	})
	t.Run("late body", func(t *testing.T) {
		t.Parallel()
		// Only the idle timeout: the head and body have no deadline at all.
		ts := start(t, echo, func(s *Server) { s.IdleTimeout = idle })
		c := dial(t, ts.addr)
		c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
		time.Sleep(3 * idle)
		c.send("body")
		if r := c.read("POST"); r.StatusCode != 200 || r.body != "/echobody" {
			t.Fatalf("%d %q", r.StatusCode, r.body)
		}
	})
	t.Run("idle after the request", func(t *testing.T) {
		t.Parallel()
		idleClosed(t, ts.addr, idle)
	})
}
