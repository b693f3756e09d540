package h1

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every blocking step of a test: generous, because the suite runs with -race on a
// small, noisy VM; a test that passes never waits for it.
const wait = 10 * time.Second

// testServer is a Server serving on a 127.0.0.1 listener for one test.
type testServer struct {
	*Server
	addr   string
	logs   *syncbuf.Buffer
	served chan error // what Serve returned
	calls  atomic.Int32
	mu     sync.Mutex
	refuse []*RequestError
}

// start serves h on a fresh loopback listener; configure adjusts the Server before it starts.
// Cleanup closes the server and checks that Serve returned http.ErrServerClosed.
func start(t *testing.T, h http.HandlerFunc, configure ...func(*Server)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{addr: ln.Addr().String(), logs: &syncbuf.Buffer{}, served: make(chan error, 1)}
	ts.Server = &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ts.calls.Add(1)
			if r.URL.Path == "/still-open" { // expectOpen's request, whatever the test's handler
				ok(w, r)
				return
			}
			h(w, r)
		}),
		Logger: slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Refuse: func(w http.ResponseWriter, r *http.Request, e *RequestError) {
			ts.mu.Lock()
			ts.refuse = append(ts.refuse, e)
			ts.mu.Unlock()
			defaultRefuse(w, r, e)
		},
	}
	for _, f := range configure {
		f(ts.Server)
	}
	go func() { ts.served <- ts.Serve(ln) }()
	t.Cleanup(func() {
		_ = ts.Close()
		select {
		case err := <-ts.served:
			if !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		case <-time.After(wait):
			t.Error("Serve did not return after Close")
		}
	})
	return ts
}

// refusals returns the RequestErrors passed to Refuse so far.
func (ts *testServer) refusals() []*RequestError {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]*RequestError(nil), ts.refuse...)
}

// openConns is how many connections the server tracks.
func (ts *testServer) openConns() int {
	ts.Server.mu.Lock()
	defer ts.Server.mu.Unlock()
	return len(ts.conns)
}

// client is a raw connection to a test server.
type client struct {
	t *testing.T
	net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(wait))
	t.Cleanup(func() { _ = c.Close() })
	return &client{t: t, Conn: c, br: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// resp is a response read off the connection, its body read to the end.
type resp struct {
	*http.Response
	body string
}

// read reads one response to a request of the given method.
func (c *client) read(method string) *resp {
	c.t.Helper()
	r, err := c.tryRead(method)
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	return r
}

func (c *client) tryRead(method string) (*resp, error) {
	res, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &resp{Response: res, body: string(b)}, nil
}

// expectClosed checks that the server closes the connection without sending anything more.
func (c *client) expectClosed() {
	c.t.Helper()
	b, err := io.ReadAll(c.br)
	if len(b) > 0 {
		c.t.Fatalf("expected the connection to close, got %q", b)
	}
	if err != nil && !isReset(err) {
		c.t.Fatalf("expected the connection to close, got %v", err)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// expectOpen checks that the connection still serves: a GET gets its answer.
func (c *client) expectOpen() {
	c.t.Helper()
	c.send("GET /still-open HTTP/1.1\r\nHost: x\r\n\r\n")
	if r := c.read("GET"); r.StatusCode != http.StatusOK {
		c.t.Fatalf("follow-up request: status %d", r.StatusCode)
	}
}

// within fails the test unless ch delivers before the wait.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }
