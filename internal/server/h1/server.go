// Package h1 is Gatehouse's HTTP/1.x server for plain (non-TLS, non-h2c) listeners.
//
// net/http's server spends most of a small proxied request's CPU outside the handler: a
// background read per request (a goroutine, a read that finds nothing, a deadline change to
// stop it), which on a small VM costs more than the parsing. This server runs each
// connection on one goroutine that reads a head, calls the handler, writes and flushes the
// response, and loops: about one read and one write per request. A client that goes away is
// still noticed: once a request has run longer than a few milliseconds, a background read
// watches the connection and cancels the request's context when it closes.
//
// It serves the same http.Handler as net/http (one middleware contract for every listener)
// and is stricter than net/http where request framing is concerned: Content-Length together
// with Transfer-Encoding, several Transfer-Encodings, Transfer-Encoding on HTTP/1.0,
// disagreeing Content-Lengths, bare LF line ends, obsolete line folding, invalid field names
// or values and oversized heads are refused before the handler runs, and the connection is
// closed. It supports keep-alive and pipelining (answered in order), Expect: 100-continue,
// chunked bodies both ways, trailers both ways, 1xx responses, Upgrade through Hijack, and
// the read-header, read, write and idle timeouts.
package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/reqctx"
	"github.com/gatehouse/gatehouse/internal/sockio"
	"github.com/gatehouse/gatehouse/internal/wire"
)

// Server serves HTTP/1.x connections with Handler.
type Server struct {
	Handler http.Handler
	// ReadHeaderTimeout bounds reading a request head, the first request's wait included
	// (default: ReadTimeout); ReadTimeout bounds reading a whole request, body included;
	// WriteTimeout bounds writing a response; IdleTimeout bounds the wait for the next request
	// on a keep-alive connection (default: ReadTimeout, then ReadHeaderTimeout). 0 disables each.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxHeaderBytes caps a request head, request line included (default 1 MiB); a larger one
	// is refused with 431.
	MaxHeaderBytes int
	// Refuse answers a request refused before Handler ran. r holds what could be parsed:
	// always RemoteAddr and a context, Method/URL/Header when the head parsed. The connection
	// is closed afterwards. Default: a short JSON error.
	Refuse func(w http.ResponseWriter, r *http.Request, e *RequestError)
	// ConnContext, when set, derives each connection's base context (for example to attach
	// the TLS state of a connection the listener terminated).
	ConnContext func(ctx context.Context, c net.Conn) context.Context
	// Logger receives handler panics and accept errors. Default: slog.Default().
	Logger *slog.Logger

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
	closed    bool // Close ran: a connection accepted from now on is closed at once
	closing   atomic.Bool
	wg        sync.WaitGroup // connections
	watching  bool           // the watch loop runs (under mu)
	stopWatch chan struct{}  // closed to stop it
}

// watchDelay is how long a request runs before the connection is watched for the client
// going away (a background read); shorter requests never pay for it.
const watchDelay = 20 * time.Millisecond

// testHookWatchRead, when set by a test, runs just before the background read starts.
var testHookWatchRead atomic.Pointer[func(*conn)]

// drainLimit is how much of an unread request body is read and discarded so the connection
// can serve another request; beyond it the connection is closed.
const drainLimit = 256 << 10

// lingerTimeout bounds how long what the client still sends is read and discarded after a
// half-close (see lingerClose); net/http waits as long.
const lingerTimeout = 500 * time.Millisecond

const (
	stateActive = iota
	stateIdle
	stateClosed
	stateHijacked
	stateNew // waiting for its first request
)

// NewConnGrace is how long Shutdown lets a connection that has not sent its first request yet
// send it: the client's bytes are likely on their way (it was accepted just before the listener
// closed), and closing a socket with unread data resets it, losing the request. net/http waits
// 5 s; a request that has not arrived 2 s after the accept is not coming.
const NewConnGrace = 2 * time.Second

var aLongTimeAgo = time.Unix(1, 0)

