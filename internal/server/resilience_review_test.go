package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

// hungServiceGateway starts a gateway whose one service, "s", is a backend that never answers,
// with the request timeout given and a breaker and passive health check that trip after
// failures failed attempts.
func hungServiceGateway(t *testing.T, request string, failures int) (*faultBackend, *gateway) {
	t.Helper()
	b := newFaultBackend(t, "b")
	b.set(modeHang)
	g := startGateway(t, resilienceHead+fmt.Sprintf(`
services:
  - name: s
    targets: [{ url: "http://${B}" }]
    timeouts: { request: %s }
    circuit_breaker: { failure_threshold: %d, recovery_timeout: 1m }
    health_check: { passive: { consecutive_failures: %d }, all_unhealthy: try_anyway }
routes:
  - { name: main, match: { path: /** }, service: s }
`, request, failures, failures), map[string]string{"B": b.addr()})
	return b, g
}

// A hung upstream answered by the route's request timeout (504) is the most common upstream
// timeout: it counts against the circuit breaker (failure_on includes timeout) and passive
// health, although the request's own context, which carries the route deadline, is done.
func TestRouteTimeoutCountsAgainstBreakerAndPassiveHealth(t *testing.T) {
	b, g := hungServiceGateway(t, "150ms", 2)
	for i := range 3 {
		if resp, _ := g.get(t, "/x"); resp.StatusCode != 504 && resp.StatusCode != 503 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	st := upstreamState(t, g, "s")
	if st.Breaker != upstream.BreakerOpen || st.Targets[0].EjectedUntil.IsZero() {
		t.Fatalf("after 3 upstream timeouts: breaker %q, ejected until %v; want open and ejected (backend calls %d)",
			st.Breaker, st.Targets[0].EjectedUntil, b.calls.Load())
	}
}

// A gRPC client's own deadline (grpc-timeout) that runs out is the client's budget, however
// short, not a timeout of the target: it opens no breaker and ejects no target, where the same
// hang cut by the route's request timeout does (above).
func TestGRPCClientDeadlineDoesNotCountAgainstTarget(t *testing.T) {
	b, g := hungServiceGateway(t, "5s", 1)
	for i := range 3 {
		req, err := http.NewRequest(http.MethodPost, g.base+"/pkg.Svc/Call", strings.NewReader("\x00\x00\x00\x00\x00"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Grpc-Timeout", "100m")
		resp, _ := g.do(t, req)
		if got := resp.Header.Get("Grpc-Status") + resp.Trailer.Get("Grpc-Status"); got != "4" {
			t.Fatalf("call %d: grpc-status %q, want 4 (DEADLINE_EXCEEDED)", i, got)
		}
	}
	st := upstreamState(t, g, "s")
	if st.Breaker != upstream.BreakerClosed || !st.Targets[0].EjectedUntil.IsZero() {
		t.Fatalf("after 3 calls cut at the client's deadline: breaker %q, ejected until %v; want closed, not ejected",
			st.Breaker, st.Targets[0].EjectedUntil)
	}
	if n := b.calls.Load(); n != 3 {
		t.Fatalf("backend got %d calls, want 3 (none refused by an open breaker)", n)
	}
}

// per_try_timeout bounds an attempt until its response head arrives (as Envoy's does); the
// route's request timeout (5s, far away) alone bounds a healthy streaming body that takes
// longer than per_try_timeout.
func TestPerTryTimeoutDoesNotCutStreamingBody(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "first;")
		_ = http.NewResponseController(w).Flush()
		time.Sleep(400 * time.Millisecond)
		io.WriteString(w, "second")
	}))
	t.Cleanup(slow.Close)
	g := startGateway(t, resilienceHead+`
services:
  - name: s
    targets: [{ url: "http://${B}" }]
    timeouts: { request: 5s }
    retries: { attempts: 2, per_try_timeout: 200ms, budget_percent: 100 }
routes:
  - { name: main, match: { path: /** }, service: s }
`, map[string]string{"B": hostPort(slow)})
	resp, err := http.Get(g.base + "/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "first;second" {
		t.Fatalf("status %d body %q err %v; want the whole streamed body", resp.StatusCode, body, err)
	}
}

// Passive health never ejects a service's last healthy target: a short burst of 5xx from both
// targets (a dependency they share blipped) must not leave the service answering 503 for the
// whole ejection_time after the backends recovered.
func TestPassiveHealthKeepsLastTarget(t *testing.T) {
	a, b := newFaultBackend(t, "a"), newFaultBackend(t, "b")
	a.set(mode500)
	b.set(mode500)
	g := startGateway(t, resilienceHead+`
services:
  - name: s
    targets: [{ url: "http://${A}" }, { url: "http://${B}" }]
    health_check: { passive: { consecutive_failures: 2, ejection_time: 30s } }
routes:
  - { name: main, match: { path: /** }, service: s }
`, map[string]string{"A": a.addr(), "B": b.addr()})
	for range 4 {
		g.get(t, "/x")
	}
	a.set(modeOK)
	b.set(modeOK)
	if resp, body := g.get(t, "/x"); resp.StatusCode != 200 {
		t.Fatalf("backends healthy again, gateway answers %d %s (every target ejected)", resp.StatusCode, body)
	}
}

// A circuit-breaker fallback service is called through its own transport, not the primary
// route's: its tls, protocol, pool and timeouts apply. Here its https target needs its
// tls.insecure_skip_verify; through the primary's pool it fails certificate verification (502).
func TestFallbackServiceUsesItsOwnTransport(t *testing.T) {
	primary := newFaultBackend(t, "primary")
	primary.set(mode500)
	backup := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "from-backup")
	}))
	t.Cleanup(backup.Close)
	g := startGateway(t, resilienceHead+`
services:
  - name: backup
    targets: [{ url: "https://${BACKUP}" }]
    tls: { insecure_skip_verify: true }
  - name: main
    targets: [{ url: "http://${PRIMARY}" }]
    circuit_breaker: { failure_threshold: 1, recovery_timeout: 1m, fallback: { service: backup } }
routes:
  - { name: direct, match: { path: /direct }, service: backup }
  - { name: main, match: { path: /** }, service: main }
`, map[string]string{"PRIMARY": primary.addr(), "BACKUP": backup.Listener.Addr().String()})
	if resp, body := g.get(t, "/direct"); resp.StatusCode != 200 || body != "from-backup" {
		t.Fatalf("control, backup route: %d %s", resp.StatusCode, body)
	}
	g.get(t, "/x") // 500: opens the breaker
	if resp, body := g.get(t, "/x"); resp.StatusCode != 200 || body != "from-backup" {
		t.Fatalf("breaker open, fallback service: %d %s\nlog: %s", resp.StatusCode, body, lastLogLine(g.logs.String(), "upstream error"))
	}
}

func lastLogLine(logs, substr string) string {
	out := ""
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, substr) {
			out = l
		}
	}
	return out
}
