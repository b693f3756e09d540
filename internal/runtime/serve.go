package runtime

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/middleware/cors"
	"github.com/gatehouse/gatehouse/internal/reqctx"
	"github.com/gatehouse/gatehouse/internal/router"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/upstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// exchange is everything the edge keeps for one request, allocated once.
type exchange struct {
	info httpx.Info
	sw   httpx.StatusWriter
	tel  telemetry.Request
	span trace.Span // the server span (nil: tracing off)
	done bool       // the handler returned (false while a panic unwinds)
}

// ServeHTTP is the edge of the gateway for one request: request ID and client IP, header size
// guard, path normalization, routing (404/405), body limit, then the route's chain. Metrics and
// the server span are recorded here, once per request, not per middleware.
func (rt *Runtime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt.inflight.Add(1)
	defer rt.inflight.Add(-1)
	start := time.Now()

	// Before anything reads the header: what the client's Connection header nominates, the
	// identity headers only the gateway sets, and (unless allowed) names with underscores,
	// never reach the router, a policy or the upstream.
	hdr := scanHeader(r, rt.identity)
	if hdr.identity || r.Trailer != nil {
		rt.dropReserved(r)
	}
	if rt.underscore == underscoreDrop {
		if hdr.underscore {
			httpx.DropUnderscoreFields(r.Header)
		}
		if r.Trailer != nil {
			httpx.DropUnderscoreFields(r.Trailer) // declared trailers; only those are read
		}
	}
	if hdr.connection {
		httpx.DropConnectionOptions(r.Header)
	}

	ex := &exchange{}
	info := &ex.info
	info.RequestID = httpx.RequestIDAt(r.Header, start)
	info.Peer = httpx.PeerAddr(r.RemoteAddr)
	if info.Peer.IsValid() {
		info.PeerText = httpx.AddrString(info.Peer, r.RemoteAddr)
	}
	info.ClientIP, info.PeerTrusted = httpx.ClientIP(info.Peer, r.Header["X-Forwarded-For"], rt.trusted)
	if hdr.forwarding && !info.PeerTrusted {
		// X-Forwarded-Port, X-Original-URL and the like: frameworks believe them, so only a
		// trusted proxy's reach a policy or the upstream.
		httpx.DropUntrustedForwarding(r.Header)
	}
	ex.sw = httpx.StatusWriter{ResponseWriter: w}
	// The request's values go into its reqctx.Scope (the HTTP/1.x server made one; requests
	// from net/http's server get one here), not into a context each.
	scope, ok := r.Context().(*reqctx.Scope)
	if !ok {
		scope = reqctx.New(r.Context())
		defer scope.Cancel()
	}
	var ctx context.Context = scope
	if !httpx.BindInfo(scope, info) {
		ctx = httpx.WithInfo(ctx, info)
	}
	var tel *telemetry.Request
	if rt.obs.on {
		tel = &ex.tel
		ctx = rt.obs.start(ctx, scope, r, ex)
		// Deferred so that a request whose stream is aborted (the proxy panics with
		// http.ErrAbortHandler) is still counted and leaves the in-flight gauge.
		defer rt.obs.finish(r, ex, start)
	}
	if _, ok := ctx.(*reqctx.Scope); !ok {
		// A value context (the tracing span, a value that did not fit) wraps the Scope: a child
		// Scope on top keeps the context cheap to derive from. Under a value context over a
		// Scope, each WithCancel, WithTimeout or AfterFunc would start a goroutine.
		top := reqctx.New(ctx)
		defer top.Cancel()
		ctx = top
	}
	if ctx != r.Context() {
		r = r.WithContext(ctx)
	}

	if rt.access != nil {
		// Deferred, so that a response aborted mid-stream (http.ErrAbortHandler) is logged too.
		defer rt.logExchange(r, ex, start)
	}
	rt.serve(&ex.sw, r, info, tel, hdr)
	ex.done = true
}

