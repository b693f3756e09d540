// Package cors answers CORS preflights and sets CORS response headers on a route, using
// rs/cors (a small, well-kept implementation of the Fetch standard's CORS protocol). It runs
// first in the chain, so preflights never reach authentication.
package cors

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/config"
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
	return h.Handler, nil
}

// IsPreflight reports whether r is a CORS preflight request.
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}
