package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/reqctx"
	"github.com/gatehouse/gatehouse/internal/wire"
)

// forward is the proxy loop: it turns the client's request into the upstream request, runs
// the service's attempts, and streams the chosen response back (headers, body, trailers,
// protocol switches). It does what httputil.ReverseProxy did for this package, without the
// per-request deep copy of the request and its headers: the gateway owns the request, so its
// header map is edited in place (hop-by-hop fields dropped, forwarding fields set).
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, ob *outbound) {
	// Interim responses (103 Early Hints) from the upstream reach the client too: through the
	// request's Scope for a transport that reads it there, else through a client trace.
	ob.req, ob.url = *r, *r.URL
	out, hints := &ob.req, &ob.hints
	hints.w = w
	if sc, ok := r.Context().(*reqctx.Scope); ok && h.scopeInterim && sc.Interim == nil {
		sc.Interim = hints
		// The Scope may be the request's own, which outlives this exchange: nothing after it
		// may write 1xx responses to w.
		defer func() { sc.Interim = nil }()
	} else {
		tctx := httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{Got1xxResponse: hints.Interim})
		if sc := reqctx.Beneath(r.Context()); sc != nil {
			tctx = reqctx.Over(tctx, sc) // contexts net/http derives register with sc, no goroutine
		}
		out = out.WithContext(tctx)
	}
	out.URL = &ob.url
	out.RequestURI = ""
	out.Close = false
	if r.ContentLength == 0 {
		out.Body = nil // no body: the transport must not wait for one
	}
	upType := upgradeType(r.Header)
	if strings.EqualFold(upType, "h2c") {
		// An upstream that took the h2c upgrade would read every later request on the
		// tunnel as HTTP/2, past this route's policies (request smuggling): the request goes
		// as a plain one.
		upType = ""
		delete(r.Header, "Http2-Settings")
	}
	removeHopByHop(r.Header)
	if upType != "" {
		r.Header["Connection"] = []string{"Upgrade"}
		r.Header["Upgrade"] = []string{upType}
	}
	ob.requestID = h.rewriteRequest(r, out, ob.vals[:0])

	var key string
	if h.o.HashKind != "" {
		// Only consistent_hash services put a key there; a lookup that misses walks every
		// context up to the server's.
		key, _ = r.Context().Value(hashKeyCtx{}).(string)
	}
	resp, err := h.o.Upstream.Run(out, key, h.sendFn)
	hints.close() // the final response is chosen: a late 1xx (an abandoned attempt's) is dropped
	if err != nil {
		h.handleError(w, r, err)
		return
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		h.switchProtocols(w, r, upType, resp)
		return
	}
	removeHopByHop(resp.Header)
	h.modifyResponse(resp, ob.requestID)

	// The response takes the upstream's header map as its own where the writer can (the
	// HTTP/1.x server); else the fields are copied over.
	if !httpx.AdoptHeader(w, resp.Header) {
		dst := w.Header()
		for k, vv := range resp.Header {
			if old, ok := dst[k]; ok {
				dst[k] = append(old, vv...)
			} else {
				dst[k] = vv
			}
		}
	}
	dst := w.Header()
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		dst["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(resp.StatusCode)
	if announced > 0 {
		// Trailers need chunked framing: flush now so a short body is not given a length.
		_ = http.NewResponseController(w).Flush()
	}
	dl, hasDL := out.Context().Deadline()
	if !hasDL && h.o.RequestTimeout > 0 {
		// The request asked for an upgrade, so the exchange ran without the route's deadline
		// (it would cut the tunnel), but the upstream did not switch: the route's timeout
		// bounds this response after all, or a client could lift it with an Upgrade header.
		// Upgrade requests go through net/http's Transport, whose response body may be
		// closed while it is read.
		dl, hasDL = time.Now().Add(h.o.RequestTimeout), true
		cut := time.AfterFunc(h.o.RequestTimeout, func() { _ = resp.Body.Close() })
		defer cut.Stop()
	}
	var bounded *http.ResponseController
	if h.o.BoundWrites && hasDL && (r.ProtoMajor == 2 || resp.ContentLength < 0 || resp.ContentLength > copyBufSize) {
		bounded = http.NewResponseController(w)
		_ = bounded.SetWriteDeadline(dl)
	}
	err = copyBody(w, resp)
	if bounded != nil {
		_ = bounded.SetWriteDeadline(time.Time{}) // a keep-alive connection's next response is not bounded by this one
	}
	if err != nil {
		_ = resp.Body.Close()
		if r.Context().Err() == nil {
			h.o.Logger.Debug("response stream aborted", "route", h.o.Route, "error", err.Error())
		}
		if info := httpx.InfoFrom(r.Context()); info != nil {
			// The access log tells whose side broke the stream.
			_, client := err.(clientWriteError)
			switch {
			case client && isTimeout(err):
				info.ErrorCode = "client_write_timeout" // a client too slow to read, cut at the route's deadline
			case client || r.Context().Err() != nil:
				info.ErrorCode = "client_closed_request"
			default:
				info.ErrorCode = CodeUpstreamAborted
			}
		}
		// The status line is out: the only honest signal left is to abort the response, which
		// both servers turn into a connection (or stream) reset instead of a complete message.
		panic(http.ErrAbortHandler)
	}
	_ = resp.Body.Close()
	if len(resp.Trailer) == announced {
		for k, vv := range resp.Trailer {
			dst[k] = vv
		}
		return
	}
	for k, vv := range resp.Trailer {
		dst[http.TrailerPrefix+k] = vv
	}
}

