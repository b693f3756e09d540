// Package cors answers CORS preflights and sets CORS response headers on a route, using
// rs/cors (a small, well-kept implementation of the Fetch standard's CORS protocol). It runs
// first in the chain, so preflights never reach authentication.
package cors

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/middleware"
	rscors "github.com/rs/cors"
)

// New builds the route's CORS middleware (nil when the route has no cors plugin).
func New(route *config.Route) (middleware.Middleware, error) {
	c := route.Plugins.CORS
	if c == nil {
		return nil, nil
	}
	h := rscors.New(rscors.Options{
		AllowedOrigins:     c.AllowedOrigins,
		AllowedMethods:     c.AllowedMethods,
		AllowedHeaders:     c.AllowedHeaders,
		ExposedHeaders:     c.ExposedHeaders,
		AllowCredentials:   c.AllowCredentials,
		MaxAge:             int(c.MaxAge.Seconds()),
		OptionsPassthrough: false,
		// A preflight is answered by the gateway with 204; the upstream never sees it.
		OptionsSuccessStatus: http.StatusNoContent,
	})
	return func(next http.Handler) http.Handler {
		// rs/cors has set the gateway's headers when the request goes on; what answers it
		// then writes into the same header map.
		owned := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(newWriter(w), r)
		})
		return h.Handler(owned)
	}, nil
}

// responseFields are the CORS fields of an actual (not preflight) response: the ones rs/cors
// sets before the request goes on.
var responseFields = [...]string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Expose-Headers"}

// writer makes the gateway the only source of the route's CORS response headers. An upstream
// (or a cached response of it) that sends its own is merged into the header map after rs/cors
// wrote the gateway's: the client would get two Access-Control-Allow-Origin values, which
// browsers reject, or the upstream's "*" for an origin the route's policy refused. When the
// head is written every Access-Control-* field is dropped and the gateway's are put back. Kong
// and Envoy override an upstream's fields with theirs too; dropping the rest as well keeps
// the route's policy the only one. It costs routes with CORS one allocation per request.
type writer struct {
	http.ResponseWriter
	gateway [len(responseFields)][]string // as rs/cors left them (nil: not set)
	done    bool                          // the final head is written
}

// AdoptHeader passes the proxy's header hand-off on: the gateway's fields are read from the
// underlying writer's map when the head is written, so they are applied to the adopted one.
func (w *writer) AdoptHeader(h http.Header) bool { return httpx.AdoptHeader(w.ResponseWriter, h) }

func newWriter(w http.ResponseWriter) *writer {
	cw := &writer{ResponseWriter: w}
	h := w.Header()
	for i, k := range responseFields {
		cw.gateway[i] = h[k]
	}
	return cw
}

// own replaces the CORS fields in the response head with the gateway's.
func (w *writer) own() {
	h := w.ResponseWriter.Header()
	for k := range h {
		if len(k) > len(fieldPrefix) && k[:len(fieldPrefix)] == fieldPrefix {
			delete(h, k)
		}
	}
	for i, k := range responseFields {
		if vs := w.gateway[i]; vs != nil {
			h[k] = vs
		}
	}
}

// fieldPrefix starts every CORS field name (in canonical form, as header maps hold them).
const fieldPrefix = "Access-Control-"

func (w *writer) WriteHeader(code int) {
	// Interim responses (103 Early Hints) leave the final head to come.
	if !w.done && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.own()
		w.done = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *writer) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher: a flush before any write sends the head too.
func (w *writer) Flush() {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the client's writer (Hijack, deadlines).
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var _ http.Flusher = (*writer)(nil)

// IsPreflight reports whether r is a CORS preflight request.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}
