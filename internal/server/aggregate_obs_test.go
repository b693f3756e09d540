package server

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const aggObsYAML = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
admin: { address: "127.0.0.1:0" }
metrics: { go_runtime: false }
tracing: { enabled: true, endpoint: "http://127.0.0.1:1", sample_ratio: 1 }
services:
  - { name: users, targets: [{ url: "http://${USERS}" }] }
  - { name: orders, targets: [{ url: "http://${ORDERS}" }] }
routes:
  - name: dash
    match: { path: "/dash/{id}", methods: [GET] }
    aggregate:
      timeout: 2s
      calls:
        - { name: user, service: users, path: "/users/{id}", required: true }
        - { name: orders, service: orders, path: "/orders/{id}", default: [] }
`

// TestAggregateCallsGetClientSpans checks that each call of an aggregate route gets a client
// span, child of the request's server span, as proxied attempts do.
func TestAggregateCallsGetClientSpans(t *testing.T) {
	users := newAggBackend(t, `{"id":"u1"}`)
	orders := newAggBackend(t, `[1,2]`)
	exp := tracetest.NewInMemoryExporter()
	g := startObsGateway(t, aggObsYAML, map[string]string{"USERS": hostPort(users.srv), "ORDERS": hostPort(orders.srv)},
		func(o *Options) { o.SpanExporter = exp })
	resp, body := g.get(t, "/dash/u1")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	time.Sleep(200 * time.Millisecond)
	var server, client int
	for _, s := range exp.GetSpans() {
		switch s.SpanKind {
		case trace.SpanKindServer:
			server++
		case trace.SpanKindClient:
			client++
		}
	}
	if server != 1 || client != 2 {
		t.Errorf("got %d server and %d client spans, want 1 and 2 (one per aggregate call)", server, client)
	}
}

// TestAggregateUpstreamAttemptMetrics checks that the calls of an aggregate route are counted in
// gatehouse_upstream_attempts_total under their own services (a 500 hidden as "degraded" must
// show there).
func TestAggregateUpstreamAttemptMetrics(t *testing.T) {
	users := newAggBackend(t, `{"id":"u1"}`)
	orders := newAggBackend(t, `[1,2]`)
	orders.mode.Store("500")
	g := startObsGateway(t, aggObsYAML, map[string]string{"USERS": hostPort(users.srv), "ORDERS": hostPort(orders.srv)}, nil)
	resp, body := g.get(t, "/dash/u1")
	if resp.StatusCode != 200 || resp.Header.Get("X-Gatehouse-Degraded") == "" {
		t.Fatalf("status %d degraded %q: %s", resp.StatusCode, resp.Header.Get("X-Gatehouse-Degraded"), body)
	}
	_, text := g.admin(t, "GET", "/metrics", "")
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "gatehouse_upstream_attempts_total") || strings.HasPrefix(l, "gatehouse_requests_total") {
			lines = append(lines, l)
		}
	}
	want := [][2]string{{`service="users"`, `result="2xx"`}, {`service="orders"`, `result="5xx"`}}
	for _, w := range want {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, "gatehouse_upstream_attempts_total") && strings.Contains(l, w[0]) && strings.Contains(l, w[1]) {
				found = true
			}
		}
		if !found {
			t.Errorf("no gatehouse_upstream_attempts_total series with %s", w)
		}
	}
}
