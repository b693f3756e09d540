package server

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"
)

// A value filling a path placeholder of an aggregate call stays one segment: ".", "..", an
// empty value, "/" and "\" are refused (400 when the request supplied them), since ".."
// survives escaping ("/users/../orders" reaches another resource) and many servers decode %2F
// and %5C before they resolve the path.
func TestAggregatePathValuesStayOneSegment(t *testing.T) {
	orders := newAggBackend(t, `{"orders":[]}`)
	g := startGateway(t, `version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { access_log: { enabled: false } }
services:
  - { name: orders, targets: [{ url: "http://${ORDERS}" }] }
routes:
  - name: mine
    match: { path: /my-orders }
    aggregate:
      calls:
        - { name: orders, service: orders, path: "/users/{query.user}/orders", required: true }
  - name: by-header
    match: { path: /h }
    aggregate:
      calls:
        - { name: orders, service: orders, path: "/h/{header.X-Id}/orders", required: true }
`, map[string]string{"ORDERS": hostPort(orders.srv)})

	if resp, body := g.get(t, "/my-orders?user=42"); resp.StatusCode != 200 {
		t.Fatalf("user=42: %d %s", resp.StatusCode, body)
	} else if r := orders.last(t); r.RequestURI != "/users/42/orders" {
		t.Fatalf("user=42: backend got %q", r.RequestURI)
	}
	before := orders.calls.Load()
	for _, q := range []string{"user=..", "user=.", "user=%2e%2e", "user=", "user=a%2Fb", "user=..%2F..%2Fadmin", "user=a%5Cb"} {
		resp, body := g.get(t, "/my-orders?"+q)
		if resp.StatusCode != 400 || decodeError(t, resp, body).Error != "bad_request" {
			t.Errorf("%s: %d %s, want 400 bad_request", q, resp.StatusCode, body)
		}
	}
	for _, v := range []string{"..", "."} {
		if resp, body := g.get(t, "/h", "X-Id", v); resp.StatusCode != 400 {
			t.Errorf("X-Id %q: %d %s, want 400", v, resp.StatusCode, body)
		}
	}
	if n := orders.calls.Load(); n != before {
		t.Fatalf("the backend was called %d times with refused values", n-before)
	}
}

// The same rule holds for GraphQL resolvers: user(id: "..") does not reach "/users/../x".
func TestGraphQLPathValuesStayOneSegment(t *testing.T) {
	g, be := startGraphQL(t)
	for _, id := range []string{"..", ".", "a/b"} {
		status, _, body := gqlPost(t, g, "/graphql", gqlBody(`query Q($id: ID!) { user(id: $id) { id } }`, map[string]any{"id": id}), "")
		if status != 200 || !strings.Contains(body, `"errors"`) || !strings.Contains(body, `"user":null`) {
			t.Errorf("id %q: %d %s, want a field error", id, status, body)
		}
	}
	for key := range be.snapshot() {
		if strings.Contains(key, "..") || strings.HasPrefix(key, "/users/?") || strings.Contains(key, "%2F") {
			t.Errorf("the backend was called at %q", key)
		}
	}
}

func (b *graphqlBackends) snapshot() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.calls)
}

// Fragments that spread each other exponentially are measured once each: a 1 KB document
// expanding to 2^40 meta fields is answered at once instead of burning CPU for hours, and
// aliases of meta fields count against max_aliases.
func TestGraphQLFragmentExpansionIsLinear(t *testing.T) {
	g, _ := startGraphQL(t)
	var doc strings.Builder
	doc.WriteString("{ ...F40 } fragment F0 on Query { __typename }")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&doc, " fragment F%d on Query { ...F%d ...F%d }", i, i-1, i-1)
	}
	done := make(chan string, 1)
	go func() {
		_, _, body := gqlPost(t, g, "/graphql", gqlBody(doc.String(), nil), "")
		done <- body
	}()
	select {
	case body := <-done:
		if !strings.Contains(body, `"__typename":"Query"`) {
			t.Fatalf("answer %s", body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no answer in 20s: the fragments were expanded one spread at a time")
	}

	var aliases strings.Builder
	aliases.WriteString("{")
	for i := range 50 {
		fmt.Fprintf(&aliases, " a%d: __typename", i)
	}
	aliases.WriteString(" }")
	_, _, body := gqlPost(t, g, "/graphql", gqlBody(aliases.String(), nil), "")
	if !strings.Contains(body, "TOO_MANY_ALIASES") {
		t.Fatalf("50 aliases of __typename with max_aliases 3: %s", body)
	}
}

// Variables must match their declared types: an object, a list, a boolean or a fraction given
// for an ID! is a request error and reaches no backend.
func TestGraphQLVariablesAreTypeChecked(t *testing.T) {
	g, be := startGraphQL(t)
	for _, v := range []any{map[string]any{"a": 1}, []any{1, 2}, true, 1.5} {
		_, _, body := gqlPost(t, g, "/graphql", gqlBody(`query Q($id: ID!) { user(id: $id) { id } }`, map[string]any{"id": v}), "")
		if !strings.Contains(body, `"errors"`) || strings.Contains(body, `"data"`) {
			t.Errorf("id %v: %s, want a request error without data", v, body)
		}
	}
	if _, _, body := gqlPost(t, g, "/graphql", gqlBody(`query Q($id: ID!) { user(id: $id) { id } }`, map[string]any{"id": "7"}), ""); !strings.Contains(body, `"user"`) {
		t.Errorf("a string ID: %s", body)
	}
	for key := range be.snapshot() {
		if strings.Contains(key, "map[") || strings.Contains(key, "true") || strings.Contains(key, "1.5") || strings.Contains(key, "[1") {
			t.Errorf("the backend was called at %q", key)
		}
	}
}
