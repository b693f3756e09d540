package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Fault modes of a faultBackend.
const (
	modeOK    = "ok"    // 200 with the backend's name
	mode500   = "500"   // 500
	mode503   = "503"   // 503
	modeHang  = "hang"  // never answers; returns when the request is canceled
	modeReset = "reset" // promises 1000 bytes, sends 10, closes the connection
)

// faultBackend is a test upstream whose behaviour can be switched while it runs. It counts proxied
// calls and health probes (GET /healthz) separately; probes answer 200 unless sick is set.
type faultBackend struct {
	name     string
	srv      *httptest.Server
	mode     atomic.Value
	sick     atomic.Bool
	calls    atomic.Int64
	probes   atomic.Int64
	canceled chan struct{} // receives when a hanging request is canceled
}

func newFaultBackend(t *testing.T, name string) *faultBackend {
	t.Helper()
	b := &faultBackend{name: name, canceled: make(chan struct{}, 100)}
	b.mode.Store(modeOK)
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *faultBackend) set(mode string) { b.mode.Store(mode) }
func (b *faultBackend) addr() string    { return hostPort(b.srv) }

func (b *faultBackend) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		b.probes.Add(1)
		if b.sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
		return
	}
	b.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	switch b.mode.Load().(string) {
	case mode500:
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "boom")
	case mode503:
		w.WriteHeader(http.StatusServiceUnavailable)
	case modeHang:
		<-r.Context().Done()
		b.canceled <- struct{}{}
	case modeReset:
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "0123456789")
		_ = http.NewResponseController(w).Flush()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	default:
		w.Header().Set("X-Backend", b.name)
		fmt.Fprintf(w, "%s:%s", b.name, body)
	}
}

// refusedAddr returns a loopback address nothing listens on.
func refusedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// waitFor polls cond every 20ms for up to 5s (generous for a loaded machine).
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func upstreamState(t *testing.T, g *gateway, name string) upstream.ServiceState {
	t.Helper()
	for _, s := range g.srv.Registry().Snapshot() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("service %s not in snapshot", name)
	return upstream.ServiceState{}
}

func (g *gateway) sendBody(t *testing.T, method, path, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, g.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return g.do(t, req)
}

const resilienceHead = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { access_log: { enabled: false } }
`

func TestBreakerOpensFailsFastAndRecovers(t *testing.T) {
	b := newFaultBackend(t, "b")
	g := startGateway(t, resilienceHead+`
services:
  - name: flaky
    targets: [{ url: "http://${B}" }]
    circuit_breaker: { failure_threshold: 3, recovery_timeout: 300ms, half_open_requests: 2 }
