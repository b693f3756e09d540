// Package h1 is an HTTP/1.1 client for plain-HTTP upstreams that does the whole exchange on the
// caller's goroutine.
//
// net/http's Transport runs a read loop and a write loop goroutine per connection, so every
// request crosses goroutines several times (caller → writeLoop → readLoop → caller), and those
// wake-ups dominate a proxy's CPU profile. Transport here checks a keep-alive connection out of
// a per-target LIFO pool, writes the request, reads the response (with its own parser,
// response.go) and hands the connection back when the caller has read the body to its end — all
// on the goroutine that called RoundTrip. Context cancellation closes the connection through context.AfterFunc, the
// response-header timeout is a read deadline, and idle connections expire through one timer per
// target, so no goroutine exists per connection or per request.
//
// What it does not handle goes to a fallback http.RoundTripper (the stdlib Transport): https
// targets, upgrades, Expect: 100-continue, request trailers, and request bodies larger than
// Options.MaxBufferedBody (small bodies are read before the connection is taken, so they are
// written in one go and can be replayed on a stale keep-alive connection).
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
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/reqctx"
	"github.com/gatehouse/gatehouse/internal/wire"
)

// Options configures a Transport.
type Options struct {
	// ConnectTimeout bounds dialing a target (0: only the request's context does).
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response headers once the request is
	// written (0: none).
	ResponseHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long (0: never by the gateway).
	IdleTimeout time.Duration
	// MaxIdlePerTarget is how many idle connections are kept per target (0: 2, as net/http).
	MaxIdlePerTarget int
	// MaxPerTarget caps connections (busy and idle) per target; a request over the cap waits for
	// one, bounded by its context (0: unlimited).
	MaxPerTarget int
	// MaxBufferedBody is the largest request body sent by this Transport (default 64 KiB); a
	// larger one, or one of unknown length that turns out larger, goes to Fallback.
	MaxBufferedBody int64
	// MaxResponseHeaderBytes limits the response head (default 1 MiB).
	MaxResponseHeaderBytes int
	// Fallback serves the requests this Transport does not handle. It is required.
	Fallback http.RoundTripper
}

// Transport is an http.RoundTripper for plain-HTTP HTTP/1.1 targets that runs each exchange on
// the caller's goroutine. It is safe for concurrent use.
type Transport struct {
	o        Options
	dialer   net.Dialer
	fallback http.RoundTripper

	mu    sync.Mutex                       // serializes adding pools
	pools atomic.Pointer[map[string]*pool] // copy-on-write: looked up on every request
}

var _ http.RoundTripper = (*Transport)(nil)

// New returns a Transport. o.Fallback must not be nil.
func New(o Options) (*Transport, error) {
	if o.Fallback == nil {
		return nil, errors.New("h1: a fallback transport is required")
	}
	if o.MaxIdlePerTarget == 0 {
		o.MaxIdlePerTarget = http.DefaultMaxIdleConnsPerHost
	}
	if o.MaxBufferedBody <= 0 {
		o.MaxBufferedBody = 64 << 10
	}
	if o.MaxResponseHeaderBytes <= 0 {
		o.MaxResponseHeaderBytes = 1 << 20
	}
	t := &Transport{o: o, fallback: o.Fallback}
	t.dialer = net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}
	m := map[string]*pool{}
	t.pools.Store(&m)
	return t, nil
}

// Fallback returns the RoundTripper that serves what this Transport does not handle.
func (t *Transport) Fallback() http.RoundTripper { return t.fallback }

