package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// rateLimitFull sets every rate-limit field (a non-default value each); it is the snippet to
// merge into testdata/full.yaml.
const rateLimitFull = `version: 1
listeners: [{ name: main, address: ":8080" }]
store:
  memory: { max_keys: 5000 }
  redis:
    addrs: ["10.0.0.1:26379", "10.0.0.2:26379"]
    master_name: mymaster
    username: gw
    password: secret
    db: 2
    tls: true
    timeout: 20ms
    retry_after_error: 2s
    pool_size: 16
    key_prefix: "gh:"
rate_limits:
  - { name: per-ip, key: ip, limit: 100, per: 1s, burst: 50, store: memory, headers: none }
services:
  - name: users
    targets: [{ url: "http://127.0.0.1:8081" }]
    rate_limits: [{ key: route, limit: 1000, per: 1s }]
routes:
  - name: r
    match: { path: /users/** }
    service: users
    plugins:
      rate_limit:
        - { key: user, limit: 100, per: 1m, store: redis, on_error: fail_closed, headers: legacy }
        - { key: "header:X-Tenant", limit: 10, per: 1s }
        - { key: [consumer, route], limit: 5, per: 1s, tiers: [free, anonymous] }
      concurrency_limit: { key: consumer, max: 10 }
`

func TestRateLimitConfigFull(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "rl.yaml", []byte(rateLimitFull), noEnv)
	r := c.Store.Redis
	rl := c.Routes[0].Plugins.RateLimit
	checks := []struct {
		name      string
		got, want any
	}{
		{"max_keys", c.Store.Memory.MaxKeys, 5000},
		{"addrs", r.Addrs, []string{"10.0.0.1:26379", "10.0.0.2:26379"}},
		{"master_name", r.MasterName, "mymaster"},
		{"username/password/db/tls", []any{r.Username, r.Password, r.DB, r.TLS}, []any{"gw", "secret", 2, true}},
		{"timeout", r.Timeout.Duration, 20 * time.Millisecond},
		{"retry_after_error", r.RetryAfterError.Duration, 2 * time.Second},
		{"pool_size", r.PoolSize, 16},
		{"key_prefix", r.KeyPrefix, "gh:"},
		{"global", c.RateLimits[0], RateLimit{Name: "per-ip", Key: RateLimitKey{"ip"}, Limit: 100, Per: Dur(time.Second),
			Burst: 50, Store: "memory", OnError: "fail_open", Headers: "none"}},
		{"service default name and store", []string{c.Services[0].RateLimits[0].Name, c.Services[0].RateLimits[0].Store}, []string{"route", "redis"}},
		{"route user", []string{rl[0].Name, rl[0].Store, rl[0].OnError, rl[0].Headers}, []string{"user", "redis", "fail_closed", "legacy"}},
		{"header key", rl[1].Key, RateLimitKey{"header:X-Tenant"}},
		{"combined key name", rl[2].Name, "consumer+route"},
		{"tiers", rl[2].Tiers, []string{"free", "anonymous"}},
		{"concurrency", *c.Routes[0].Plugins.ConcurrencyLimit, ConcurrencyLimit{Key: RateLimitKey{"consumer"}, Max: 10}},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
}

func TestRateLimitDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "d.yaml", []byte(base+route+`    plugins:
      rate_limit: [{ key: ip, limit: 1, per: 1h }]
      concurrency_limit: { max: 3 }
`), noEnv)
	if c.Store.Memory.MaxKeys != 1_000_000 || c.Store.Redis != nil {
		t.Fatalf("store defaults %+v", c.Store)
	}
	l := c.Routes[0].Plugins.RateLimit[0]
	if l.Name != "ip" || l.Store != "memory" || l.OnError != "fail_open" || l.Headers != "standard" || l.Burst != 0 {
		t.Fatalf("limit defaults %+v", l)
	}
	if k := c.Routes[0].Plugins.ConcurrencyLimit.Key; !reflect.DeepEqual(k, RateLimitKey{"route"}) {
		t.Fatalf("concurrency key default %v", k)
	}
	c = mustLoad(t, "r.yaml", []byte(base+"store: { redis: { url: \"redis://127.0.0.1:6379/1\" } }\nrate_limits: [{ key: ip, limit: 1, per: 1s }]\n"), noEnv)
	if r := c.Store.Redis; r.Timeout.Duration != 50*time.Millisecond || r.RetryAfterError.Duration != time.Second || r.KeyPrefix != "gatehouse:" {
		t.Fatalf("redis defaults %+v", r)
	}
	if c.RateLimits[0].Store != "redis" {
		t.Fatalf("store default with redis configured: %q", c.RateLimits[0].Store)
	}
}

