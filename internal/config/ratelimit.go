package config

// Store selects where shared state lives.
type Store struct{}

// RateLimit is one limit.
type RateLimit struct{}

// ConcurrencyLimit caps in-flight requests.
type ConcurrencyLimit struct{}

func (c *Config) defaultRateLimits() {}

func (s *Source) validateRateLimits(add func(path, format string, args ...any)) {}