// CloseIdleConnections closes every idle connection and stops the idle timers; connections of
// requests still in flight are closed when they finish, as net/http does, until the Transport is
// used again (it stays usable). The fallback's idle connections are closed too.
func (t *Transport) CloseIdleConnections() {
	for _, p := range *t.pools.Load() {
		p.closeIdle()
	}
	if c, ok := t.fallback.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Stats is a snapshot of one target's pool, for tests and diagnostics.
type Stats struct {
	Idle, Open int
}

// Stats returns the pool state of the target host[:port] as written in request URLs (zero for
// a target never called).
func (t *Transport) Stats(hostport string) Stats {
	p := (*t.pools.Load())[hostport]
	if p == nil {
		return Stats{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{Idle: len(p.idle), Open: p.open}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.handles(req) {
		return t.fallback.RoundTrip(interimTrace(req))
	}
	ctx := req.Context()
	var (
		body    []byte
		buf     *bytes.Buffer
		chunked bool
	)
	if req.Body != nil && req.Body != http.NoBody {
		if req.ContentLength > t.o.MaxBufferedBody {
			return t.fallback.RoundTrip(interimTrace(req))
		}
		buf = bufPool.Get().(*bytes.Buffer)
		defer putBuf(buf)
		n, err := io.CopyN(buf, req.Body, t.o.MaxBufferedBody+1)
		switch {
		case err != nil && err != io.EOF:
			_ = req.Body.Close()
			return nil, fmt.Errorf("h1: read request body: %w", err)
		case n > t.o.MaxBufferedBody:
			// Larger than we buffer: the stdlib Transport streams it, what was read first.
			r2 := new(http.Request)
			*r2 = *req
			prefix := bytes.Clone(buf.Bytes())
			r2.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(prefix), req.Body), req.Body}
			return t.fallback.RoundTrip(interimTrace(r2))
		}
		_ = req.Body.Close()
		body = buf.Bytes()
		if req.ContentLength > 0 && int64(len(body)) != req.ContentLength {
			return nil, fmt.Errorf("h1: request ContentLength=%d with body length %d", req.ContentLength, len(body))
		}
		// A body of unknown length keeps the chunked framing the client used (net/http does
		// the same); a known one is sent with its Content-Length.
		chunked = req.ContentLength <= 0
	} else if req.Body != nil {
		_ = req.Body.Close()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	p := t.pool(req.URL.Host)
	replay := replayable(req)
	retried := false
	for {
		c, err := t.getConn(ctx, p, retried)
		if err != nil {
			return nil, err
		}
		if c.reused && needsCheck(c, replay) && !c.quiet() {
			// The target closed it, or sent something unasked (a body after the head of a
			// HEAD/204/304 response), while it sat idle: bytes waiting there would be read as
			// this request's response. Try the next one.
			p.closeConn(c)
			continue
		}
		resp, err, stale := t.exchange(ctx, c, req, body, chunked)
		if err == nil {
			return resp, nil
		}
		if stale && c.reused && replay && !retried && ctxErr(ctx) == nil {
			retried = true // once, on a new connection
			continue
		}
		return nil, err
	}
}

// aliveCheckAfter is how long a connection must have been idle before it is checked (one
// non-blocking peek, a system call) ahead of its next request. The check finds a close by the
// target, and bytes the target sent unasked after the last response (a second response, junk
// after a body, a 408 before an idle close): read as the next request's response, those would
// hand one client another exchange's bytes. A connection reused within aliveCheckAfter of its
// last response is not checked when the request can be replayed (stray bytes that came with the
// response are caught when it ends, and a close makes the request go again on a new
// connection); under load the pool hands most connections out within microseconds to a few
// milliseconds of their last use. A request that cannot be replayed (POST without an idempotency
// key) and any request after a response without a body (HEAD, 204, 304) always check. What no
// check catches is what is still in flight when it runs; net/http's per-connection read loop
// narrows that window at the price of a goroutine wake-up per response.
const aliveCheckAfter = time.Millisecond

func needsCheck(c *conn, replay bool) bool {
	return c.bodiless || !replay || time.Since(c.idleAt) >= aliveCheckAfter
}

// handles reports whether req can be sent by this Transport rather than the fallback.
func (t *Transport) handles(req *http.Request) bool {
	u := req.URL
	if u == nil || u.Scheme != "http" || u.Host == "" || u.Opaque != "" || req.Method == http.MethodConnect {
		return false
	}
	if len(req.Trailer) > 0 || len(req.TransferEncoding) > 0 {
		return false
	}
	if _, ok := req.Header["Expect"]; ok {
		return false
	}
	if _, ok := req.Header["Upgrade"]; ok {
		return false
	}
	if wire.HasToken(req.Header["Connection"], "upgrade") {
		return false
	}
	if req.Host != "" && !validHost(req.Host) || !validHost(u.Host) {
		return false // let net/http punycode or reject it
	}
	return true
}

// replayable reports whether a request may be sent again after a keep-alive connection turned
// out to be closed: its body is in memory, and it is idempotent (as net/http decides).
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := req.Header["X-Idempotency-Key"]
	return ok
}

// exchange sends req on c and reads the response head. On error c is closed; stale reports
// that nothing of a response arrived, as when the target had closed a keep-alive connection.
func (t *Transport) exchange(ctx context.Context, c *conn, req *http.Request, body []byte, chunked bool) (*http.Response, error, bool) {
	// The request's deadline is enforced by the connection's own deadlines (set only when a
	// read or write could wait): the hook is for cancellation, and starts no timer.
	dl, _ := ctx.Deadline()
	c.setDeadlines(dl)
	var stop cancelHook
	scope := reqctx.Beneath(ctx)
	if scope != nil {
		stop.scope = scope
		stop.id, stop.ok = scope.OnCancelUntimed(c.abort)
		if !stop.ok {
			c.p.closeConn(c)
			return nil, scope.Err(), false
		}
	} else if ctx.Done() != nil {
		stop.f = context.AfterFunc(ctx, c.abort)
	}
	fail := func(err error, stale bool) (*http.Response, error, bool) {
		stop.release()
		c.p.closeConn(c)
		if cerr := ctxErr(ctx); cerr != nil {
			return nil, cerr, false
		}
		return nil, err, stale
	}
	if err := writeRequest(c.bw, req, body, chunked); err != nil {
		var ve validationError
		if errors.As(err, &ve) {
			return fail(err, false)
		}
		return fail(fmt.Errorf("h1: write request: %w", err), true)
	}
	if err := c.bw.Flush(); err != nil {
		return fail(fmt.Errorf("h1: write request: %w", err), true)
	}

	before := c.nread
	c.readDL = dl
	if t.o.ResponseHeaderTimeout > 0 {
		if h := time.Now().Add(t.o.ResponseHeaderTimeout); dl.IsZero() || h.Before(dl) {
			c.readDL = h
		}
	}
	var (
		st   *exchangeState
		mode int
	)
	for interim := 0; ; interim++ {
		// Each head, interim or final, gets the whole budget (as net/http does for 1xx it
		// passes on); maxInterim bounds the total.
		c.headBudget = t.o.MaxResponseHeaderBytes
		st = new(exchangeState)
		err := c.readHead()
		if err == nil {
			err = parseResponse(st, string(c.head), req)
			c.keepHead(c.head)
		}
		if err == nil && (st.resp.StatusCode >= 200 || st.resp.StatusCode == http.StatusSwitchingProtocols) {
			// Framing fields mean nothing on an interim response (as net/http ignores them).
			mode, err = frame(&st.resp, req.Method)
		}
		if err != nil {
			if IsTimeoutErr(err) {
				// Not stale: the target has the request and may be working on it (net/http
				// never sends a request again after a response-header timeout either).
				return fail(fmt.Errorf("h1: timeout awaiting response headers: %w", err), false)
			}
			return fail(fmt.Errorf("h1: read response: %w", err), c.nread == before)
		}
		code := st.resp.StatusCode
		if code >= 200 || code == http.StatusSwitchingProtocols {
			break
		}
		// An interim response (103 Early Hints, a stray 100 Continue): the proxy forwards
		// it to the client through its hook (got1xx); we wait for the final one.
		if interim >= maxInterim {
			return fail(errors.New("h1: too many 1xx responses"), false)
		}
		if got := got1xx(ctx, scope); got != nil {
			if err := got(code, textproto.MIMEHeader(st.resp.Header)); err != nil {
				return fail(err, false)
			}
		}
	}
	c.headBudget = -1
	c.readDL = dl // the body is bounded by the request's deadline only
	resp := &st.resp
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return fail(errors.New("h1: 101 Switching Protocols to a request that asked no upgrade"), false)
	}
	keep := !resp.Close && !req.Close
	c.bodiless = mode == bodyNone
	if c.bodiless {
		// HEAD, 204, 304, an empty body: the exchange is over.
		resp.Body = http.NoBody
		t.finish(c, &stop, keep)
		return resp, nil, false
	}
	b := &st.body
	*b = bodyReader{t: t, c: c, stop: stop, keep: keep, ctx: ctx, mode: mode, remain: resp.ContentLength}
	if mode == bodyChunked {
		b.chunk = wire.ChunkedReader{Src: c.br, MaxTrailer: t.o.MaxResponseHeaderBytes, Trailer: &resp.Trailer}
	}
	resp.Body = b
	return resp, nil, false
}

