// Package proxy forwards a routed request to one target of its service: it rewrites the path,
// sets forwarding headers, applies header edits and timeouts, streams both ways (server-sent
// events flush at once, upgrades such as WebSocket pass through, trailers are kept), and turns
// upstream failures into the gateway's JSON errors.
//
// Target choice, circuit breaking, health and retries are per attempt and live in
// upstream.Service: the Handler's forwarding loop (forward.go) hands the rewritten request to
// Service.Run, which calls back once per attempt.
//
// The Handler is what a route's middleware chain ends in; nothing outside this package knows
// how the bytes move, so the forwarding engine can be replaced without touching routing or
// middleware.
package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/reqctx"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	grpcwire "github.com/gatehouse/gatehouse/internal/translate/grpc/wire"
	"github.com/gatehouse/gatehouse/internal/upstream"
	"github.com/gatehouse/gatehouse/internal/wire"
)

// Options configures a Handler for one route.
type Options struct {
	Route   string
	Service string
	// Upstream chooses the Target of each attempt and applies the service's circuit breaker,
	// health checks and retries (see upstream.Service.Run).
	Upstream *upstream.Service
	// HashKind and HashName select the consistent-hash key: "header", "cookie" or "client_ip".
	HashKind, HashName string
	// Transport sends each attempt; it carries the route's connect and response-header timeouts.
	Transport http.RoundTripper
	// StripPrefix removes a literal prefix from the forwarded path; Rewrite, when set, replaces
	// the path with a template ("{name}" parameters, "{**}" the wildcard rest).
	StripPrefix  string
	Rewrite      string
	PreserveHost bool
	// RequestTimeout bounds the whole exchange (0: none). Not applied to upgrades.
	RequestTimeout time.Duration
	// BoundWrites makes the request's deadline bound the writes of a response body that may
	// not fit the client's socket buffers (over 32 KiB, of unknown length, or on HTTP/2): a
	// client that stops reading then releases its request, and the upstream connection, at
	// the route's timeout. Set it when server.write_timeout is off (it would bound them).
	BoundWrites bool
	// UpgradeIdleTimeout closes an upgraded connection (WebSocket) idle both ways this long
	// (0: never): the request timeout does not apply to upgrades.
	UpgradeIdleTimeout time.Duration
	RequestHeaders     httpx.HeaderOps
	ResponseHeaders    httpx.HeaderOps
	Trusted            *httpx.Trusted
	Logger             *slog.Logger
}

// Handler proxies requests to a service. It is safe for concurrent use.
type Handler struct {
	o       Options
	rewrite []rewritePart
	sendFn  upstream.SendFunc // h.send, bound once so attempts do not allocate a method value
	// scopeInterim: the transport passes 1xx responses to the request Scope's Interim hook,
	// so the proxy needs no client trace (a context and four allocations) per request.
	scopeInterim bool
}

type rewritePart struct {
	literal string
	param   string // "" for a literal; "**" for the wildcard rest
}

