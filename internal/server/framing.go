package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/server/h1"
	"github.com/gatehouse/gatehouse/internal/wire"
)

// framingConn guards an HTTP/1.x connection against request smuggling. net/http resolves a
// request carrying both Content-Length and Transfer-Encoding by dropping Content-Length
// silently (RFC 9112 §6.1 allows that), which leaves no trace a handler could check. This
// wrapper sees each request head before net/http does; a head with both framings (or several
// Transfer-Encoding / Content-Length lines that disagree) is replaced by a harmless request
// that the edge answers with 400 and "Connection: close", so the original is never parsed,
// routed or forwarded.
//
// It tracks message framing the way net/http does (chunked bodies, Content-Length bodies) so
// it only inspects heads, and it steps aside for good after an Upgrade or HTTP/2 preface.
type framingConn struct {
	net.Conn
	maxHead  int
	rejected atomic.Bool
	reason   string
	// tlsState is the handshake of an HTTP/1.1-over-TLS connection this guard wraps (see
	// tlsSplitListener); net/http then sees a plain connection, so the listener handler puts
	// the state back on each request.
	tlsState *tls.ConnectionState

	state   int
	head    []byte // head being collected
	out     []byte // bytes ready to hand to net/http
	remain  int64  // body bytes left (stateBody) or chunk bytes left (stateChunkData)
	line    []byte // current chunk-size or trailer line
	rbuf    []byte
	tmp     []byte
	readErr error
}

const (
	stateHead = iota
	stateBody
	stateChunkSize
	stateChunkData
	stateChunkDataCRLF
	stateTrailer
	statePass
	stateDiscard
)

// smugglingPath is the request target substituted for a refused head. Only requests whose
// connection is marked rejected are answered as smuggling attempts; a client sending this
// path itself just gets a 404.
const smugglingPath = "/.gatehouse/refused-request"

const refusedHost = "refused.invalid"

var refusedRequest = []byte("GET " + smugglingPath + " HTTP/1.1\r\nHost: " + refusedHost + "\r\nConnection: close\r\n\r\n")

type framingKey struct{}

// withFraming stores the connection's guard in its context (http.Server.ConnContext).
func withFraming(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingKey{}, fc)
	}
	return ctx
}

// connTLS returns the TLS state of a guarded HTTP/1.1-over-TLS connection (nil otherwise).
func connTLS(r *http.Request) *tls.ConnectionState {
	fc, _ := r.Context().Value(framingKey{}).(*framingConn)
	if fc == nil {
		return nil
	}
	return fc.tlsState
}

// refusedFraming reports whether r is the stand-in for a refused head (and why). Earlier
// requests on the same connection are served normally.
func refusedFraming(r *http.Request) (string, bool) {
	if r.URL.Path != smugglingPath || r.Host != refusedHost {
		return "", false
	}
	fc, _ := r.Context().Value(framingKey{}).(*framingConn)
	if fc == nil || !fc.rejected.Load() {
		return "", false
	}
	return fc.reason, true
}