// ctxErr is ctx.Err(), or context.DeadlineExceeded once ctx's deadline has passed: the
// connection's deadline is set to the same instant and may fire before the context's own
// timer has canceled it.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// maxInterim bounds the 1xx responses accepted before the final one.
const maxInterim = 8

// got1xx is where interim responses go: to the nearer of the request's client trace and the
// Interim hook of its Scope (or of one above it), so that a hook set closer to the exchange
// wins.
func got1xx(ctx context.Context, scope *reqctx.Scope) func(int, textproto.MIMEHeader) error {
	var trace func(int, textproto.MIMEHeader) error
	if t := httptrace.ContextClientTrace(ctx); t != nil {
		trace = t.Got1xxResponse
	}
	if scope == nil {
		return trace
	}
	hook, holder := scope.InterimHook()
	if hook == nil || trace != nil && !traceBelow(ctx, holder) {
		return trace
	}
	return hook.Interim
}

// traceBelow reports whether ctx's client trace, if any, is the one holder sees too: set at or
// under holder, farther from the exchange than holder's hook.
func traceBelow(ctx context.Context, holder *reqctx.Scope) bool {
	return httptrace.ContextClientTrace(ctx) == httptrace.ContextClientTrace(holder)
}

// interimTrace hands a request for the fallback Transport, which knows only client traces, its
// Scope's Interim hook as one, when that hook is the nearer (a trace under the hook's Scope is
// replaced by a copy with the hook, so that the fallback does not call both). A request over a Scope gets the Scope's
// AfterFunc (Over), so that net/http's own derived context starts no goroutine.
func interimTrace(req *http.Request) *http.Request {
	ctx := req.Context()
	sc := reqctx.Beneath(ctx)
	if sc == nil {
		return req
	}
	hook, holder := sc.InterimHook()
	old := httptrace.ContextClientTrace(ctx)
	switch {
	case hook != nil && (old == nil || traceBelow(ctx, holder)):
		nt := &httptrace.ClientTrace{Got1xxResponse: hook.Interim}
		if old != nil {
			// The old trace's other hooks stay; only its 1xx hook gives way to the nearer one.
			copied := *old
			copied.Got1xxResponse = hook.Interim
			nt, ctx = &copied, hideTrace{ctx, old}
		}
		ctx = httptrace.WithClientTrace(ctx, nt)
	case ctx == context.Context(sc):
		return req // the standard library finds a Scope's AfterFunc by itself
	}
	return req.WithContext(reqctx.Over(ctx, sc))
}