// New builds a Handler.
func New(o Options) (*Handler, error) {
	if o.Upstream == nil || o.Transport == nil {
		return nil, errors.New("proxy: upstream service and transport are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.StripPrefix = stripPrefix(o.StripPrefix)
	h := &Handler{o: o}
	h.sendFn = h.send
	_, h.scopeInterim = o.Transport.(reqctx.InterimReader)
	if o.Rewrite != "" {
		h.rewrite = parseTemplate(o.Rewrite)
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := httpx.InfoFrom(r.Context())
	if info == nil {
		// Requests always come through the runtime edge, which sets Info; be safe anyway.
		info = &httpx.Info{}
		r = r.WithContext(httpx.WithInfo(r.Context(), info))
	}
	// The exchange gets a reqctx.Scope of its own when it has a deadline: the route's timeout,
	// or the gRPC client's (the server, which gets the same grpc-timeout, answers
	// DEADLINE_EXCEEDED first thanks to the grace). Unlike a context.WithTimeout it costs no
	// timer unless something waits for the deadline, and the upstream client registers with it
	// without allocating.
	var ctx context.Context = r.Context()
	var deadline time.Time
	// An upgrade is exempt (the deadline would cut the tunnel), but not h2c, which the proxy
	// sends as a plain request.
	if h.o.RequestTimeout > 0 && (!wire.IsUpgrade(r.Header) || strings.EqualFold(upgradeType(r.Header), "h2c")) {
		deadline = time.Now().Add(h.o.RequestTimeout)
	} else if h.o.RequestTimeout == 0 && r.ProtoMajor == 2 && r.Body != nil && r.Body != http.NoBody {
		// A route without a request timeout carries long streams (gRPC client and bidi
		// streams): server.read_timeout, which net/http's HTTP/2 server applies to each
		// stream's body, would cut them. (HTTP/1.x streams are upgrades, whose connection
		// has no deadline.)
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	}
	clients := false // the deadline is the gRPC client's own
	if d, ok := grpcwire.ParseTimeout(first(r.Header["Grpc-Timeout"])); ok && d < maxGRPCTimeout && grpcwire.IsGRPCRequest(r) {
		if dl := time.Now().Add(d + grpcDeadlineGrace); deadline.IsZero() || dl.Before(deadline) {
			deadline, clients = dl, true
		}
	}
	// The exchange's state, its Scope included, is one allocation.
	ob := new(outbound)
	var own *reqctx.Scope
	if !deadline.IsZero() {
		own = &ob.scope
		own.InitDeadline(ctx, deadline)
		defer own.Cancel()
		ctx = own
		if clients {
			// A call cut at its client's deadline is the client's budget running out, however
			// short it was, not a timeout of the target: no breaker or passive health failure
			// (a route's request timeout, set by the gateway, is one).
			ob.clientDeadline = deadline
			upstream.MarkClientDeadline(own, &ob.clientDeadline)
		}
	}
	if h.o.HashKind != "" {
		// The key is taken from the client's request, before header edits, and travels to the
		// attempts in the context (only for consistent_hash services).
		if key := h.hashKey(r, info); own == nil || !own.Set(hashKeyCtx{}, key) {
			v := context.WithValue(ctx, hashKeyCtx{}, key)
			if sc := reqctx.Beneath(ctx); sc != nil {
				v = reqctx.Over(v, sc) // contexts derived from it register with sc, no goroutine
			}
			ctx = v
		}
	}
	if ctx != r.Context() {
		r = r.WithContext(ctx)
	}
	h.forward(w, r, ob)
}

type hashKeyCtx struct{}

// grpcDeadlineGrace lets a gRPC server report its own DEADLINE_EXCEEDED before the gateway
// gives up on a call at the client's grpc-timeout.
const grpcDeadlineGrace = 50 * time.Millisecond

// writeError answers gRPC clients, which cannot read a JSON body, with a gRPC status in a
// Trailers-Only response, and everyone else with the gateway's JSON error.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if grpcwire.IsGRPCRequest(r) {
		if info := httpx.InfoFrom(r.Context()); info != nil {
			info.ErrorCode = code
		}
		grpcwire.WriteError(w, grpcwire.CodeFromHTTP(status), msg)
		return
	}
	httpx.WriteError(w, r, status, code, msg)
}

// send performs one attempt to t, through tr when it is set (t is then a Target of the
// circuit breaker's fallback service, reached through that service's own pool), else through
// the route's transport. It runs on the request's goroutine, so it may update Info.
func (h *Handler) send(out *http.Request, t *upstream.Target, tr http.RoundTripper) (*http.Response, error) {
	start := time.Now()
	info := httpx.InfoFrom(out.Context())
	if info != nil {
		info.Target = t.URL.Host
		info.UpstreamTarget = t
		info.UpstreamStart = start
	}
	// One client span and one attempt metric per attempt (retries included).
	telemetry.StartAttempt(out.Context(), out.Header, t.URL.Host, start)
	if tr == nil {
		tr = h.o.Transport
	}
	resp, err := tr.RoundTrip(out)
	d := time.Since(start)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	if info != nil && err == nil {
		info.UpstreamDuration = d // of the last attempt that answered: the response the client gets
	}
	telemetry.EndAttempt(out.Context(), status, err, d)
	return resp, err
}

func (h *Handler) hashKey(r *http.Request, info *httpx.Info) string {
	switch h.o.HashKind {
	case "header":
		if v := r.Header.Get(h.o.HashName); v != "" {
			return v
		}
	case "cookie":
		if c, err := r.Cookie(h.o.HashName); err == nil && c.Value != "" {
			return c.Value
		}
	}
	if info != nil && info.ClientIP.IsValid() {
		return info.ClientIP.String()
	}
	return r.RemoteAddr
}

// first is Header.Get for a name already in canonical form (Get canonicalizes it on every
// call).
func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// rewriteRequest runs once per request: it sets the upstream path (without the target's base
// path) and the forwarding headers. in and out share their header map; every client value is
// read before it is replaced. Each attempt then points a copy at its Target (scheme, host,
// base path) in upstream.Service.
//
// It returns the request ID as a header value for the response to reuse (nil without Info).
func (h *Handler) rewriteRequest(in, out *http.Request, vals headerValues) (requestID []string) {
	info := httpx.InfoFrom(in.Context())

	escaped := in.URL.EscapedPath()
	if info != nil && info.Path != "" {
		escaped = info.Path
	}
	escaped = h.upstreamPath(escaped, info)
	upstream.SetEscapedPath(out.URL, escaped)
	if h.o.PreserveHost {
		out.Host = in.Host
	} else {
		out.Host = ""
	}

	// Every value set below is carved from one backing array, vals (the exchange state's, or
	// one allocation when it is too small), instead of one allocation per header.
	h.setForwarded(in, out, info, &vals)
	if info != nil {
		requestID = vals.one(info.RequestID)
		out.Header["X-Request-Id"] = requestID
		delete(out.Header, "X-Correlation-Id")
	}
	// An empty User-Agent must stay empty rather than become Go's default.
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = vals.one("")
	}
	h.o.RequestHeaders.Apply(out.Header)
	return requestID
}