func (c *framingConn) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.readErr != nil {
			// Reported once: deadline errors are transient (net/http interrupts its
			// background read with one).
			err := c.readErr
			c.readErr = nil
			return 0, err
		}
		switch {
		case c.state == statePass:
			return c.Conn.Read(p)
		case c.state == stateDiscard:
			// After a refused head nothing more is parsed: whatever the client sends is
			// dropped until net/http, having answered the stand-in ("Connection: close"),
			// closes the connection. Blocking here (rather than failing) keeps net/http from
			// taking the connection for dead while an earlier request is still being served.
			if c.rbuf == nil {
				c.rbuf = make([]byte, 4096)
			}
			for {
				if _, err := c.Conn.Read(c.rbuf); err != nil {
					return 0, err
				}
			}
		case c.state == stateBody && int64(len(p)) <= c.remain:
			// Inside a Content-Length body: no need to look at the bytes.
			n, err := c.Conn.Read(p)
			c.remain -= int64(n)
			if c.remain == 0 {
				c.state = stateHead
			}
			return n, err
		}
		if c.rbuf == nil {
			c.rbuf = make([]byte, 4096)
		}
		c.out = c.out[:0]
		n, err := c.Conn.Read(c.rbuf)
		c.feed(c.rbuf[:n])
		if err != nil {
			c.readErr = err
			var ne net.Error
			if len(c.head) > 0 && c.state == stateHead && !(errors.As(err, &ne) && ne.Timeout()) {
				// An incomplete head at EOF: let net/http see it and complain.
				c.out = append(c.out, c.head...)
				c.head = c.head[:0]
			}
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// feed advances the framing state over b, moving inspected bytes to c.out.
func (c *framingConn) feed(b []byte) {
	for len(b) > 0 {
		switch c.state {
		case statePass:
			c.out = append(c.out, b...)
			return
		case stateDiscard:
			return
		case stateHead:
			// Skip the empty lines a client may send between requests.
			if len(c.head) == 0 {
				for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
					c.out = append(c.out, b[0])
					b = b[1:]
				}
				if len(b) == 0 {
					return
				}
			}
			start := len(c.head)
			c.head = append(c.head, b...)
			end := headEnd(c.head, start)
			if end < 0 {
				if len(c.head) > c.maxHead {
					// Too big to judge: net/http refuses oversized heads itself (431).
					c.out = append(c.out, c.head...)
					c.head = nil
					c.state = statePass
				}
				return
			}
			c.tmp = append(c.tmp[:0], c.head[end:]...)
			b = c.tmp
			c.inspect(c.head[:end])
			c.head = c.head[:0]
		case stateBody:
			n := int64(len(b))
			if n > c.remain {
				n = c.remain
			}
			c.out = append(c.out, b[:n]...)
			b = b[n:]
			c.remain -= n
			if c.remain == 0 {
				c.state = stateHead
			}
		case stateChunkSize, stateTrailer, stateChunkDataCRLF:
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				c.line = append(c.line, b...)
				c.out = append(c.out, b...)
				if len(c.line) > 4096 {
					c.state = statePass // malformed; net/http will reject it
				}
				return
			}
			c.line = append(c.line, b[:i+1]...)
			c.out = append(c.out, b[:i+1]...)
			b = b[i+1:]
			line := bytes.TrimRight(c.line, "\r\n")
			c.line = c.line[:0]
			if c.state == stateTrailer {
				if len(line) == 0 {
					c.state = stateHead
				}
				continue
			}
			if c.state == stateChunkDataCRLF {
				// The line ending after chunk data must be empty; anything else is malformed
				// and net/http rejects it and closes.
				if len(line) == 0 {
					c.state = stateChunkSize
				} else {
					c.state = statePass
				}
				continue
			}
			if j := bytes.IndexByte(line, ';'); j >= 0 {
				line = line[:j]
			}
			size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
			if err != nil || size < 0 {
				c.state = statePass // malformed chunk: net/http rejects it and closes
				continue
			}
			if size == 0 {
				c.state = stateTrailer
				continue
			}
			c.remain, c.state = size, stateChunkData
		case stateChunkData:
			n := int64(len(b))
			if n > c.remain {
				n = c.remain
			}
			c.out = append(c.out, b[:n]...)
			b = b[n:]
			c.remain -= n
			if c.remain == 0 {
				c.state = stateChunkDataCRLF
			}
		}
	}
}

// headEnd returns the index just past the blank line ending a head, or -1.
func headEnd(b []byte, from int) int {
	if from > 3 {
		from -= 3
	} else {
		from = 0
	}
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		if i+1 < len(b) && b[i+1] == '\n' {
			return i + 2
		}
		if i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n' {
			return i + 3
		}
	}
	return -1
}

var errConflictingLength = errors.New("conflicting Content-Length values")

// inspect decides the framing of one request head and queues it (or its stand-in).
func (c *framingConn) inspect(head []byte) {
	// The head is walked line by line in place (no per-request slice of lines).
	requestLine, rest, more := bytes.Cut(head, []byte("\n"))
	requestLine = bytes.TrimRight(requestLine, "\r")
	if bytes.HasPrefix(requestLine, []byte("PRI * HTTP/2")) {
		c.out = append(c.out, head...)
		c.state = statePass
		return
	}
	var cl []string
	var te []string
	upgrade := false
	for more {
		var l []byte
		l, rest, more = bytes.Cut(rest, []byte("\n"))
		l = bytes.TrimRight(l, "\r")
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case asciiEqualFold(k, "content-length"):
			cl = append(cl, string(v))
		case asciiEqualFold(k, "transfer-encoding"):
			te = append(te, string(v))
		case asciiEqualFold(k, "upgrade"):
			upgrade = true
		}
	}
	switch {
	case len(te) > 0 && len(cl) > 0:
		c.refuse("both Content-Length and Transfer-Encoding")
		return
	case len(te) > 1:
		c.refuse("several Transfer-Encoding headers")
		return
	case len(te) > 0 && !bytes.HasSuffix(requestLine, []byte(" HTTP/1.1")):
		// net/http ignores Transfer-Encoding on HTTP/1.0 (the body is then empty), so this
		// guard would read the next request as chunk data (RFC 9112 §6.1: faulty framing).
		c.refuse("Transfer-Encoding on HTTP/1.0")
		return
	}
	c.out = append(c.out, head...)
	switch {
	case upgrade:
		// After a possible protocol switch the bytes are no longer HTTP/1.
		c.state = statePass
	case len(te) == 1:
		if !asciiEqualFold([]byte(te[0]), "chunked") {
			c.state = statePass // net/http answers 501 and closes
			return
		}
		c.state = stateChunkSize
	case len(cl) > 0:
		n, err := strconv.ParseInt(cl[0], 10, 64)
		for _, other := range cl[1:] {
			if other != cl[0] {
				err = errConflictingLength
			}
		}
		if err != nil || n < 0 {
			c.state = statePass // net/http answers 400 and closes
			return
		}
		if n > 0 {
			c.remain, c.state = n, stateBody
		}
	}
}