// hideTrace hides a client trace from httptrace.WithClientTrace, which would otherwise call
// its hooks as well as those of the copy that replaces it.
type hideTrace struct {
	context.Context
	trace *httptrace.ClientTrace
}

func (h hideTrace) Value(key any) any {
	v := h.Context.Value(key)
	if t, ok := v.(*httptrace.ClientTrace); ok && t == h.trace {
		return nil
	}
	return v
}

// ReadsScopeInterim marks the Transport as one that passes interim responses to
// reqctx.Scope.Interim (see reqctx.InterimReader).
func (t *Transport) ReadsScopeInterim() {}

var _ reqctx.InterimReader = (*Transport)(nil)

// cancelHook is an exchange's registration for the request's cancellation, which closes the
// connection: with the request's Scope (no allocation) or through context.AfterFunc.
type cancelHook struct {
	scope *reqctx.Scope
	id    uint64
	ok    bool
	f     func() bool // context.AfterFunc's stop
}

// release unregisters the hook. It reports false when the hook has run, or is running: the
// connection is (being) closed and must not be reused.
func (h *cancelHook) release() bool {
	switch {
	case h.scope != nil:
		if !h.ok {
			return false
		}
		h.ok = false
		return h.scope.Unregister(h.id)
	case h.f != nil:
		return h.f()
	}
	return true
}

// finish ends an exchange whose response was read completely: the connection goes back to the
// pool when it may be reused and was not closed by a cancellation meanwhile.
func (t *Transport) finish(c *conn, stop *cancelHook, keep bool) {
	if !stop.release() {
		keep = false // the cancellation hook ran: the connection is closed
	}
	if keep && c.br.Buffered() == 0 {
		c.p.put(c, t.o)
		return
	}
	c.p.closeConn(c)
}

// IsTimeoutErr reports whether err is a network timeout (a deadline that passed).
func IsTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// bodyReader is a response body: reading it to its end returns the connection to the pool;
// closing it earlier, or a read error, closes the connection.
type bodyReader struct {
	t      *Transport
	c      *conn
	stop   cancelHook
	ctx    context.Context
	keep   bool
	mode   int   // bodyFixed, bodyChunked or bodyToClose
	remain int64 // bodyFixed: bytes left
	chunk  wire.ChunkedReader
	done   atomic.Bool
	eof    atomic.Bool // read to its end: later reads return io.EOF again
}

