// Package cache is the gateway's shared HTTP response cache.
package cache

import (
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/middleware"
)

// New builds the route's cache middleware (nil when the route does not cache).
func New(cfg *config.Config, route *config.Route, deps middleware.Deps) (middleware.Middleware, error) {
	return nil, nil
}