func (s *Server) maxHead() int {
	if s.MaxHeaderBytes > 0 {
		return s.MaxHeaderBytes
	}
	return 1 << 20
}

// headTimeout bounds reading a request head: ReadHeaderTimeout, else ReadTimeout.
func (s *Server) headTimeout() time.Duration {
	if s.ReadHeaderTimeout > 0 {
		return s.ReadHeaderTimeout
	}
	return s.ReadTimeout
}

// idleTimeout bounds the wait for the next request: IdleTimeout, else ReadTimeout, else
// ReadHeaderTimeout.
func (s *Server) idleTimeout() time.Duration {
	switch {
	case s.IdleTimeout > 0:
		return s.IdleTimeout
	case s.ReadTimeout > 0:
		return s.ReadTimeout
	}
	return s.ReadHeaderTimeout
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) logf(msg string, args ...any) { s.logger().Debug("h1: "+msg, args...) }

func (s *Server) shuttingDown() bool { return s.closing.Load() }

// Serve accepts connections on ln until it is closed, serving each on its own goroutine. It
// returns http.ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(&ln, true) {
		// Shut down before serving began: the listener is closed here, as net/http does,
		// since Shutdown could not close what it did not know.
		_ = ln.Close()
		return http.ErrServerClosed
	}
	s.startWatchLoop()
	defer s.track(&ln, false)
	base := context.Background()
	var backoff time.Duration
	for {
		rw, err := ln.Accept()
		if err != nil {
			if s.shuttingDown() {
				return http.ErrServerClosed
			}
			if TemporaryAcceptError(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Warn("h1: accept error; retrying", "error", err.Error(), "delay", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := s.newConn(base, rw)
		if c == nil {
			_ = rw.Close()
			continue
		}
		go c.serve()
	}
}

// watchLoop starts the client-gone watch of every request that has run for watchDelay. One
// ticker for the whole server costs less than a timer per request.
//
// With no request running it ticks every watchIdle instead, so an idle gateway does not wake
// up 50 times a second; a request that starts then is watched after at most watchIdle.
func (s *Server) watchLoop(stop chan struct{}) {
	t := time.NewTicker(watchDelay)
	defer t.Stop()
	period := watchDelay
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		limit := time.Now().Add(-watchDelay).UnixNano()
		running := false
		s.mu.Lock()
		for c := range s.conns {
			st := c.since.Load()
			running = running || st != 0
			if st != 0 && st <= limit && c.since.CompareAndSwap(st, 0) {
				go c.startWatch(st)
			}
		}
		s.mu.Unlock()
		if next := watchPeriod(running); next != period {
			period = next
			t.Reset(period)
		}
	}
}

// watchIdle is the watch loop's period while no request runs.
const watchIdle = 200 * time.Millisecond

func watchPeriod(running bool) time.Duration {
	if running {
		return watchDelay
	}
	return watchIdle
}

func (s *Server) startWatchLoop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watching || s.shuttingDown() {
		return
	}
	s.watching = true
	s.stopWatch = make(chan struct{})
	go s.watchLoop(s.stopWatch)
}

func (s *Server) stopWatchLoop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watching {
		s.watching = false
		close(s.stopWatch)
	}
}

// TemporaryAcceptError reports whether an Accept error may pass (a timeout, EMFILE, ENFILE,
// ECONNABORTED and the like): a server waits and accepts again, as net/http's does.
func TemporaryAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Temporary() || errno == syscall.ECONNABORTED
	}
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) track(ln *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.shuttingDown() {
			return false
		}
		if s.listeners == nil {
			s.listeners = map[*net.Listener]struct{}{}
		}
		s.listeners[ln] = struct{}{}
		return true
	}
	delete(s.listeners, ln)
	return true
}

