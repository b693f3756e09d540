package config

// Cache configures the response cache's storage.
type Cache struct{}

// CachePlugin configures response caching on a route.
type CachePlugin struct{}

func (c *Config) defaultCache() {}

func (s *Source) validateCache(add func(path, format string, args ...any)) {}
