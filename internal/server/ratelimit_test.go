package server

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/redisserver"
)

func rateLimitYAML(redisURL, timeout, tag string) string {
	return fmt.Sprintf(`
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { access_log: { enabled: false } }
store: { redis: { url: %q, timeout: %s, retry_after_error: 200ms } }
services:
  - name: a
    targets: [{ url: "http://${A}" }]
routes:
  - name: shared
    match: { path: /shared }
    service: a
    response_headers: { set: { X-Config: %s } }
    plugins: { rate_limit: [{ name: tenant, key: "header:X-Tenant", limit: 50, per: 1h, burst: 10 }] }
  - name: open
    match: { path: /open }
    service: a
    plugins: { rate_limit: [{ name: open, key: "header:X-Tenant", limit: 5, per: 1h, on_error: fail_open }] }
  - name: closed
    match: { path: /closed }
    service: a
    plugins: { rate_limit: [{ name: closed, key: "header:X-Tenant", limit: 1000, per: 1h, on_error: fail_closed }] }
  - name: local
    match: { path: /local }
    service: a
    plugins: { rate_limit: [{ name: local, key: ip, limit: 3, per: 1h, store: memory }] }
`, redisURL, timeout, tag)
}

// fire sends one GET with X-Tenant and returns the status (0 on transport error) and duration.
func fire(client *http.Client, url, tenant string) (int, time.Duration, http.Header) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Tenant", tenant)
	start := time.Now()
	resp, err := client.Do(req)
	d := time.Since(start)
	if err != nil {
		return 0, d, nil
	}
	resp.Body.Close()
	return resp.StatusCode, d, resp.Header
}

