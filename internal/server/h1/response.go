package h1

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/reqctx"
	"github.com/gatehouse/gatehouse/internal/wire"
	"golang.org/x/net/http/httpguts"
)

var errResponseDone = errors.New("h1: write after the handler returned")

// pendingMax is how much body a response with no Content-Length holds back: if the handler
// finishes within it, the response gets a Content-Length instead of chunked framing.
const pendingMax = 4096

// response is the http.ResponseWriter of one request. Like net/http's, it is not safe for
// concurrent use, except that reading the request body (which may send "100 Continue") may
// happen on another goroutine.
type response struct {
	c      *conn
	req    *http.Request
	body   *body // nil when the request has no body
	header http.Header

	status      int
	cl          int64 // declared Content-Length (-1: none)
	written     int64
	wroteHeader bool // the final status is chosen
	headWritten bool // the head is in the connection's buffer (guarded by c.wmu)
	chunked     bool
	isHead      bool
	closeAfter  bool
	hijacked    bool
	// done is set once the handler has returned (or panicked): every later call fails. It is
	// atomic because a goroutine the handler started may still hold the ResponseWriter.
	done    atomic.Bool
	pending []byte
	err     error        // sticky write error
	url     url.URL      // the request's URL
	request http.Request // what req points to
	scope   reqctx.Scope // the request's context
}

var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Flusher        = (*response)(nil)
	_ http.Hijacker       = (*response)(nil)
)

// Header returns the response's header map, made on the first call (a proxied response
// usually adopts the upstream's instead: AdoptHeader).
func (w *response) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header, w.c.headerHint)
	}
	return w.header
}

// AdoptHeader implements httpx.HeaderAdopter. It adopts h only while nobody has asked for the
// response's own map: a map handed out by Header may be held and written later, and one made
// there is sized for the whole response (headerHint), so copying h into it is cheaper than
// growing h to hold both. So it has nothing to merge either.
func (w *response) AdoptHeader(h http.Header) bool {
	if h == nil || w.header != nil || w.wroteHeader || w.hijacked || w.done.Load() {
		return false
	}
	w.header = h
	return true
}

// WriteHeader sends 1xx informational responses at once and records the final status.
func (w *response) WriteHeader(code int) {
	if w.done.Load() || w.hijacked || w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		w.c.srv.logf("handler wrote an invalid status code", "status", code)
		code = http.StatusInternalServerError
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	w.cl = -1
	if v := w.header["Content-Length"]; len(v) > 0 {
		if n, ok := wire.ParseContentLength(v[0]); ok && len(v) == 1 {
			w.cl = n
		} else {
			delete(w.header, "Content-Length")
		}
	}
}

// writeInformational writes a 1xx response (103 Early Hints, an explicit 100) with the
// headers set so far; HTTP/1.0 clients do not get them.
func (w *response) writeInformational(code int) {
	if w.req.ProtoMinor == 0 {
		return
	}
	c := w.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if w.headWritten {
		return
	}
	if code == http.StatusContinue && w.body != nil {
		w.body.expect.Store(false)
	}
	c.bw.WriteString(statusLine(code))
	writeFields(c.bw, w.header, true)
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		w.err = err
	}
}

