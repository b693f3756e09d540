package router

import (
	"errors"
	"flag"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func exact(name, value string) Condition {
	return Condition{Name: name, Kind: MatchExact, Value: value}
}
func present(name string) Condition { return Condition{Name: name, Kind: MatchPresent} }

// realisticSpecs is a gateway-sized table: hosts, wildcards, params, "**",
// header versioning and query conditions.
func realisticSpecs() []Spec {
	const api = "api.example.com"
	return []Spec{
		{Name: "root", Path: "/", Methods: []string{"GET"}},
		{Name: "health", Path: "/healthz", Methods: []string{"GET"}},
		{Name: "users-list", Hosts: []string{api}, Path: "/api/v1/users", Methods: []string{"GET"}},
		{Name: "users-create", Hosts: []string{api}, Path: "/api/v1/users", Methods: []string{"POST"}},
		{Name: "user-get", Hosts: []string{api}, Path: "/api/v1/users/{id}", Methods: []string{"GET"}},
		{Name: "user-update", Hosts: []string{api}, Path: "/api/v1/users/{id}", Methods: []string{"put", "PATCH"}},
		{Name: "user-v2", Hosts: []string{api}, Path: "/api/v1/users/{id}", Methods: []string{"GET"}, Headers: []Condition{exact("accept-version", "v2")}},
		{Name: "user-v1", Hosts: []string{api}, Path: "/api/v1/users/{id}", Methods: []string{"GET"}, Headers: []Condition{exact("Accept-Version", "v1")}},
		{Name: "users-rest", Hosts: []string{api}, Path: "/api/v1/users/**"},
		{Name: "user-me", Hosts: []string{api}, Path: "/api/v1/users/me", Methods: []string{"GET"}},
		{Name: "user-posts", Hosts: []string{api}, Path: "/api/v1/users/{id}/posts/{post}", Methods: []string{"GET"}},
		{Name: "user-avatar", Hosts: []string{api}, Path: "/api/v1/users/{id}/avatar", Methods: []string{"GET", "PUT"}},
		{Name: "orders", Hosts: []string{api}, Path: "/api/v1/orders", Methods: []string{"GET", "POST"}},
		{Name: "order", Hosts: []string{api}, Path: "/api/v1/orders/{orderID}", Methods: []string{"GET", "DELETE"}},
		{Name: "order-items", Hosts: []string{api}, Path: "/api/v1/orders/{orderID}/items/**", Methods: []string{"GET"}},
		{Name: "search-beta", Hosts: []string{api}, Path: "/api/v1/search", Methods: []string{"GET"}, Query: []Condition{exact("beta", "1")}},
		{Name: "search", Hosts: []string{api}, Path: "/api/v1/search", Methods: []string{"GET"}},
		{Name: "search-fmt", Hosts: []string{api}, Path: "/api/v1/search", Methods: []string{"GET"},
			Query: []Condition{{Name: "format", Kind: MatchRegex, Regex: regexp.MustCompile(`^(json|xml)$`)}}},
		{Name: "items", Hosts: []string{api}, Path: "/api/v2/items", Methods: []string{"GET"}},
		{Name: "item", Hosts: []string{api}, Path: "/api/v2/items/{id}", Methods: []string{"GET"}},
		{Name: "item-reviews", Hosts: []string{api}, Path: "/api/v2/items/{id}/reviews", Methods: []string{"GET", "POST"}},
		{Name: "cart-item", Hosts: []string{api}, Path: "/api/v2/carts/{cart}/items/{item}", Methods: []string{"PUT", "DELETE"}},
		{Name: "checkout", Hosts: []string{api}, Path: "/api/v2/checkout", Methods: []string{"POST"}},
		{Name: "refund", Hosts: []string{api}, Path: "/api/v2/payments/{id}/refund", Methods: []string{"POST"}},
		{Name: "tenant-home", Hosts: []string{"*.example.com"}, Path: "/", Methods: []string{"GET"}},
		{Name: "tenant-api", Hosts: []string{"*.example.com"}, Path: "/api/**"},
		{Name: "eu-tenant-api", Hosts: []string{"*.eu.example.com"}, Path: "/api/**"},
		{Name: "eu-tenant-gdpr", Hosts: []string{"*.eu.example.com", "privacy.example.com"}, Path: "/gdpr/{request}", Methods: []string{"GET", "DELETE"}},
		{Name: "admin", Hosts: []string{"admin.example.com"}, Path: "/**", Methods: []string{"GET", "POST"}, Headers: []Condition{present("X-Admin-Token")}},
		{Name: "admin-login", Hosts: []string{"admin.example.com"}, Path: "/login", Methods: []string{"GET", "POST"}},
		{Name: "admin-ip", Hosts: []string{"[::1]"}, Path: "/**"},
		{Name: "static", Path: "/static/**", Methods: []string{"GET"}},
		{Name: "favicon", Path: "/favicon.ico", Methods: []string{"GET"}},
		{Name: "docs-page", Path: "/docs/{page}", Methods: []string{"GET"}},
		{Name: "docs-rest", Path: "/docs/**", Methods: []string{"GET"}},
		{Name: "metrics", Path: "/metrics", Methods: []string{"GET"}, Headers: []Condition{{Name: "Authorization", Kind: MatchRegex, Value: `^Bearer `}}},
		{Name: "webhook", Path: "/webhooks/{provider}", Methods: []string{"POST"}},
		{Name: "webhook-github", Path: "/webhooks/github", Methods: []string{"POST"}, Headers: []Condition{present("X-GitHub-Event")}},
		{Name: "ws", Path: "/ws", Methods: []string{"GET"}, Headers: []Condition{exact("Upgrade", "websocket")}},
		{Name: "graphql", Path: "/graphql", Methods: []string{"GET", "POST"}},
		{Name: "files", Path: "/files/**", Methods: []string{"GET", "PUT"}},
		{Name: "file-manifest", Path: "/files/{bucket}/manifest", Methods: []string{"GET"}},
		{Name: "deep", Path: "/v1/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", Methods: []string{"GET"}},
		{Name: "legacy", Path: "/legacy/**"},
		{Name: "cafe", Path: "/café/{item}", Methods: []string{"GET"}},
		{Name: "status-options", Path: "/status", Methods: []string{"OPTIONS"}},
		{Name: "status", Path: "/status", Methods: []string{"GET"}},
		{Name: "slash", Path: "/dir/", Methods: []string{"GET"}},
		{Name: "report", Path: "/reports/{year}/{month}", Methods: []string{"GET"}},
		{Name: "report-latest", Path: "/reports/latest/{kind}", Methods: []string{"GET"}},
		{Name: "cache-purge", Path: "/cache/**", Methods: []string{"PURGE"}},
	}
}

type lookupCase struct {
	name   string
	host   string
	method string
	path   string
	header http.Header
	query  string
	result Result
	route  string // Spec.Name when Found
	params []Param
	rest   string
	allow  string // when MethodNotAllowed
}

func realisticCases() []lookupCase {
	const api = "api.example.com"
	return []lookupCase{
		{name: "exact host exact path", host: api, method: "GET", path: "/api/v1/users", result: Found, route: "users-list"},
		{name: "method selects route", host: api + ":8443", method: "POST", path: "/api/v1/users", result: Found, route: "users-create"},
		{name: "host case and trailing dot", host: "API.Example.COM.", method: "GET", path: "/api/v1/users", result: Found, route: "users-list"},
		{name: "other method falls to wildcard", host: api, method: "DELETE", path: "/api/v1/users", result: Found, route: "users-rest"},
		{name: "param", host: api, method: "GET", path: "/api/v1/users/42", result: Found, route: "user-get", params: []Param{{"id", "42"}}},
		{name: "escaped param value", host: api, method: "GET", path: "/api/v1/users/a%20b", result: Found, route: "user-get", params: []Param{{"id", "a%20b"}}},
		{name: "header v2", host: api, method: "GET", path: "/api/v1/users/42", header: hdr("Accept-Version", "v2"), result: Found, route: "user-v2", params: []Param{{"id", "42"}}},
		{name: "header v1", host: api, method: "GET", path: "/api/v1/users/42", header: hdr("accept-version", "v1"), result: Found, route: "user-v1", params: []Param{{"id", "42"}}},
		{name: "header v3 falls back", host: api, method: "GET", path: "/api/v1/users/42", header: hdr("Accept-Version", "v3"), result: Found, route: "user-get", params: []Param{{"id", "42"}}},
		{name: "HEAD via GET", host: api, method: "HEAD", path: "/api/v1/users/42", result: Found, route: "user-get", params: []Param{{"id", "42"}}},
		{name: "lowercase method is not GET", host: api, method: "get", path: "/api/v1/users/42", result: Found, route: "users-rest", rest: "42"},
		{name: "patch", host: api, method: "PATCH", path: "/api/v1/users/42", result: Found, route: "user-update", params: []Param{{"id", "42"}}},
		{name: "method skipped to wildcard", host: api, method: "DELETE", path: "/api/v1/users/42", result: Found, route: "users-rest", rest: "42"},
		{name: "literal beats param", host: api, method: "GET", path: "/api/v1/users/me", result: Found, route: "user-me"},
		{name: "literal skipped by method goes to param", host: api, method: "PUT", path: "/api/v1/users/me", result: Found, route: "user-update", params: []Param{{"id", "me"}}},
		{name: "two params", host: api, method: "GET", path: "/api/v1/users/7/posts/9", result: Found, route: "user-posts", params: []Param{{"id", "7"}, {"post", "9"}}},
		{name: "wildcard rest", host: api, method: "GET", path: "/api/v1/users/7/x", result: Found, route: "users-rest", rest: "7/x"},
		{name: "wildcard trailing slash", host: api, method: "GET", path: "/api/v1/users/", result: Found, route: "users-rest", rest: ""},
		{name: "wildcard rest keeps trailing slash", host: api, method: "GET", path: "/api/v1/users/7/x/", result: Found, route: "users-rest", rest: "7/x/"},
		{name: "param then wildcard", host: api, method: "GET", path: "/api/v1/orders/5/items/a/b", result: Found, route: "order-items", params: []Param{{"orderID", "5"}}, rest: "a/b"},
		{name: "param then wildcard zero", host: api, method: "GET", path: "/api/v1/orders/5/items", result: Found, route: "order-items", params: []Param{{"orderID", "5"}}, rest: ""},
		{name: "exact host falls through to wildcard host", host: api, method: "POST", path: "/api/v1/orders/5", result: Found, route: "tenant-api", rest: "v1/orders/5"},
		{name: "query exact", host: api, method: "GET", path: "/api/v1/search", query: "q=x&beta=1", result: Found, route: "search-beta"},
		{name: "query escaped value", host: api, method: "GET", path: "/api/v1/search", query: "beta=%31", result: Found, route: "search-beta"},
		{name: "query escaped key", host: api, method: "GET", path: "/api/v1/search", query: "b%65ta=1", result: Found, route: "search-beta"},
		{name: "query first value wins", host: api, method: "GET", path: "/api/v1/search", query: "beta=2&beta=1", result: Found, route: "search"},
		{name: "query malformed escape", host: api, method: "GET", path: "/api/v1/search", query: "beta=%3", result: Found, route: "search"},
		{name: "query regex", host: api, method: "GET", path: "/api/v1/search", query: "format=json", result: Found, route: "search-fmt"},
		{name: "query regex escaped", host: api, method: "GET", path: "/api/v1/search", query: "format=%78ml", result: Found, route: "search-fmt"},
		{name: "query regex no match", host: api, method: "GET", path: "/api/v1/search", query: "format=yaml", result: Found, route: "search"},
		{name: "query absent", host: api, method: "GET", path: "/api/v1/search", result: Found, route: "search"},
		{name: "wildcard host", host: "acme.example.com", method: "GET", path: "/api/x", result: Found, route: "tenant-api", rest: "x"},
		{name: "wildcard host many labels", host: "a.b.example.com:80", method: "GET", path: "/", result: Found, route: "tenant-home"},
		{name: "longest wildcard suffix", host: "acme.eu.example.com", method: "GET", path: "/api/x", result: Found, route: "eu-tenant-api", rest: "x"},
		{name: "wildcard is not its apex", host: "eu.example.com", method: "GET", path: "/api/x", result: Found, route: "tenant-api", rest: "x"},
		{name: "empty label matches no wildcard", host: "..example.com", method: "GET", path: "/api/x", result: NotFound},
		{name: "apex matches no wildcard", host: "example.com", method: "GET", path: "/api/x", result: NotFound},
		{name: "apex falls to any host", host: "example.com", method: "GET", path: "/", result: Found, route: "root"},
		{name: "wildcard host falls through to any", host: "acme.example.com", method: "GET", path: "/healthz", result: Found, route: "health"},
		{name: "multi-host route", host: "privacy.example.com", method: "DELETE", path: "/gdpr/r1", result: Found, route: "eu-tenant-gdpr", params: []Param{{"request", "r1"}}},
		{name: "admin needs token", host: "admin.example.com", method: "GET", path: "/users", header: hdr("X-Admin-Token", ""), result: Found, route: "admin", rest: "users"},
		{name: "admin without token", host: "admin.example.com", method: "GET", path: "/users", result: NotFound},
		{name: "admin exact beats wildcard", host: "admin.example.com", method: "GET", path: "/login", header: hdr("X-Admin-Token", "t"), result: Found, route: "admin-login"},
		{name: "admin 405", host: "admin.example.com", method: "DELETE", path: "/users", header: hdr("X-Admin-Token", "t"), result: MethodNotAllowed, allow: "GET, HEAD, POST"},
		{name: "IPv6 host", host: "[::1]:8080", method: "GET", path: "/x/y", result: Found, route: "admin-ip", rest: "x/y"},
		{name: "405 with Allow", host: "other.org", method: "PUT", path: "/healthz", result: MethodNotAllowed, allow: "GET, HEAD"},
		{name: "405 union of routes", host: "", method: "DELETE", path: "/status", result: MethodNotAllowed, allow: "GET, HEAD, OPTIONS"},
		{name: "OPTIONS listed", host: "", method: "OPTIONS", path: "/status", result: Found, route: "status-options"},
		{name: "405 header condition unmet is 404", host: "", method: "POST", path: "/ws", result: NotFound},
		{name: "header condition", host: "", method: "GET", path: "/ws", header: hdr("Upgrade", "websocket"), result: Found, route: "ws"},
		{name: "header regex", host: "", method: "GET", path: "/metrics", header: hdr("Authorization", "Bearer x"), result: Found, route: "metrics"},
		{name: "header regex no match", host: "", method: "GET", path: "/metrics", header: hdr("Authorization", "Basic x"), result: NotFound},
		{name: "condition beats literal order", host: "", method: "POST", path: "/webhooks/github", header: hdr("X-GitHub-Event", "push"), result: Found, route: "webhook-github"},
		{name: "param when condition unmet", host: "", method: "POST", path: "/webhooks/github", result: Found, route: "webhook", params: []Param{{"provider", "github"}}},
		{name: "backtrack literal to param", host: "", method: "GET", path: "/files/b1/manifest", result: Found, route: "file-manifest", params: []Param{{"bucket", "b1"}}},
		{name: "backtrack after deeper miss", host: "", method: "GET", path: "/reports/latest/12", result: Found, route: "report-latest", params: []Param{{"kind", "12"}}},
		{name: "backtrack to param branch", host: "", method: "GET", path: "/reports/2024/12", result: Found, route: "report", params: []Param{{"year", "2024"}, {"month", "12"}}},
		{name: "backtrack literal branch dead end", host: "", method: "GET", path: "/reports/latest", result: NotFound},
		{name: "eight params", host: "", method: "GET", path: "/v1/1/2/3/4/5/6/7/8", result: Found, route: "deep",
			params: []Param{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}, {"f", "6"}, {"g", "7"}, {"h", "8"}}},
		{name: "normalized literal", host: "", method: "GET", path: "/caf%C3%A9/latte", result: Found, route: "cafe", params: []Param{{"item", "latte"}}},
		{name: "trailing slash route", host: "", method: "GET", path: "/dir/", result: Found, route: "slash"},
		{name: "trailing slash is distinct", host: "", method: "GET", path: "/dir", result: NotFound},
		{name: "param needs a segment", host: "", method: "GET", path: "/docs/", result: Found, route: "docs-rest", rest: ""},
		{name: "custom method", host: "x", method: "PURGE", path: "/cache/at/all", result: Found, route: "cache-purge", rest: "at/all"},
		{name: "not found", host: "", method: "GET", path: "/nope", result: NotFound},
		{name: "405 includes custom method", host: "", method: "GET", path: "/cache/x", result: MethodNotAllowed, allow: "PURGE"},
		{name: "relative path", host: "", method: "GET", path: "nope", result: NotFound},
		{name: "empty path", host: "", method: "GET", path: "", result: NotFound},
	}
}

