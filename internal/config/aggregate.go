package config

// Aggregate describes a route answered by several backend calls whose JSON is merged.
type Aggregate struct{}

func (c *Config) defaultAggregate() {}

func (s *Source) validateAggregate(add func(path, format string, args ...any)) {}