routes:
  - { name: main, match: { path: /** }, service: flaky }
`, map[string]string{"B": b.addr()})

	b.set(mode500)
	for i := range 3 {
		if resp, _ := g.get(t, "/x"); resp.StatusCode != 500 {
			t.Fatalf("request %d: status %d, want the backend's 500", i, resp.StatusCode)
		}
	}
	if st := upstreamState(t, g, "flaky"); st.Breaker != upstream.BreakerOpen {
		t.Fatalf("breaker %q after 3 failures, want open", st.Breaker)
	}
	// Open: fail fast, the backend sees nothing.
	for range 5 {
		resp, body := g.get(t, "/x")
		if resp.StatusCode != 503 || decodeError(t, resp, body).Error != "service_unavailable" {
			t.Fatalf("while open: %d %s", resp.StatusCode, body)
		}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
			t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
		if strings.Contains(body, "127.0.0.1") {
			t.Fatalf("error leaks an address: %s", body)
		}
	}
	if n := b.calls.Load(); n != 3 {
		t.Fatalf("backend saw %d calls, want 3: the open breaker let requests through", n)
	}

	// Half-open: the first probe fails, which opens the breaker again.
	pollUntil(t, "half-open", func() bool { return upstreamState(t, g, "flaky").Breaker == upstream.BreakerHalfOpen })
	if resp, _ := g.get(t, "/x"); resp.StatusCode != 500 {
		t.Fatalf("half-open probe: %d, want the backend's 500", resp.StatusCode)
	}
	if resp, _ := g.get(t, "/x"); resp.StatusCode != 503 {
		t.Fatalf("after a failed probe: %d, want 503 (re-opened)", resp.StatusCode)
	}
	if n := b.calls.Load(); n != 4 {
		t.Fatalf("backend saw %d calls, want 4", n)
	}

	// The backend heals: two good probes close the breaker.
	b.set(modeOK)
	pollUntil(t, "half-open again", func() bool { return upstreamState(t, g, "flaky").Breaker == upstream.BreakerHalfOpen })
	for i := range 2 {
		if resp, body := g.get(t, "/x"); resp.StatusCode != 200 {
			t.Fatalf("probe %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if st := upstreamState(t, g, "flaky"); st.Breaker != upstream.BreakerClosed {
		t.Fatalf("breaker %q after good probes, want closed", st.Breaker)
	}
	for range 5 {
		if resp, _ := g.get(t, "/x"); resp.StatusCode != 200 {
			t.Fatalf("closed breaker: %d", resp.StatusCode)
		}
	}
}

func TestBreakerFailurePercent(t *testing.T) {
	b := newFaultBackend(t, "b")
	g := startGateway(t, resilienceHead+`
services:
  - name: s
    targets: [{ url: "http://${B}" }]
    circuit_breaker: { failure_percent: 50, min_requests: 10, window: 5s, recovery_timeout: 10s, failure_on: [gateway_error] }
routes:
  - { name: main, match: { path: /** }, service: s }
`, map[string]string{"B": b.addr()})
	// 500 is not a failure with failure_on: [gateway_error]; alternate 503s with successes.
	b.set(mode500)
	for range 10 {
		g.get(t, "/x")
	}
	if st := upstreamState(t, g, "s"); st.Breaker != upstream.BreakerClosed {
		t.Fatalf("breaker %q after 500s not listed in failure_on", st.Breaker)
	}
	for i := range 8 {
		if i%2 == 0 {
			b.set(mode503)
		} else {
			b.set(modeOK)
		}
		g.get(t, "/x")
	}
	// 18 requests, 4 failures: 22% < 50%.
	if st := upstreamState(t, g, "s"); st.Breaker != upstream.BreakerClosed {
		t.Fatalf("breaker %q below the failure percentage", st.Breaker)
	}
	b.set(mode503)
	for range 16 {
		g.get(t, "/x")
	}
	if st := upstreamState(t, g, "s"); st.Breaker != upstream.BreakerOpen {
		t.Fatalf("breaker %q at >= 50%% failures, want open", st.Breaker)
	}
	if n := b.calls.Load(); n >= 34 {
		t.Fatalf("backend saw %d calls: the breaker never opened", n)
	}
}

func TestBreakerFallbacks(t *testing.T) {
	down, spare := newFaultBackend(t, "down"), newFaultBackend(t, "spare")
	down.set(mode503)
	g := startGateway(t, resilienceHead+`
services:
  - name: static
    targets: [{ url: "http://${DOWN}" }]
    circuit_breaker:
      failure_threshold: 1
      recovery_timeout: 1m
      fallback: { status: 200, body: '{"items":[],"degraded":true}' }
  - name: primary
    targets: [{ url: "http://${DOWN}" }]
    circuit_breaker: { failure_threshold: 1, recovery_timeout: 1m, fallback: { service: spare } }
  - name: spare
    targets: [{ url: "http://${SPARE}" }]
routes:
  - { name: static, match: { path: /static/** }, service: static }
  - { name: primary, match: { path: /primary/** }, service: primary }
`, map[string]string{"DOWN": down.addr(), "SPARE": spare.addr()})

	g.get(t, "/static/a") // trips the breaker
	resp, body := g.get(t, "/static/a")
	if resp.StatusCode != 200 || body != `{"items":[],"degraded":true}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("static fallback: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Fatal("fallback response lacks X-Request-Id")
	}
	g.get(t, "/primary/b") // trips the breaker
	resp, body = g.get(t, "/primary/b")
	if resp.StatusCode != 200 || body != "spare:" {
		t.Fatalf("service fallback: %d %q", resp.StatusCode, body)
	}
	if n := down.calls.Load(); n != 2 {
		t.Fatalf("down backend saw %d calls, want 2 (one per breaker)", n)
	}
}

func TestPassiveEjectionAndReturn(t *testing.T) {
	bad, good := newFaultBackend(t, "bad"), newFaultBackend(t, "good")
	g := startGateway(t, resilienceHead+`
services:
  - name: s
    targets: [{ url: "http://${BAD}" }, { url: "http://${GOOD}" }]
    health_check:
      passive: { consecutive_failures: 2, ejection_time: 300ms, max_ejection_time: 2s }
routes:
  - { name: main, match: { path: /** }, service: s }
`, map[string]string{"BAD": bad.addr(), "GOOD": good.addr()})

	bad.set(mode500)
	fails := 0
	for range 20 {
		if resp, _ := g.get(t, "/x"); resp.StatusCode == 500 {
			fails++
		}
	}
	if n := bad.calls.Load(); n != 2 || fails != 2 {
		t.Fatalf("bad target got %d calls (%d failures seen), want 2: it was not ejected after 2 failures", n, fails)
	}
	st := upstreamState(t, g, "s")
	if st.Targets[0].Healthy || st.Targets[0].EjectedUntil.IsZero() || !st.Targets[1].Healthy {
		t.Fatalf("snapshot during ejection: %+v", st.Targets)
	}

	// Healed and the ejection over: it gets traffic again.
	bad.set(modeOK)
	pollUntil(t, "ejection to end", func() bool { return upstreamState(t, g, "s").Targets[0].Healthy })
	for range 10 {
		if resp, _ := g.get(t, "/x"); resp.StatusCode != 200 {
			t.Fatalf("status %d after healing", resp.StatusCode)
		}
	}
	if n := bad.calls.Load(); n < 5 {
		t.Fatalf("healed target got %d calls in total, want it back in rotation", n)
	}

	// A second ejection lasts longer (doubled): still out after the first ejection time.
	bad.set(mode500)
	for range 6 {
		g.get(t, "/x")
	}
	until := upstreamState(t, g, "s").Targets[0].EjectedUntil
	if left := time.Until(until); left < 350*time.Millisecond {
		t.Fatalf("second ejection ends in %v, want about 600ms (doubled)", left)
	}
}

func TestActiveHealthChecks(t *testing.T) {
	a, b := newFaultBackend(t, "a"), newFaultBackend(t, "b")
	cfg := func(policy string) string {
		return resilienceHead + `
services:
  - name: s
    targets: [{ url: "http://${A}" }, { url: "http://${B}" }]
    health_check:
      active: { path: /healthz, interval: 30ms, timeout: 500ms, healthy_threshold: 2, unhealthy_threshold: 2 }
      all_unhealthy: ` + policy + `
routes:
  - { name: main, match: { path: /** }, service: s }
`
	}
	g := startGateway(t, cfg("fail"), map[string]string{"A": a.addr(), "B": b.addr()})
	pollUntil(t, "probes", func() bool { return a.probes.Load() >= 2 && b.probes.Load() >= 2 })

	a.sick.Store(true)
	pollUntil(t, "a unhealthy", func() bool { return !upstreamState(t, g, "s").Targets[0].Healthy })
	before := a.calls.Load()
	for range 10 {
		if resp, body := g.get(t, "/x"); resp.StatusCode != 200 || body != "b:" {
			t.Fatalf("with a unhealthy: %d %q", resp.StatusCode, body)
		}
	}
	if n := a.calls.Load() - before; n != 0 {
		t.Fatalf("unhealthy target got %d calls", n)
	}

	a.sick.Store(false)
	pollUntil(t, "a healthy", func() bool { return upstreamState(t, g, "s").Targets[0].Healthy })
	for range 10 {
		g.get(t, "/x")
	}
	if a.calls.Load() == before {
		t.Fatal("recovered target got no traffic")
	}

	// Every target unhealthy with all_unhealthy: fail.
	a.sick.Store(true)
	b.sick.Store(true)
	pollUntil(t, "all unhealthy", func() bool {
		st := upstreamState(t, g, "s")
		return !st.Targets[0].Healthy && !st.Targets[1].Healthy
	})
	calls := a.calls.Load() + b.calls.Load()
	resp, body := g.get(t, "/x")
	if resp.StatusCode != 503 || decodeError(t, resp, body).Error != "service_unavailable" {
		t.Fatalf("all unhealthy, fail: %d %s", resp.StatusCode, body)
	}
	if a.calls.Load()+b.calls.Load() != calls {
		t.Fatal("a request reached a target although all are unhealthy and the policy is fail")
	}

	// try_anyway: the reload keeps the targets (same service targets) and their health.
	if err := g.reload(cfg("try_anyway")); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "still all unhealthy", func() bool {
		st := upstreamState(t, g, "s")
		return !st.Targets[0].Healthy && !st.Targets[1].Healthy
	})
	if resp, _ := g.get(t, "/x"); resp.StatusCode != 200 {
		t.Fatalf("all unhealthy, try_anyway: %d", resp.StatusCode)
	}
}

func TestRetriesOnlyIdempotentByDefault(t *testing.T) {
	bad, good := newFaultBackend(t, "bad"), newFaultBackend(t, "good")
	bad.set(mode503)
	cfg := func(methods string) string {
		return resilienceHead + `
services:
  - name: s
    targets: [{ url: "http://${BAD}" }, { url: "http://${GOOD}" }]
    retries: { attempts: 3, backoff: 1ms, max_backoff: 5ms, budget_percent: 100` + methods + ` }
routes:
  - { name: main, match: { path: /** }, service: s }
`
	}
	g := startGateway(t, cfg(""), map[string]string{"BAD": bad.addr(), "GOOD": good.addr()})

	for range 10 {
		if resp, body := g.sendBody(t, "GET", "/x", ""); resp.StatusCode != 200 || body != "good:" {
			t.Fatalf("GET with a retry on the other target: %d %q", resp.StatusCode, body)
		}
	}
	if n := bad.calls.Load(); n < 3 {
		t.Fatalf("bad target got %d GETs, want about half", n)
	}

	// POST is not retried: every request makes exactly one call.
	calls := bad.calls.Load() + good.calls.Load()
	failed := 0
	for range 10 {
		if resp, _ := g.sendBody(t, "POST", "/x", "payload"); resp.StatusCode == 503 {
			failed++
		}
	}
	if n := bad.calls.Load() + good.calls.Load() - calls; n != 10 {
		t.Fatalf("10 POSTs made %d backend calls: POST was retried", n)
	}
	if failed == 0 {
		t.Fatal("no POST reached the failing target; the test proves nothing")
	}

	// Configured to retry POST: the body is replayed to the other target.
	if err := g.reload(cfg(", methods: [GET, POST]")); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		payload := "payload-" + strconv.Itoa(i)
		if resp, body := g.sendBody(t, "POST", "/x", payload); resp.StatusCode != 200 || body != "good:"+payload {
			t.Fatalf("retried POST: %d %q", resp.StatusCode, body)
		}
	}
}

func TestRetriesOnConnectErrorAndBodyLimit(t *testing.T) {
	good := newFaultBackend(t, "good")
	g := startGateway(t, resilienceHead+`
services:
  - name: s
    targets: [{ url: "http://${DEAD}" }, { url: "http://${GOOD}" }]
    retries: { attempts: 2, backoff: 1ms, max_backoff: 2ms, budget_percent: 100, methods: [GET, PUT], max_body_bytes: 16 }
routes:
  - { name: main, match: { path: /** }, service: s }
`, map[string]string{"DEAD": refusedAddress(t), "GOOD": good.addr()})
	for range 10 {
		if resp, body := g.sendBody(t, "PUT", "/x", "small"); resp.StatusCode != 200 || body != "good:small" {
			t.Fatalf("PUT retried after a refused connection: %d %q", resp.StatusCode, body)
		}
	}
	// A body over max_body_bytes is streamed once: some of these reach the dead target and fail.
	big := strings.Repeat("x", 100)
	var failed, ok int
	for range 10 {
		resp, body := g.sendBody(t, "PUT", "/x", big)
		switch {
		case resp.StatusCode == 502:
			failed++
		case resp.StatusCode == 200 && body == "good:"+big:
			ok++
		default:
			t.Fatalf("large PUT: %d %q", resp.StatusCode, body)
		}
	}
	if failed == 0 || ok == 0 {
		t.Fatalf("large bodies: %d failed, %d ok; want both (no retry without a replayable body)", failed, ok)
	}
}

func TestRetryBudgetCapsRetries(t *testing.T) {
	b := newFaultBackend(t, "b")
	b.set(mode503)
	g := startGateway(t, resilienceHead+`
services:
  - name: s
    targets: [{ url: "http://${B}" }]
    retries: { attempts: 5, backoff: 1ms, max_backoff: 2ms, budget_percent: 20, budget_min_retries: 0, budget_window: 1m }
routes:
  - { name: main, match: { path: /** }, service: s }
`, map[string]string{"B": b.addr()})
	const requests = 50
	for range requests {
		if resp, _ := g.get(t, "/x"); resp.StatusCode != 503 {
			t.Fatalf("status %d, want the backend's 503", resp.StatusCode)
		}
	}
	retries := b.calls.Load() - requests
	// Without a budget this would be 4 retries per request (200).
	if retries > requests*20/100 || retries < 5 {
		t.Fatalf("%d retries for %d requests; want some, and at most 20%%", retries, requests)
	}
	if st := upstreamState(t, g, "s"); st.Retries != retries || st.RetryRequests != requests {
		t.Fatalf("snapshot budget %d/%d, want %d/%d", st.Retries, st.RetryRequests, retries, requests)
	}
}

func TestHangingBackendCostsNoMoreThanTheTimeout(t *testing.T) {
	hang, good := newFaultBackend(t, "hang"), newFaultBackend(t, "good")
	hang.set(modeHang)
	g := startGateway(t, resilienceHead+`
services:
  - name: alone
    targets: [{ url: "http://${HANG}" }]
    timeouts: { request: 300ms }
  - name: pair
    targets: [{ url: "http://${HANG}" }, { url: "http://${GOOD}" }]
    timeouts: { request: 2s }
    retries: { attempts: 2, per_try_timeout: 150ms, backoff: 1ms, max_backoff: 2ms, budget_percent: 100 }
routes:
  - { name: alone, match: { path: /alone }, service: alone }
  - { name: pair, match: { path: /pair }, service: pair }
`, map[string]string{"HANG": hang.addr(), "GOOD": good.addr()})

	start := time.Now()
	resp, body := g.get(t, "/alone")
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("hanging backend cost the client %v with a 300ms route timeout", took)
	}
	if resp.StatusCode != 504 || decodeError(t, resp, body).Error != "gateway_timeout" {
		t.Fatalf("hanging backend: %d %s", resp.StatusCode, body)
	}
	select {
	case <-hang.canceled:
	case <-time.After(3 * time.Second):
		t.Fatal("the hanging upstream request was not canceled")
	}

	// With a per-try timeout, the hung attempt is abandoned and retried on the other target.
	for range 4 {
		start := time.Now()
		resp, body := g.get(t, "/pair")
		if resp.StatusCode != 200 || body != "good:" {
			t.Fatalf("pair: %d %q", resp.StatusCode, body)
		}
		if took := time.Since(start); took > 1500*time.Millisecond {
			t.Fatalf("pair took %v", took)
		}
	}
}

func TestClientCancelCancelsUpstream(t *testing.T) {
	b := newFaultBackend(t, "b")
	b.set(modeHang)
	g := startGateway(t, resilienceHead+`
services:
  - name: s
    targets: [{ url: "http://${B}" }]
    retries: { attempts: 3, budget_percent: 100 }
routes:
  - { name: main, match: { path: /** }, service: s }
`, map[string]string{"B": b.addr()})
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", g.base+"/x", nil)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client error %v", err)
	}
	select {
	case <-b.canceled:
	case <-time.After(3 * time.Second):
		t.Fatal("the upstream request outlived the client's")
	}
	time.Sleep(100 * time.Millisecond)
	if n := b.calls.Load(); n != 1 {
		t.Fatalf("backend saw %d calls: a canceled request was retried", n)
	}
}

func TestResetMidBodyIsNotRetried(t *testing.T) {
	b := newFaultBackend(t, "b")
	b.set(modeReset)
	g := startGateway(t, resilienceHead+`
services:
  - name: s
    targets: [{ url: "http://${B}" }]
    retries: { attempts: 3, budget_percent: 100, retry_on: [connect_error, reset, timeout, 5xx] }
routes:
  - { name: main, match: { path: /** }, service: s }
`, map[string]string{"B": b.addr()})
	// The gateway aborts the client connection: either before the buffered headers went out or
	// in the middle of the body, never with a complete-looking response.
	resp, err := http.Get(g.base + "/x")
	if err == nil {
		got, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil || len(got) >= 1000 {
			t.Fatalf("truncated upstream body passed as complete: %d bytes, err %v", len(got), rerr)
		}
	}
	if n := b.calls.Load(); n != 1 {
		t.Fatalf("backend saw %d calls: a response already streaming was retried", n)
	}
	// The gateway is fine afterwards.
	b.set(modeOK)
	if resp, _ := g.get(t, "/x"); resp.StatusCode != 200 {
		t.Fatalf("after a reset: %d", resp.StatusCode)
	}
}

func TestResilienceStateAcrossReloads(t *testing.T) {
	b := newFaultBackend(t, "b")
	cfg := func(tag, threshold string, health bool) string {
		hc := ""
		if health {
			hc = "\n    health_check: { active: { path: /healthz, interval: 20ms, timeout: 500ms } }"
		}
		return resilienceHead + `
services:
  - name: s
    targets: [{ url: "http://${B}" }]
    circuit_breaker: { failure_threshold: ` + threshold + `, recovery_timeout: 1m }` + hc + `
routes:
  - { name: main, match: { path: /** }, service: s, response_headers: { set: { X-Config: ` + tag + ` } } }
`
	}
	g := startGateway(t, cfg("one", "2", true), map[string]string{"B": b.addr()})
	b.set(mode500)
	g.get(t, "/x")
	g.get(t, "/x")
	if resp, _ := g.get(t, "/x"); resp.StatusCode != 503 {
		t.Fatalf("breaker not open: %d", resp.StatusCode)
	}

	// A reload that leaves the service alone keeps the open breaker.
	if err := g.reload(cfg("two", "2", true)); err != nil {
		t.Fatal(err)
	}
	if got := g.srv.Runtime().Config.Routes[0].ResponseHeaders.Set["X-Config"]; got != "two" {
		t.Fatalf("reload not active: X-Config %q", got)
	}
	if resp, _ := g.get(t, "/x"); resp.StatusCode != 503 {
		t.Fatalf("after an unrelated reload: %d, want the breaker still open", resp.StatusCode)
	}

	// Changing the breaker settings starts a fresh (closed) breaker; dropping the health check
	// stops the prober once the old runtime is released.
	if err := g.reload(cfg("three", "3", false)); err != nil {
		t.Fatal(err)
	}
	if resp, _ := g.get(t, "/x"); resp.StatusCode != 500 {
		t.Fatalf("after a breaker change: %d, want a fresh breaker letting the call through", resp.StatusCode)
	}
	time.Sleep(300 * time.Millisecond) // old runtimes drain and release (polled every 50ms)
	probes := b.probes.Load()
	time.Sleep(200 * time.Millisecond)
	if n := b.probes.Load() - probes; n != 0 {
		t.Fatalf("%d health probes after the health check was removed: the checker leaked", n)
	}
	if calls := b.calls.Load(); calls != 3 {
		t.Fatalf("backend saw %d calls, want 3", calls)
	}
}

func TestServiceDoForAggregation(t *testing.T) {
	bad, good := newFaultBackend(t, "bad"), newFaultBackend(t, "good")
	bad.set(mode503)
	reg := upstream.NewRegistry()
	targets := []*upstream.Target{
		upstream.NewTarget(parseTestURL(t, "http://"+bad.addr()), 1),
		upstream.NewTarget(parseTestURL(t, "http://"+good.addr()+"/base"), 1),
	}
	on, _ := upstream.ParseConditions([]string{"gateway_error"}, nil)
	svc, release, err := reg.AcquireService(upstream.ServiceConfig{
		Name: "s", Targets: targets, Balancer: "round_robin", Transport: http.DefaultTransport,
		Retry: &upstream.RetryConfig{Attempts: 2, Methods: []string{"GET"}, RetryOn: on, BudgetPercent: 100,
			BudgetMinRetries: 10, BudgetWindow: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for range 4 {
		req, _ := http.NewRequest("GET", "/items?x=1", nil)
		resp, err := svc.Do(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "good:" {
			t.Fatalf("Do: %d %q", resp.StatusCode, body)
		}
	}
	for _, tg := range targets {
		if tg.InFlight() != 0 {
			t.Fatalf("target %s has %d in flight after the bodies were closed", tg, tg.InFlight())
		}
	}
}

func parseTestURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestResponseHeaderTimeoutIsNotResent: a response-header timeout on a reused keep-alive
// connection is not a stale connection. Taken for one, the request went again on a new
// connection (without retries configured): the target ran the slow request twice and the
// client waited two timeouts for its 504.
func TestResponseHeaderTimeoutIsNotResent(t *testing.T) {
	var slow atomic.Int64
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			slow.Add(1)
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(be.Close)
	g := startGateway(t, resilienceHead+`
services: [{ name: b, targets: [{ url: "http://${B}" }], timeouts: { response_header: 300ms, request: 10s } }]
routes: [{ name: all, match: { path: /** }, service: b }]
`, map[string]string{"B": hostPort(be)})
	for _, method := range []string{"GET", "DELETE"} {
		if resp, body := g.get(t, "/warm"); resp.StatusCode != 200 { // a keep-alive connection is pooled
			t.Fatalf("warm: %d %s", resp.StatusCode, body)
		}
		slow.Store(0)
		start := time.Now()
		req, _ := http.NewRequest(method, g.base+"/slow", nil)
		resp, _ := g.do(t, req)
		took := time.Since(start)
		time.Sleep(50 * time.Millisecond) // a second send would have arrived by now
		if n := slow.Load(); resp.StatusCode != http.StatusGatewayTimeout || n != 1 {
			t.Errorf("%s past response_header (300ms), no retries configured: status %d after %v, the target received it %d times",
				method, resp.StatusCode, took.Round(time.Millisecond), n)
		}
	}
}
