package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestCachePurgeThroughAdminAPI purges by tag, exact key and prefix through the admin listener
// and checks each against what the origin sees next.
func TestCachePurgeThroughAdminAPI(t *testing.T) {
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "public, max-age=600")
		w.Header().Set("Surrogate-Key", "product-"+r.URL.Query().Get("p"))
		fmt.Fprintf(w, "%s %d", r.URL.RequestURI(), hits.Load())
	}))
	t.Cleanup(origin.Close)
	g := startObsGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
admin: { address: "127.0.0.1:0" }
services: [{ name: o, targets: [{ url: "http://${O}" }] }]
routes:
  - name: items
    match: { path: /items/** }
    service: o
    plugins: { cache: { tag_header: Surrogate-Key } }
`, map[string]string{"O": hostPort(origin)}, nil)
	state := func(path string) string {
		resp, _ := g.get(t, path)
		return resp.Header.Get("X-Cache")
	}
	paths := []string{"/items/a?p=1", "/items/b?p=2", "/items/c?p=2", "/other/x?p=3"}
	for _, p := range paths[:3] {
		state(p)
		if got := state(p); got != "HIT" {
			t.Fatalf("%s not cached: %s", p, got)
		}
	}
	purge := func(body string, want float64) {
		t.Helper()
		resp, b := g.admin(t, "POST", "/api/v1/cache/purge", body)
		if resp.StatusCode != 200 || decodeJSON(t, b)["purged"] != want {
			t.Fatalf("purge %s: %d %s, want %v purged", body, resp.StatusCode, b, want)
		}
	}
	purge(`{"tag":"product-2"}`, 2)
	if state("/items/b?p=2") != "MISS" || state("/items/c?p=2") != "MISS" || state("/items/a?p=1") != "HIT" {
		t.Fatal("tag purge removed the wrong entries")
	}
	purge(`{"key":"/items/a?p=1"}`, 1)
	if state("/items/a?p=1") != "MISS" || state("/items/b?p=2") != "HIT" {
		t.Fatal("key purge removed the wrong entries")
	}
	purge(`{"prefix":"/items/"}`, 3)
	if state("/items/b?p=2") != "MISS" {
		t.Fatal("prefix purge left an entry")
	}
	resp, body := g.admin(t, "POST", "/api/v1/cache/purge", `{"key":"/items/a","tag":"x"}`)
	wantAdminError(t, resp, body, 400, "bad_request")
}