// logExchange writes the request's access-log line. A request whose handler did not return
// (its response was aborted mid-stream) is logged with the status and bytes that went out
// (status 0: none did) and an error code saying it was cut short.
func (rt *Runtime) logExchange(r *http.Request, ex *exchange, start time.Time) {
	status := ex.sw.Status
	switch {
	case ex.done && status == 0:
		status = http.StatusOK // the server's implicit status for a handler that wrote nothing
	case !ex.done && ex.info.ErrorCode == "":
		ex.info.ErrorCode = CodeResponseAborted
	}
	rt.logAccess(r, &ex.info, &ex.sw, status, start, time.Since(start))
}

// refuse answers r outside any route (a malformed request, no route, a method the route does
// not serve) with the server's security headers and the gateway's JSON error.
func (rt *Runtime) refuse(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	rt.secHeaders.Apply(w.Header(), r.TLS != nil)
	httpx.WriteError(w, r, status, code, msg)
}

// SecurityHeaders adds the server's security headers to h, for an answer the server gives
// before the runtime (a refused head, load shedding, the HTTPS redirect).
func (rt *Runtime) SecurityHeaders(h http.Header, tls bool) { rt.secHeaders.Apply(h, tls) }

// CodeResponseAborted is the access log's error code for a response cut short after its status
// line went out, when the handler gave no more precise one.
const CodeResponseAborted = "response_aborted"

// LogRefusal records a request the server answered before the runtime saw it (refused framing,
// load shed, URI too long, redirect to HTTPS): its access-log line and its request metrics,
// under no route. info carries the request ID the answer gave; sw what was written.
func (rt *Runtime) LogRefusal(r *http.Request, info *httpx.Info, sw *httpx.StatusWriter, start time.Time) {
	d := time.Since(start)
	if rt.obs.on {
		rt.obs.noRoute.Observe(r.Method, sw.Status, d)
	}
	if rt.access == nil {
		return
	}
	if !info.Peer.IsValid() {
		info.Peer = httpx.PeerAddr(r.RemoteAddr)
		info.ClientIP, info.PeerTrusted = httpx.ClientIP(info.Peer, r.Header["X-Forwarded-For"], rt.trusted)
	}
	rt.logAccess(r, info, sw, sw.Status, start, d)
}

