// Package auth authenticates requests (JWT, API keys, forward auth) and authorizes them against
// a route's required permissions.
package auth

import (
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/middleware"
)

// New builds the authentication and authorization middleware of route (nil when the route
// configures none).
func New(cfg *config.Config, route *config.Route, deps middleware.Deps) (middleware.Middleware, error) {
	return nil, nil
}
