// Package config holds Gatehouse's declarative configuration (schema version 1): the types a
// gatehouse.yaml decodes into, strict decoding with file:line:column positions, defaults and
// validation. The doc comments on the fields below are the user documentation: the config
// reference in docs/config-reference.md is generated from them (go generate ./internal/config).
package config

//go:generate go run ./gendoc -o ../../docs/config-reference.md

// Config is the whole gateway configuration.
type Config struct {
	// Version of the config schema. Must be 1.
	Version int `yaml:"version"`
	// Listeners are the addresses the gateway accepts client traffic on. At least one is required.
	Listeners []Listener `yaml:"listeners"`
	// Server holds settings that apply to every listener and route.
	Server Server `yaml:"server"`
	// Services are the upstreams routes send traffic to.
	Services []Service `yaml:"services"`
	// Routes map requests to services. Precedence does not depend on their order except for exact ties.
	Routes []Route `yaml:"routes"`
	// Auth defines who may call: JWT issuers, API-key consumers and forward-auth services.
	// Routes opt in with plugins.
	Auth Auth `yaml:"auth"`
	// Store selects where shared state (rate-limit counters) lives: memory (default) or Redis.
	Store Store `yaml:"store"`
	// RateLimits apply to every route (the global default limits), stacked with the service's
	// and the route's own.
	RateLimits []RateLimit `yaml:"rate_limits"`
	// Cache configures the response cache's storage; routes opt in with plugins.cache.
	Cache Cache `yaml:"cache"`
	// Admin is the admin listener: health, metrics, the admin API and the dashboard.
	Admin Admin `yaml:"admin"`
	// Metrics configures Prometheus metrics.
	Metrics Metrics `yaml:"metrics"`
	// Tracing configures OpenTelemetry tracing. Default: off.
	Tracing Tracing `yaml:"tracing"`
	// Logging configures the operational log.
	Logging Logging `yaml:"logging"`
}

// Listener is one address the gateway serves HTTP on.
type Listener struct {
	// Name identifies the listener in logs and in route matches. Required, unique.
	Name string `yaml:"name"`
	// Address is host:port to listen on, e.g. ":8080" or "127.0.0.1:8080". Required, unique.
	Address string `yaml:"address"`
	// TLS terminates TLS on this listener; HTTP/2 is offered through ALPN.
	TLS *ListenerTLS `yaml:"tls"`
	// H2C accepts cleartext HTTP/2 (prior knowledge) on a listener without TLS. Default: false.
	H2C bool `yaml:"h2c"`
	// RedirectHTTPS answers every request on this (plain) listener with a 308 redirect to the
	// same URL on https. Default: false.
	RedirectHTTPS bool `yaml:"redirect_https"`
	// HTTPSPort is the port redirects point to. Default: 443.
	HTTPSPort int `yaml:"https_port"`
	// MaxConns caps open client connections on this listener; excess connections are closed at
	// once. 0 is unlimited. Default: 0.
	MaxConns int `yaml:"max_conns"`
	// MaxConnsPerIP caps open connections from one client IP (the TCP peer). 0 is unlimited.
	// Default: 0.
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
}

