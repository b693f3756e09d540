package config

import (
	"testing"
	"time"
)

func TestLoadFullObservability(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "full.yaml", readTestdata(t, "full.yaml"), noEnv)
	checks := []struct {
		name      string
		got, want any
	}{
		{"admin.address", c.Admin.Address, "127.0.0.1:9901"},
		{"admin.token", c.Admin.Token, "0123456789abcdef-admin-token"},
		{"metrics.enabled", *c.Metrics.Enabled, false},
		{"metrics.go_runtime", *c.Metrics.GoRuntime, false},
		{"tracing.enabled", c.Tracing.Enabled, true},
		{"tracing.endpoint", c.Tracing.Endpoint, "http://otel-collector:4318"},
		{"tracing.headers", c.Tracing.Headers["Authorization"], "Bearer collector-token"},
		{"tracing.sample_ratio", *c.Tracing.SampleRatio, 0.25},
		{"tracing.service_name", c.Tracing.ServiceName, "edge-gateway"},
		{"tracing.timeout", c.Tracing.Timeout.Duration, 5 * time.Second},
		{"logging.level", c.Logging.Level, "debug"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestObservabilityDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "gw.yaml", []byte("version: 1\nlisteners: [{name: public, address: \":8080\"}]\n"), noEnv)
	if c.Admin.Address != "" || c.Admin.Token != "" {
		t.Errorf("admin listener on by default: %+v", c.Admin)
	}
	if !*c.Metrics.Enabled || !*c.Metrics.GoRuntime {
		t.Error("metrics are off by default")
	}
	if c.Tracing.Enabled || *c.Tracing.SampleRatio != 1 || c.Tracing.ServiceName != "gatehouse" || c.Tracing.Timeout.Duration != 10*time.Second {
		t.Errorf("tracing defaults: %+v", c.Tracing)
	}
	if c.Logging.Level != "" {
		t.Errorf("logging.level default %q, want empty (keep the flag's level)", c.Logging.Level)
	}
}

func TestObservabilityErrors(t *testing.T) {
	t.Parallel()
	const head = "version: 1\nlisteners: [{name: public, address: \"127.0.0.1:8080\"}]\n"
	tests := []struct {
		name string
		yaml string
		want []wantErr
	}{
		{"non-loopback admin without token", head + "admin: {address: \":9901\"}\n",
			[]wantErr{{3, 1, "admin.token", "is required when admin.address \":9901\" is not a loopback address"}}},
		{"all interfaces without token", head + "admin:\n  address: 0.0.0.0:9901\n",
			[]wantErr{{3, 1, "admin.token", "not a loopback address"}}},
		{"short token", head + "admin:\n  address: 10.0.0.1:9901\n  token: short\n",
			[]wantErr{{5, 3, "admin.token", "at least 16 characters"}}},
		{"token without address", head + "admin:\n  token: 0123456789abcdef0\n",
			[]wantErr{{4, 3, "admin.token", "admin.address is empty"}}},
		{"admin address not host:port", head + "admin:\n  address: localhost\n",
			[]wantErr{{4, 3, "admin.address", "is not host:port"}}},
		{"admin address clashes with a listener", head + "admin:\n  address: 127.0.0.1:8080\n",
			[]wantErr{{4, 3, "admin.address", "already used by listeners[0]"}}},
		{"tracing without endpoint", head + "tracing:\n  enabled: true\n",
			[]wantErr{{3, 1, "tracing.endpoint", "is required when tracing is enabled"}}},
		{"tracing bad endpoint and ratio", head + "tracing:\n  endpoint: otel:4318\n  sample_ratio: 1.5\n  headers: {\"bad header\": x}\n",
			[]wantErr{
				{4, 3, "tracing.endpoint", "must be an http or https URL"},
				{5, 3, "tracing.sample_ratio", "between 0 and 1"},
				{6, 13, "tracing.headers.bad header", "not a valid header name"},
			}},
		{"unknown log level", head + "logging: {level: verbose}\n",
			[]wantErr{{3, 11, "logging.level", "unknown level \"verbose\""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("gw.yaml", []byte(tc.yaml), noEnv)
			checkErrors(t, err, tc.want)
		})
	}
}

func TestLoopbackAdminNeedsNoToken(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:9901", "localhost:9901", "[::1]:9901", "127.0.0.2:0"} {
		y := "version: 1\nlisteners: [{name: public, address: \":8080\"}]\nadmin: {address: \"" + addr + "\"}\n"
		if _, err := Load("gw.yaml", []byte(y), noEnv); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "LOCALHOST:1": true, "[::1]:1": true, "[::ffff:127.0.0.1]:1": true,
		":1": false, "0.0.0.0:1": false, "[::]:1": false, "10.1.2.3:1": false, "example.com:1": false, "bad": false} {
		if got := IsLoopbackAddress(addr); got != want {
			t.Errorf("IsLoopbackAddress(%q) = %v, want %v", addr, got, want)
		}
	}
}
