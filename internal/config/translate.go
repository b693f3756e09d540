package config

// GRPCRoute maps a REST/JSON route to a gRPC method.
type GRPCRoute struct{}

// GraphQLRoute is a GraphQL endpoint resolved by REST calls.
type GraphQLRoute struct{}

func (c *Config) defaultTranslate() {}

func (s *Source) validateTranslate(add func(path, format string, args ...any)) {}
