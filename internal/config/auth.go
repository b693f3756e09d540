package config

// Auth is the gateway-wide authentication setup.
type Auth struct{}

// JWTPlugin configures JWT authentication on a route.
type JWTPlugin struct{}

// APIKeyPlugin configures API-key authentication on a route.
type APIKeyPlugin struct{}

// ForwardAuthPlugin configures delegation of the auth decision to an external service.
type ForwardAuthPlugin struct{}

func (c *Config) defaultAuth() {}

func (s *Source) validateAuth(add func(path, format string, args ...any)) {}