func (rt *Runtime) serve(w http.ResponseWriter, r *http.Request, info *httpx.Info, tel *telemetry.Request, hdr headerScan) {
	if hdr.bytes > rt.maxHdr {
		rt.refuse(w, r, http.StatusRequestHeaderFieldsTooLarge, httpx.CodeHeadersTooLarge, "request headers are too large")
		return
	}
	if r.Method == http.MethodConnect {
		// A gateway routes requests to services; it is not a forward proxy, and a CONNECT
		// forwarded as a request would reach the upstream as "CONNECT /".
		rt.refuse(w, r, http.StatusMethodNotAllowed, httpx.CodeMethodNotAllowed, "CONNECT is not supported")
		return
	}
	if hasLower(r.Method) {
		// Methods are case-sensitive, so "post" matches no route limited to POST, yet many
		// upstream servers upper-case it: it would pass a method-scoped policy as an unknown
		// method and run as POST. nginx refuses such methods too.
		rt.refuse(w, r, http.StatusBadRequest, httpx.CodeBadRequest, "the method must be in upper case")
		return
	}
	if hdr.underscore && rt.underscore == underscoreReject {
		rt.refuse(w, r, http.StatusBadRequest, httpx.CodeBadRequest, "header names with underscores are not accepted")
		return
	}
	raw, ok := rawPath(r)
	if !ok {
		rt.refuse(w, r, http.StatusBadRequest, httpx.CodeInvalidPath, "the request target is not a path")
		return
	}
	path, err := router.NormalizePath(raw)
	if err != nil {
		reason := "the request path is malformed or ambiguous"
		if pe, ok := err.(*router.PathError); ok {
			reason = "invalid path: " + pe.Reason
		}
		rt.logger.Warn("rejected ambiguous path", "request_id", info.RequestID, "client_ip", info.ClientIP.String(), "reason", err.Error())
		rt.refuse(w, r, http.StatusBadRequest, httpx.CodeInvalidPath, reason)
		return
	}
	if !rt.pathParams && strings.IndexByte(path, ';') >= 0 {
		// "/admin;x/secret" is "/admin/secret" to Tomcat, Jetty and Spring, while it matches no
		// route the gateway has for /admin: refused, unless server.path_parameters allows it.
		rt.logger.Warn("rejected ambiguous path", "request_id", info.RequestID, "client_ip", info.ClientIP.String(), "reason", "path parameters")
		rt.refuse(w, r, http.StatusBadRequest, httpx.CodeInvalidPath, "invalid path: path parameters (;) are not accepted")
		return
	}
	info.Path = path
	if rt.geo != nil {
		// Before routing: routes may match on the country.
		rt.geo.Resolve(r, info)
	}

	found := router.Found
	if !rt.preflightRoute(r, path, info) {
		found = rt.table.Lookup(r.Host, r.Method, path, r.Header, r.URL.RawQuery, &info.Match)
	}
	switch found {
	case router.NotFound:
		rt.refuse(w, r, http.StatusNotFound, httpx.CodeNotFound, "no route matches this request")
		return
	case router.MethodNotAllowed:
		w.Header().Set("Allow", info.Match.Allow())
		rt.refuse(w, r, http.StatusMethodNotAllowed, httpx.CodeMethodNotAllowed, "this method is not allowed on this path")
		return
	}
	route := rt.routes[info.Match.Route]
	info.Route, info.Service = route.Name, route.Service
	if tel != nil {
		rt.obs.routed(r, tel, info.Match.Route)
	}

	if r.ContentLength > route.MaxBodyBytes {
		w.Header().Set("Connection", "close")
		rt.refuse(w, r, http.StatusRequestEntityTooLarge, httpx.CodeBodyTooLarge, "request body is too large")
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, route.MaxBodyBytes)
	}
	route.Handler.ServeHTTP(w, r)
}

// rawPath returns the path exactly as the client spelled it (still escaped).
func rawPath(r *http.Request) (string, bool) {
	uri := r.RequestURI
	if strings.HasPrefix(uri, "/") {
		if i := strings.IndexByte(uri, '?'); i >= 0 {
			uri = uri[:i]
		}
		return uri, true
	}
	// Absolute-form ("GET http://host/path") or requests built in-process.
	if r.URL != nil && (r.URL.Path != "" || r.URL.RawPath != "") {
		p := r.URL.EscapedPath()
		if p == "" {
			p = "/"
		}
		return p, strings.HasPrefix(p, "/")
	}
	if r.URL != nil && r.URL.Host != "" {
		return "/", true
	}
	return "", false
}

// hasLower reports whether s has a lower-case ASCII letter.
func hasLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			return true
		}
	}
	return false
}

// headerScan is what one walk over a request's header finds.
type headerScan struct {
	bytes      int  // the head's size, as max_header_bytes counts it
	underscore bool // a field name contains "_"
	identity   bool // a field only the gateway may set (Runtime.identity) is present
	connection bool // a Connection field is present
	forwarding bool // a forwarding field only a trusted proxy may send is present
}

// scanHeader walks r's header once: its size approximates the request head the way a wire
// count would.
func scanHeader(r *http.Request, identity map[string]struct{}) headerScan {
	s := headerScan{bytes: len(r.Method) + len(r.RequestURI) + 12 + len(r.Host)}
	for k, vs := range r.Header {
		for _, v := range vs {
			s.bytes += len(k) + len(v) + 4
		}
		if !s.identity {
			_, s.identity = identity[k]
		}
		s.underscore = s.underscore || strings.IndexByte(k, '_') >= 0
		s.connection = s.connection || k == "Connection"
		s.forwarding = s.forwarding || httpx.IsUntrustedForwarding(k)
	}
	return s
}