func compileOrFatal(t testing.TB, specs []Spec) *Table {
	t.Helper()
	tbl, err := Compile(specs)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tbl
}

func checkLookup(t *testing.T, tbl *Table, specs []Spec, tc lookupCase) {
	t.Helper()
	var m Match
	got := tbl.Lookup(tc.host, tc.method, tc.path, tc.header, tc.query, &m)
	if got != tc.result {
		name := ""
		if m.Route >= 0 {
			name = specs[m.Route].Name
		}
		t.Fatalf("Lookup(%q, %q, %q) = %v (route %q), want %v", tc.host, tc.method, tc.path, got, name, tc.result)
	}
	switch got {
	case Found:
		if name := specs[m.Route].Name; name != tc.route {
			t.Fatalf("route = %q, want %q", name, tc.route)
		}
		if !slices.Equal(m.Params, tc.params) && len(m.Params)+len(tc.params) > 0 {
			t.Fatalf("params = %v, want %v", m.Params, tc.params)
		}
		if m.Rest != tc.rest {
			t.Fatalf("rest = %q, want %q", m.Rest, tc.rest)
		}
		if m.Allow() != "" {
			t.Fatalf("Allow() = %q on Found", m.Allow())
		}
	case MethodNotAllowed:
		if a := m.Allow(); a != tc.allow {
			t.Fatalf("Allow() = %q, want %q", a, tc.allow)
		}
	case NotFound:
		if m.Route != -1 || len(m.Params) != 0 {
			t.Fatalf("NotFound left Route %d Params %v", m.Route, m.Params)
		}
	}
}

