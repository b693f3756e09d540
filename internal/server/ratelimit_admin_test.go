package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/middleware/auth"
	"github.com/gatehouse/gatehouse/internal/testutil/redisserver"
)

const partnerKey = "gh_test-partner-a-key-0123456789abcdef"

func rateLimitStateYAML(storeYAML string) string {
	return `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
admin: { address: "127.0.0.1:0", token: "${ADMIN_TOKEN}" }
server: { access_log: { enabled: false } }
` + storeYAML + `
auth:
  consumers: [{ name: partner-a, tier: gold, keys: ["${KEY_HASH}"] }]
rate_limits: [{ name: per-ip, key: ip, limit: 1000, per: 1h, burst: 10, store: memory }]
services:
  - name: a
    targets: [{ url: "http://${A}" }]
    rate_limits: [{ name: per-consumer-route, key: [consumer, route], limit: 100, per: 1h }]
routes:
  - name: orders
    match: { path: /orders }
    service: a
    plugins:
      api_key: { header: X-API-Key }
      rate_limit:
        - { name: tenant, key: "header:X-Tenant", limit: 50, per: 1h, burst: 5 }
        - { name: gold, key: consumer, limit: 7, per: 1h, tiers: [gold] }
  - name: users
    match: { path: /users }
    service: a
    plugins:
      api_key: { header: X-API-Key }
`
}