// dropReserved removes the client's copies of the identity headers, from the header and from
// the declared trailers (only declared ones are read), and the trailers that would stand
// beside a field the gateway sets.
func (rt *Runtime) dropReserved(r *http.Request) {
	for name := range rt.identity {
		delete(r.Header, name)
		if r.Trailer != nil {
			delete(r.Trailer, name)
		}
	}
	if r.Trailer != nil {
		httpx.DropGatewayTrailers(r.Trailer)
	}
}

// logAccess writes one access-log line; status 0 says no response went out.
func (rt *Runtime) logAccess(r *http.Request, info *httpx.Info, sw *httpx.StatusWriter, status int, start time.Time, d time.Duration) {
	path := info.Path
	if path == "" {
		path = "-"
	}
	clientIP := info.PeerText
	if info.ClientIP != info.Peer || clientIP == "" {
		clientIP = httpx.AddrString(info.ClientIP, r.RemoteAddr)
	}
	rec := telemetry.AccessRecord{
		Time: start, RequestID: info.RequestID, ClientIP: clientIP, Method: r.Method,
		Host: r.Host, Path: path, Proto: r.Proto, Route: info.Route, Service: info.Service,
		Target: info.Target, Status: status, Bytes: sw.Bytes, Duration: d,
		Upstream: info.UpstreamDuration, ErrorCode: info.ErrorCode,
	}
	rt.access.Log(&rec)
}

// observer holds a Runtime's instruments, bound once per route at compile time so that
// recording a request costs no label lookup.
type observer struct {
	on      bool
	metrics *telemetry.Metrics
	tracing *telemetry.Tracing
	routes  []*telemetry.RouteMetrics // by route index
	noRoute *telemetry.RouteMetrics
	paths   []string // match path of each route: the span's http.route
	rts     []*Route
}

func (rt *Runtime) initObserver(deps Deps) {
	o := &rt.obs
	o.metrics, o.tracing = deps.Metrics, deps.Tracing
	o.on = o.metrics != nil || o.tracing != nil
	o.noRoute = o.metrics.Route(telemetry.NoRoute, telemetry.NoRoute)
	o.routes = make([]*telemetry.RouteMetrics, len(rt.routes))
	o.paths = make([]string, len(rt.routes))
	o.rts = rt.routes
	for i, r := range rt.routes {
		o.routes[i] = o.metrics.Route(r.Name, r.Service)
		o.paths[i] = rt.Config.Routes[i].Match.Path
	}
}

// start begins a request's telemetry: the in-flight gauge, the server span (a child of the
// client's traceparent, if any) and the state the proxy reports upstream attempts to.
func (o *observer) start(ctx context.Context, scope *reqctx.Scope, r *http.Request, ex *exchange) context.Context {
	o.metrics.RequestStarted()
	ex.tel.Tracing = o.tracing
	if ctx != scope || !telemetry.BindRequest(scope, &ex.tel) {
		ctx = telemetry.WithRequest(ctx, &ex.tel)
	}
	if o.tracing != nil {
		ctx, ex.span = o.tracing.StartServer(ctx, r, ex.info.RequestID)
	}
	return ctx
}

// routed binds the request to its route and, with tracing on, names the server span and
// writes its context into the request's traceparent/tracestate, which the proxy copies
// upstream: the upstream's spans become children of the gateway's.
func (o *observer) routed(r *http.Request, tel *telemetry.Request, idx int) {
	if o.metrics != nil {
		tel.Route = o.routes[idx]
	}
	if o.tracing == nil {
		return
	}
	span := trace.SpanFromContext(r.Context())
	if span.IsRecording() {
		span.SetName(r.Method + " " + o.paths[idx])
		span.SetAttributes(attribute.String("http.route", o.paths[idx]),
			attribute.String("gatehouse.route", o.rts[idx].Name), attribute.String("gatehouse.service", o.rts[idx].Service))
	}
	delete(r.Header, "Traceparent")
	delete(r.Header, "Tracestate")
	o.tracing.Inject(r.Context(), r.Header)
}