func TestLookupRealistic(t *testing.T) {
	t.Parallel()
	specs := realisticSpecs()
	tbl := compileOrFatal(t, specs)
	for _, tc := range realisticCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkLookup(t, tbl, specs, tc)
		})
	}
}

// TestLookupOrderIndependent shuffles the configuration: winners decided by
// specificity must not change.
func TestLookupOrderIndependent(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		specs := realisticSpecs()
		rng.Shuffle(len(specs), func(a, b int) { specs[a], specs[b] = specs[b], specs[a] })
		tbl := compileOrFatal(t, specs)
		for _, tc := range realisticCases() {
			t.Run(tc.name, func(t *testing.T) {
				if i == 0 {
					t.Parallel()
				}
				checkLookup(t, tbl, specs, tc)
			})
		}
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		specs []Spec
		cases []lookupCase
	}{
		{
			name: "host tiers",
			specs: []Spec{
				{Name: "any", Path: "/x"},
				{Name: "wild", Hosts: []string{"*.example.com"}, Path: "/x"},
				{Name: "exact", Hosts: []string{"a.example.com"}, Path: "/x"},
				{Name: "wild-only", Hosts: []string{"*.example.com"}, Path: "/y"},
			},
			cases: []lookupCase{
				{host: "a.example.com", path: "/x", result: Found, route: "exact"},
				{host: "b.example.com", path: "/x", result: Found, route: "wild"},
				{host: "example.org", path: "/x", result: Found, route: "any"},
				{host: "a.example.com", path: "/y", result: Found, route: "wild-only"},
				{host: "example.org", path: "/y", result: NotFound},
			},
		},
		{
			name: "host beats path specificity",
			specs: []Spec{
				{Name: "any-exact", Path: "/a/b"},
				{Name: "host-wild", Hosts: []string{"h"}, Path: "/**"},
			},
			cases: []lookupCase{{host: "h", path: "/a/b", result: Found, route: "host-wild", rest: "a/b"}},
		},
		{
			name: "segment kinds",
			specs: []Spec{
				{Name: "wild", Path: "/a/**"},
				{Name: "param", Path: "/a/{x}"},
				{Name: "literal", Path: "/a/b"},
				{Name: "deeper-literal", Path: "/a/b/**"},
				{Name: "param-literal", Path: "/a/{x}/c"},
			},
			cases: []lookupCase{
				{path: "/a/b", result: Found, route: "literal"},
				{path: "/a/z", result: Found, route: "param", params: []Param{{"x", "z"}}},
				{path: "/a/z/y", result: Found, route: "wild", rest: "z/y"},
				{path: "/a/b/c", result: Found, route: "deeper-literal", rest: "c"},
				{path: "/a/z/c", result: Found, route: "param-literal", params: []Param{{"x", "z"}}},
				{path: "/a", result: Found, route: "wild"},
			},
		},
		{
			name: "more conditions win whatever the order",
			specs: []Spec{
				{Name: "plain", Path: "/p"},
				{Name: "method", Path: "/p", Methods: []string{"GET"}},
				{Name: "method-header", Path: "/p", Methods: []string{"GET"}, Headers: []Condition{present("X-A")}},
				{Name: "header-query", Path: "/p", Headers: []Condition{present("X-A")}, Query: []Condition{present("q")}},
				{Name: "all", Path: "/p", Methods: []string{"GET"}, Headers: []Condition{present("X-A")}, Query: []Condition{present("q")}},
			},
			cases: []lookupCase{
				{method: "GET", path: "/p", header: hdr("X-A", "1"), query: "q", result: Found, route: "all"},
				{method: "POST", path: "/p", header: hdr("X-A", "1"), query: "q", result: Found, route: "header-query"},
				{method: "GET", path: "/p", header: hdr("X-A", "1"), result: Found, route: "method-header"},
				{method: "GET", path: "/p", result: Found, route: "method"},
				{method: "POST", path: "/p", result: Found, route: "plain"},
			},
		},
		{
			name: "config order breaks ties",
			specs: []Spec{
				{Name: "first", Path: "/p", Headers: []Condition{present("X-A")}},
				{Name: "second", Path: "/p", Headers: []Condition{present("X-B")}},
			},
			cases: []lookupCase{{path: "/p", header: hdr("X-A", "", "X-B", ""), result: Found, route: "first"}},
		},
		{
			name: "405 only when nothing matches",
			specs: []Spec{
				{Name: "get", Path: "/r/{id}", Methods: []string{"GET"}},
				{Name: "post", Path: "/r/**", Methods: []string{"POST"}},
				{Name: "opt", Hosts: []string{"h"}, Path: "/r/{id}", Methods: []string{"OPTIONS", "delete"}},
			},
			cases: []lookupCase{
				{host: "h", method: "PUT", path: "/r/1", result: MethodNotAllowed, allow: "DELETE, GET, HEAD, OPTIONS, POST"},
				{method: "PUT", path: "/r/1", result: MethodNotAllowed, allow: "GET, HEAD, POST"},
				{method: "PUT", path: "/r/1/2", result: MethodNotAllowed, allow: "POST"},
				{method: "HEAD", path: "/r/1", result: Found, route: "get", params: []Param{{"id", "1"}}},
				{method: "POST", path: "/r/1", result: Found, route: "post", rest: "1"},
				{method: "PUT", path: "/s", result: NotFound},
			},
		},
		{
			name: "root patterns",
			specs: []Spec{
				{Name: "all", Path: "/**"},
				{Name: "root", Path: "/"},
			},
			cases: []lookupCase{
				{path: "/", result: Found, route: "root"},
				{path: "/x/", result: Found, route: "all", rest: "x/"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, order := range [][]Spec{tt.specs, reversed(tt.specs)} {
				tbl := compileOrFatal(t, order)
				for _, tc := range tt.cases {
					if tc.method == "" {
						tc.method = "GET"
					}
					if tt.name == "config order breaks ties" && order[0].Name != tt.specs[0].Name {
						tc.route = "second"
					}
					checkLookup(t, tbl, order, tc)
				}
			}
		})
	}
}

