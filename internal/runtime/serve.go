package runtime

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/router"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// exchange is everything the edge keeps for one request, allocated once.
type exchange struct {
	info httpx.Info
	sw   statusWriter
}

// ServeHTTP is the edge of the gateway for one request: request ID and client IP, header size
// guard, path normalization, routing (404/405), body limit, then the route's chain.
func (rt *Runtime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt.inflight.Add(1)
	defer rt.inflight.Add(-1)
	start := time.Now()

	ex := &exchange{}
	info := &ex.info
	info.RequestID = httpx.RequestID(r.Header)
	info.ClientIP, info.PeerTrusted = httpx.ClientIP(httpx.PeerAddr(r.RemoteAddr), r.Header["X-Forwarded-For"], rt.trusted)
	ex.sw = statusWriter{ResponseWriter: w}
	r = r.WithContext(httpx.WithInfo(r.Context(), info))

	rt.serve(&ex.sw, r, info)

	if rt.access != nil {
		rt.logAccess(r, info, &ex.sw, start, time.Since(start))
	}
}

func (rt *Runtime) serve(w http.ResponseWriter, r *http.Request, info *httpx.Info) {
	if headerBytes(r) > rt.maxHdr {
		httpx.WriteError(w, r, http.StatusRequestHeaderFieldsTooLarge, httpx.CodeHeadersTooLarge, "request headers are too large")
		return
	}
	raw, ok := rawPath(r)
	if !ok {
		httpx.WriteError(w, r, http.StatusBadRequest, httpx.CodeInvalidPath, "the request target is not a path")
		return
	}
	path, err := router.NormalizePath(raw)
	if err != nil {
		reason := "the request path is malformed or ambiguous"
		if pe, ok := err.(*router.PathError); ok {
			reason = "invalid path: " + pe.Reason
		}
		rt.logger.Warn("rejected ambiguous path", "request_id", info.RequestID, "client_ip", info.ClientIP.String(), "reason", err.Error())
		httpx.WriteError(w, r, http.StatusBadRequest, httpx.CodeInvalidPath, reason)
		return
	}
	info.Path = path

	switch rt.table.Lookup(r.Host, r.Method, path, r.Header, r.URL.RawQuery, &info.Match) {
	case router.NotFound:
		httpx.WriteError(w, r, http.StatusNotFound, httpx.CodeNotFound, "no route matches this request")
		return
	case router.MethodNotAllowed:
		w.Header().Set("Allow", info.Match.Allow())
		httpx.WriteError(w, r, http.StatusMethodNotAllowed, httpx.CodeMethodNotAllowed, "this method is not allowed on this path")
		return
	}
	route := rt.routes[info.Match.Route]
	info.Route, info.Service = route.Name, route.Service

	if r.ContentLength > route.MaxBodyBytes {
		w.Header().Set("Connection", "close")
		httpx.WriteError(w, r, http.StatusRequestEntityTooLarge, httpx.CodeBodyTooLarge, "request body is too large")
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

// headerBytes approximates the request head size the way a wire count would.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + 12 + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func (rt *Runtime) logAccess(r *http.Request, info *httpx.Info, sw *statusWriter, start time.Time, d time.Duration) {
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	path := info.Path
	if path == "" {
		path = "-"
	}
	rec := telemetry.AccessRecord{
		Time: start, RequestID: info.RequestID, ClientIP: info.ClientIP.String(), Method: r.Method,
		Host: r.Host, Path: path, Proto: r.Proto, Route: info.Route, Service: info.Service,
		Target: info.Target, Status: status, Bytes: sw.bytes, Duration: d,
		Upstream: info.UpstreamDuration, ErrorCode: info.ErrorCode,
	}
	rt.access.Log(&rec)
}

// statusWriter records the status and body size; Unwrap lets http.ResponseController reach
// Flush and Hijack of the underlying writer (streaming and upgrades).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