// finish records the request's metrics, the upstream attempt the proxy did not report itself,
// and ends the server span.
func (o *observer) finish(r *http.Request, ex *exchange, start time.Time) {
	d := time.Since(start)
	status := ex.sw.Status
	o.metrics.RequestDone()
	rm := ex.tel.Route
	if rm == nil {
		rm = o.noRoute
	}
	rm.Observe(r.Method, status, d)
	info := &ex.info
	// Policy outcomes are recorded here, once per request, from what the middleware noted.
	if info.RateLimit != "" {
		o.metrics.RateLimitDecision(info.Route, info.RateLimit, !info.RateLimited)
	}
	if info.CacheStatus != "" && info.CacheStatus != "BYPASS" {
		o.metrics.CacheLookup(info.Route, info.CacheStatus == "HIT" || info.CacheStatus == "STALE")
	}
	switch info.ErrorCode {
	case "missing_credentials", "invalid_token", "token_expired", "forbidden", "invalid_api_key", "auth_unavailable":
		o.metrics.AuthFailure(info.Route, info.ErrorCode)
	}
	if ex.tel.Attempts == 0 && info.Target != "" && rm != o.noRoute {
		// TODO(proxy): once the proxy calls telemetry.StartAttempt/EndAttempt per attempt this
		// fallback (the last attempt only, seen from the edge) stops running by itself.
		var err error
		ud := info.UpstreamDuration
		switch info.ErrorCode {
		case httpx.CodeBadGateway, httpx.CodeGatewayTimeout, "client_closed_request":
			err, ud = telemetry.ErrNoResponse, time.Since(info.UpstreamStart)
		}
		rm.UpstreamAttempt(info.Target, status, err, ud)
	}
	if ex.span != nil {
		telemetry.EndServer(ex.span, status, info.ClientIP.String())
	}
}

// Summary describes what the route does: its service, balancer and targets, path rewrite,
// timeouts and body limit (the admin API shows it).
func (r *Route) Summary() string { return r.summary }

// Targets returns the upstream targets of a service (nil for an unknown service). They are
// shared with the proxy: read their state, do not modify them.
func (rt *Runtime) Targets(service string) []*upstream.Target { return rt.services[service] }

// TargetStatuses lists every target of every service with its live state, for the metrics
// target gauges.
func (rt *Runtime) TargetStatuses() []telemetry.TargetStatus {
	var out []telemetry.TargetStatus
	for _, svc := range rt.Config.Services {
		for _, t := range rt.services[svc.Name] {
			out = append(out, telemetry.TargetStatus{Service: svc.Name, Target: t.String(), Healthy: t.Healthy(), InFlight: t.InFlight()})
		}
	}
	return out
}

// preflightRoute routes a CORS preflight by the method it asks about, into info.Match, and
// reports whether that finds a route with CORS configured (whose middleware then answers it).
// It comes before the OPTIONS lookup: a route that serves OPTIONS, such as a catch-all
// without methods, would otherwise take the preflight and proxy it, and the browser would
// never get the CORS route's answer. Without such a route the preflight is an ordinary
// OPTIONS request.
func (rt *Runtime) preflightRoute(r *http.Request, path string, info *httpx.Info) bool {
	if !cors.IsPreflight(r) {
		return false
	}
	// The Match is reset by the OPTIONS lookup that follows when this one is not used.
	return rt.table.Lookup(r.Host, r.Header.Get("Access-Control-Request-Method"), path, r.Header, r.URL.RawQuery, &info.Match) == router.Found &&
		rt.routes[info.Match.Route].cors
}