// headerValues hands out one-element header value slices carved from a single backing array,
// so that the headers rewriteRequest sets cost one allocation together. Each slice's capacity
// is capped at one: a later append (a header edit's add) copies it instead of overwriting the
// next header's value.
type headerValues []string

// one returns a header value slice holding just s.
func (v *headerValues) one(s string) []string {
	*v = append(*v, s)
	n := len(*v)
	return (*v)[n-1 : n : n]
}

// upstreamPath applies strip_prefix or rewrite to the normalized path.
// stripPrefix is strip_prefix as upstreamPath compares it: "/api/" strips what "/api" does
// ("/api" itself included), and "/" strips nothing.
func stripPrefix(sp string) string { return strings.TrimSuffix(sp, "/") }

func (h *Handler) upstreamPath(p string, info *httpx.Info) string {
	if h.rewrite != nil {
		var b strings.Builder
		for _, part := range h.rewrite {
			switch {
			case part.param == "":
				b.WriteString(part.literal)
			case part.param == "**":
				if info != nil {
					b.WriteString(info.Match.Rest)
				}
			default:
				if info != nil {
					v, _ := info.Match.Param(part.param)
					b.WriteString(v)
				}
			}
		}
		s := b.String()
		if s == "" || s[0] != '/' {
			s = "/" + s
		}
		return strings.ReplaceAll(s, "//", "/")
	}
	if sp := h.o.StripPrefix; sp != "" && strings.HasPrefix(p, sp) {
		// The prefix ends at a segment boundary ("/api" leaves "/apix" alone).
		switch rest := p[len(sp):]; {
		case rest == "":
			return "/"
		case rest[0] == '/':
			return rest
		}
	}
	return p
}

func parseTemplate(tmpl string) []rewritePart {
	var parts []rewritePart
	for tmpl != "" {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			parts = append(parts, rewritePart{literal: tmpl})
			break
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			parts = append(parts, rewritePart{literal: tmpl})
			break
		}
		if i > 0 {
			parts = append(parts, rewritePart{literal: tmpl[:i]})
		}
		parts = append(parts, rewritePart{param: tmpl[i+1 : i+j]})
		tmpl = tmpl[i+j+1:]
	}
	return parts
}