// outbound is what forward makes for one request, in one allocation: the upstream request, its
// URL and the early-hints relay.
type outbound struct {
	req       http.Request
	url       url.URL
	hints     earlyHints
	requestID []string     // the X-Request-Id value, for the response too
	scope     reqctx.Scope // the route's deadline, when it has one (ServeHTTP)
	vals      [7]string    // backing array of the header values rewriteRequest sets

	// clientDeadline is the Scope's deadline when it is the gRPC client's own, for
	// upstream.MarkClientDeadline.
	clientDeadline time.Time
}

// copyBody streams the response body. Bodies of unknown length and event streams are flushed
// after every read, so server-sent events and long polls reach the client at once.
func copyBody(w http.ResponseWriter, resp *http.Response) error {
	flush := resp.ContentLength == -1 || isEventStream(resp.Header)
	var flusher http.Flusher
	if flush {
		flusher, _ = w.(http.Flusher)
		if flusher == nil {
			rc := http.NewResponseController(w)
			flusher = flushFunc(func() { _ = rc.Flush() })
		}
	}
	bp := bufferPool.p.Get().(*[copyBufSize]byte)
	defer bufferPool.p.Put(bp)
	buf := bp[:]
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return clientWriteError{werr}
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// clientWriteError is a copyBody failure writing to the client (any other is the upstream's).
type clientWriteError struct{ err error }

func (e clientWriteError) Error() string { return e.err.Error() }
func (e clientWriteError) Unwrap() error { return e.err }

// CodeUpstreamAborted is the access log's error code for a response the upstream broke off
// after its status line went out (the client's stream is reset).
const CodeUpstreamAborted = "upstream_response_aborted"

type flushFunc func()

func (f flushFunc) Flush() { f() }

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	if len(ct) == 0 || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct[0])), "text/event-stream") {
		return false
	}
	base, _, _ := mime.ParseMediaType(ct[0])
	return base == "text/event-stream"
}

// earlyHints forwards 1xx responses (103 Early Hints) from the upstream to the client until
// the final response is chosen. net/http's Transport calls forward from its connection's read
// loop: an attempt abandoned at its per-try timeout may still deliver one while the next attempt
// does, or after the exchange is over, hence the lock and closed.
type earlyHints struct {
	mu     sync.Mutex
	w      http.ResponseWriter
	closed bool
}