// Shutdown stops accepting, closes idle connections, lets active requests finish (their
// connections close after the response) and waits for them until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.closeListeners()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	defer s.stopWatchLoop() // requests still draining keep their client-gone watch
	for {
		if s.closeIdle() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	s.closing.Store(true)
	s.closeListeners()
	s.stopWatchLoop()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		_ = c.rwc.Close()
		// Requests still running are over: their handlers learn it from the context.
		c.mu.Lock()
		if c.scope != nil {
			c.scope.Cancel()
		}
		c.mu.Unlock()
	}
	return nil
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ln := range s.listeners {
		_ = (*ln).Close()
	}
}

// closeIdle closes idle connections and returns how many connections are still open.
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	open := 0
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) ||
			c.state.Load() == stateNew && time.Since(c.accepted) >= NewConnGrace && c.state.CompareAndSwap(stateNew, stateClosed) {
			_ = c.rwc.Close()
		}
		if c.state.Load() != stateHijacked {
			open++
		}
	}
	return open
}

// conn is one client connection. Everything but the fields under mu belongs to its goroutine.
type conn struct {
	srv      *Server
	rwc      net.Conn
	sio      sockio.Conn // rwc's reads and writes (raw system calls on a socket)
	remote   string
	accepted time.Time // when the connection was accepted (the grace of Shutdown for its first request)
	ctx      context.Context
	state    atomic.Int32
	br       *bufio.Reader
	bw       *bufio.Writer
	head     []byte
	tmpl     http.Request

	wmu      sync.Mutex // guards writes of "100 Continue" against the response head
	hijacked bool
	// linger is set when the connection closes while the client may still be sending (a
	// refused request, an unread body): see lingerClose.
	linger  bool
	resp    *response
	pending []byte // reused as each response's held-back body
	// headerHint sizes each response's header map: the field count of the previous response.
	headerHint int
	tmplURL    url.URL // the URL of tmpl
	// idleSet is when awaitRequest last set the read deadline to idleFor from then (zero once
	// anything else has set it: setReadDeadline).
	idleSet time.Time
	idleFor time.Duration
	// headBy is the deadline awaitRequest set for a new connection's first head (zero
	// otherwise): the head timeout runs from the accept, not from the first byte.
	headBy time.Time

	// Watching for the client going away while a request runs. since is when the running
	// request started (UnixNano; 0 when there is nothing to watch); Server.watchLoop starts the
	// watch of requests older than watchDelay.
	since        atomic.Int64
	mu           sync.Mutex
	cond         sync.Cond
	scope        *reqctx.Scope // the running request's context
	reqDone      bool
	bodyComplete bool
	bgReading    bool
	watched      bool // a background read has changed the read deadline
	aborting     bool
	hasByte      bool
	// bgDone is set (under mu) while hasByte or gone is: without it, reads and goneNow take
	// no lock.
	bgDone atomic.Bool
	gone   bool
	bgByte [1]byte
}

