package config

// CircuitBreaker configures a service's circuit breaker.
type CircuitBreaker struct{}

// HealthCheck configures active and passive health checks.
type HealthCheck struct{}

// Retries configures retries of failed attempts.
type Retries struct{}

func (c *Config) defaultResilience() {}

func (s *Source) validateResilience(add func(path, format string, args ...any)) {}