func (w *response) Write(p []byte) (int, error) {
	if w.done.Load() {
		return 0, errResponseDone
	}
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.cl >= 0 && w.written+int64(len(p)) > w.cl {
		// Refused whole, and not counted: a response that then ends at its declared length
		// is complete, and its connection can be reused.
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.isHead {
		return len(p), nil
	}
	if !w.headWritten {
		if w.cl < 0 && len(w.pending)+len(p) <= pendingMax {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.writeHead(false)
	}
	return w.writeBody(p)
}

func (w *response) WriteString(s string) (int, error) {
	if !w.done.Load() && !w.headWritten && w.cl < 0 && w.wroteHeader && len(w.pending)+len(s) <= pendingMax &&
		!w.hijacked && !w.isHead && bodyAllowed(w.status) && w.err == nil {
		w.written += int64(len(s))
		w.pending = append(w.pending, s...)
		return len(s), nil
	}
	return w.Write([]byte(s))
}

func (w *response) writeBody(p []byte) (int, error) {
	bw := w.c.bw
	if w.chunked {
		var size [16]byte
		bw.Write(strconv.AppendInt(size[:0], int64(len(p)), 16))
		bw.WriteString("\r\n")
		n, err := bw.Write(p)
		bw.WriteString("\r\n")
		if err != nil {
			w.err = err
		}
		return n, err
	}
	n, err := bw.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// Flush sends the head (chunked, when the length is unknown) and everything buffered.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush reporting the write error (http.ResponseController uses it).
func (w *response) FlushError() error {
	if w.done.Load() {
		return errResponseDone
	}
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headWritten {
		w.writeHead(false)
	}
	if w.err != nil {
		return w.err
	}
	if err := w.c.bw.Flush(); err != nil {
		w.err = err
	}
	return w.err
}

// Hijack hands the connection to the handler (upgrades such as WebSocket). What was written
// of the response and not yet flushed stays in the returned writer.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.done.Load() || w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader && !w.headWritten {
		// The status (a 101, say) and any held-back body go into the writer, as net/http does.
		w.writeHead(false)
	}
	c := w.c
	c.endWatch()
	w.hijacked = true
	c.hijacked = true
	c.state.Store(stateHijacked)
	_ = c.rwc.SetDeadline(time.Time{})
	return c.rwc, bufio.NewReadWriter(c.br, c.bw), nil
}

// SetReadDeadline and SetWriteDeadline serve http.ResponseController.
func (w *response) SetReadDeadline(t time.Time) error  { return w.c.setReadDeadline(t) }
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

// EnableFullDuplex is a no-op: the request body can always be read while responding.
func (w *response) EnableFullDuplex() error { return nil }

// sameLength reports whether the Content-Length value v states n.
func sameLength(v string, n int64) bool {
	m, ok := wire.ParseContentLength(v)
	return ok && m == n
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// writeHead chooses the framing and connection handling and writes the status line and
// fields. final means the handler has returned, so everything it wrote is in pending.
func (w *response) writeHead(final bool) {
	c := w.c
	h := w.Header()
	req := w.req
	delete(h, "Transfer-Encoding")
	// The Content-Length field always states the framing chosen here: the handler may have
	// changed it after WriteHeader, when w.cl was fixed. Trailers matter only to a response of
	// unknown length (looking for them is a walk over the map).
	switch {
	case !bodyAllowed(w.status):
		if w.status != http.StatusNotModified {
			delete(h, "Content-Length")
		}
	case w.cl >= 0:
		if v := h["Content-Length"]; len(v) != 1 || !sameLength(v[0], w.cl) {
			h["Content-Length"] = []string{strconv.FormatInt(w.cl, 10)}
		}
	case final && len(h["Trailer"]) == 0 && !hasTrailerPrefix(h):
		if !w.isHead || len(w.pending) > 0 {
			w.cl = int64(len(w.pending))
			h["Content-Length"] = []string{strconv.Itoa(len(w.pending))}
		}
	case w.isHead:
		// No body follows a HEAD response, so no framing is needed.
	case req.ProtoMinor >= 1:
		w.chunked = true
		delete(h, "Content-Length")
	default:
		// HTTP/1.0 and no length: the end of the connection ends the body.
		w.closeAfter = true
		delete(h, "Content-Length")
	}
	upgrade := w.status == http.StatusSwitchingProtocols
	if !w.closeAfter {
		w.closeAfter = req.Close || c.srv.shuttingDown() || wire.HasToken(h["Connection"], "close") ||
			upgrade || !c.canDrain(w.body)
	}
	switch {
	case upgrade:
		// The handler's "Connection: Upgrade" stands; unless the handler hijacks the
		// connection, it closes after this response.
	case w.closeAfter:
		if !wire.HasToken(h["Connection"], "close") {
			h["Connection"] = []string{"close"}
		}
	case req.ProtoMinor == 0:
		h["Connection"] = []string{"keep-alive"}
	}

	c.wmu.Lock()
	bw := c.bw
	bw.WriteString(statusLine(w.status))
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	writeFields(bw, h, false)
	bw.WriteString("\r\n")
	w.headWritten = true
	c.wmu.Unlock()
	if len(w.pending) > 0 {
		p := w.pending
		w.pending = w.pending[:0]
		w.writeBody(p)
	}
}

// finish completes the response after the handler returned.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headWritten {
		w.writeHead(true)
	}
	w.done.Store(true)
	bw := w.c.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		w.writeTrailers(bw)
		bw.WriteString("\r\n")
	}
	if w.cl >= 0 && w.written != w.cl && !w.isHead && bodyAllowed(w.status) {
		// A short body: the client can only tell from the connection closing.
		w.closeAfter = true
	}
}

// writeTrailers writes the declared trailers and the http.TrailerPrefix ones, leaving out the
// fields that must not be trailers (framing, routing, authentication: RFC 9110 §6.5.1).
func (w *response) writeTrailers(bw *bufio.Writer) {
	h := w.header
	for _, decl := range h["Trailer"] {
		for decl != "" {
			var k string
			k, decl, _ = strings.Cut(decl, ",")
			k = wire.CanonicalKey(wire.TrimOWS(k))
			if !httpguts.ValidTrailerHeader(k) {
				continue
			}
			for _, v := range h[k] {
				writeField(bw, k, v)
			}
		}
	}
	for k, vv := range h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			if name = wire.CanonicalKey(name); !httpguts.ValidTrailerHeader(name) {
				continue
			}
			for _, v := range vv {
				writeField(bw, name, v)
			}
		}
	}
}

func hasTrailerPrefix(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			return true
		}
	}
	return false
}

// writeFields writes every header field; trailers-to-be ("Trailer:" prefix) are left out, and
// so are framing fields when informational is set.
func writeFields(bw *bufio.Writer, h http.Header, informational bool) {
	for k, vv := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		if informational && (k == "Content-Length" || k == "Transfer-Encoding") {
			continue
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
}

// needsScrub reports whether v holds CR, LF or NUL (a byte loop: strings.ContainsAny builds
// its byte set on every call, and field values are short).
func needsScrub(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= '\r' && (c == '\r' || c == '\n' || c == 0) {
			return true
		}
	}
	return false
}

// writeField writes "k: v\r\n". Invalid names are skipped and CR/LF in values become spaces,
// so a handler can never split the response.
func writeField(bw *bufio.Writer, k, v string) {
	if !wire.ValidFieldName(k) {
		return
	}
	bw.WriteString(k)
	bw.WriteString(": ")
	if needsScrub(v) {
		v = strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == 0 {
				return ' '
			}
			return r
		}, v)
	}
	bw.WriteString(v)
	bw.WriteString("\r\n")
}