func (s *Server) newConn(base context.Context, rwc net.Conn) *conn {
	c := &conn{srv: s, rwc: rwc, remote: rwc.RemoteAddr().String(), accepted: time.Now()}
	c.state.Store(stateNew)
	c.cond.L = &c.mu
	ctx := context.WithValue(base, http.LocalAddrContextKey, rwc.LocalAddr())
	if s.ConnContext != nil {
		ctx = s.ConnContext(ctx, rwc)
	}
	c.ctx = ctx
	// A connection accepted while Shutdown begins is still served (its first request, with
	// Connection: close): closing it unread would reset a request the client already sent.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.conns == nil {
		s.conns = map[*conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return c
}

func (c *conn) serve() {
	defer func() {
		if p := recover(); p != nil {
			c.srv.logger().Error("h1: connection panic", "panic", p, "stack", stack())
		}
		if !c.hijacked {
			// Normally a no-op; after a panic mid-request it keeps a background read (or a timer
			// about to start one) from touching buffers that are back in the pool.
			c.endWatch()
			if c.linger {
				c.lingerClose()
			}
			_ = c.rwc.Close()
			if c.br != nil {
				putReader(c.br)
				putWriter(c.bw)
			}
		}
		c.srv.mu.Lock()
		delete(c.srv.conns, c)
		c.srv.mu.Unlock()
	}()
	c.sio.Init(c.rwc)
	c.br = getReader(connReader{c})
	c.bw = getWriter(&c.sio)
	first := true
	for {
		if !c.awaitRequest(first) {
			return
		}
		if !c.serveRequest() {
			return
		}
		first = false
	}
}

// awaitRequest waits for the first byte of the next request under the idle timeout (the
// read-header timeout for a new connection) and marks the connection active. It reports
// false when the connection should close.
func (c *conn) awaitRequest(first bool) bool {
	if c.br.Buffered() > 0 {
		return !c.srv.shuttingDown()
	}
	s := c.srv
	state := int32(stateIdle)
	if first {
		state = stateNew
	}
	c.state.Store(state)
	if s.shuttingDown() && !first {
		return false
	}
	// A new connection gets the head timeout for its first request (ReadTimeout when
	// ReadHeaderTimeout is not set), so one that never sends anything does not stay open.
	d, h := s.idleTimeout(), s.headTimeout()
	switch {
	case first && h > 0:
		// The deadline also bounds the rest of the head (serveRequest leaves it in place), so
		// a client sending its first byte just before it does not get a second head timeout.
		by := time.Now().Add(h)
		c.setReadDeadline(by)
		c.headBy = by
	case d <= 0:
		c.setReadDeadline(time.Time{})
	case c.idleSet.IsZero() || c.idleFor != d || time.Since(c.idleSet) >= min(d/8, time.Second):
		// Renewing the deadline is a runtime timer change and two clock readings. Within a
		// second (an eighth of a short timeout) of the last renewal the deadline set then
		// stands: the idle timeout then holds to within that.
		now := time.Now()
		_ = c.rwc.SetReadDeadline(now.Add(d))
		c.idleSet, c.idleFor = now, d
	}
	if _, err := c.br.Peek(1); err != nil {
		return false
	}
	return c.state.CompareAndSwap(state, stateActive)
}

// serveRequest reads one request, runs the handler and completes the response. It reports
// whether the connection can serve another request.
func (c *conn) serveRequest() bool {
	s := c.srv
	start := time.Now()
	// Every head that must still be read gets its own deadline: the previous request's (or
	// none, after the background read) must not apply to a pipelined head that is still
	// arriving. A head already buffered whole needs no read, so no deadline: each deadline
	// change is a runtime timer operation, which can wake another thread to watch the timer.
	headBuffered := c.headBuffered()
	headBy := c.headBy
	c.headBy = time.Time{}
	if !headBuffered && headBy.IsZero() {
		if d := s.headTimeout(); d > 0 {
			c.setReadDeadline(start.Add(d))
		} else {
			c.setReadDeadline(time.Time{})
		}
	}
	var err error
	c.head, err = readHead(c.br, c.head, s.maxHead())
	if err != nil {
		var re *RequestError
		if errors.As(err, &re) {
			c.refuse(nil, re)
		}
		return false // a connection closed or timed out mid-head is just closed
	}
	h, rerr := parseHead(string(c.head))
	if rerr != nil {
		c.refuse(nil, rerr)
		return false
	}
	if cap(c.head) > 64<<10 {
		c.head = nil // do not keep a rare huge head's buffer
	}
	req, expect, rerr := c.newRequest(&h)
	if rerr != nil {
		c.refuse(req, rerr)
		return false
	}
	// A body is read under the read timeout (or none). A request without one that was
	// buffered whole reads nothing more: whatever deadline the connection has (the idle one)
	// cannot fire on a read of this request, and the background read clears it first.
	_, hasBody := req.Body.(*body)
	switch {
	case headBuffered && !hasBody:
	case s.ReadTimeout > 0:
		c.setReadDeadline(start.Add(s.ReadTimeout))
	case s.ReadHeaderTimeout > 0 || headBuffered:
		c.setReadDeadline(time.Time{})
	}
	if s.WriteTimeout > 0 {
		_ = c.rwc.SetWriteDeadline(time.Now().Add(s.WriteTimeout))
	}

	// One reqctx.Scope is the request's whole context: the layers above keep their values,
	// timeouts and cancellation hooks in it instead of wrapping it once each.
	c.tmpl = *req
	w := &response{c: c, isHead: c.tmpl.Method == http.MethodHead, cl: -1,
		pending: c.pending[:0], url: c.tmplURL}
	scope := &w.scope
	scope.Init(c.ctx)
	// The request, its URL and its Scope are allocated with the response: WithContext's own
	// copy does not escape (it is inlined), so the request costs no allocation of its own.
	w.request = *c.tmpl.WithContext(scope)
	c.tmpl = http.Request{}
	r := &w.request
	r.URL = &w.url
	w.req = r
	if b, ok := r.Body.(*body); ok {
		b.req = r
		b.expect.Store(expect)
		w.body = b
	}
	c.resp = w
	c.mu.Lock()
	c.scope, c.reqDone, c.bodyComplete = scope, false, w.body == nil
	c.mu.Unlock()
	// No timer per request (resetting one made it the runtime's earliest timer and woke the
	// network poller every time): the server's watch loop finds long requests.
	c.since.Store(start.UnixNano())

	panicked := c.runHandler(w, r)

	c.endWatch()
	if w.hijacked {
		scope.Cancel()
		return false
	}
	if panicked {
		// The response stays incomplete. A goroutine the handler started must not write into
		// the connection's buffers (pooled once it closes) or read its body any more.
		w.done.Store(true)
		if w.body != nil {
			c.linger = !w.body.finish()
		}
		scope.Cancel()
		return false
	}
	w.finish()
	// The next response on this connection most likely has as many fields (a route with a
	// rate limit adds three to the upstream's and the security headers): sized for them, its
	// map does not grow from the small form into a table on the way.
	c.headerHint = min(max(len(w.header), 8), 64)
	complete := true
	if w.body != nil {
		complete = w.body.finish()
	}
	scope.Cancel()
	c.resp = nil
	if cap(w.pending) <= pendingMax {
		c.pending = w.pending[:0]
	}
	// The response goes out before an unread body is drained: the client may be waiting for
	// it before it sends the rest.
	if err := c.bw.Flush(); err != nil || w.err != nil {
		return false
	}
	if !complete {
		if w.closeAfter || !c.drain(w.body) {
			c.linger = true
			return false
		}
	}
	return !w.closeAfter && !c.goneNow()
}

// headBuffered reports whether the buffer holds a whole request head (readHead will not read).
// A head after empty lines is left to readHead's slow path.
func (c *conn) headBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
	return len(b) > 0 && b[0] != '\r' && b[0] != '\n' && bytes.Contains(b, headEnd)
}