// setForwarded writes X-Forwarded-For/-Proto/-Host, Forwarded and X-Real-IP. Values from the
// client are kept (and appended to) only when the peer is a trusted proxy; otherwise they are
// replaced (the other forwarding headers of untrusted peers were dropped on arrival:
// httpx.DropUntrustedForwarding). The header values are taken from vals.
func (h *Handler) setForwarded(in, out *http.Request, info *httpx.Info, vals *headerValues) {
	var peer netip.Addr
	peerStr := ""
	if info != nil && info.Peer.IsValid() {
		peer, peerStr = info.Peer, info.PeerText // parsed once, by the edge
	} else if peer = httpx.PeerAddr(in.RemoteAddr); peer.IsValid() {
		peerStr = httpx.AddrString(peer, in.RemoteAddr)
	}
	trusted := info != nil && info.PeerTrusted
	if trusted {
		xff := strings.Join(in.Header["X-Forwarded-For"], ", ")
		if xff != "" {
			xff += ", "
		}
		out.Header["X-Forwarded-For"] = vals.one(xff + peerStr)
	} else {
		out.Header["X-Forwarded-For"] = vals.one(peerStr)
	}
	proto, host := httpx.ForwardedOrigin(in, trusted)
	out.Header["X-Forwarded-Host"] = vals.one(host)
	out.Header["X-Forwarded-Proto"] = vals.one(proto)
	// X-Real-IP is the client IP the gateway determined (from a trusted proxy's
	// X-Forwarded-For, else the peer), never the client's own claim. It is the peer's text,
	// already formatted, unless a trusted proxy named another client.
	realIP := peerStr
	if info != nil && info.ClientIP.IsValid() && info.ClientIP != peer {
		realIP = info.ClientIP.String()
	}
	if realIP != "" {
		out.Header["X-Real-Ip"] = vals.one(realIP)
	} else {
		delete(out.Header, "X-Real-Ip")
	}

	// One allocation for the element (the host is quoted in place when it must be).
	var b strings.Builder
	b.Grow(len(peerStr) + len(in.Host) + len(proto) + 24)
	switch {
	case !peer.IsValid():
		b.WriteString("for=unknown")
	case peer.Is6():
		b.WriteString(`for="[`)
		b.WriteString(peerStr)
		b.WriteString(`]"`)
	default:
		b.WriteString("for=")
		b.WriteString(peerStr)
	}
	b.WriteString(";host=")
	writeForwardedValue(&b, in.Host)
	b.WriteString(";proto=")
	b.WriteString(proto)
	elem := b.String()
	// The client's Forwarded chain is kept only from a trusted peer.
	if prev := in.Header["Forwarded"]; trusted && len(prev) > 0 {
		elem = strings.Join(prev, ", ") + ", " + elem
	}
	out.Header["Forwarded"] = vals.one(elem)
}

// writeForwardedValue writes s as a Forwarded parameter value: as it is when it is made of
// letters, digits, '.', '-' and '_', else quoted (strconv.Quote's form, which for printable
// ASCII without '"' or '\' is s between double quotes, written here without the detour).
func writeForwardedValue(b *strings.Builder, s string) {
	plain, simple := true, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			plain = false
			if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
				simple = false
				break
			}
		}
	}
	switch {
	case plain:
		b.WriteString(s)
	case simple:
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
	default:
		b.WriteString(strconv.Quote(s))
	}
}

// modifyResponse sets the response's X-Request-Id (to requestID, the value rewriteRequest
// returned, when there is one: the slice's capacity is one, so sharing it with the upstream
// request's header is safe) and applies the route's response header edits.
func (h *Handler) modifyResponse(resp *http.Response, requestID []string) error {
	if info := httpx.InfoFrom(resp.Request.Context()); info != nil {
		if len(requestID) != 1 || requestID[0] != info.RequestID {
			requestID = []string{info.RequestID}
		}
		resp.Header["X-Request-Id"] = requestID
	}
	h.o.ResponseHeaders.Apply(resp.Header)
	return nil
}