func (e *earlyHints) Interim(code int, header textproto.MIMEHeader) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || code == http.StatusContinue {
		return nil // too late, or answered to the gateway's Expect, not the client's
	}
	// The interim fields go out with the 1xx only: what the final response already had under
	// the same names is put back afterwards.
	h := e.w.Header()
	saved := map[string][]string{}
	for k, vv := range header {
		if old, ok := h[k]; ok {
			saved[k] = old
		}
		h[k] = append([]string(nil), vv...)
	}
	e.w.WriteHeader(code)
	for k := range header {
		if old, ok := saved[k]; ok {
			h[k] = old
		} else {
			delete(h, k)
		}
	}
	return nil
}

// close stops forwarding: the final response (or the gateway's error) is next.
func (e *earlyHints) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
}

// removeHopByHop deletes the hop-by-hop fields (RFC 9110 §7.6.1: Connection, Proxy-Connection,
// Keep-Alive, Proxy-Authenticate, Proxy-Authorization, TE, Trailer, Transfer-Encoding,
// Upgrade) and those the Connection field names. "TE: trailers" is kept: gRPC needs it end to
// end. It walks the map once (a few fields) rather than looking each name up.
func removeHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for v != "" {
			var f string
			f, v, _ = strings.Cut(v, ",")
			switch f = textproto.TrimString(f); {
			case f == "":
			case wire.EqualFold(f, "keep-alive"):
				// The usual option needs no canonical form: the walk below deletes it.
			case wire.EqualFold(f, "close"):
				delete(h, "Close")
			default:
				delete(h, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	trailers := false
	for k, vv := range h {
		switch k {
		case "Te":
			trailers = wire.HasToken(vv, "trailers")
			delete(h, k)
		case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
			"Trailer", "Transfer-Encoding", "Upgrade":
			delete(h, k)
		}
	}
	if trailers {
		h["Te"] = []string{"trailers"}
	}
}

// upgradeType is the protocol a request or response asks to switch to ("" if none).
func upgradeType(h http.Header) string {
	if !wire.HasToken(h["Connection"], "upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// switchProtocols completes an upgrade (WebSocket and the like): it hands the client the
// upstream's 101 and then copies bytes both ways until either side closes.
func (h *Handler) switchProtocols(w http.ResponseWriter, r *http.Request, reqUp string, resp *http.Response) {
	resUp := upgradeType(resp.Header)
	if !strings.EqualFold(reqUp, resUp) {
		_ = resp.Body.Close()
		h.handleError(w, r, fmt.Errorf("upstream switched protocol to %q when %q was requested", resUp, reqUp))
		return
	}
	backConn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		_ = resp.Body.Close()
		h.handleError(w, r, errors.New("upstream 101 response body is not writable"))
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		_ = backConn.Close()
		h.handleError(w, r, fmt.Errorf("hijack for upgrade: %w", err))
		return
	}
	defer conn.Close()
	defer backConn.Close()
	stop := context.AfterFunc(r.Context(), func() { _ = backConn.Close() })
	defer stop()

	h.modifyResponse(resp, nil)
	for k, vv := range resp.Header {
		w.Header()[k] = vv
	}
	resp.Header = w.Header()
	resp.Body = nil
	if err := resp.Write(brw); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	// A tunnel silent both ways for the idle timeout is closed: a client that vanished (a NAT
	// dropped, a phone went away) must not hold the tunnel and its upstream connection forever.
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	errc := make(chan error, 2)
	go func() { // client → upstream (bytes already buffered by the server first)
		_, err := io.Copy(backConn, activityReader{brw.Reader, &last})
		errc <- err
	}()
	go func() {
		_, err := io.Copy(conn, activityReader{backConn, &last})
		errc <- err
	}()
	if idle := h.o.UpgradeIdleTimeout; idle > 0 {
		tick := time.NewTicker(min(idle/4, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-errc:
				return
			case <-tick.C:
				if time.Since(time.Unix(0, last.Load())) >= idle {
					h.o.Logger.Debug("upgraded connection idle; closed", "route", h.o.Route, "idle", idle.String())
					return // the deferred Closes end both copies
				}
			}
		}
	}
	<-errc
}

// activityReader notes the time of every read that returns data.
type activityReader struct {
	r    io.Reader
	last *atomic.Int64
}

func (a activityReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.last.Store(time.Now().UnixNano())
	}
	return n, err
}