func reversed(s []Spec) []Spec {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

func TestMatchReuse(t *testing.T) {
	t.Parallel()
	specs := realisticSpecs()
	tbl := compileOrFatal(t, specs)
	var m Match
	if tbl.Lookup("api.example.com", "GET", "/api/v1/users/7/posts/9", nil, "", &m) != Found || len(m.Params) != 2 {
		t.Fatalf("first lookup: %+v", m)
	}
	if tbl.Lookup("", "DELETE", "/status", nil, "", &m) != MethodNotAllowed || m.Route != -1 || len(m.Params) != 0 {
		t.Fatalf("second lookup did not reset: %+v", m)
	}
	if tbl.Lookup("", "GET", "/status", nil, "", &m) != Found || m.Allow() != "" {
		t.Fatalf("third lookup kept Allow %q", m.Allow())
	}
	if v, ok := m.Param("id"); ok || v != "" {
		t.Fatalf("Param(id) = %q, %v after reset", v, ok)
	}
	tbl.Lookup("api.example.com", "GET", "/api/v1/users/7/posts/9", nil, "", &m)
	if v, ok := m.Param("post"); !ok || v != "9" {
		t.Fatalf("Param(post) = %q, %v", v, ok)
	}
	var nilTable *Table
	if nilTable.Lookup("", "GET", "/", nil, "", &m) != NotFound {
		t.Fatal("nil table found a route")
	}
	if tbl.Lookup("", "GET", "/", nil, "", nil) != NotFound {
		t.Fatal("nil match found a route")
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	specs := realisticSpecs()
	tbl := compileOrFatal(t, specs)
	cases := realisticCases()
	var m Match
	for _, tc := range cases {
		if tc.result == MethodNotAllowed {
			continue
		}
		allocs := testing.AllocsPerRun(50, func() {
			if got := tbl.Lookup(tc.host, tc.method, tc.path, tc.header, tc.query, &m); got != tc.result {
				t.Fatalf("%s: %v", tc.name, got)
			}
		})
		// Only a regex on an escaped query value needs to unescape into a new string.
		want := 0.0
		if tc.name == "query regex escaped" {
			want = 1
		}
		if allocs != want {
			t.Errorf("%s: Lookup allocates %v times, want %v", tc.name, allocs, want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spec  Spec
		field string
		msg   string // substring
	}{
		{"relative path", Spec{Path: "a"}, "path", `must start with "/"`},
		{"empty path", Spec{Path: ""}, "path", `must start with "/"`},
		{"unclosed brace", Spec{Path: "/a/{id"}, "path", "unclosed"},
		{"brace inside segment", Spec{Path: "/a/x{id}"}, "path", "whole segment"},
		{"param with suffix", Spec{Path: "/a/{id}.json"}, "path", "whole segment"},
		{"stray close brace", Spec{Path: "/a/}"}, "path", "whole segment"},
		{"empty param", Spec{Path: "/a/{}"}, "path", "empty parameter name"},
		{"bad param name", Spec{Path: "/a/{a b}"}, "path", "invalid parameter name"},
		{"nested braces", Spec{Path: "/a/{{id}}"}, "path", "invalid parameter name"},
		{"duplicate param", Spec{Path: "/a/{id}/b/{id}"}, "path", "duplicate parameter name"},
		{"wildcard not last", Spec{Path: "/a/**/b"}, "path", "last segment"},
		{"single star", Spec{Path: "/a/*"}, "path", "{name}"},
		{"triple star", Spec{Path: "/a/***"}, "path", "{name}"},
		{"empty segment", Spec{Path: "/a//b"}, "path", "empty segment"},
		{"dot segment", Spec{Path: "/a/../b"}, "path", "dot segments"},
		{"encoded dot segment", Spec{Path: "/a/%2e"}, "path", "dot segments"},
		{"encoded slash", Spec{Path: "/a%2Fb"}, "path", "encoded slash"},
		{"bad escape", Spec{Path: "/a%zz"}, "path", "invalid percent-encoding"},
		{"empty host", Spec{Path: "/", Hosts: []string{""}}, "hosts", "empty host"},
		{"star host", Spec{Path: "/", Hosts: []string{"*"}}, "hosts", "leave hosts empty"},
		{"inner wildcard", Spec{Path: "/", Hosts: []string{"a.*.com"}}, "hosts", "first label"},
		{"partial wildcard", Spec{Path: "/", Hosts: []string{"*a.com"}}, "hosts", "first label"},
		{"host with port", Spec{Path: "/", Hosts: []string{"a.com:80"}}, "hosts", "port"},
		{"empty label", Spec{Path: "/", Hosts: []string{"a..com"}}, "hosts", "empty label"},
		{"bad host char", Spec{Path: "/", Hosts: []string{"a/b"}}, "hosts", "invalid character"},
		{"bad IP literal", Spec{Path: "/", Hosts: []string{"[::1"}}, "hosts", "IP literal"},
		{"bad method", Spec{Path: "/", Methods: []string{"GE T"}}, "methods", "invalid method"},
		{"empty method", Spec{Path: "/", Methods: []string{""}}, "methods", "invalid method"},
		{"bad header name", Spec{Path: "/", Headers: []Condition{{Name: "X A"}}}, "headers", "invalid header name"},
		{"host header", Spec{Path: "/", Headers: []Condition{{Name: "host"}}}, "headers", "hosts"},
		{"regex without pattern", Spec{Path: "/", Headers: []Condition{{Name: "X", Kind: MatchRegex}}}, "headers", "without a pattern"},
		{"bad regex", Spec{Path: "/", Headers: []Condition{{Name: "X", Kind: MatchRegex, Value: "("}}}, "headers", "missing closing"},
		{"unknown kind", Spec{Path: "/", Headers: []Condition{{Name: "X", Kind: 9}}}, "headers", "unknown match kind"},
		{"empty query name", Spec{Path: "/", Query: []Condition{{Name: ""}}}, "query", "empty parameter name"},
		{"bad query regex", Spec{Path: "/", Query: []Condition{{Name: "q", Kind: MatchRegex, Value: "["}}}, "query", "missing closing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := tt.spec
			spec.Name = "bad"
			_, err := Compile([]Spec{{Name: "ok", Path: "/ok"}, spec})
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("Compile error = %v, want *SpecError", err)
			}
			if se.Index != 1 || se.Field != tt.field || !strings.Contains(se.Msg, tt.msg) {
				t.Fatalf("SpecError = %+v, want index 1, field %q, message containing %q", se, tt.field, tt.msg)
			}
			if !strings.Contains(err.Error(), `route 1 "bad": `+tt.field+": ") {
				t.Fatalf("Error() = %q", err.Error())
			}
		})
	}
}

func TestCompileJoinsErrors(t *testing.T) {
	t.Parallel()
	_, err := Compile([]Spec{
		{Name: "a", Path: "/ok"},
		{Name: "b", Path: "/x/{", Hosts: []string{"*"}},
		{Name: "c", Path: "/**/x"},
	})
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %v does not unwrap to a list", err)
	}
	var got []string
	for _, e := range joined.Unwrap() {
		var se *SpecError
		if !errors.As(e, &se) {
			t.Fatalf("%v is not a *SpecError", e)
		}
		got = append(got, se.Name+"."+se.Field)
	}
	if want := []string{"b.path", "b.hosts", "c.path"}; !slices.Equal(got, want) {
		t.Fatalf("errors = %v, want %v", got, want)
	}
}

func TestCompileConflicts(t *testing.T) {
	t.Parallel()
	base := Spec{
		Hosts: []string{"a.com", "*.b.com"}, Path: "/u/{id}/**", Methods: []string{"GET", "POST"},
		Headers: []Condition{exact("X-A", "1"), present("X-B")}, Query: []Condition{present("q"), exact("r", "2")},
	}
	tests := []struct {
		name     string
		other    Spec
		conflict bool
	}{
		{"identical", base, true},
		{"reordered and renamed", Spec{
			Hosts: []string{"*.B.com", "A.com."}, Path: "/u/{user}/**", Methods: []string{"post", "GET", "HEAD"},
			Headers: []Condition{present("x-b"), exact("x-a", "1")}, Query: []Condition{exact("r", "2"), present("q")},
		}, true},
		{"fewer hosts", Spec{Hosts: []string{"a.com"}, Path: base.Path, Methods: base.Methods, Headers: base.Headers, Query: base.Query}, false},
		{"other path", Spec{Hosts: base.Hosts, Path: "/u/{id}", Methods: base.Methods, Headers: base.Headers, Query: base.Query}, false},
		{"literal instead of param", Spec{Hosts: base.Hosts, Path: "/u/id/**", Methods: base.Methods, Headers: base.Headers, Query: base.Query}, false},
		{"other methods", Spec{Hosts: base.Hosts, Path: base.Path, Methods: []string{"GET"}, Headers: base.Headers, Query: base.Query}, false},
		{"other header value", Spec{Hosts: base.Hosts, Path: base.Path, Methods: base.Methods, Headers: []Condition{exact("X-A", "2"), present("X-B")}, Query: base.Query}, false},
		{"header as query", Spec{Hosts: base.Hosts, Path: base.Path, Methods: base.Methods, Headers: base.Query, Query: base.Headers}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile([]Spec{{Name: "x", Path: "/x"}, base, tt.other})
			var ce *ConflictError
			if got := errors.As(err, &ce); got != tt.conflict {
				t.Fatalf("conflict = %v (%v), want %v", got, err, tt.conflict)
			}
			if tt.conflict && (ce.Index != 2 || ce.Other != 1) {
				t.Fatalf("ConflictError = %+v, want Index 2, Other 1", ce)
			}
		})
	}
	if _, err := Compile([]Spec{{Path: "/a"}, {Path: "/a", Methods: []string{"GET"}}, {Path: "/a/"}}); err != nil {
		t.Fatalf("distinct specs conflict: %v", err)
	}
}

