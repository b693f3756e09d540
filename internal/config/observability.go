package config

import (
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Admin configures the admin listener: health checks, Prometheus metrics, the JSON admin API
// and the live dashboard. It is separate from the client listeners so it can stay private.
type Admin struct {
	// Address is host:port of the admin listener, e.g. "127.0.0.1:9901". Empty: no admin
	// listener. An address that is not loopback (127.0.0.0/8, ::1, localhost) requires Token.
	Address string `yaml:"address"`
	// Token is the bearer token every admin endpoint except /healthz, /readyz and the dashboard's
	// static files requires (`Authorization: Bearer <token>`). Set it from the environment
	// (`${GATEHOUSE_ADMIN_TOKEN}`). At least 16 characters. Required when Address is not
	// loopback; when set it is required on loopback too.
	Token string `yaml:"token"`
}

// Metrics configures the Prometheus metrics served at /metrics on the admin listener.
type Metrics struct {
	// Enabled records request, upstream, rate-limit, auth, cache, breaker and reload metrics.
	// Requests are instrumented once each at the edge, not per middleware. Default: true.
	Enabled *bool `yaml:"enabled"`
	// GoRuntime adds the Go runtime and process metrics (go_*, process_*). Default: true.
	GoRuntime *bool `yaml:"go_runtime"`
}

// Tracing configures OpenTelemetry tracing: a server span per request and a client span per
// upstream attempt, exported over OTLP/HTTP. W3C `traceparent`/`tracestate` headers are
// forwarded upstream whether or not tracing is enabled; when it is, the upstream sees the
// gateway's span as its parent. Settings apply at start.
type Tracing struct {
	// Enabled turns span recording and export on. Default: false.
	Enabled bool `yaml:"enabled"`
	// Endpoint is the OTLP/HTTP collector's base URL, e.g. "http://otel-collector:4318" (spans
	// are posted to /v1/traces). Required when Enabled.
	Endpoint string `yaml:"endpoint"`
	// Headers are sent with every export, e.g. the credentials of a hosted collector. The admin
	// API shows every value redacted, whatever the header is called.
	Headers map[string]string `yaml:"headers" redact:"values"`
	// SampleRatio is the fraction of new traces recorded, from 0 to 1. A request arriving with a
	// `traceparent` follows its parent's sampling decision. Default: 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName is the `service.name` resource attribute of the spans. Default: gatehouse.
	ServiceName string `yaml:"service_name"`
	// Timeout bounds one export batch. Default: 10s.
	Timeout Duration `yaml:"timeout"`
}

// Logging configures the operational log (not the access log, see server.access_log).
type Logging struct {
	// Level is the minimum level logged: debug, info, warn or error. Empty keeps the level the
	// process started with (the -log-level flag). The admin API changes it at run time; a
	// reload that changes this field applies the new value.
	Level string `yaml:"level"`
}

// LogLevels are the values accepted in logging.level.
var LogLevels = []string{"debug", "info", "warn", "error"}

func (c *Config) defaultObservability() {
	if c.Metrics.Enabled == nil {
		on := true
		c.Metrics.Enabled = &on
	}
	if c.Metrics.GoRuntime == nil {
		on := true
		c.Metrics.GoRuntime = &on
	}
	if c.Tracing.SampleRatio == nil {
		one := 1.0
		c.Tracing.SampleRatio = &one
	}
	if c.Tracing.ServiceName == "" {
		c.Tracing.ServiceName = "gatehouse"
	}
	defDur(&c.Tracing.Timeout, 10*time.Second)
	c.Logging.Level = strings.ToLower(c.Logging.Level)
}

func (s *Source) validateObservability(add func(path, format string, args ...any)) {
	c := s.Config
	if a := c.Admin.Address; a != "" {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			add("admin.address", "%q is not host:port (e.g. \"127.0.0.1:9901\")", redactURL(a))
		} else if !IsLoopbackAddress(a) && c.Admin.Token == "" {
			add("admin.token", "is required when admin.address %q is not a loopback address (set it from the environment: ${GATEHOUSE_ADMIN_TOKEN})", a)
		}
		for i, l := range c.Listeners {
			if l.Address == a && !strings.HasSuffix(a, ":0") { // port 0: each gets a free port
				add("admin.address", "%q is already used by listeners[%d]", a, i)
			}
		}
	} else if c.Admin.Token != "" {
		add("admin.token", "is set but admin.address is empty (no admin listener)")
	}
	if c.Admin.Token != "" && len(c.Admin.Token) < 16 {
		add("admin.token", "must be at least 16 characters")
	}
	t := c.Tracing
	if t.Enabled {
		if t.Endpoint == "" {
			add("tracing.endpoint", "is required when tracing is enabled (e.g. http://otel-collector:4318)")
		}
	}
	if t.Endpoint != "" {
		if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("tracing.endpoint", "%q must be an http or https URL", redactURL(t.Endpoint))
		}
	}
	for k := range t.Headers {
		checkHeaderName(add, "tracing.headers."+k, k)
	}
	if r := t.SampleRatio; r != nil && (*r < 0 || *r > 1 || *r != *r) {
		add("tracing.sample_ratio", "must be between 0 and 1 (got %v)", *r)
	}
	if l := c.Logging.Level; l != "" && !contains(LogLevels, l) {
		add("logging.level", "unknown level %q (want one of %s)", l, strings.Join(LogLevels, ", "))
	}
}

// IsLoopbackAddress reports whether host:port names only the local machine: a loopback IP or
// "localhost". An empty host (all interfaces) is not loopback.
func IsLoopbackAddress(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
