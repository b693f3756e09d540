package server

import (
	"strings"
	"testing"
)

const staleBreakerYAML = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
admin: { address: "127.0.0.1:0" }
metrics: { go_runtime: false }
services:
  - name: echo
    targets: [{ url: "http://${ECHO}" }]
  - name: flaky
    targets: [{ url: "http://${FAIL}" }]
    circuit_breaker: { failure_threshold: 1, recovery_timeout: 1m }
routes:
  - { name: ok, match: { path: /ok }, service: echo }
  - { name: flaky, match: { path: /flaky }, service: flaky }
`

const staleBreakerYAML2 = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
admin: { address: "127.0.0.1:0" }
metrics: { go_runtime: false }
services:
  - name: echo
    targets: [{ url: "http://${ECHO}" }]
routes:
  - { name: ok, match: { path: /ok }, service: echo }
`

// TestBreakerGaugeGoneAfterReload checks that a service a reload removed leaves no circuit
// breaker gauge behind (an "open" one would keep an alert firing for good).
func TestBreakerGaugeGoneAfterReload(t *testing.T) {
	echo := newEcho(t, "echo")
	fail := newStatusBackend(t, 503)
	g := startObsGateway(t, staleBreakerYAML, map[string]string{"ECHO": hostPort(echo), "FAIL": hostPort(fail)}, nil)
	for range 3 {
		g.get(t, "/flaky")
	}
	_, text := g.admin(t, "GET", "/metrics", "")
	_, text = g.admin(t, "GET", "/metrics", "") // breaker gauges may lag one scrape
	if !strings.Contains(text, `gatehouse_circuit_breaker_state{service="flaky"`) {
		t.Fatalf("breaker gauge for flaky missing before reload:\n%s", grepLines(text, "breaker"))
	}
	if err := g.reload(staleBreakerYAML2); err != nil {
		t.Fatal(err)
	}
	g.admin(t, "GET", "/metrics", "")
	_, text = g.admin(t, "GET", "/metrics", "")
	if s := grepLines(text, `gatehouse_circuit_breaker_state{service="flaky"`); s != "" {
		t.Errorf("after the service was removed by reload, its breaker gauge remains:\n%s", s)
	}
}

// grepLines is the lines of a metrics text that hold sub (comments aside).
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

const aggCacheYAML = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
cache: { store: memory, max_bytes: 16MiB }
services:
  - { name: users, targets: [{ url: "http://${USERS}" }] }
  - { name: orders, targets: [{ url: "http://${ORDERS}" }] }
routes:
  - name: dash
    match: { path: "/dash/{id}", methods: [GET] }
    plugins: { cache: { ttl: 60s } }
    aggregate:
      calls:
        - { name: user, service: users, path: "/users/{id}", required: true }
        - { name: orders, service: orders, path: "/orders/{id}", default: [] }
`

// TestDegradedAggregateIsNotCached checks that a partial aggregate answer (an optional call
// failed) is not kept by the response cache once the backend is back.
func TestDegradedAggregateIsNotCached(t *testing.T) {
	users := newAggBackend(t, `{"id":"u1"}`)
	orders := newAggBackend(t, `[1,2]`)
	orders.mode.Store("500")
	g := startGateway(t, aggCacheYAML, map[string]string{"USERS": hostPort(users.srv), "ORDERS": hostPort(orders.srv)})
	resp, body := g.get(t, "/dash/u1")
	if resp.StatusCode != 200 || resp.Header.Get("X-Gatehouse-Degraded") == "" {
		t.Fatalf("first: %d %q %s", resp.StatusCode, resp.Header.Get("X-Gatehouse-Degraded"), body)
	}
	orders.mode.Store("ok") // the backend recovers
	resp, body = g.get(t, "/dash/u1")
	if d := resp.Header.Get("X-Gatehouse-Degraded"); d != "" || strings.Contains(body, `"_degraded":true`) {
		t.Errorf("after recovery still served the degraded response from cache: degraded=%q cache=%q body=%s (orders calls %d)",
			d, resp.Header.Get("X-Cache"), body, orders.calls.Load())
	}
}