func TestDescribeGolden(t *testing.T) {
	t.Parallel()
	got := compileOrFatal(t, realisticSpecs()).Describe()
	path := filepath.Join("testdata", "table.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("Describe() differs from %s (run with -update to accept):\n%s", path, got)
	}
}

func BenchmarkLookup(b *testing.B) {
	specs := realisticSpecs()
	tbl := compileOrFatal(b, specs)
	for _, tc := range []lookupCase{
		{name: "exact", host: "api.example.com", method: "GET", path: "/api/v1/users"},
		{name: "param", host: "api.example.com:443", method: "GET", path: "/api/v1/users/12345"},
		{name: "header-version", host: "api.example.com", method: "GET", path: "/api/v1/users/12345", header: hdr("Accept-Version", "v2", "User-Agent", "bench")},
		{name: "two-params", host: "api.example.com", method: "GET", path: "/api/v1/users/7/posts/9"},
		{name: "query", host: "api.example.com", method: "GET", path: "/api/v1/search", query: "q=shoes&page=2&beta=1"},
		{name: "wildcard-host", host: "acme.eu.example.com", method: "POST", path: "/api/orders/5/lines"},
		{name: "fallthrough-any", host: "Shop.Example.com", method: "GET", path: "/static/css/site.css"},
		{name: "backtrack", host: "", method: "GET", path: "/reports/latest/12"},
		{name: "not-found", host: "api.example.com", method: "GET", path: "/nope/x/y"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var m Match
			b.ReportAllocs()
			for b.Loop() {
				if tbl.Lookup(tc.host, tc.method, tc.path, tc.header, tc.query, &m) == MethodNotAllowed {
					b.Fatal("unexpected 405")
				}
			}
		})
	}
}