// handleError maps a failed upstream exchange to a client error. The cause is logged with the
// request ID; the client sees only a stable code.
func (h *Handler) handleError(w http.ResponseWriter, r *http.Request, err error) {
	info := httpx.InfoFrom(r.Context())
	reqID := ""
	if info != nil {
		reqID = info.RequestID
	}
	var mbe *http.MaxBytesError
	var cbe *upstream.ClientBodyError
	var open *upstream.OpenError
	status, code, msg := http.StatusBadGateway, httpx.CodeBadGateway, "the upstream service failed to respond"
	switch {
	case errors.As(err, &open):
		// Failing fast is the breaker working, not an incident: log at debug.
		h.o.Logger.Debug("circuit open", "request_id", reqID, "route", h.o.Route, "service", h.o.Service)
		secs := int64((open.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
		writeError(w, r, http.StatusServiceUnavailable, httpx.CodeServiceUnavailable, "the upstream service is unavailable; retry later")
		return
	case errors.Is(err, upstream.ErrNoHealthyTarget):
		h.o.Logger.Warn("no healthy target", "request_id", reqID, "route", h.o.Route, "service", h.o.Service)
		writeError(w, r, http.StatusServiceUnavailable, httpx.CodeServiceUnavailable, "no healthy upstream target is available")
		return
	case r.Context().Err() == context.Canceled || errors.Is(err, context.Canceled):
		// The client went away: nobody is listening for an answer.
		if info != nil {
			info.ErrorCode = "client_closed_request"
		}
		h.o.Logger.Debug("client canceled request", "request_id", reqID, "route", h.o.Route)
		w.WriteHeader(499)
		return
	case errors.As(err, &cbe) || errors.As(err, &mbe):
		// The client's body failed, not the upstream: its fault, a 4xx, logged at debug.
		switch {
		case errors.As(err, &mbe):
			status, code, msg = http.StatusRequestEntityTooLarge, httpx.CodeBodyTooLarge, "request body is too large"
		case isTimeout(err):
			status, code, msg = http.StatusRequestTimeout, httpx.CodeRequestTimeout, "the request body was not received in time"
		default:
			status, code, msg = http.StatusBadRequest, httpx.CodeBadRequest, "the request body could not be read"
		}
		h.o.Logger.Debug("request body failed", "request_id", reqID, "route", h.o.Route, "status", status, "error", err.Error())
		writeError(w, r, status, code, msg)
		return
	case isTimeout(err) || r.Context().Err() == context.DeadlineExceeded || grpcDeadlinePassed(r):
		status, code, msg = http.StatusGatewayTimeout, httpx.CodeGatewayTimeout, "the upstream service did not respond in time"
	}
	h.o.Logger.Warn("upstream error", "request_id", reqID, "route", h.o.Route, "service", h.o.Service,
		"target", targetOf(info), "status", status, "error", err.Error())
	writeError(w, r, status, code, msg)
}

// maxGRPCTimeout is the longest grpc-timeout taken as a deadline: a longer one (up to the
// 99999999H the header allows) is no deadline at all, and adding the grace to it would
// overflow into one already passed.
const maxGRPCTimeout = 100 * 365 * 24 * time.Hour

// grpcDeadlinePassed reports whether a gRPC request failed after its client's deadline: the
// upstream server gives up at the same grpc-timeout and may reset the stream rather than
// answer, which is the client's DEADLINE_EXCEEDED, not an unavailable service. The request's
// context runs grpcDeadlineGrace past that deadline (see ServeHTTP).
func grpcDeadlinePassed(r *http.Request) bool {
	if !grpcwire.IsGRPCRequest(r) {
		return false
	}
	dl, ok := r.Context().Deadline()
	return ok && !time.Now().Before(dl.Add(-grpcDeadlineGrace))
}

func targetOf(info *httpx.Info) string {
	if info == nil {
		return ""
	}
	return info.Target
}

func isTimeout(err error) bool { return upstream.IsTimeout(err) }

// copyBufSize is the size of the buffers response bodies are copied with.
const copyBufSize = 32 << 10

// bufferPool holds copy buffers as array pointers rather than slices, so that neither Get nor
// Put allocates (a slice put into a sync.Pool would be boxed on every Put).
var bufferPool = &bytePool{p: sync.Pool{New: func() any { return new([copyBufSize]byte) }}}

type bytePool struct{ p sync.Pool }
