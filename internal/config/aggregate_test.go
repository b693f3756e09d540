package config

import (
	"strings"
	"testing"
	"time"
)

// TestLoadFullConfigAggregate asserts the aggregate routes of testdata/full.yaml (which sets
// every field).
func TestLoadFullConfigAggregate(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "full.yaml", readTestdata(t, "full.yaml"), noEnv)
	var page, mine *Route
	for i := range c.Routes {
		switch c.Routes[i].Name {
		case "product-page":
			page = &c.Routes[i]
		case "my-orders":
			mine = &c.Routes[i]
		}
	}
	if page == nil || mine == nil || page.Aggregate == nil || mine.Aggregate == nil {
		t.Fatal("aggregate routes of full.yaml not loaded")
	}
	a := page.Aggregate
	if a.Timeout.Duration != 3*time.Second || a.MaxResponseBytes.Bytes != 256<<10 || strings.Join(a.ForwardHeaders, ",") != "Accept-Language" ||
		a.DegradedField != "partial" || a.DefaultProfile != "web" || len(a.Calls) != 3 || a.Response.Limit["product.reviews"] != 10 {
		t.Errorf("aggregate: %+v", a)
	}
	p := a.Calls[0]
	if p.Name != "product" || p.Service != "users" || p.Method != "GET" || p.Path != "/products/{id}?view={query.view|full}" ||
		p.Query["fields"] != "{header.X-Fields|all}" || p.Headers["X-Tenant"] != "{claims.org.id}" || p.Timeout.Duration != time.Second ||
		!p.Required || p.Extract != "data" || strings.Join(p.Shape.Select, ",") != "id,name,price,images,review_ids" ||
		p.Shape.Omit[0] != "images.raw" || p.Shape.Rename["full_description"] != "description" || p.Shape.Limit["images"] != 5 {
		t.Errorf("call product: %+v", p)
	}
	r := a.Calls[1]
	if string(r.Default.JSON) != "[]" || r.Key != "product.reviews" || r.Timeout.Duration != 500*time.Millisecond || r.Required {
		t.Errorf("call reviews: %+v", r)
	}
	if pr := a.Calls[2]; string(pr.Default.JSON) != "{}" || !pr.Merge || pr.Timeout.Duration != 3*time.Second {
		t.Errorf("call pricing (timeout defaults to the aggregate's): %+v", pr)
	}
	if deps := AggregateDeps(a); len(deps[0]) != 0 || strings.Join(deps[1], ",") != "product" || len(deps[2]) != 0 {
		t.Errorf("deps = %v", deps)
	}
	m := a.Profiles[0]
	if m.Name != "mobile" || m.Match.Headers["X-Client-Type"].Exact != "mobile" || !m.Match.Query["app"].Present ||
		m.Match.Hosts[0] != "m.example.com" || m.Match.Listeners[0] != "public" || m.Skip[0] != "reviews" ||
		m.Calls["product"].Rename["images[0].thumbnail_url"] != "thumbnail" || m.Response == nil || m.Response.Omit[0] != "currency" {
		t.Errorf("profile mobile: %+v", m)
	}
	if c := mine.Aggregate.Calls[0]; !c.Passthrough || c.Path != "/users/{claims.sub}/orders" {
		t.Errorf("passthrough call: %+v", c)
	}
}

func TestAggregateDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := Load("gw.yaml", []byte(aggBase+`    aggregate:
      calls:
        - { name: a, service: s, path: /a }
        - { name: b, service: s, path: /b, timeout: 1m }
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Routes[0].Aggregate
	if a.Timeout.Duration != 10*time.Second || a.MaxResponseBytes.Bytes != 1<<20 || a.DegradedField != "_degraded" {
		t.Errorf("aggregate defaults: %+v", a)
	}
	if c := a.Calls[0]; c.Method != "GET" || c.Timeout.Duration != 10*time.Second || c.Required || c.Default.JSON != nil {
		t.Errorf("call defaults: %+v", c)
	}
	if c := a.Calls[1]; c.Timeout.Duration != 10*time.Second {
		t.Errorf("a call timeout over the aggregate's is capped to it: %v", c.Timeout.Duration)
	}
}

const aggBase = `version: 1
listeners: [{ name: public, address: ":8080" }]
services:
  - name: s
    targets: [{ url: "http://10.0.0.1:80" }]
routes:
  - name: r
    match: { path: "/p/{id}" }
`

func TestAggregateValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"no calls", "    aggregate: { calls: [] }", []string{"routes[0].aggregate.calls: at least one call is required"}},
		{"service and aggregate", "    service: s\n    aggregate: { calls: [{ name: a, service: s, path: /a }] }",
			[]string{"routes[0].service: cannot be combined with aggregate"}},
		{"proxy-only route fields", "    rewrite: /x\n    strip_prefix: /p\n    preserve_host: true\n    timeouts: { request: 1s }\n    aggregate: { calls: [{ name: a, service: s, path: /a }] }",
			[]string{"routes[0].strip_prefix: is not used by an aggregate route", "routes[0].preserve_host: is not used by an aggregate route",
				"routes[0].timeouts: is not used by an aggregate route"}},
		{"call basics", `    aggregate:
      timeout: 0s
      max_response_bytes: 0
      forward_headers: ["Bad Header"]
      degraded_field: a.b
      calls:
        - { name: query, service: nope, method: "G T", path: users }
        - { name: a, service: s, path: /a, required: true, default: [] }
        - { name: a, service: s, path: /b, key: "x[0]" }
        - { service: s, path: /c, merge: true, key: x, default: [] }`,
			[]string{"routes[0].aggregate.timeout: must be greater than 0",
				"routes[0].aggregate.max_response_bytes: must be greater than 0",
				`routes[0].aggregate.forward_headers[0]: "Bad Header" is not a valid header name`,
				`routes[0].aggregate.degraded_field: "a.b" must be a plain field name`,
				`routes[0].aggregate.calls[0].name: "query" must be letters, digits, _ or - and not one of query, header, claims, identity`,
				`routes[0].aggregate.calls[0].service: unknown service "nope"`,
				`routes[0].aggregate.calls[0].method: "G T" is not a valid HTTP method`,
				`routes[0].aggregate.calls[0].path: "users" must start with /`,
				"routes[0].aggregate.calls[1].default: a required call has no default",
				`routes[0].aggregate.calls[2].name: duplicate call name "a" (also at index 1)`,
				`routes[0].aggregate.calls[2].key: "x[0]" must be a field path without brackets`,
				"routes[0].aggregate.calls[3].name: is required",
				"routes[0].aggregate.calls[3].key: cannot be combined with merge",
				"routes[0].aggregate.calls[3].default: must be an object or null when merge is set"}},
		{"templates", `    aggregate:
      calls:
        - { name: a, service: s, path: "/a/{nope}/{**}", headers: { X-B: "{identity.password}" } }
        - { name: b, service: s, path: "/b/{b.x}/{c.y}", query: { q: "{header.Bad Name}" }, headers: { X-A: "{a." } }`,
			[]string{"routes[0].aggregate.calls[0].path: {nope} is not a parameter of the route's path",
				"routes[0].aggregate.calls[0].path: {**} needs a route path ending in /**",
				`unknown identity field "password"`,
				"routes[0].aggregate.calls[1].path: {b.x}: a call cannot use its own result",
				`routes[0].aggregate.calls[1].path: {c.y}: no call named "c"`,
				`routes[0].aggregate.calls[1].query.q: {header.Bad Name}: "Bad Name" is not a valid header name`,
				"routes[0].aggregate.calls[1].headers.X-A: unbalanced {"}},
		{"cycle", `    aggregate:
      calls:
        - { name: a, service: s, path: "/a/{c.x}" }
        - { name: b, service: s, path: "/b/{a.x}" }
        - { name: c, service: s, path: "/c/{b.x}" }`,
			[]string{"routes[0].aggregate.calls: calls wait for each other in a cycle: a -> c -> b -> a"}},
		{"shapes", `    aggregate:
      calls:
        - { name: a, service: s, path: /a, extract: "x..y", shape: { select: ["a[x]"], omit: ["."], rename: { b: "c[]" }, limit: { d: -1 } } }
      response: { select: [".."] }`,
			[]string{"routes[0].aggregate.calls[0].extract: path \"x..y\": empty field name",
				"routes[0].aggregate.calls[0].shape.rename.b: destination \"c[]\" must be a field path without brackets",
				"routes[0].aggregate.response.select[0]:"}},
		{"passthrough", `    aggregate:
      calls:
        - { name: a, service: s, path: /a, passthrough: true }
        - { name: b, service: s, path: /b }`,
			[]string{"routes[0].aggregate.calls[0].passthrough: needs an aggregate of exactly one call"}},
		{"passthrough with shaping", `    aggregate:
      calls:
        - { name: a, service: s, path: /a, passthrough: true, extract: data }`,
			[]string{"routes[0].aggregate.calls[0].passthrough: streams the response untouched"}},
		{"profiles", `    aggregate:
      default_profile: nope
      calls:
        - { name: a, service: s, path: /a }
        - { name: b, service: s, path: "/b/{a.id}" }
      profiles:
        - { name: m, match: {}, skip: [a, zz], calls: { zz: {} } }
        - { name: m, match: { headers: { X-C: { regex: "(" } }, listeners: [nope], hosts: ["a*.b"] } }`,
			[]string{`routes[0].aggregate.default_profile: unknown profile "nope"`,
				"routes[0].aggregate.profiles[0].match: needs at least one condition",
				`routes[0].aggregate.profiles[0].skip[1]: unknown call "zz"`,
				`routes[0].aggregate.profiles[0].skip: call "b" needs "a": skip both or neither`,
				`routes[0].aggregate.profiles[0].calls.zz: unknown call "zz"`,
				`routes[0].aggregate.profiles[1].name: duplicate profile name "m"`,
				"routes[0].aggregate.profiles[1].match.headers.X-C.regex: invalid regular expression",
				`routes[0].aggregate.profiles[1].match.listeners[0]: unknown listener "nope"`,
				`routes[0].aggregate.profiles[1].match.hosts[0]: "a*.b" is not a host name`}},
		{"unknown field", "    aggregate: { calls: [{ name: a, service: s, path: /a, requird: true }] }", []string{`unknown field "requird"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("gw.yaml", []byte(aggBase+tc.yaml+"\n"), nil)
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestAggregateErrorsAreLocated(t *testing.T) {
	t.Parallel()
	_, err := Load("gw.yaml", []byte(aggBase+"    aggregate:\n      calls:\n        - { name: a, service: nope, path: /a }\n"), nil)
	checkErrors(t, err, []wantErr{{11, 22, "routes[0].aggregate.calls[0].service", `unknown service "nope"`}})
}