var errBodyClosed = errors.New("h1: read on closed response body")

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.done.Load() {
		if b.eof.Load() {
			return 0, io.EOF
		}
		return 0, errBodyClosed
	}
	n, err := b.read(p)
	if err == nil {
		return n, nil
	}
	if !b.done.CompareAndSwap(false, true) {
		// Closed concurrently: the connection is already gone.
		return n, err
	}
	if err == io.EOF {
		b.eof.Store(true)
		b.t.finish(b.c, &b.stop, b.keep) // keep is false for a close-delimited body (resp.Close)
		return n, io.EOF
	}
	b.stop.release()
	b.c.p.closeConn(b.c)
	if cerr := ctxErr(b.ctx); cerr != nil {
		return n, cerr
	}
	return n, err
}

// read reads the body as framed; io.EOF marks its end (with the last bytes, for a fixed length).
func (b *bodyReader) read(p []byte) (int, error) {
	switch b.mode {
	case bodyChunked:
		return b.chunk.Read(p)
	case bodyToClose:
		return b.c.br.Read(p)
	}
	if b.remain > 1 && int64(len(p)) >= b.remain && b.c.br.Buffered() == 0 {
		// A read this large bypasses the buffer and takes exactly what is left from the
		// socket, so bytes the target sent after the body (a miscounted length, a second
		// response) would stay in the kernel and be read as the next request's response.
		// The last byte goes through the buffer, which takes along whatever came with it,
		// and finish then sees those bytes and closes the connection.
		p = p[:b.remain-1]
	}
	return wire.ReadFixed(b.c.br, p, &b.remain)
}

// Close ends the exchange. Before the end of the body it closes the connection: the rest of the
// response may be long (a stream), so it is not drained.
func (b *bodyReader) Close() error {
	if b.done.CompareAndSwap(false, true) {
		b.stop.release()
		b.c.p.closeConn(b.c)
	}
	return nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBuf(b *bytes.Buffer) {
	if b.Cap() > 256<<10 {
		return
	}
	b.Reset()
	bufPool.Put(b)
}

// writeRequest writes req's head and body in HTTP/1.1 wire format, as (*http.Request).Write
// would for a non-proxy request: origin-form target, Host first, User-Agent (net/http's default
// when the header is absent, none when it is empty), the other headers, then the framing.
func writeRequest(w *bufio.Writer, req *http.Request, body []byte, chunked bool) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !validMethod(method) {
		return validationError("invalid method " + strconv.Quote(method))
	}
	w.WriteString(method)
	w.WriteByte(' ')
	path := req.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	w.WriteString(path)
	if req.URL.ForceQuery || req.URL.RawQuery != "" {
		w.WriteByte('?')
		w.WriteString(req.URL.RawQuery)
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	if ua, ok := req.Header["User-Agent"]; !ok {
		w.WriteString("User-Agent: Go-http-client/1.1\r\n")
	} else if len(ua) > 0 && ua[0] != "" {
		if !wire.ValidFieldValue(ua[0]) {
			return validationError("invalid User-Agent value")
		}
		w.WriteString("User-Agent: ")
		w.WriteString(ua[0])
		w.WriteString("\r\n")
	}
	for k, vv := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !wire.ValidFieldName(k) {
			return validationError("invalid header field name " + strconv.Quote(k))
		}
		for _, v := range vv {
			if !wire.ValidFieldValue(v) {
				return validationError("invalid header field value for " + strconv.Quote(k))
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
	if req.Close && !wire.HasToken(req.Header["Connection"], "close") {
		w.WriteString("Connection: close\r\n")
	}
	switch {
	case chunked:
		w.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		if len(body) > 0 {
			w.WriteString(strconv.FormatInt(int64(len(body)), 16))
			w.WriteString("\r\n")
			w.Write(body)
			w.WriteString("\r\n")
		}
		_, err := w.WriteString("0\r\n\r\n")
		return err
	case len(body) > 0:
		var num [20]byte
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(num[:0], int64(len(body)), 10))
		w.WriteString("\r\n\r\n")
		_, err := w.Write(body)
		return err
	case method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch:
		// As net/http: a body-carrying method says explicitly that its body is empty.
		_, err := w.WriteString("Content-Length: 0\r\n\r\n")
		return err
	}
	_, err := w.WriteString("\r\n")
	return err
}

// validationError is a request that cannot be written safely (it would inject header lines).
type validationError string

func (e validationError) Error() string { return "h1: " + string(e) }

func validMethod(m string) bool { return wire.ValidFieldName(m) }

// validHost reports whether h is a plain ASCII host[:port] that can be written as is.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c <= ' ' || c >= 0x7f || c == '/' || c == '%' {
			return false
		}
	}
	return true
}