var headEnd = []byte("\r\n\r\n")

// drain reads and discards what the handler left of the request body (up to drainLimit) so
// the connection can serve the next request. It reports whether the body was read to its end.
func (c *conn) drain(b *body) bool {
	s := c.srv
	if s.ReadTimeout == 0 {
		// Without the request's read deadline, the idle timeout bounds a client that stops
		// sending.
		if d := s.idleTimeout(); d > 0 {
			c.setReadDeadline(time.Now().Add(d))
		}
	}
	return b.drain(drainLimit)
}

// lingerClose half-closes a connection whose client may still be sending (a refused request,
// an unread body) and discards what arrives until the client closes its end, for at most
// lingerTimeout, before the connection is closed: closing a socket with unread input makes
// the kernel reset the connection and drop what it still had to send, the end of the
// response. The half-close lets the client see the end of the response at once.
func (c *conn) lingerClose() {
	cw, ok := c.rwc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.setReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.Copy(io.Discard, c.rwc)
}

// runHandler calls the handler; it reports a panic (http.ErrAbortHandler silently, anything
// else logged with its stack), after which the connection is closed without completing the
// response so that the client cannot mistake a partial response for a whole one.
func (c *conn) runHandler(w *response, r *http.Request) (panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			panicked = true
			if p != http.ErrAbortHandler {
				c.srv.logger().Error("h1: handler panic", "panic", p, "stack", stack())
			}
		}
	}()
	c.srv.Handler.ServeHTTP(w, r)
	return false
}

