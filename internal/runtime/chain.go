package runtime

import (
	"fmt"
	"io"
	"net/http"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/middleware"
	"github.com/gatehouse/gatehouse/internal/middleware/auth"
	"github.com/gatehouse/gatehouse/internal/middleware/cache"
	"github.com/gatehouse/gatehouse/internal/middleware/cors"
	"github.com/gatehouse/gatehouse/internal/middleware/edge"
	"github.com/gatehouse/gatehouse/internal/middleware/ratelimit"
)

// middlewareDeps are the Deps of middleware built for this Runtime: what they acquire is
// released with the Runtime.
func (rt *Runtime) middlewareDeps(deps Deps) middleware.Deps {
	return middleware.Deps{Logger: rt.logger, Acquire: func(key string, build func() (io.Closer, error)) (io.Closer, error) {
		v, release, err := deps.Registry.Resources.Acquire(key, build)
		if err != nil {
			return nil, err
		}
		rt.releases = append(rt.releases, release)
		return v, nil
	}}
}

// buildChain wraps a route's final handler with its middleware, in the order documented in
// package middleware. It runs once per route at compile time.
func (rt *Runtime) buildChain(rc *config.Route, svc *config.Service, final http.Handler, deps Deps) (http.Handler, error) {
	md := rt.middlewareDeps(deps)
	// Authentication identifies the caller before the rate limits and refuses after them, so
	// that refused requests are counted too (credential guessing is throttled).
	identify, enforce, err := auth.NewDeferred(rt.Config, rc, md)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	steps := []struct {
		name  string
		build func() (middleware.Middleware, error)
	}{
		{"edge", func() (middleware.Middleware, error) { return edge.New(rt.Config, rc, md) }},
		{"cors", func() (middleware.Middleware, error) { return cors.New(rc) }},
		{"auth", func() (middleware.Middleware, error) { return identify, nil }},
		{"rate_limit", func() (middleware.Middleware, error) { return ratelimit.New(rt.Config, rc, svc, md) }},
		{"auth_enforce", func() (middleware.Middleware, error) { return enforce, nil }},
		{"cache", func() (middleware.Middleware, error) { return cache.New(rt.Config, rc, md) }},
	}
	ms := make([]middleware.Middleware, 0, len(steps))
	for _, s := range steps {
		m, err := s.build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		ms = append(ms, m)
	}
	return middleware.Chain(final, ms...), nil
}
