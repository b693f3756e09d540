package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// base is a valid config of 7 lines; cases append to it, so their own lines start at 8.
const base = `version: 1
listeners:
  - name: main
    address: ":8080"
services:
  - name: users
    targets: [{url: "http://127.0.0.1:8081"}]
`

// route is a valid routes block starting at line 8 (after base); a case appends route fields at
// line 13 onwards or replaces the block.
const route = `routes:
  - name: r
    match:
      path: /users/{id}
    service: users
`

func noEnv(string) (string, bool) { return "", false }

func mustLoad(t *testing.T, name string, data []byte, env func(string) (string, bool)) *Config {
	t.Helper()
	cfg, err := Load(name, data, env)
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	return cfg
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLoadFullConfig(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "full.yaml", readTestdata(t, "full.yaml"), noEnv)
	s, svc, r := c.Server, c.Services[0], c.Routes[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"version", c.Version, 1},
		{"listeners", len(c.Listeners), 4},
		{"listeners[0].max_conns_per_ip", c.Listeners[0].MaxConnsPerIP, 64},
		{"listeners[3].tls.min_version", c.Listeners[3].TLS.MinVersion, "1.3"},
		{"listeners[3].tls.client_auth.subject_header", *c.Listeners[3].TLS.ClientAuth.SubjectHeader, "X-Client-DN"},
		{"server.max_in_flight", c.Server.MaxInFlight, 5000},
		{"server.underscore_headers", c.Server.UnderscoreHeaders, "reject"},
		{"server.path_parameters", c.Server.PathParameters, "allow"},
		{"server.geo.allow", strings.Join(c.Server.Geo.Allow, ","), "DE,FR"},
		{"server.bots.rules[1].action", c.Server.Bots.Rules[1].Action, "tag"},
		{"routes[1].plugins.cors.max_age", c.Routes[1].Plugins.CORS.MaxAge.Duration, 10 * time.Minute},
		{"listeners[1].name", c.Listeners[1].Name, "admin"},
		{"listeners[1].address", c.Listeners[1].Address, "127.0.0.1:9090"},
		{"trusted_proxies", strings.Join(s.TrustedProxies, ","), "10.0.0.0/8,192.168.1.7,2001:db8::/32"},
		{"max_body_bytes", s.MaxBodyBytes.Bytes, int64(5 << 20)},
		{"max_header_bytes", s.MaxHeaderBytes.Bytes, int64(16 << 10)},
		{"read_header_timeout", s.ReadHeaderTimeout.Duration, 5 * time.Second},
		{"read_timeout", s.ReadTimeout.Duration, 30 * time.Second},
		{"write_timeout", s.WriteTimeout.Duration, time.Minute},
		{"idle_timeout", s.IdleTimeout.Duration, 90 * time.Second},
		{"shutdown_timeout", s.ShutdownTimeout.Duration, 15 * time.Second},
		{"access_log.enabled", *s.AccessLog.Enabled, false},
		{"access_log.output", s.AccessLog.Output, "/var/log/gatehouse/access.log"},
		{"access_log.format", s.AccessLog.Format, "common"},
		// An explicit 0 is kept, not replaced by the 64KiB default.
		{"access_log.buffer_size", *s.AccessLog.BufferSize, Size(0)},
		{"services[0].name", svc.Name, "users"},
		{"targets[0]", svc.Targets[0], Target{URL: "http://10.0.0.1:8081", Weight: 3}},
		{"targets[1]", svc.Targets[1], Target{URL: "https://users.internal:8443/base", Weight: 1}},
		{"balancer", svc.Balancer, "consistent_hash"},
		{"hash_on", svc.HashOn, "header:X-User-ID"},
		{"timeouts.connect", svc.Timeouts.Connect, Dur(2 * time.Second)},
		{"timeouts.response_header", svc.Timeouts.ResponseHeader, Dur(10 * time.Second)},
		// An explicit "0s" is kept and counts as set.
		{"timeouts.request", svc.Timeouts.Request, Dur(0)},
		{"pool", svc.Pool, Pool{MaxIdlePerTarget: 32, MaxPerTarget: 100, IdleTimeout: Dur(45 * time.Second)}},
		{"routes[0].name", r.Name, "get-user"},
		{"hosts", strings.Join(r.Match.Hosts, ","), "api.example.com,*.example.org"},
		{"path", r.Match.Path, "/api/v1/users/{id}"},
		{"methods", strings.Join(r.Match.Methods, ","), "GET,PUT"},
		{"headers.Accept-Version", r.Match.Headers["Accept-Version"].Exact, "v2"},
		{"headers.X-Trace", r.Match.Headers["X-Trace"].Present, true},
		{"headers.X-Client", r.Match.Headers["X-Client"].Regex, "^mobile-[0-9]+$"},
		{"query.debug", r.Match.Query["debug"].Exact, "1"},
		{"query.view", r.Match.Query["view"].Exact, "full"},
		{"query.lang", r.Match.Query["lang"].Regex, "^(en|de)$"},
		{"service", r.Service, "users"},
		{"rewrite", r.Rewrite, "/v2/accounts/{id}"},
		{"preserve_host", r.PreserveHost, true},
		{"request_headers.add", r.RequestHeaders.Add["X-Gateway"], "gatehouse"},
		{"request_headers.set", r.RequestHeaders.Set["X-Forwarded-Prefix"], "/api/v1"},
		{"request_headers.remove", strings.Join(r.RequestHeaders.Remove, ","), "Cookie"},
		{"response_headers.add", r.ResponseHeaders.Add["Via"], "gatehouse"},
		{"response_headers.set", r.ResponseHeaders.Set["Cache-Control"], "no-store"},
		{"response_headers.remove", strings.Join(r.ResponseHeaders.Remove, ","), "Server,X-Powered-By"},
		{"routes[0].timeouts", r.Timeouts, Timeouts{Connect: Dur(time.Second), ResponseHeader: Dur(3 * time.Second), Request: Dur(20 * time.Second)}},
		{"routes[0].max_body_bytes", r.MaxBodyBytes, Size(1000 * 1000)},
		{"routes[1].strip_prefix", c.Routes[1].StripPrefix, "/api/v1"},
		// Route overrides merge over the service field by field.
		{"effective timeouts", EffectiveTimeouts(svc.Timeouts, c.Routes[1].Timeouts), svc.Timeouts},
		{"effective timeouts override", EffectiveTimeouts(svc.Timeouts, Timeouts{Request: Dur(time.Second)}),
			Timeouts{Connect: Dur(2 * time.Second), ResponseHeader: Dur(10 * time.Second), Request: Dur(time.Second)}},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.got != tc.want {
				t.Errorf("got %+v, want %+v", tc.got, tc.want)
			}
		})
	}
}

