package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/middleware"
	"github.com/gatehouse/gatehouse/internal/testutil/redisserver"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, key string
		want      string // "ip|user|consumer|route|service|headers", or "error"
	}{
		{"ip", "ip:203.0.113.7", "203.0.113.7|||||map[]"},
		{"mapped ip", "ip:::ffff:10.0.0.1", "10.0.0.1|||||map[]"},
		{"user", "user:42", "|42||||map[]"},
		{"user with plus", "user:a+b@example.com", "|a+b@example.com||||map[]"},
		{"consumer and route", "consumer:partner-a+route:orders", "||partner-a|orders||map[]"},
		{"space from an unencoded plus", "consumer:partner-a route:orders", "||partner-a|orders||map[]"},
		{"header", "header:x-tenant=acme corp", "|||||map[X-Tenant:[acme corp]]"},
		{"service", "service:users+ip:::1", "::1||||users|map[]"},
		{"no kind", "42", "error"},
		{"unknown kind", "tenant:acme", "error"},
		{"empty value", "user:", "error"},
		{"bad ip", "ip:not-an-ip", "error"},
		{"header without value", "header:X-Tenant", "error"},
		{"twice", "user:1+user:2", "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := parseKey(tc.key)
			if tc.want == "error" {
				if !errors.Is(err, ErrInvalidKey) {
					t.Fatalf("err %v, want ErrInvalidKey", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ip := ""
			if id.ip.IsValid() {
				ip = id.ip.String()
			}
			got := fmt.Sprintf("%s|%s|%s|%s|%s|%v", ip, id.user, id.consumer, id.route, id.service, id.headers)
			if got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

const inspectYAML = `version: 1
listeners: [{ name: p, address: ":1" }]
%s
rate_limits: [{ name: per-ip, key: ip, limit: 1000, per: 1h, burst: 10, store: memory }]
services:
  - name: s
    targets: [{ url: "http://127.0.0.1:1" }]
    rate_limits: [{ name: per-consumer-route, key: [consumer, route], limit: 100, per: 1h }]
routes:
  - name: orders
    match: { path: /orders }
    service: s
    plugins:
      rate_limit:
        - { name: tenant, key: "header:X-Tenant", limit: 50, per: 1h, burst: 5 }
        - { name: gold, key: user, limit: 7, per: 1h, tiers: [gold] }
  - name: users
    match: { path: /users }
    service: s
`

// inspectFixture builds both routes' middleware and the Inspector over one registry.
func inspectFixture(t *testing.T, storeYAML string) (map[string]http.Handler, *Inspector) {
	t.Helper()
	cfg, err := config.Load("t.yaml", []byte(fmt.Sprintf(inspectYAML, storeYAML)), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry{m: map[string]io.Closer{}}
	t.Cleanup(reg.close)
	deps := middleware.Deps{Acquire: reg.acquire}
	hs := map[string]http.Handler{}
	for i := range cfg.Routes {
		mw, err := New(cfg, &cfg.Routes[i], &cfg.Services[0], deps)
		if err != nil {
			t.Fatal(err)
		}
		hs[cfg.Routes[i].Name] = mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	}
	in, err := NewInspector(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return hs, in
}

// render is a State list as "name scope counter store remaining/max+burst" lines.
func render(t *testing.T, in *Inspector, key string) string {
	t.Helper()
	st, err := in.State(context.Background(), key)
	if err != nil {
		t.Fatalf("State(%q): %v", key, err)
	}
	var lines []string
	for _, s := range st {
		if s.Err != nil {
			lines = append(lines, fmt.Sprintf("%s %s %s %s error", s.Limit, s.Scope, s.Counter, s.Store))
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %s %d/%d+%d", s.Limit, s.Scope, s.Counter, s.Store, s.Remaining, s.Max, s.Burst))
	}
	return strings.Join(lines, "\n")
}

func inspectTraffic(hs map[string]http.Handler) {
	alice := &httpx.Identity{Subject: "alice", Consumer: "partner-a", Tier: "gold"}
	for range 3 {
		do(hs["orders"], call{ip: "10.0.0.1", id: alice, headers: map[string]string{"X-Tenant": "acme"}})
	}
	for range 2 {
		do(hs["users"], call{ip: "10.0.0.1", id: alice})
	}
	do(hs["orders"], call{ip: "10.0.0.2"}) // anonymous, no tenant
	// A JWT user of issuer "main" with alice's subject: counted apart from her.
	do(hs["orders"], call{ip: "10.0.0.9", id: &httpx.Identity{Subject: "alice", Issuer: "main", Tier: "gold"}})
}

// inspectCases are the answers expected after inspectTraffic; redisStore is the store of the
// limits that do not name one.
func inspectCases(redisStore string) []struct{ key, want string } {
	r := redisStore
	return []struct{ key, want string }{
		{"consumer:partner-a", `per-consumer-route service:s consumer:partner-a+route:orders ` + r + ` 97/100+0
per-consumer-route service:s consumer:partner-a+route:users ` + r + ` 98/100+0`},
		{"consumer:partner-a+route:orders", `per-consumer-route service:s consumer:partner-a+route:orders ` + r + ` 97/100+0`},
		{"user:alice", `gold route:orders user:alice ` + r + ` 4/7+0`},
		{"header:X-Tenant=acme", `tenant route:orders header:X-Tenant=acme ` + r + ` 52/50+5`},
		{"header:x-tenant=acme+user:alice+consumer:partner-a+route:orders", `per-consumer-route service:s consumer:partner-a+route:orders ` + r + ` 97/100+0
tenant route:orders header:X-Tenant=acme ` + r + ` 52/50+5
gold route:orders user:alice ` + r + ` 4/7+0`},
		// An address alone: its own limit, and the IP fallback counters of the others (the
		// anonymous request of 10.0.0.2 was counted there).
		{"ip:10.0.0.2", `per-ip global ip:10.0.0.2 memory 1009/1000+10
per-consumer-route service:s ip:10.0.0.2+route:orders ` + r + ` 99/100+0
per-consumer-route service:s ip:10.0.0.2+route:users ` + r + ` 100/100+0
tenant route:orders ip:10.0.0.2 ` + r + ` 54/50+5
gold route:orders ip:10.0.0.2 ` + r + ` 7/7+0`},
		{"ip:10.0.0.1+route:users", `per-ip global ip:10.0.0.1 memory 1005/1000+10
per-consumer-route service:s ip:10.0.0.1+route:users ` + r + ` 100/100+0`},
		{"service:other+ip:10.0.0.1", ``},
		{"user:nobody", `gold route:orders user:nobody ` + r + ` 7/7+0`},
		{"issuer:main+user:alice", `gold route:orders issuer:main+user:alice ` + r + ` 6/7+0`},
	}
}

func TestInspectorMemory(t *testing.T) {
	t.Parallel()
	hs, in := inspectFixture(t, "")
	inspectTraffic(hs)
	for _, tc := range inspectCases("memory") {
		for range 2 { // reading twice: nothing is consumed
			if got := render(t, in, tc.key); got != tc.want {
				t.Fatalf("%s:\n%s\nwant\n%s", tc.key, got, tc.want)
			}
		}
	}
	// One more request moves exactly the counters it should.
	do(hs["orders"], call{ip: "10.0.0.9", headers: map[string]string{"X-Tenant": "acme"}})
	if got := render(t, in, "header:X-Tenant=acme"); got != "tenant route:orders header:X-Tenant=acme memory 51/50+5" {
		t.Fatalf("after one more request: %s", got)
	}
	st, _ := in.State(context.Background(), "header:X-Tenant=acme")
	if st[0].Window != time.Hour || st[0].ResetAfter < 4*72*time.Second-time.Second || st[0].ResetAfter > 4*72*time.Second || st[0].Tiers != nil {
		t.Fatalf("state %+v", st[0])
	}
	st, _ = in.State(context.Background(), "user:alice")
	if !slices.Equal(st[0].Tiers, []string{"gold"}) {
		t.Fatalf("tiers %v", st[0].Tiers)
	}
	for _, bad := range []string{"tenant:acme", "issuer:main"} { // an issuer names whose user
		if _, err := in.State(context.Background(), bad); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("bad key %q: %v", bad, err)
		}
	}
}

func TestInspectorRedis(t *testing.T) {
	t.Parallel()
	rs := redisserver.Start(t)
	hs, in := inspectFixture(t, fmt.Sprintf("store: { redis: { url: %q, timeout: 500ms } }", rs.URL()))
	inspectTraffic(hs)
	for _, tc := range inspectCases("redis") {
		for range 2 {
			if got := render(t, in, tc.key); got != tc.want {
				t.Fatalf("%s:\n%s\nwant\n%s", tc.key, got, tc.want)
			}
		}
	}
	// Redis down: each Redis limit reports its error; the memory limit still answers.
	rs.Kill()
	want := `per-ip global ip:10.0.0.1 memory 1005/1000+10
per-consumer-route service:s ip:10.0.0.1+route:users redis error`
	if got := render(t, in, "ip:10.0.0.1+route:users"); got != want {
		t.Fatalf("with Redis down:\n%s\nwant\n%s", got, want)
	}
}