func (c *framingConn) refuse(reason string) {
	c.reason = reason
	c.rejected.Store(true)
	c.out = append(c.out, refusedRequest...)
	// Nothing after a refused head is trusted: the connection ends with this request.
	c.state = stateDiscard
}

// asciiEqualFold is wire.EqualFold for a name still in the raw head; the length check first
// keeps the conversion to the short, stack-allocated case.
func asciiEqualFold(b []byte, s string) bool { return len(b) == len(s) && wire.EqualFold(string(b), s) }

// framingListener wraps accepted connections in framingConn.
type framingListener struct {
	net.Listener
	maxHead int
}

// newFramingListener guards ln for an http.Server with the given MaxHeaderBytes. net/http
// reads heads of up to MaxHeaderBytes+4096 bytes, so the guard must inspect at least that much:
// a head it gives up on has to be one net/http refuses too.
func newFramingListener(ln net.Listener, serverMaxHeaderBytes int) *framingListener {
	return &framingListener{Listener: ln, maxHead: serverMaxHeaderBytes + 4096}
}

func (l *framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, maxHead: l.maxHead}, nil
}

// tlsSplitListener terminates TLS itself so the smuggling guard also covers HTTP/1.1 over TLS:
// after the handshake an HTTP/2 connection is handed to net/http as the *tls.Conn it is (net/http
// then speaks h2 on it), while an HTTP/1.1 connection is wrapped in the framing guard first.
// Handshakes run concurrently, bounded by a timeout, so a slow client cannot stall accepting.
//
// Accepting starts with the first Accept, so a listener a reload builds and then discards (the
// reload failed) never takes a connection from the socket it shares with the serving one.
type tlsSplitListener struct {
	net.Listener
	cfg      *tls.Config
	timeout  time.Duration
	maxHead  int
	conns    chan net.Conn
	errc     chan error
	done     chan struct{}
	once     sync.Once
	start    sync.Once
	started  atomic.Bool
	loopDone chan struct{} // closed when acceptLoop returns
	pending  atomic.Int64  // connections taken from the socket and not yet handed to Accept
	draining atomic.Bool
}

func newTLSSplitListener(raw net.Listener, cfg *tls.Config, handshakeTimeout time.Duration, serverMaxHeaderBytes int) *tlsSplitListener {
	if handshakeTimeout <= 0 {
		handshakeTimeout = 10 * time.Second
	}
	return &tlsSplitListener{Listener: raw, cfg: cfg, timeout: handshakeTimeout, maxHead: serverMaxHeaderBytes + 4096,
		conns: make(chan net.Conn), errc: make(chan error, 1), done: make(chan struct{}), loopDone: make(chan struct{})}
}

// Drain stops taking connections from the socket and waits (up to ctx) until every connection
// it took has finished its handshake and been handed to Accept, or failed: closing at once
// would drop the connections of clients that connected just before a reload. The server keeps
// calling Accept meanwhile; Close ends it.
func (l *tlsSplitListener) Drain(ctx context.Context) {
	l.draining.Store(true)
	_ = l.Listener.Close()
	if !l.started.Load() {
		return // never accepted: nothing taken
	}
	select {
	case <-l.loopDone: // no connection is taken from now on
	case <-ctx.Done():
		return
	}
	for l.pending.Load() > 0 {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
}

func (l *tlsSplitListener) acceptLoop() {
	defer close(l.loopDone)
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if l.draining.Load() {
				return // Drain closed the socket's view; the server goes on taking what is pending
			}
			if h1.TemporaryAcceptError(err) {
				// Out of file descriptors and the like: wait and accept again, as net/http's
				// server does. Ending the loop would leave the listener deaf for good.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(backoff):
					continue
				case <-l.done:
					return
				}
			}
			select {
			case l.errc <- err:
			case <-l.done:
			}
			return
		}
		backoff = 0
		l.pending.Add(1)
		go l.handshake(c)
	}
}

func (l *tlsSplitListener) handshake(c net.Conn) {
	defer l.pending.Add(-1)
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		_ = tc.Close()
		return
	}
	var out net.Conn = tc
	if st := tc.ConnectionState(); st.NegotiatedProtocol != "h2" {
		out = &framingConn{Conn: tc, maxHead: l.maxHead, tlsState: &st}
	}
	select {
	case l.conns <- out:
	case <-l.done:
		_ = out.Close()
	}
}

func (l *tlsSplitListener) Accept() (net.Conn, error) {
	l.start.Do(func() { l.started.Store(true); go l.acceptLoop() })
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *tlsSplitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}
