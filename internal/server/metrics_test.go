package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// obsGateway is a gateway with its admin listener.
type obsGateway struct {
	*gateway
	adminBase string
	token     string
}

// startObsGateway starts yaml (which should set admin.address to 127.0.0.1:0) with the
// options edited by mod; the config is also written to a file so ReloadFile works.
func startObsGateway(t *testing.T, yaml string, env map[string]string, mod func(*Options)) *obsGateway {
	t.Helper()
	g, cfg := startGatewayWith(t, yaml, env, mod)
	return &obsGateway{gateway: g, adminBase: "http://" + g.srv.AdminAddr(), token: cfg.Admin.Token}
}

// admin sends a request to the admin listener (with the token unless noAuth).
func (g *obsGateway) admin(t *testing.T, method, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, g.adminBase+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return g.do(t, req)
}

const metricsYAML = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
admin: { address: "127.0.0.1:0" }
metrics: { go_runtime: false }
services:
  - name: echo
    targets: [{ url: "http://${ECHO}" }]
  - name: failing
    targets: [{ url: "http://${FAIL}" }]
  - name: down
    targets: [{ url: "http://127.0.0.1:1" }]
    timeouts: { connect: 1s }
routes:
  - name: ok
    match: { path: /api/** }
    service: echo
  - name: fail
    match: { path: /fail, methods: [GET] }
    service: failing
  - name: down
    match: { path: /down }
    service: down
`

func newStatusBackend(t *testing.T, status int) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "backend says "+http.StatusText(status))
	}))
	t.Cleanup(s.Close)
	return s
}

// TestMetricsAfterKnownTraffic scrapes /metrics after a fixed set of requests and checks the
// exact series: requests by route, service, method and status class, latency histogram
// counts, upstream attempts by target and result, in-flight, target health and reloads.
func TestMetricsAfterKnownTraffic(t *testing.T) {
	echo := newEcho(t, "echo")
	fail := newStatusBackend(t, http.StatusServiceUnavailable)
	g := startObsGateway(t, metricsYAML, map[string]string{"ECHO": hostPort(echo), "FAIL": hostPort(fail)}, nil)

	send := func(method, path string, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, g.base+path, nil)
		resp, body := g.do(t, req)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, body)
		}
	}
	for range 3 {
		send("GET", "/api/users", 200)
	}
	send("POST", "/api/users", 200)
	send("POST", "/api/orders", 200)
	send("BREW", "/api/coffee", 200) // unknown methods share one label value
	send("GET", "/fail", 503)
	send("DELETE", "/fail", 405) // matched no route: method not allowed
	send("GET", "/nowhere", 404)
	send("GET", "/down", 502)

	resp, text := g.admin(t, "GET", "/metrics", "")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics status %d: %s", resp.StatusCode, text)
	}
	e, f := hostPort(echo), hostPort(fail)
	want := []string{
		`gatehouse_requests_total{method="GET",route="ok",service="echo",status="2xx"} 3`,
		`gatehouse_requests_total{method="POST",route="ok",service="echo",status="2xx"} 2`,
		`gatehouse_requests_total{method="OTHER",route="ok",service="echo",status="2xx"} 1`,
		`gatehouse_requests_total{method="GET",route="fail",service="failing",status="5xx"} 1`,
		`gatehouse_requests_total{method="DELETE",route="-",service="-",status="4xx"} 1`,
		`gatehouse_requests_total{method="GET",route="-",service="-",status="4xx"} 1`,
		`gatehouse_requests_total{method="GET",route="down",service="down",status="5xx"} 1`,
		`gatehouse_request_duration_seconds_count{method="GET",route="ok",service="echo",status="2xx"} 3`,
		`gatehouse_request_duration_seconds_bucket{method="POST",route="ok",service="echo",status="2xx",le="+Inf"} 2`,
		`gatehouse_upstream_attempts_total{result="2xx",service="echo",target="` + e + `"} 6`,
		`gatehouse_upstream_attempts_total{result="5xx",service="failing",target="` + f + `"} 1`,
		`gatehouse_upstream_attempts_total{result="error",service="down",target="127.0.0.1:1"} 1`,
		`gatehouse_upstream_attempt_duration_seconds_count{service="echo",target="` + e + `"} 6`,
		`gatehouse_requests_in_flight 0`,
		`gatehouse_target_healthy{service="echo",target="http://` + e + `"} 1`,
		`gatehouse_target_in_flight{service="echo",target="http://` + e + `"} 0`,
		`gatehouse_config_reloads_total{result="success"} 0`,
		`gatehouse_config_reloads_total{result="failure"} 0`,
		`gatehouse_config_last_reload_successful 1`,
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(text, "\n") {
		lines[l] = true
	}
	for _, w := range want {
		if !lines[w] {
			t.Errorf("missing series line %s", w)
		}
	}
	// The recording API other packages call (rate limiting, auth, cache, breakers).
	m := g.srv.Metrics()
	m.RateLimitDecision("ok", "routes[0].plugins.rate_limit[0]", true)
	m.RateLimitDecision("ok", "routes[0].plugins.rate_limit[0]", true)
	m.RateLimitDecision("ok", "routes[0].plugins.rate_limit[0]", false)
	m.AuthFailure("ok", "expired")
	m.CacheLookup("ok", true)
	m.CacheLookup("ok", false)
	m.CacheLookup("ok", false)
	m.SetBreakerState("failing", "", telemetry.BreakerOpen)
	_, text2 := g.admin(t, "GET", "/metrics", "")
	for _, w := range []string{
		`gatehouse_ratelimit_decisions_total{decision="allowed",limit="routes[0].plugins.rate_limit[0]",route="ok"} 2`,
		`gatehouse_ratelimit_decisions_total{decision="denied",limit="routes[0].plugins.rate_limit[0]",route="ok"} 1`,
		`gatehouse_auth_failures_total{reason="expired",route="ok"} 1`,
		`gatehouse_cache_lookups_total{result="hit",route="ok"} 1`,
		`gatehouse_cache_lookups_total{result="miss",route="ok"} 2`,
		`gatehouse_circuit_breaker_state{service="failing",target=""} 2`,
	} {
		if !strings.Contains(text2, w+"\n") {
			t.Errorf("missing %s", w)
		}
	}
	if !strings.Contains(text, "# TYPE gatehouse_config_active_timestamp_seconds gauge") {
		t.Error("active config timestamp missing")
	}
	if strings.Contains(text, "go_goroutines") {
		t.Error("Go runtime metrics exported although metrics.go_runtime is false")
	}
	if strings.Contains(text, `route="-",service="-",status="2xx"`) {
		t.Error("unmatched requests counted as 2xx")
	}

	// Reloads: one success, one failure (the file is broken), both counted.
	if err := g.reload(metricsYAML); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(g.srv.opts.ConfigPath, []byte("version: 1\nroutes: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.ReloadFile(); err == nil {
		t.Fatal("reload of a broken file succeeded")
	}
	_, text = g.admin(t, "GET", "/metrics", "")
	for _, w := range []string{
		`gatehouse_config_reloads_total{result="success"} 1`,
		`gatehouse_config_reloads_total{result="failure"} 1`,
		`gatehouse_config_last_reload_successful 0`,
	} {
		if !strings.Contains(text, w+"\n") {
			t.Errorf("after reloads: missing %s", w)
		}
	}
	// Counters of a route survive a reload that keeps it.
	if !strings.Contains(text, `gatehouse_requests_total{method="GET",route="ok",service="echo",status="2xx"} 3`+"\n") {
		t.Error("route counters reset by a reload")
	}
}

func TestMetricsGoRuntimeAndDisabled(t *testing.T) {
	echo := newEcho(t, "echo")
	y := strings.Replace(metricsYAML, "metrics: { go_runtime: false }", "", 1)
	g := startObsGateway(t, y, map[string]string{"ECHO": hostPort(echo), "FAIL": hostPort(echo)}, nil)
	_, text := g.admin(t, "GET", "/metrics", "")
	if !strings.Contains(text, "go_goroutines ") || !strings.Contains(text, "process_") {
		t.Error("Go runtime and process metrics missing by default")
	}

	y = strings.Replace(metricsYAML, "metrics: { go_runtime: false }", "metrics: { enabled: false }", 1)
	off := startObsGateway(t, y, map[string]string{"ECHO": hostPort(echo), "FAIL": hostPort(echo)}, nil)
	if resp, _ := off.get(t, "/api/x"); resp.StatusCode != 200 {
		t.Fatalf("proxying with metrics off: %d", resp.StatusCode)
	}
	resp, body := off.admin(t, "GET", "/metrics", "")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"error": "not_found"`) || !strings.Contains(body, "metrics.enabled") {
		t.Errorf("/metrics with metrics disabled: %d %s", resp.StatusCode, body)
	}
	if off.srv.Metrics() != nil {
		t.Error("metrics registry built although disabled")
	}
}
