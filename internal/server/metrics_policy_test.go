package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPolicyMetricsFromRealTraffic checks that rate-limit decisions, auth failures and cache
// lookups made by the real middleware show up in /metrics with exact counts.
func TestPolicyMetricsFromRealTraffic(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=600")
		io.WriteString(w, "ok")
	}))
	t.Cleanup(origin.Close)
	g := startObsGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
admin: { address: "127.0.0.1:0" }
auth:
  consumers: [{ name: partner, keys: ["sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"] }]
services: [{ name: o, targets: [{ url: "http://${O}" }] }]
routes:
  - name: limited
    match: { path: /limited }
    service: o
    plugins: { rate_limit: [{ name: two, key: ip, limit: 2, per: 1m }] }
  - name: cached
    match: { path: /cached }
    service: o
    plugins: { cache: {} }
  - name: keyed
    match: { path: /keyed }
    service: o
    plugins: { api_key: {} }
`, map[string]string{"O": hostPort(origin)}, nil)
	for range 3 {
		g.get(t, "/limited")
	}
	g.get(t, "/cached")
	g.get(t, "/cached")
	g.get(t, "/keyed")
	g.get(t, "/keyed", "X-API-Key", "wrong")
	_, body := g.admin(t, "GET", "/metrics", "")
	for _, want := range []string{
		`gatehouse_ratelimit_decisions_total{decision="allowed",limit="two",route="limited"} 2`,
		`gatehouse_ratelimit_decisions_total{decision="denied",limit="two",route="limited"} 1`,
		`gatehouse_cache_lookups_total{result="miss",route="cached"} 1`,
		`gatehouse_cache_lookups_total{result="hit",route="cached"} 1`,
		`gatehouse_auth_failures_total{reason="missing_credentials",route="keyed"} 1`,
		`gatehouse_auth_failures_total{reason="invalid_api_key",route="keyed"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