// TestDefaults asserts every default documented in the field comments of types.go.
func TestDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "minimal.yaml", readTestdata(t, "minimal.yaml"), noEnv)
	s, a, b, r := c.Server, c.Services[0], c.Services[1], c.Routes[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"server.trusted_proxies", len(s.TrustedProxies), 0},
		{"server.max_body_bytes", s.MaxBodyBytes, Size(10 << 20)},
		{"server.max_header_bytes", s.MaxHeaderBytes, Size(32 << 10)},
		{"server.read_header_timeout", s.ReadHeaderTimeout, Dur(10 * time.Second)},
		{"server.read_timeout", s.ReadTimeout, Dur(60 * time.Second)},
		{"server.write_timeout", s.WriteTimeout, Dur(0)},
		{"server.idle_timeout", s.IdleTimeout, Dur(120 * time.Second)},
		{"server.shutdown_timeout", s.ShutdownTimeout, Dur(30 * time.Second)},
		{"server.access_log.enabled", *s.AccessLog.Enabled, true},
		{"server.access_log.output", s.AccessLog.Output, "stdout"},
		{"server.access_log.format", s.AccessLog.Format, "json"},
		{"server.access_log.buffer_size", *s.AccessLog.BufferSize, Size(256 << 10)},
		{"services[0].targets[0].weight", a.Targets[0].Weight, 1},
		{"services[0].balancer", a.Balancer, "round_robin"},
		{"services[0].hash_on", a.HashOn, ""},
		{"services[0].timeouts.connect", a.Timeouts.Connect, Dur(5 * time.Second)},
		{"services[0].timeouts.response_header", a.Timeouts.ResponseHeader, Dur(30 * time.Second)},
		{"services[0].timeouts.request", a.Timeouts.Request, Dur(60 * time.Second)},
		{"services[0].pool.max_idle_per_target", a.Pool.MaxIdlePerTarget, 256},
		{"services[0].pool.max_per_target", a.Pool.MaxPerTarget, 0},
		{"services[0].pool.idle_timeout", a.Pool.IdleTimeout, Dur(90 * time.Second)},
		// weight 0 (unset) means 1, so targets weighing 2 and 1 pick the weighted balancer.
		{"services[1].targets[1].weight", b.Targets[1].Weight, 1},
		{"services[1].balancer", b.Balancer, "weighted_round_robin"},
		{"routes[0].preserve_host", r.PreserveHost, false},
		// Route overrides stay unset so EffectiveTimeouts falls through to the service.
		{"routes[0].timeouts", r.Timeouts, Timeouts{}},
		{"routes[0].max_body_bytes", r.MaxBodyBytes.Set(), false},
		{"effective timeouts", EffectiveTimeouts(a.Timeouts, r.Timeouts), a.Timeouts},
	}
	for _, tc := range checks {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.got != tc.want {
				t.Errorf("got %+v, want %+v", tc.got, tc.want)
			}
		})
	}
}