func stack() string {
	buf := make([]byte, 16<<10)
	return string(buf[:runtime.Stack(buf, false)])
}

var chunkedTE = []string{"chunked"}

// newRequest builds the request from a parsed head. On an error it still returns a request
// (for the refusal's response) unless the target itself is unusable.
func (c *conn) newRequest(h *head) (*http.Request, bool, *RequestError) {
	r := &c.tmpl
	*r = http.Request{
		Method:     h.method,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: h.protoMinor,
		Header:     h.header,
		RemoteAddr: c.remote,
		RequestURI: h.target,
		Body:       http.NoBody,
	}
	if h.protoMinor == 0 {
		r.Proto = "HTTP/1.0"
	}
	// The URL is the connection's until serveRequest gives the request one of its own.
	u := &c.tmplURL
	if rerr := requestURL(h.method, h.target, u); rerr != nil {
		return nil, false, rerr
	}
	r.URL = u
	fr, rerr := requestFraming(h)
	if rerr != nil {
		return r, false, rerr
	}
	if r.Host, rerr = requestHost(h, u); rerr != nil {
		return r, false, rerr
	}
	delete(h.header, "Host")
	conn := h.header["Connection"]
	r.Close = wire.HasToken(conn, "close") || h.protoMinor == 0 && !wire.HasToken(conn, "keep-alive")

	expect := false
	if ev := h.header["Expect"]; len(ev) > 0 {
		if len(ev) > 1 || !wire.EqualFold(ev[0], "100-continue") || h.protoMinor == 0 {
			return r, false, &RequestError{Status: http.StatusExpectationFailed, Code: "expectation_failed",
				Reason: "only Expect: 100-continue is supported"}
		}
		expect = fr.length != 0
	}
	if fr.length != 0 {
		b := &body{c: c, src: c.br, maxTrail: c.srv.maxHead()}
		if fr.chunked {
			b.chunked = true
			r.ContentLength = -1
			r.TransferEncoding = append([]string(nil), chunkedTE...)
			r.Trailer = declaredTrailers(h.header["Trailer"])
		} else {
			b.remain = fr.length
			r.ContentLength = fr.length
		}
		r.Body = b
	}
	return r, expect, nil
}

// refuse answers a request refused before the handler ran, then the connection closes.
func (c *conn) refuse(r *http.Request, e *RequestError) {
	if r == nil || r.URL == nil {
		r = &http.Request{Method: http.MethodGet, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, RemoteAddr: c.remote, RequestURI: "/"}
		r.URL = &urlRoot
	}
	r.Body = http.NoBody
	r.Close = true
	r = r.WithContext(c.ctx)
	w := &response{c: c, req: r, header: http.Header{}, isHead: r.Method == http.MethodHead, cl: -1}
	if c.srv.Refuse != nil {
		c.srv.Refuse(w, r, e)
	} else {
		defaultRefuse(w, r, e)
	}
	w.Header()["Connection"] = []string{"close"}
	w.closeAfter = true
	w.finish()
	_ = c.bw.Flush()
	c.linger = true
}

func defaultRefuse(w http.ResponseWriter, _ *http.Request, e *RequestError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_, _ = io.WriteString(w, `{"error":"`+e.Code+`","message":"`+e.Reason+"\"}\n")
}

// sendContinue writes "100 Continue" before the first read of a body whose client waits for
// it, unless the final response head is already on its way.
func (c *conn) sendContinue() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if w := c.resp; w == nil || w.headWritten {
		return nil
	}
	_, _ = c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
	return c.bw.Flush()
}