func FuzzLookup(f *testing.F) {
	specs := realisticSpecs()
	tbl := compileOrFatal(f, specs)
	for _, tc := range realisticCases() {
		f.Add(tc.host, tc.method, tc.path, tc.query, uint8(len(tc.header)))
	}
	f.Add("", "GET", "//a//../b/", "", uint8(3))
	versions := []string{"v1", "v2", "v3"}
	f.Fuzz(func(t *testing.T, host, method, path, query string, hbits uint8) {
		h := http.Header{}
		if hbits&1 != 0 {
			h.Set("Accept-Version", versions[int(hbits>>4)%len(versions)])
		}
		if hbits&2 != 0 {
			h.Set("X-Admin-Token", "t")
		}
		if hbits&4 != 0 {
			h.Set("Upgrade", "websocket")
		}
		var m Match
		res := tbl.Lookup(host, method, path, h, query, &m)
		switch res {
		case Found:
			if m.Route < 0 || m.Route >= len(specs) {
				t.Fatalf("route %d out of range", m.Route)
			}
			for _, p := range m.Params {
				if p.Value == "" || !strings.Contains(path, p.Value) || strings.Contains(p.Value, "/") {
					t.Fatalf("param %+v is not a segment of %q", p, path)
				}
				if p.Key == "" {
					t.Fatalf("param without key: %+v", m.Params)
				}
			}
			if !strings.HasSuffix(path, m.Rest) {
				t.Fatalf("rest %q is not a suffix of %q", m.Rest, path)
			}
			if m.Allow() != "" {
				t.Fatalf("Allow %q on Found", m.Allow())
			}
		case MethodNotAllowed:
			if m.Allow() == "" {
				t.Fatal("405 without Allow")
			}
		case NotFound:
			if m.Route != -1 {
				t.Fatalf("NotFound with route %d", m.Route)
			}
		default:
			t.Fatalf("result %v", res)
		}
		// The canonical path routes the same way as any spelling of it.
		if n, err := NormalizePath(path); err == nil && n == path {
			var m2 Match
			if res2 := tbl.Lookup(host, method, n, h, query, &m2); res2 != res || m2.Route != m.Route {
				t.Fatalf("lookup not deterministic: %v/%d vs %v/%d", res, m.Route, res2, m2.Route)
			}
		}
	})
}

func TestEmptyTable(t *testing.T) {
	t.Parallel()
	tbl := compileOrFatal(t, nil)
	var m Match
	if got := tbl.Lookup("h", "GET", "/", nil, "", &m); got != NotFound {
		t.Fatalf("Lookup on empty table = %v", got)
	}
	if d := tbl.Describe(); d != "" {
		t.Fatalf("Describe() = %q", d)
	}
}