// limitLine renders one entry of the admin answer as "limit scope counter store remaining",
// or "... error" when the store could not be read.
func limitLines(t *testing.T, body string) string {
	t.Helper()
	var ans struct {
		Limits []map[string]any `json:"limits"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatalf("answer %s: %v", body, err)
	}
	var lines []string
	for _, l := range ans.Limits {
		if e, ok := l["error"]; ok {
			if _, has := l["remaining"]; has || e == "" {
				t.Fatalf("an entry with an error also claims a count: %v", l)
			}
			lines = append(lines, fmt.Sprintf("%s %s %s %s error", l["limit"], l["scope"], l["counter"], l["store"]))
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %s %v", l["limit"], l["scope"], l["counter"], l["store"], l["remaining"]))
	}
	return strings.Join(lines, "\n")
}

// TestAdminRateLimitState makes known traffic through the real gateway, with the memory store
// and with Redis, and reads exact remaining counts from GET /api/v1/ratelimit, which itself
// never counts.
func TestAdminRateLimitState(t *testing.T) {
	for _, mode := range []string{"memory", "redis"} {
		t.Run(mode, func(t *testing.T) {
			storeYAML := ""
			var rs *redisserver.Server
			if mode == "redis" {
				rs = redisserver.Start(t)
				storeYAML = fmt.Sprintf("store: { redis: { url: %q, timeout: 500ms } }", rs.URL())
			}
			a := newEcho(t, "a")
			g := startObsGateway(t, rateLimitStateYAML(storeYAML), map[string]string{
				"A": hostPort(a), "ADMIN_TOKEN": adminToken, "KEY_HASH": auth.HashKey(partnerKey)}, nil)
			send := func(path string, n int, hdr ...string) {
				for range n {
					if resp, body := g.get(t, path, hdr...); resp.StatusCode != 200 {
						t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
					}
				}
			}
			send("/orders", 3, "X-API-Key", partnerKey, "X-Tenant", "acme")
			send("/users", 2, "X-API-Key", partnerKey)
			ask := func(key string) string {
				t.Helper()
				resp, body := g.admin(t, "GET", "/api/v1/ratelimit?key="+url.QueryEscape(key), "")
				if resp.StatusCode != 200 {
					t.Fatalf("%s: %d %s", key, resp.StatusCode, body)
				}
				return limitLines(t, body)
			}
			m := mode
			for _, tc := range []struct{ key, want string }{
				{"consumer:partner-a", "per-consumer-route service:a consumer:partner-a+route:orders " + m + " 97\n" +
					"per-consumer-route service:a consumer:partner-a+route:users " + m + " 98\n" +
					"gold route:orders consumer:partner-a " + m + " 4"},
				{"consumer:partner-a+route:orders", "per-consumer-route service:a consumer:partner-a+route:orders " + m + " 97\n" +
					"gold route:orders consumer:partner-a " + m + " 4"},
				{"header:X-Tenant=acme", "tenant route:orders header:X-Tenant=acme " + m + " 52"},
				{"ip:127.0.0.1+route:users", "per-ip global ip:127.0.0.1 memory 1005\n" +
					"per-consumer-route service:a ip:127.0.0.1+route:users " + m + " 100"},
			} {
				for range 2 { // asking twice: inspection consumes nothing
					if got := ask(tc.key); got != tc.want {
						t.Fatalf("%s:\n%s\nwant\n%s", tc.key, got, tc.want)
					}
				}
			}
			// The JSON carries the limit's figures in seconds.
			_, body := g.admin(t, "GET", "/api/v1/ratelimit?key=header:X-Tenant%3Dacme", "")
			lim := decodeJSON(t, body)["limits"].([]any)[0].(map[string]any)
			if lim["max"] != 50.0 || lim["burst"] != 5.0 || lim["window_seconds"] != 3600.0 ||
				// 3 requests took 3×72 s of budget; allow 10 s for a slow (-race, loaded) run.
				lim["reset_after_seconds"].(float64) <= 3*72-10 || lim["reset_after_seconds"].(float64) > 3*72 {
				t.Fatalf("tenant entry %v", lim)
			}
			// An unencoded "+" arrives as a space and still separates parts.
			if got := ask("consumer:partner-a route:orders"); !strings.HasPrefix(got, "per-consumer-route service:a consumer:partner-a+route:orders "+m+" 97") {
				t.Fatalf("space-separated key: %s", got)
			}
			resp, body := g.admin(t, "GET", "/api/v1/ratelimit?key=tenant:acme", "")
			wantAdminError(t, resp, body, 400, "bad_request")

			// Two more requests move exactly the tenant counter by two.
			send("/orders", 2, "X-API-Key", partnerKey, "X-Tenant", "acme")
			if got := ask("header:X-Tenant=acme"); got != "tenant route:orders header:X-Tenant=acme "+m+" 50" {
				t.Fatalf("after two more: %s", got)
			}
			if rs == nil {
				return
			}
			// Redis down: 200, each Redis limit carries its error, the memory limit its count.
			rs.Kill()
			want := "per-ip global ip:127.0.0.1 memory 1003\nper-consumer-route service:a ip:127.0.0.1+route:users redis error"
			start := time.Now()
			if got := ask("ip:127.0.0.1+route:users"); got != want {
				t.Fatalf("Redis down:\n%s\nwant\n%s", got, want)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("inspection with Redis down took %v", d)
			}
		})
	}
}

// TestAdminRateLimitStateFollowsReload: the endpoint reads the limits of the Runtime serving
// now, and counters kept by a reload are still found.
func TestAdminRateLimitStateFollowsReload(t *testing.T) {
	a := newEcho(t, "a")
	g := startObsGateway(t, rateLimitStateYAML(""), map[string]string{
		"A": hostPort(a), "ADMIN_TOKEN": adminToken, "KEY_HASH": auth.HashKey(partnerKey)}, nil)
	if resp, _ := g.get(t, "/orders", "X-API-Key", partnerKey, "X-Tenant", "acme"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	next := strings.Replace(rateLimitStateYAML(""), "limit: 50, per: 1h, burst: 5", "limit: 50, per: 1h, burst: 20", 1)
	next = strings.Replace(next, "        - { name: gold, key: consumer, limit: 7, per: 1h, tiers: [gold] }\n", "", 1)
	if err := g.reload(next); err != nil {
		t.Fatal(err)
	}
	resp, body := g.admin(t, "GET", "/api/v1/ratelimit?key=consumer:partner-a%2Bheader:X-Tenant%3Dacme%2Broute:orders", "")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	// Same name and scope: the tenant counter survived (burst 20 now: 70 - 1), gold is gone.
	want := "per-consumer-route service:a consumer:partner-a+route:orders memory 99\ntenant route:orders header:X-Tenant=acme memory 69"
	if got := limitLines(t, body); got != want {
		t.Fatalf("after reload:\n%s\nwant\n%s", got, want)
	}
}