// TestRateLimitExactAcrossThreeGateways hammers one key through three gateways sharing one
// redis-server: exactly limit + burst requests pass. The tolerance is zero: every decision is
// one atomic script on Redis's clock, and at 50/h one more token takes 72s to accrue, far longer
// than the test.
func TestRateLimitExactAcrossThreeGateways(t *testing.T) {
	rs := redisserver.Start(t)
	a := newEcho(t, "a")
	env := map[string]string{"A": hostPort(a)}
	var gws []*gateway
	for range 3 {
		// A generous Redis timeout: a decision that times out on a loaded machine falls back to
		// the local limiter, and this test is about exactness, not about the fallback.
		gws = append(gws, startGateway(t, rateLimitYAML(rs.URL(), "3s", "one"), env))
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var ok, limited, other atomic.Int64
	var badHeaders atomic.Value
	var wg sync.WaitGroup
	for i := range 30 {
		g := gws[i%3]
		wg.Go(func() {
			for range 20 {
				code, _, h := fire(client, g.base+"/shared", "acme")
				switch code {
				case 200:
					ok.Add(1)
				case 429:
					limited.Add(1)
					if h.Get("Retry-After") == "" || !strings.HasPrefix(h.Get("RateLimit"), `"tenant";r=0;t=`) || h.Get("RateLimit-Policy") != `"tenant";q=50;w=3600` {
						badHeaders.Store(fmt.Sprint(h))
					}
				default:
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("3 gateways, 600 requests on one key: %d allowed, %d limited, %d other", ok.Load(), limited.Load(), other.Load())
	if ok.Load() != 60 || limited.Load() != 540 || other.Load() != 0 {
		t.Fatalf("allowed %d, limited %d, other %d; want exactly 60 (limit 50 + burst 10) allowed", ok.Load(), limited.Load(), other.Load())
	}
	if v := badHeaders.Load(); v != nil {
		t.Fatalf("429 without the rate-limit headers: %v", v)
	}
	// Another key is unaffected.
	if code, _, h := fire(client, gws[1].base+"/shared", "other"); code != 200 || h.Get("RateLimit") != `"tenant";r=59;t=72` {
		t.Fatalf("fresh key: %d %q", code, h.Get("RateLimit"))
	}
}

// TestRateLimitRedisOutage kills and pauses Redis under load: fail_open routes keep serving
// under their local limit, fail_closed routes answer 503, no request waits much longer than
// the Redis timeout, and after a restart the Redis limits apply again.
func TestRateLimitRedisOutage(t *testing.T) {
	rs := redisserver.Start(t)
	a := newEcho(t, "a")
	const timeout = 100 * time.Millisecond
	g := startGateway(t, rateLimitYAML(rs.URL(), timeout.String(), "one"), map[string]string{"A": hostPort(a)})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	// Background load on both routes across the outage; record the slowest answer.
	var slowest atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				path := "/open"
				if n%2 == 1 {
					path = "/closed"
				}
				_, d, _ := fire(client, g.base+path, "load-"+strconv.Itoa(i))
				for {
					cur := slowest.Load()
					if int64(d) <= cur || slowest.CompareAndSwap(cur, int64(d)) {
						break
					}
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)

	for _, outage := range []struct {
		name       string
		start, end func()
	}{
		{"paused", rs.Pause, rs.Resume},
		{"killed", rs.Kill, rs.Restart},
	} {
		outage.start()
		// A fresh tenant on the fail_open route gets the local limit: exactly 5.
		tenant := "outage-" + outage.name
		got := ""
		for range 7 {
			code, d, _ := fire(client, g.base+"/open", tenant)
			got += map[int]string{200: "+", 429: "-"}[code]
			if d > timeout+400*time.Millisecond {
				t.Errorf("%s: /open took %v with Redis down (timeout %v)", outage.name, d, timeout)
			}
		}
		if got != "+++++--" {
			t.Errorf("%s: fail_open route under outage: %s, want +++++-- (local limit 5)", outage.name, got)
		}
		code, d, _ := fire(client, g.base+"/closed", tenant)
		if code != 503 {
			t.Errorf("%s: fail_closed route under outage: %d, want 503", outage.name, code)
		}
		if d > timeout+400*time.Millisecond {
			t.Errorf("%s: /closed took %v", outage.name, d)
		}
		outage.end()
		// Back on Redis: a fresh tenant is counted in Redis again.
		back := "back-" + outage.name
		deadline := time.Now().Add(5 * time.Second)
		for {
			if code, _, _ := fire(client, g.base+"/closed", back); code == 200 {
				if n, _ := rs.Do("EXISTS", "gatehouse:"+redisKeyLike(t, rs, back)); n == "1" {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Redis limits not used again after recovery", outage.name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Pooled connections from before a kill fail once each as they are reused (and
		// fail_open counts that request locally); wait until the pool is clean, i.e. the
		// fail_closed route answers from Redis several times in a row.
		for clean, i := 0, 0; clean < 12; i++ {
			if code, _, _ := fire(client, g.base+"/closed", "warm-"+outage.name+strconv.Itoa(i)); code == 503 {
				clean = 0
			} else {
				clean++
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: Redis connections did not recover", outage.name)
			}
		}
		// And the fail_open route's Redis limit applies again: 5 in Redis for a new tenant.
		got = ""
		for range 6 {
			code, _, _ := fire(client, g.base+"/open", back)
			got += map[int]string{200: "+", 429: "-"}[code]
		}
		if got != "+++++-" {
			t.Errorf("%s: after recovery /open: %s", outage.name, got)
		}
	}
	close(stop)
	wg.Wait()
	if s := time.Duration(slowest.Load()); s > timeout+500*time.Millisecond {
		t.Errorf("slowest request under load was %v (Redis timeout %v)", s, timeout)
	}
	t.Logf("slowest request across pause and kill: %v", time.Duration(slowest.Load()))
	if !strings.Contains(g.logs.String(), "redis store unavailable") {
		t.Error("the outage was not logged")
	}
}

// redisKeyLike finds the counter key holding tenant (keys embed the value length-prefixed).
func redisKeyLike(t *testing.T, rs *redisserver.Server, tenant string) string {
	t.Helper()
	out, err := rs.Do("KEYS", "*"+tenant+"*")
	if err != nil || out == "" {
		return "missing"
	}
	return strings.TrimPrefix(strings.Split(out, "\n")[0], "gatehouse:")
}

// TestRateLimitReload: counters survive reloads that keep the store config, and reloads neither
// leak Redis clients nor keep a replaced one open.
func TestRateLimitReload(t *testing.T) {
	rs := redisserver.Start(t)
	a := newEcho(t, "a")
	g := startGateway(t, rateLimitYAML(rs.URL(), "500ms", "one"), map[string]string{"A": hostPort(a)})
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	codes := func(path, tenant string, n int) string {
		s := ""
		for range n {
			code, _, _ := fire(client, g.base+path, tenant)
			s += map[int]string{200: "+", 429: "-"}[code]
		}
		return s
	}
	if got := codes("/local", "", 2) + codes("/open", "r", 3); got != "+++++" {
		t.Fatalf("before reload: %s", got)
	}
	resources := g.srv.Registry().Resources.Len()
	for i := range 5 {
		if err := g.reload(rateLimitYAML(rs.URL(), "500ms", fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, h := fire(client, g.base+"/shared", "x"); code != 200 || h.Get("X-Config") != "v4" {
		t.Fatalf("reloaded config not serving: %d %v", code, h)
	}
	// Memory limit (3 per IP) and Redis limit (5 per tenant) kept their counts.
	if got := codes("/local", "", 2); got != "+-" {
		t.Fatalf("memory counter reset by reload: %s", got)
	}
	if got := codes("/open", "r", 3); got != "++-" {
		t.Fatalf("redis counter reset by reload: %s", got)
	}
	rlWaitFor(t, func() bool { return g.srv.Registry().Resources.Len() == resources }, "shared resources back to %d", resources)
	before, err := rs.Clients()
	if err != nil {
		t.Fatal(err)
	}
	// A changed Redis config builds a new client and closes the old one once retired.
	if err := g.reload(rateLimitYAML(rs.URL(), "400ms", "v5")); err != nil {
		t.Fatal(err)
	}
	if got := codes("/shared", "y", 1); got != "+" {
		t.Fatalf("after store change: %s", got)
	}
	rlWaitFor(t, func() bool { return g.srv.Registry().Resources.Len() == resources }, "old Redis client released")
	rlWaitFor(t, func() bool { n, _ := rs.Clients(); return n <= before }, "Redis connections of the replaced client closed (had %d)", before)
	t.Logf("resources %d, redis client connections %d", resources, before)
}

func rlWaitFor(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: "+format, args...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisWrongTypeKeyFailsOnlyItsRequests: one limiter key holding another type (written
// under the prefix by something else) made a healthy Redis look down: every tenant of a
// fail_closed route got 503 for as long as that key was hit, and the log said only "redis call
// failed". Only that key's requests follow on_error now, and the log names the cause.
func TestRedisWrongTypeKeyFailsOnlyItsRequests(t *testing.T) {
	rs := redisserver.Start(t)
	a := newEcho(t, "a")
	g := startGateway(t, rateLimitYAML(rs.URL(), "500ms", "one"), map[string]string{"A": hostPort(a)})
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	if code, _, _ := fire(client, g.base+"/closed", "evil"); code != 200 {
		t.Fatalf("first request: %d", code)
	}
	key := "gatehouse:" + redisKeyLike(t, rs, "evil")
	if _, err := rs.Do("DEL", key); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Do("HSET", key, "f", "v"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := fire(client, g.base+"/closed", "evil"); code != http.StatusServiceUnavailable {
		t.Errorf("the wrong-type key's own request on a fail_closed route: %d, want 503", code)
	}
	got := ""
	for range 5 {
		code, _, _ := fire(client, g.base+"/closed", "innocent")
		got += map[int]string{200: "+", 503: "X"}[code]
	}
	if got != "+++++" {
		t.Errorf("another tenant on a healthy Redis got %q (X = 503)", got)
	}
	if logs := g.logs.String(); !strings.Contains(logs, "WRONGTYPE") {
		t.Errorf("the log does not say what failed:\n%s", logs)
	}
}