func TestEnvSubstitution(t *testing.T) {
	t.Parallel()
	env := func(k string) (string, bool) {
		switch k {
		case "PORT":
			return "9000", true
		case "EMPTY":
			return "", true
		}
		return "", false
	}
	tests := []struct {
		name string
		yaml string
		want func(*Config) (got, want any)
	}{
		{"set variable", "version: 1\nlisteners:\n  - name: main\n    address: \":${PORT}\"\n",
			func(c *Config) (any, any) { return c.Listeners[0].Address, ":9000" }},
		{"default used when unset", "version: 1\nlisteners:\n  - name: main\n    address: \"${NOPE:-127.0.0.1:7000}\"\n",
			func(c *Config) (any, any) { return c.Listeners[0].Address, "127.0.0.1:7000" }},
		{"default ignored when set", "version: 1\nlisteners:\n  - name: main\n    address: \":${PORT:-1}\"\n",
			func(c *Config) (any, any) { return c.Listeners[0].Address, ":9000" }},
		{"set but empty beats default", "version: 1\nlisteners:\n  - name: \"m${EMPTY:-x}\"\n    address: \":1\"\n",
			func(c *Config) (any, any) { return c.Listeners[0].Name, "m" }},
		{"dollar escape", "version: 1\nlisteners:\n  - name: a$$b$${PORT}\n    address: \":1\"\n",
			func(c *Config) (any, any) { return c.Listeners[0].Name, "a$b${PORT}" }},
		{"whole-line comment ignored", "version: 1\n# address: ${NOPE}\n   # ${ALSO_NOPE\nlisteners:\n  - name: main\n    address: \":1\"\n",
			func(c *Config) (any, any) { return c.Listeners[0].Address, ":1" }},
		{"comment on the last line without newline", "version: 1\nlisteners:\n  - name: main\n    address: \":1\"\n# ${NOPE}",
			func(c *Config) (any, any) { return c.Listeners[0].Address, ":1" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, "env.yaml", []byte(tc.yaml), env)
			if got, want := tc.want(c); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// wantErr is one expected FieldError: exact position and path, and a substring of the message.
type wantErr struct {
	line, col int
	path, msg string
}

func checkErrors(t *testing.T, err error, want []wantErr) {
	t.Helper()
	if err == nil {
		t.Fatalf("Load succeeded, want %d error(s)", len(want))
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, want config.Errors: %v", err, err)
	}
	if len(es) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(es), len(want), err)
	}
	for i, w := range want {
		e := es[i]
		if e.File != "gw.yaml" || e.Line != w.line || e.Col != w.col || e.Path != w.path || !strings.Contains(e.Msg, w.msg) {
			t.Errorf("error %d:\n got %s\nwant gw.yaml:%d:%d: %s: ...%s...", i, e, w.line, w.col, w.path, w.msg)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []wantErr
	}{
		// Decoding: the first problem is reported, at the offending token.
		{"unknown top-level field", base + "bogus: 1\n",
			[]wantErr{{8, 1, "bogus", `unknown field "bogus"`}}},
		{"unknown nested field", base + "routes:\n  - name: r\n    match:\n      paht: /x\n    service: users\n",
			[]wantErr{{11, 7, "routes[0].match.paht", `unknown field "paht"`}}},
		{"bad duration", base + "    timeouts:\n      connect: 5 seconds\n",
			[]wantErr{{9, 16, "services[0].timeouts.connect", `invalid duration "5 seconds"`}}},
		{"negative duration", base + "    timeouts:\n      connect: -5s\n",
			[]wantErr{{9, 16, "services[0].timeouts.connect", `duration "-5s" must not be negative`}}},
		{"duration of wrong type", base + "server:\n  idle_timeout: [5s]\n",
			[]wantErr{{9, 17, "server.idle_timeout", "expected a duration"}}},
		{"bad size", base + "server:\n  max_body_bytes: 10 MiBs\n",
			[]wantErr{{9, 19, "server.max_body_bytes", `invalid size "10 MiBs"`}}},
		{"negative size", base + "server:\n  access_log:\n    buffer_size: -1\n",
			[]wantErr{{10, 18, "server.access_log.buffer_size", `invalid size "-1"`}}},
		{"size too large", base + "server:\n  max_body_bytes: 9999999999GiB\n",
			[]wantErr{{9, 19, "server.max_body_bytes", `invalid size "9999999999GiB"`}}},
		{"duplicate YAML key", "version: 1\nversion: 1\nlisteners: [{name: a, address: \":1\"}]\n",
			[]wantErr{{2, 1, "version", `mapping key "version" already defined at [1:1]`}}},
		{"duplicate nested YAML key", base + "server:\n  read_timeout: 1s\n  read_timeout: 2s\n",
			[]wantErr{{10, 3, "server.read_timeout", `mapping key "read_timeout" already defined`}}},
		{"string where a list is expected", "version: 1\nlisteners: \":8080\"\n",
			[]wantErr{{2, 12, "listeners", "string was used where sequence is expected"}}},
		{"string where a nested list is expected", base + "routes:\n  - name: r\n    match:\n      path: /\n      methods: GET\n    service: users\n",
			[]wantErr{{12, 16, "routes[0].match.methods", "string was used where sequence is expected"}}},
		{"empty file", "",
			[]wantErr{{1, 1, "", "config is empty"}}},
		{"only comments", "# nothing here\n\n",
			[]wantErr{{1, 1, "", "config is empty"}}},
		{"not YAML", "\x00\xff{{[[: :",
			[]wantErr{{1, 9, "", "invalid key"}}},
		{"unset environment variable", "version: 1\nlisteners:\n  - name: main\n    address: \"${NOPE}\"\n",
			[]wantErr{{4, 15, "", "environment variable NOPE is not set"}}},
		{"unterminated reference", "version: 1\nlisteners:\n  - name: ${NOPE\n    address: \":1\"\n",
			[]wantErr{{3, 11, "", "unterminated ${ reference"}}},
		{"invalid variable name", "version: 1 ${1X}\n",
			[]wantErr{{1, 12, "", `invalid environment variable name "1X"`}}},

		// Validation: every problem is reported, at its field's key.
		{"version missing", "listeners: [{name: a, address: \":1\"}]\n",
			[]wantErr{{1, 1, "version", "must be 1 (got 0)"}}},
		{"version 2", "listeners: [{name: a, address: \":1\"}]\nversion: 2\n",
			[]wantErr{{2, 1, "version", "must be 1 (got 2)"}}},
		{"no listeners", "version: 1\nlisteners: []\n",
			[]wantErr{{2, 1, "listeners", "at least one listener is required"}}},
		{"listeners missing", "version: 1\n",
			[]wantErr{{1, 1, "listeners", "at least one listener is required"}}},
		{"bad listener addresses", "version: 1\nlisteners:\n  - name: a\n    address: localhost\n  - name: b\n    address: \"host:\"\n  - name: c\n",
			[]wantErr{
				{4, 5, "listeners[0].address", `"localhost" is not host:port`},
				{6, 5, "listeners[1].address", `"host:" is not host:port`},
				{7, 5, "listeners[2].address", "is required"},
			}},
		{"duplicate names", "version: 1\nlisteners:\n  - name: a\n    address: \":1\"\n  - name: a\n    address: \":1\"\n" +
			"services:\n  - name: s\n    targets: [{url: \"http://x\"}]\n  - name: s\n    targets: [{url: \"http://y\"}]\n" +
			"routes:\n  - name: r\n    match: {path: /a}\n    service: s\n  - name: r\n    match: {path: /b}\n    service: s\n",
			[]wantErr{
				{5, 5, "listeners[1].name", `duplicate listener name "a" (also at index 0)`},
				{6, 5, "listeners[1].address", `":1" is already used by listeners[0]`},
				{10, 5, "services[1].name", `duplicate service name "s" (also at index 0)`},
				{16, 5, "routes[1].name", `duplicate route name "r" (also at index 0)`},
			}},
		{"unknown service", base + "routes:\n  - name: ok\n    match: {path: /a}\n    service: users\n  - name: bad\n    match: {path: /b}\n    service: nope\n",
			[]wantErr{{14, 5, "routes[1].service", `unknown service "nope"`}}},
		{"bad trusted proxies", base + "server:\n  trusted_proxies: [10.0.0.0/8, 10.0.0.0/33, nope, \"::1\"]\n",
			[]wantErr{
				{9, 33, "server.trusted_proxies[1]", `"10.0.0.0/33" is not an IP address or CIDR`},
				{9, 46, "server.trusted_proxies[2]", `"nope" is not an IP address or CIDR`},
			}},
		{"target URLs", "version: 1\nlisteners: [{name: a, address: \":1\"}]\nservices:\n  - name: s\n    targets:\n" +
			"      - url: 127.0.0.1:8081\n      - url: localhost:8081\n      - url: ftp://files\n      - url: http://x/?a=b\n" +
			"      - url: http://x/#f\n      - url: http://u:p@x\n      - url: http://:80\n      - weight: 2\n      - url: http://ok/base\n",
			[]wantErr{
				{6, 9, "services[0].targets[0].url", `"127.0.0.1:8081" is not a valid URL`},
				{7, 9, "services[0].targets[1].url", `"localhost:8081" must use http or https`},
				{8, 9, "services[0].targets[2].url", `"ftp://files" must use http or https`},
				{9, 9, "services[0].targets[3].url", "must not carry a query"},
				{10, 9, "services[0].targets[4].url", "must not carry a query, fragment"},
				{11, 9, "services[0].targets[5].url", "credentials"},
				{12, 9, "services[0].targets[6].url", "has no host"},
				{13, 9, "services[0].targets[7].url", "is required"},
			}},
		{"no targets", "version: 1\nlisteners: [{name: a, address: \":1\"}]\nservices:\n  - name: s\n",
			[]wantErr{{4, 5, "services[0].targets", "at least one target is required"}}},
		{"weight 0 and negative are errors (an unset weight is 1)", base + "  - name: w\n    targets:\n      - url: http://a\n        weight: 0\n      - url: http://b\n        weight: -2\n",
			[]wantErr{{11, 9, "services[1].targets[0].weight", "must be at least 1"}, {13, 9, "services[1].targets[1].weight", "must be at least 1"}}},
		{"balancers", base + "    balancer: random\n  - name: ch\n    targets: [{url: \"http://x\"}]\n    balancer: consistent_hash\n" +
			"  - name: rr\n    targets: [{url: \"http://x\"}]\n    hash_on: client_ip\n" +
			"  - name: bad\n    targets: [{url: \"http://x\"}]\n    balancer: consistent_hash\n    hash_on: query:x\n",
			[]wantErr{
				{8, 5, "services[0].balancer", `unknown balancer "random" (want one of round_robin`},
				{9, 5, "services[1].hash_on", "is required with consistent_hash"},
				{14, 5, "services[2].hash_on", "is only used with balancer: consistent_hash"},
				{18, 5, "services[3].hash_on", `"query:x" must be header:<Name>, cookie:<name> or client_ip`},
			}},
		{"zero upstream timeouts", base + "    timeouts: {connect: 0s, response_header: 0, request: 0s}\n    pool: {max_idle_per_target: -1, max_per_target: -1}\n",
			[]wantErr{
				{8, 16, "services[0].timeouts.connect", "must be greater than 0"},
				{8, 29, "services[0].timeouts.response_header", "must be greater than 0"},
				{9, 12, "services[0].pool.max_idle_per_target", "must not be negative"},
				{9, 37, "services[0].pool.max_per_target", "must not be negative"},
			}},
		{"explicit zero weight", "version: 1\nlisteners: [{name: main, address: \":8080\"}]\nservices:\n  - name: users\n    targets: [{url: \"http://127.0.0.1:1\"}, {url: \"http://127.0.0.1:2\", weight: 0}]\n",
			[]wantErr{{5, 72, "services[0].targets[1].weight", "must be at least 1 (to drain a target, remove it"}}},
		{"server limits", base + "server:\n  max_header_bytes: 1000\n  access_log: {output: syslog, format: xml}\n  underscore_headers: keep\n  read_header_timeout: 0s\n  shutdown_timeout: 0s\n  path_parameters: strip\n",
			[]wantErr{
				{9, 3, "server.max_header_bytes", "must be at least 1KiB"},
				{10, 16, "server.access_log.output", `"syslog" must be stdout, stderr or a file path`},
				{10, 32, "server.access_log.format", `unknown format "xml" (want json or common)`},
				{11, 3, "server.underscore_headers", `must be drop, reject or allow, got "keep"`},
				{12, 3, "server.read_header_timeout", "must be greater than 0s"},
				{13, 3, "server.shutdown_timeout", "must be greater than 0s"},
				{14, 3, "server.path_parameters", `must be reject or allow, got "strip"`},
			}},
		{"credentialed wildcard origins", base + route + "    plugins:\n      cors:\n        allow_credentials: true\n" +
			"        allowed_origins: [\"https://*\", \"https://*.com\", \"https://*.example.com\", \"http://*.a.example.com:8080\"]\n",
			[]wantErr{
				{16, 27, "routes[0].plugins.cors.allowed_origins[0]", `"https://*": with allow_credentials a wildcard must stand for subdomains of a named domain`},
				{16, 40, "routes[0].plugins.cors.allowed_origins[1]", `"https://*.com": with allow_credentials`},
			}},
		{"rewrite with unknown parameter", base + route + "    rewrite: /v2/{uid}\n",
			[]wantErr{{13, 5, "routes[0].rewrite", `{uid} is not a parameter of the path pattern "/users/{id}"`}}},
		{"rewrite {**} without trailing wildcard", base + route + "    rewrite: /v2/{**}\n",
			[]wantErr{{13, 5, "routes[0].rewrite", "{**} needs a path pattern ending in /**"}}},
		{"rewrite and strip_prefix", base + route + "    rewrite: /v2/{id}\n    strip_prefix: /users\n",
			[]wantErr{{13, 5, "routes[0].rewrite", "cannot be combined with strip_prefix"}}},
		{"strip_prefix not literal", base + route + "    strip_prefix: /users/{id}\n",
			[]wantErr{{13, 5, "routes[0].strip_prefix", "must be a literal path starting with /"}}},
		{"invalid header name in match", base + "routes:\n  - name: r\n    match:\n      path: /\n      headers:\n        \"Bad Header\": x\n    service: users\n",
			[]wantErr{{13, 9, `routes[0].match.headers.Bad Header`, `"Bad Header" is not a valid header name`}}},
		{"invalid header names in header ops", base + route +
			"    request_headers:\n      add: {\"X A\": v}\n      set: {\"X:B\": v}\n      remove: [\"X C\"]\n" +
			"    response_headers:\n      set: {\"\": v}\n",
			[]wantErr{
				{14, 13, "routes[0].request_headers.add.X A", `"X A" is not a valid header name`},
				{15, 13, "routes[0].request_headers.set.X:B", `"X:B" is not a valid header name`},
				{16, 16, "routes[0].request_headers.remove[0]", `"X C" is not a valid header name`},
				{18, 13, "routes[0].response_headers.set.", `"" is not a valid header name`},
			}},
		{"invalid regex", base + "routes:\n  - name: r\n    match:\n      path: /\n      query:\n        v: {regex: \"(\"}\n    service: users\n",
			[]wantErr{{13, 13, "routes[0].match.query.v.regex", "invalid regular expression"}}},
		{"present false", base + "routes:\n  - name: r\n    match:\n      path: /\n      headers:\n        X-Debug: {present: false}\n    service: users\n",
			[]wantErr{{13, 28, "routes[0].match.headers.X-Debug.present", "present must be true"}}},
		{"two value match kinds", base + "routes:\n  - name: r\n    match:\n      path: /\n      headers:\n        X-Debug: {exact: a, regex: b}\n    service: users\n",
			[]wantErr{{13, 18, "routes[0].match.headers.X-Debug", "give exactly one of exact, present, regex"}}},
		{"boolean header value", base + "routes:\n  - name: r\n    match:\n      path: /\n      headers:\n        X-Debug: true\n    service: users\n",
			[]wantErr{{13, 18, "routes[0].match.headers.X-Debug", `expected a string value (quote it: "true")`}}},
		{"invalid method", base + "routes:\n  - name: r\n    match:\n      path: /\n      methods: [GET, \"PO ST\"]\n    service: users\n",
			[]wantErr{{12, 22, "routes[0].match.methods[1]", `"PO ST" is not a valid HTTP method`}}},
		{"invalid path patterns", base + "routes:\n  - name: a\n    match: {path: \"/a/**/b\"}\n    service: users\n" +
			"  - name: b\n    match: {path: \"/users/{\"}\n    service: users\n  - name: c\n    match: {}\n    service: users\n",
			[]wantErr{
				{10, 13, "routes[0].match.path", `"**" must be the last segment`},
				{13, 13, "routes[1].match.path", `unclosed "{"`},
				{16, 5, "routes[2].match.path", "is required"},
			}},
		{"conflicting routes", base + "routes:\n  - name: first\n    match:\n      path: /users/{id}\n      methods: [GET, POST]\n    service: users\n" +
			"  - name: other\n    match: {path: \"/users/{id}\", methods: [PUT]}\n    service: users\n" +
			"  - name: second\n    match:\n      path: /users/{uid}\n      methods: [post, GET]\n    service: users\n",
			[]wantErr{{18, 5, "routes[2].match", `matches exactly the same requests as routes[0] ("first")`}}},
		{"conflict reported next to other match errors", base + "routes:\n  - name: broken\n    match: {path: /, query: {q: {regex: \"[\"}}}\n    service: users\n" +
			"  - name: a\n    match: {path: /x}\n    service: users\n  - name: b\n    match: {path: /x}\n    service: users\n",
			[]wantErr{
				{10, 34, "routes[0].match.query.q.regex", "invalid regular expression"},
				{16, 5, "routes[2].match", `matches exactly the same requests as routes[1] ("a")`},
			}},
		{"quoted keys in a value match", base + "routes:\n  - name: r\n    match:\n      path: /\n      headers:\n        \"X-A\": {\"regex\": \"(\"}\n    service: users\n",
			[]wantErr{{13, 17, "routes[0].match.headers.X-A.regex", "invalid regular expression"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("gw.yaml", []byte(tc.yaml), noEnv)
			checkErrors(t, err, tc.want)
		})
	}
}

// A second YAML document is reported where it starts, not as "config is empty", which is false
// and hides the cause.
func TestLoadSecondDocument(t *testing.T) {
	t.Parallel()
	for _, data := range []string{
		"version: 1\nlisteners: [{name: a, address: \"127.0.0.1:1\"}]\n---\nfoo: 1\n",
		"version: 1\nlisteners: [{name: a, address: \"127.0.0.1:1\"}]\n---\n",
	} {
		_, err := Load("gw.yaml", []byte(data), noEnv)
		checkErrors(t, err, []wantErr{{3, 1, "", "starts a second YAML document; a config is one document"}})
	}
}