// canDrain reports whether what is left of b can be read off cheaply after the response, so
// the connection can stay open.
func (c *conn) canDrain(b *body) bool {
	if b == nil {
		return true
	}
	if !b.mu.TryLock() {
		// Another goroutine is reading the body right now (full duplex), and may hold the
		// lock until the client sends more, which it may only do once it has seen this
		// response start: do not wait. Whether the rest can be drained is found out after
		// the handler returns; if it cannot, the connection is closed then.
		return true
	}
	defer b.mu.Unlock()
	switch {
	case b.eof:
		return true
	case b.err != nil, b.expect.Load():
		// A client still waiting for "100 Continue" may or may not send its body.
		return false
	case b.chunked:
		return true // drained up to drainLimit, else closed
	}
	return b.remain <= drainLimit
}

// bodyDone is called when the request body has been read to its end: the client-gone watch
// may start from now on.
func (c *conn) bodyDone() {
	c.mu.Lock()
	c.bodyComplete = true
	c.mu.Unlock()
}

// startWatch runs (on its own goroutine, started by the watch loop) once a request has run
// for watchDelay: it reads from the connection in the background, so that a client closing
// its connection cancels the request. A byte that arrives (a pipelined request) is kept for
// the next read. since is the request's start, which the watch loop took from c.since.
func (c *conn) startWatch(since int64) {
	c.mu.Lock()
	if c.reqDone || c.bgReading || c.gone || c.hasByte {
		c.mu.Unlock()
		return
	}
	if !c.bodyComplete {
		// The handler still reads the body; the loop looks again at its next tick.
		c.since.CompareAndSwap(0, since)
		c.mu.Unlock()
		return
	}
	if c.br.Buffered() > 0 {
		// The next request is already here: nothing to watch for.
		c.mu.Unlock()
		return
	}
	c.bgReading = true
	// The body is read: the read timeout has done its job, and must not end a long request
	// by failing this read. The deadline is cleared under c.mu, so that an endWatch coming
	// next sets its deadline in the past after this one and always interrupts the read.
	// (endWatch, on the connection's goroutine, forgets the idle deadline: watched.)
	_ = c.rwc.SetReadDeadline(time.Time{})
	c.watched = true
	c.mu.Unlock()
	if hook := testHookWatchRead.Load(); hook != nil {
		(*hook)(c)
	}
	n, err := c.rwc.Read(c.bgByte[:])

	c.mu.Lock()
	c.bgReading = false
	if n == 1 {
		c.hasByte = true
	}
	if err != nil && !c.aborting {
		c.gone = true
		if c.scope != nil {
			c.scope.Cancel()
		}
	}
	if c.hasByte || c.gone {
		c.bgDone.Store(true)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
}

// endWatch stops watching: the watch loop skips the connection from now on, and a
// background read in progress is interrupted.
func (c *conn) endWatch() {
	c.since.Store(0)
	c.mu.Lock()
	c.reqDone = true
	if c.watched {
		c.watched = false
		c.idleSet = time.Time{}
	}
	if c.bgReading {
		c.aborting = true
		c.setReadDeadline(aLongTimeAgo)
		for c.bgReading {
			c.cond.Wait()
		}
		c.aborting = false
		c.setReadDeadline(time.Time{})
	}
	c.scope = nil
	c.mu.Unlock()
}

// setReadDeadline sets the connection's read deadline for anything but the idle wait.
func (c *conn) setReadDeadline(t time.Time) error {
	c.idleSet = time.Time{}
	return c.rwc.SetReadDeadline(t)
}

func (c *conn) goneNow() bool {
	if !c.bgDone.Load() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone
}

// connReader is what the connection's bufio.Reader reads from: the byte a background read
// took, if any, then the connection.
type connReader struct{ c *conn }

func (cr connReader) Read(p []byte) (int, error) {
	c := cr.c
	if !c.bgDone.Load() {
		return c.sio.Read(p)
	}
	c.mu.Lock()
	if c.hasByte && len(p) > 0 {
		p[0] = c.bgByte[0]
		c.hasByte = false
		c.bgDone.Store(c.gone)
		c.mu.Unlock()
		return 1, nil
	}
	gone := c.gone
	c.mu.Unlock()
	if gone {
		return 0, io.EOF
	}
	return c.sio.Read(p)
}