// Server holds gateway-wide settings.
type Server struct {
	// TrustedProxies lists the CIDRs (or single IPs) of proxies in front of the gateway whose
	// X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and Forwarded headers are believed.
	// From any other peer those headers are replaced, and the client IP is the peer address.
	// Default: none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MaxBodyBytes caps a request body; larger bodies get 413. Sizes accept a number of bytes or a
	// unit: "512KiB", "10MiB", "1GB". Routes may override it. Default: 10MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// MaxHeaderBytes caps the total size of a request's header names and values; larger gets 431.
	// Default: 32KiB.
	MaxHeaderBytes ByteSize `yaml:"max_header_bytes"`
	// ReadHeaderTimeout bounds how long a client may take to send the request headers (slowloris
	// guard): on a new connection from its accept, on a kept-alive one from the request's first
	// byte. It cannot be turned off. Durations use Go syntax: "250ms", "5s", "1m30s". Default: 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included. "0s" disables it. Default: 60s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response. Default: "0s" (disabled) so streaming responses
	// (server-sent events, downloads) are not cut; route request timeouts still bound upstream calls.
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout closes keep-alive client connections idle this long, to within a second (an
	// eighth of a timeout under 8s): a busy connection renews its deadline at most that often.
	// An upgraded connection (WebSocket) silent both ways this long is closed too. Default: 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// ShutdownTimeout is how long a shutdown (SIGTERM/SIGINT) waits for in-flight requests to
	// finish before closing their connections (also a reload's drain of a replaced listener); it
	// must be above 0s. Default: 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// AccessLog configures the per-request access log.
	AccessLog AccessLog `yaml:"access_log"`
	// MaxURIBytes caps the request target (path and query); longer gets 414. Default: 8KiB.
	MaxURIBytes ByteSize `yaml:"max_uri_bytes"`
	// MaxInFlight caps requests being served at once by the whole gateway; beyond it requests
	// are shed at once with 503 "overloaded" and Retry-After, before any work is done for them.
	// 0 is unlimited. Default: 0.
	MaxInFlight int `yaml:"max_in_flight"`
	// SecurityHeaders are added to every response; routes may override them.
	SecurityHeaders SecurityHeaders `yaml:"security_headers"`
	// UnderscoreHeaders decides what happens to request header fields whose names contain "_":
	// "drop" removes them before any policy runs, as nginx does by default; "reject" answers 400;
	// "allow" forwards them. CGI, WSGI, PHP and Rack servers read "X_User_Id" as "X-User-Id", so
	// an allowed underscore name can spoof a header the gateway vouches for (identity, forwarding).
	// Default: drop.
	UnderscoreHeaders string `yaml:"underscore_headers"`
	// PathParameters decides what happens to a request path with a raw ";" (segment parameters,
	// as in "/admin;x/secret"): "reject" answers 400 invalid_path; "allow" routes and forwards it
	// as it is. Tomcat, Jetty and Spring drop ";x" and serve "/admin/secret", so an allowed
	// parameter lets a client reach a path past the policies of the route that path would match.
	// An encoded "%3B" is data and always allowed. Default: reject.
	PathParameters string `yaml:"path_parameters"`
	// IPRules allow or deny client IPs (resolved through trusted_proxies) on every route.
	IPRules IPRules `yaml:"ip_rules"`
	// Geo resolves the client's country, for rules, routing and an upstream header.
	Geo *Geo `yaml:"geo"`
	// Bots classifies clients by their User-Agent and headers and acts on bad bots.
	Bots *Bots `yaml:"bots"`
}

// AccessLog configures the per-request access log.
type AccessLog struct {
	// Enabled turns the access log on or off. Default: true.
	Enabled *bool `yaml:"enabled"`
	// Output is "stdout", "stderr" or a file path. Default: stdout.
	Output string `yaml:"output"`
	// Format is "json" (one object per line) or "common" (NCSA Common Log Format with the
	// request ID appended). Default: json.
	Format string `yaml:"format"`
	// BufferSize is how many bytes of log lines are buffered before a write; the buffer is also
	// flushed every second and on shutdown. "0" writes every line at once. Default: 256KiB.
	BufferSize *ByteSize `yaml:"buffer_size"`
}

// Service is a named group of upstream targets that routes proxy to.
type Service struct {
	// Name identifies the service; routes refer to it. Required, unique.
	Name string `yaml:"name"`
	// Targets are the upstream endpoints. At least one is required.
	Targets []Target `yaml:"targets"`
	// Balancer chooses a target per attempt: round_robin, weighted_round_robin (smooth, as in
	// nginx), least_conn, p2c (power of two random choices on in-flight requests) or
	// consistent_hash. Default: round_robin, or weighted_round_robin when targets have different
	// weights.
	Balancer string `yaml:"balancer"`
	// HashOn is the consistent_hash key: "header:<Name>", "cookie:<name>" or "client_ip".
	// Required with consistent_hash; requests without the header or cookie hash on the client IP.
	HashOn string `yaml:"hash_on"`
	// Timeouts bound every call to this service. Routes may override them.
	Timeouts Timeouts `yaml:"timeouts"`
	// Pool configures the keep-alive connection pool to each target.
	Pool Pool `yaml:"pool"`
	// TLS configures connections to https targets. Certificates are always verified unless
	// insecure_skip_verify is set.
	TLS *UpstreamTLS `yaml:"tls"`
	// RateLimits apply to every route of this service, stacked with global and route limits.
	RateLimits []RateLimit `yaml:"rate_limits"`
	// CircuitBreaker stops calls to a failing service for a while.
	CircuitBreaker *CircuitBreaker `yaml:"circuit_breaker"`
	// HealthCheck configures active and passive health checking of the targets.
	HealthCheck *HealthCheck `yaml:"health_check"`
	// Retries configures retrying failed attempts on another target.
	Retries *Retries `yaml:"retries"`
	// Protocol spoken to the targets: "http1", "h2c" (cleartext HTTP/2, e.g. gRPC servers) or
	// "h2" (HTTP/2 over TLS; https targets). Default: http1 (https targets negotiate h2 or
	// HTTP/1.1 through ALPN).
	Protocol string `yaml:"protocol"`
}

// Target is one upstream endpoint.
type Target struct {
	// URL is the target's base URL, "http://host:port" or "https://host:port"; a path in it is
	// prepended to the forwarded path. Required.
	URL string `yaml:"url"`
	// Weight is the target's share for weighted balancers and consistent hashing, at least 1 (a
	// target is drained by removing it). Default: 1.
	Weight int `yaml:"weight"`

	weightDefaulted bool // Weight was 0 and became the default (an explicit 0 is an error)
}

// Timeouts bound upstream calls.
type Timeouts struct {
	// Connect bounds establishing a TCP (and TLS) connection to a target. Default: 5s.
	Connect Duration `yaml:"connect"`
	// ResponseHeader bounds the wait for the upstream's response headers after the request was
	// sent. Default: 30s.
	ResponseHeader Duration `yaml:"response_header"`
	// Request bounds the whole exchange, body streaming included (with server.write_timeout off,
	// also the writes of a large response to a client that stops reading); "0s" leaves only the other
	// timeouts (use it for long streams). Not applied to upgraded (WebSocket) connections.
	// Default: 60s.
	Request Duration `yaml:"request"`
}

// Pool configures keep-alive connections to a service's targets. Pools of a service whose
// configuration did not change survive a reload.
type Pool struct {
	// MaxIdlePerTarget is how many idle keep-alive connections are kept per target. Default: 256.
	MaxIdlePerTarget int `yaml:"max_idle_per_target"`
	// MaxPerTarget caps connections (busy and idle) per target; 0 is unlimited. Default: 0.
	MaxPerTarget int `yaml:"max_per_target"`
	// IdleTimeout closes idle upstream connections after this long. Default: 90s.
	IdleTimeout Duration `yaml:"idle_timeout"`
}

// Route maps matching requests to a service.
type Route struct {
	// Name identifies the route in logs, metrics and errors. Required, unique.
	Name string `yaml:"name"`
	// Match selects the requests this route serves.
	Match Match `yaml:"match"`
	// Service is the name of the service requests are proxied to. Required.
	Service string `yaml:"service"`
	// StripPrefix removes this literal path prefix (on a segment boundary) before forwarding,
	// e.g. "/api/v1" turns "/api/v1/users/7" into "/users/7".
	StripPrefix string `yaml:"strip_prefix"`
	// Rewrite replaces the forwarded path with a template filled from the matched path:
	// "{name}" is a captured parameter and "{**}" what the trailing "/**" matched, e.g.
	// "/v2/accounts/{id}". Setting both Rewrite and StripPrefix is an error.
	Rewrite string `yaml:"rewrite"`
	// PreserveHost forwards the client's Host header instead of the target's host. Default: false.
	PreserveHost bool `yaml:"preserve_host"`
	// RequestHeaders edits the request headers sent upstream.
	RequestHeaders HeaderOps `yaml:"request_headers"`
	// ResponseHeaders edits the response headers sent to the client.
	ResponseHeaders HeaderOps `yaml:"response_headers"`
	// Timeouts override the service's timeouts field by field for this route.
	Timeouts Timeouts `yaml:"timeouts"`
	// MaxBodyBytes overrides server.max_body_bytes for this route.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// Plugins are the route's policies (authentication, authorization, rate limits, ...).
	Plugins Plugins `yaml:"plugins"`
	// Aggregate answers the route by calling several services in parallel (or in steps) and
	// merging their JSON responses, instead of proxying to service.
	Aggregate *Aggregate `yaml:"aggregate"`
	// GRPC transcodes REST/JSON requests on this route to a gRPC method of service.
	GRPC *GRPCRoute `yaml:"grpc"`
	// GraphQL serves a GraphQL endpoint on this route whose fields are resolved by REST calls
	// to services, instead of proxying to service.
	GraphQL *GraphQLRoute `yaml:"graphql"`
}

// Match is the set of conditions a request must meet; all given conditions must hold.
type Match struct {
	// Hosts the route serves: exact ("api.example.com") or wildcard ("*.example.com", one or more
	// labels). Matching ignores case and the port. Empty: any host.
	Hosts []string `yaml:"hosts"`
	// Path pattern: exact "/a/b", parameters "/users/{id}" (one whole segment), or a trailing
	// "/**" that matches zero or more further segments ("/api/v1/users/**"). Required.
	Path string `yaml:"path"`
	// Methods allowed, e.g. [GET, POST]; GET also allows HEAD. Empty: any method. A request whose
	// path matches but whose method doesn't gets 405 with an Allow header.
	Methods []string `yaml:"methods"`
	// Headers that must match: a string is an exact value (`Accept-Version: v2`); an object is
	// `{present: true}` or `{regex: "^v[12]$"}` (RE2, unanchored unless you anchor it).
	Headers map[string]ValueMatch `yaml:"headers"`
	// Query parameters that must match, with the same forms as Headers.
	Query map[string]ValueMatch `yaml:"query"`
	// Countries the client must be in (ISO 3166-1 alpha-2 codes, e.g. [DE, FR]); needs
	// server.geo. Empty: any.
	Countries []string `yaml:"countries"`
}

// HeaderOps edits headers. Removals run first, then sets, then adds.
type HeaderOps struct {
	// Add appends a value to the header (keeps existing values).
	Add map[string]string `yaml:"add"`
	// Set replaces the header's values.
	Set map[string]string `yaml:"set"`
	// Remove deletes these headers.
	Remove []string `yaml:"remove"`
}
