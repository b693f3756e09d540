package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCacheDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "d.yaml", []byte(base+route+"    plugins: { cache: {} }\n"), noEnv)
	if c.Cache.Store != "memory" || c.Cache.MaxBytes.Bytes != 64<<20 || c.Cache.Header != "X-Cache" {
		t.Fatalf("cache defaults %+v", c.Cache)
	}
	p := c.Routes[0].Plugins.Cache
	if p.TTL.Duration != time.Minute || p.MaxObjectBytes.Bytes != 1<<20 || p.TagHeader != "Surrogate-Key" ||
		p.LockTimeout.Duration != 5*time.Second || p.KeepStale.Duration != 5*time.Minute ||
		!*p.Key.Host || !*p.Key.Query || p.Key.User || !reflect.DeepEqual(p.Statuses, DefaultCacheStatuses) {
		t.Fatalf("plugin defaults %+v", p)
	}
	c = mustLoad(t, "z.yaml", []byte(base+route+"    plugins: { cache: { ttl: 0s, lock_timeout: 0s, key: { host: false } } }\n"), noEnv)
	if p := c.Routes[0].Plugins.Cache; p.TTL.Duration != 0 || p.LockTimeout.Duration != 0 || *p.Key.Host || !*p.Key.Query {
		t.Fatalf("explicit zeros were overridden: %+v", p)
	}
	if c := mustLoad(t, "n.yaml", []byte(base+route), noEnv); c.Routes[0].Plugins.Cache != nil {
		t.Fatal("a route without plugins.cache got one")
	}
}

func TestCacheValidation(t *testing.T) {
	t.Parallel()
	pc := func(p string) string { return base + route + "    plugins: { cache: " + p + " }\n" }
	cases := []struct{ name, yaml, want string }{
		{"redis without store", base + "cache: { store: redis }\n", "cache.store: is redis but store.redis is not configured"},
		{"bad store", base + "cache: { store: disk }\n", `cache.store: "disk" must be memory or redis`},
		{"tiny memory", base + "cache: { max_bytes: 1KiB }\n", "cache.max_bytes: must be at least 1MiB"},
		{"bad header", base + "cache: { header: \"X Cache\" }\n", `cache.header: "X Cache" is not a valid header name`},
		{"ttl too long", pc("{ ttl: 9000h }"), "routes[0].plugins.cache.ttl: 9000h0m0s is longer than a year"},
		{"empty statuses", pc("{ statuses: [] }"), "plugins.cache.statuses: must list at least one status"},
		{"206", pc("{ statuses: [200, 206] }"), "plugins.cache.statuses[1]: 206 is not a storable status"},
		{"304", pc("{ statuses: [304] }"), "statuses[0]: 304 is not a storable status"},
		{"1xx", pc("{ statuses: [101] }"), "statuses[0]: 101 is not a storable status"},
		{"zero object", pc("{ max_object_bytes: 0 }"), "max_object_bytes: must be at least 1 byte"},
		{"object beyond memory", pc("{ max_object_bytes: 20MiB }"), "max_object_bytes: 20971520 is too large"},
		{"bad tag header", pc("{ tag_header: \"a b\" }"), `tag_header: "a b" is not a valid header name`},
		{"long lock", pc("{ lock_timeout: 2m }"), "lock_timeout: 2m0s is longer than a minute"},
		{"long keep", pc("{ keep_stale: 200h }"), "keep_stale: 200h0m0s is longer than a week"},
		{"bad key header", pc("{ key: { headers: [\"a:b\"] } }"), `key.headers[0]: "a:b" is not a valid header name`},
		{"repeated key header", pc("{ key: { headers: [X-A, x-a] } }"), `key.headers[1]: "x-a" is repeated`},
		{"credential key header", pc("{ key: { headers: [Authorization] } }"), "use key.user for per-user caching"},
		{"unknown field", pc("{ ttl_seconds: 5 }"), `unknown field "ttl_seconds"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("c.yaml", []byte(tc.yaml), noEnv)
			if err == nil {
				t.Fatalf("loaded; want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
	// Valid edge values load.
	mustLoad(t, "ok.yaml", []byte(base+"store: { redis: { url: \"redis://127.0.0.1:6379\" } }\ncache: { store: redis, header: \"-\" }\n"+route+
		"    plugins: { cache: { max_object_bytes: 32MiB, statuses: [200, 500], key: { headers: [Accept-Language], user: true } } }\n"), noEnv)
}
