// Package middleware defines how per-request policies wrap a route's handler. Each concern lives
// in its own subpackage exporting New(...) (Middleware, error); the runtime builds every route's
// chain once, at compile time, in a fixed order:
//
//	IP/geo/bot rules + security headers ─► CORS ─► authentication ─► authorization
//	  ─► rate limits ─► refusal of what authentication refused ─► cache ─► handler
//
// so refused clients cost nothing, preflights never reach auth, and auth runs before anything
// spends upstream capacity. A request authentication refuses is counted by the rate limits
// before its 401 or 403 is written (auth.NewDeferred), so guessing credentials is throttled.
package middleware

import (
	"io"
	"log/slog"
	"net/http"
)

// Middleware wraps a handler. A nil Middleware means "not configured" and is skipped.
type Middleware func(http.Handler) http.Handler

// Chain wraps h so that ms[0] runs first (outermost).
func Chain(h http.Handler, ms ...Middleware) http.Handler {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i] != nil {
			h = ms[i](h)
		}
	}
	return h
}

// Deps are what a middleware constructor may use.
type Deps struct {
	// Logger receives operational and security logs.
	Logger *slog.Logger
	// Acquire returns a long-lived resource shared across reloads (a JWKS cache, a Redis
	// client, a limiter store), building it on first use. key must identify the resource's
	// normalized config, prefixed by the owning package ("ratelimit/redis|..."). The resource is
	// closed when the last Runtime using it is retired.
	Acquire func(key string, build func() (io.Closer, error)) (io.Closer, error)
}
