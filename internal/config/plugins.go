package config

// Plugins are a route's policies. Each runs once per request, before proxying, in this order:
// CORS, IP and geo rules, authentication (jwt, api_key, forward_auth), authorization, rate limits.
type Plugins struct {
	// JWT requires a valid JSON Web Token from one of the configured issuers.
	JWT *JWTPlugin `yaml:"jwt"`
	// APIKey requires a valid API key of a configured consumer.
	APIKey *APIKeyPlugin `yaml:"api_key"`
	// ForwardAuth asks an external service whether to allow the request.
	ForwardAuth *ForwardAuthPlugin `yaml:"forward_auth"`
	// RateLimit lists this route's own limits, stacked with the service's and the global ones.
	RateLimit []RateLimit `yaml:"rate_limit"`
	// ConcurrencyLimit caps in-flight requests on this route.
	ConcurrencyLimit *ConcurrencyLimit `yaml:"concurrency_limit"`
	// CORS answers preflights and sets CORS headers for browser clients. Preflights are
	// answered before authentication.
	CORS *CORS `yaml:"cors"`
	// SecurityHeaders override server.security_headers field by field for this route.
	SecurityHeaders *SecurityHeaders `yaml:"security_headers"`
	// IPRules add allow/deny rules for this route, checked after server.ip_rules.
	IPRules *IPRules `yaml:"ip_rules"`
	// Geo adds country allow/deny rules for this route.
	Geo   *GeoRules    `yaml:"geo"` // Cache stores responses of this route in the shared response cache.
	Cache *CachePlugin `yaml:"cache"`
}