func TestRateLimitValidation(t *testing.T) {
	t.Parallel()
	rl := func(limits string) string { return base + "rate_limits:\n" + limits }
	cases := []struct{ name, yaml, want string }{
		{"missing key", rl("  - { limit: 1, per: 1s }\n"), "rate_limits[0].key: is required"},
		{"bad key", rl("  - { key: cookie, limit: 1, per: 1s }\n"), `rate_limits[0].key: "cookie" must be ip, user`},
		{"bad header", rl("  - { key: \"header:X Y\", limit: 1, per: 1s }\n"), `"X Y" is not a valid header name`},
		{"repeated part", rl("  - { key: [ip, ip], limit: 1, per: 1s }\n"), `rate_limits[0].key[1]: "ip" is repeated`},
		{"key not a string", rl("  - { key: { a: b }, limit: 1, per: 1s }\n"), "expected a key such as ip"},
		{"zero limit", rl("  - { key: ip, limit: 0, per: 1s }\n"), "rate_limits[0].limit: must be at least 1"},
		{"huge limit", rl("  - { key: ip, limit: 2000000000, per: 1s }\n"), "at most 1000000000"},
		{"missing per", rl("  - { key: ip, limit: 1 }\n"), "rate_limits[0].per: is required"},
		{"sub-second per", rl("  - { key: ip, limit: 1, per: 500ms }\n"), "whole number of seconds"},
		{"fractional per", rl("  - { key: ip, limit: 1, per: 1500ms }\n"), "whole number of seconds"},
		{"negative burst", rl("  - { key: ip, limit: 1, per: 1s, burst: -1 }\n"), "burst: must not be negative"},
		{"duplicate name", rl("  - { key: ip, limit: 1, per: 1s }\n  - { key: ip, limit: 5, per: 1m }\n"), `rate_limits[1].name: "ip" is also the name of rate_limits[0]`},
		{"bad name", rl("  - { name: \"a\\\"b\", key: ip, limit: 1, per: 1s }\n"), "printable ASCII"},
		{"empty tier", rl("  - { key: ip, limit: 1, per: 1s, tiers: [\"\"] }\n"), "tiers[0]: must not be empty"},
		{"redis without store", rl("  - { key: ip, limit: 1, per: 1s, store: redis }\n"), "store: is redis but store.redis is not configured"},
		{"bad store", rl("  - { key: ip, limit: 1, per: 1s, store: disk }\n"), `"disk" must be memory or redis`},
		{"bad on_error", rl("  - { key: ip, limit: 1, per: 1s, on_error: ignore }\n"), `"ignore" must be fail_open or fail_closed`},
		{"bad headers", rl("  - { key: ip, limit: 1, per: 1s, headers: all }\n"), `"all" must be standard, legacy or none`},
		{"service list located", base[:len(base)-1] + "\n    rate_limits: [{ key: ip, limit: 0, per: 1s }]\n", "services[0].rate_limits[0].limit: must be at least 1"},
		{"route list located", base + route + "    plugins: { rate_limit: [{ key: bogus, limit: 1, per: 1s }] }\n", `routes[0].plugins.rate_limit[0].key: "bogus"`},
		{"concurrency max", base + route + "    plugins: { concurrency_limit: { key: ip } }\n", "routes[0].plugins.concurrency_limit.max: must be at least 1"},
		{"concurrency key", base + route + "    plugins: { concurrency_limit: { key: nope, max: 1 } }\n", `concurrency_limit.key: "nope"`},
		{"max_keys", base + "store: { memory: { max_keys: -1 } }\n", "store.memory.max_keys: must be at least 1"},
		{"redis nothing", base + "store: { redis: { timeout: 1s } }\n", "store.redis: give url or addrs"},
		{"redis both", base + "store: { redis: { url: \"redis://a:1\", addrs: [\"b:1\"] } }\n", "give url or addrs, not both"},
		{"redis bad url hides secret", base + "store: { redis: { url: \"http://u:hunter2@a:1\" } }\n", "must be redis://host:port"},
		{"redis url with addrs fields", base + "store: { redis: { url: \"redis://a:1\", db: 3 } }\n", "go with addrs"},
		{"redis bad addr", base + "store: { redis: { addrs: [\"nohost\"] } }\n", `store.redis.addrs[0]: "nohost" is not host:port`},
		{"sentinel and cluster", base + "store: { redis: { addrs: [\"a:1\"], master_name: m, cluster: true } }\n", "cannot be combined with master_name"},
		{"cluster db", base + "store: { redis: { addrs: [\"a:1\", \"b:1\"], db: 1 } }\n", "only database 0"},
		{"zero timeout", base + "store: { redis: { addrs: [\"a:1\"], timeout: 0s } }\n", "store.redis.timeout: must be positive"},
		{"negative pool", base + "store: { redis: { addrs: [\"a:1\"], pool_size: -1 } }\n", "store.redis.pool_size: must not be negative"},
		{"unknown field", rl("  - { key: ip, limit: 1, per: 1s, window: 1s }\n"), `unknown field "window"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("rl.yaml", []byte(tc.yaml), noEnv)
			if err == nil {
				t.Fatalf("loaded; want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the URL's password: %v", err)
			}
			if !strings.Contains(err.Error(), "rl.yaml:") {
				t.Fatalf("error is not located: %v", err)
			}
		})
	}
}
