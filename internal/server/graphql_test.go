package server

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const graphqlYAML = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services:
  - { name: users, targets: [{ url: "http://${USERS}" }] }
  - { name: orders, targets: [{ url: "http://${ORDERS}" }] }
routes:
  - name: graphql
    match: { path: /graphql }
    graphql:
      schema: |
        type Query {
          user(id: ID!): User
          users(ids: [ID!]!): [User]
        }
        type Mutation { createUser(input: NewUser!): User }
        input NewUser { name: String! }
        enum Status { ACTIVE, BANNED }
        type User { id: ID! name: String status: Status orders: [Order!] }
        type Order { id: ID! total: Float user: User }
      resolvers:
        Query.user: { service: users, path: "/users/{args.id}" }
        Query.users: { service: users, path: /users, query: { ids: "{args.ids}" }, result: items }
        Mutation.createUser: { service: users, method: POST, path: /users, body: args.input }
        User.orders: { service: orders, path: /orders, query: { userId: "{parent.id}" } }
      max_depth: 4
      max_complexity: 16
      max_aliases: 3
      max_batch_size: 2
      forward_headers: [Authorization]
      persisted_queries: { queries: ["{ user(id: 1) { id } }"] }
  - name: graphql-locked
    match: { path: /graphql-locked }
    graphql:
      schema: "type Query { user(id: ID!): User } type User { id: ID! name: String }"
      resolvers: { Query.user: { service: users, path: "/users/{args.id}" } }
      introspection: true
      persisted_queries: { queries: ["{ user(id: 1) { id } }"], only: true }
  - name: graphql-node
    match: { path: /graphql-node }
    graphql:
      schema: "interface Node { id: ID! } type User implements Node { id: ID! name: String } union Any = User type Query { node(id: ID!): Node any(id: ID!): Any }"
      resolvers: { Query.node: { service: users, path: "/users/{args.id}" }, Query.any: { service: users, path: "/users/{args.id}" } }
`

// graphqlBackends are the REST services: users (GET /users/{id}, GET /users?ids=, POST /users)
// and orders (GET /orders?userId=), which fails for user 2 and is slow enough that serial
// resolution would show. They count calls per path.
type graphqlBackends struct {
	users, orders *httptest.Server
	mu            sync.Mutex
	calls         map[string]int
	inFlight      atomic.Int32
	maxInFlight   atomic.Int32
	auth          atomic.Value
}

func newGraphQLBackends(t *testing.T) *graphqlBackends {
	b := &graphqlBackends{calls: map[string]int{}}
	count := func(r *http.Request) func() {
		b.mu.Lock()
		b.calls[r.URL.Path+"?"+r.URL.RawQuery]++
		b.mu.Unlock()
		n := b.inFlight.Add(1)
		for {
			m := b.maxInFlight.Load()
			if n <= m || b.maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		return func() { b.inFlight.Add(-1) }
	}
	b.users = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer count(r)()
		b.auth.Store(r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/users":
			var in map[string]any
			_ = json.NewDecoder(r.Body).Decode(&in)
			_ = json.NewEncoder(w).Encode(map[string]any{"id": "new", "name": in["name"], "status": "ACTIVE"})
		case r.URL.Path == "/users":
			var items []any
			for _, id := range strings.Split(r.URL.Query().Get("ids"), ",") {
				items = append(items, map[string]any{"id": strings.Trim(id, `[]"`), "name": "n"})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"items": items})
		case r.URL.Path == "/users/404":
			http.NotFound(w, r)
		default:
			id := strings.TrimPrefix(r.URL.Path, "/users/")
			_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "name": "User " + id, "status": "ACTIVE", "__typename": "User"})
		}
	}))
	b.orders = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer count(r)()
		time.Sleep(50 * time.Millisecond)
		uid := r.URL.Query().Get("userId")
		if uid == "2" {
			http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode([]any{map[string]any{"id": "o-" + uid, "total": 9.5}})
	}))
	t.Cleanup(b.users.Close)
	t.Cleanup(b.orders.Close)
	return b
}

func (b *graphqlBackends) count(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[key]
}

func startGraphQL(t *testing.T) (*gateway, *graphqlBackends) {
	t.Helper()
	be := newGraphQLBackends(t)
	g := startGateway(t, graphqlYAML, map[string]string{"USERS": hostPort(be.users), "ORDERS": hostPort(be.orders)})
	return g, be
}

// gqlPost posts a GraphQL request body and returns the status, the Content-Type and the body.
func gqlPost(t *testing.T, g *gateway, path, body, accept string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	req.Header.Set("Authorization", "Bearer abc")
	resp, text := g.do(t, req)
	return resp.StatusCode, resp.Header.Get("Content-Type"), text
}

func gqlBody(query string, vars map[string]any) string {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return string(b)
}

func TestGraphQLResolvesThroughRESTWithPartialErrors(t *testing.T) {
	g, be := startGraphQL(t)
	// Two users in one query via aliases; user 2's orders fail. The siblings' calls run in
	// parallel and user 1's orders (asked twice) are fetched once.
	q := `query Q($a: ID!) { a: user(id: $a) { id name status orders { id total } } b: user(id: "2") { id orders { id } } c: user(id: $a) { orders { id } } }`
	start := time.Now()
	status, ct, body := gqlPost(t, g, "/graphql", gqlBody(q, map[string]any{"a": "1"}), "application/graphql-response+json")
	elapsed := time.Since(start)
	if status != 200 || !strings.HasPrefix(ct, "application/graphql-response+json") {
		t.Fatalf("status %d %q: %s", status, ct, body)
	}
	var res struct {
		Data   map[string]any   `json:"data"`
		Errors []map[string]any `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	wantData := `{"a":{"id":"1","name":"User 1","orders":[{"id":"o-1","total":9.5}],"status":"ACTIVE"},"b":{"id":"2","orders":null},"c":{"orders":[{"id":"o-1"}]}}`
	if got, _ := json.Marshal(res.Data); string(got) != wantData {
		t.Errorf("data = %s\nwant   %s", got, wantData)
	}
	if len(res.Errors) != 1 {
		t.Fatalf("errors = %v, want exactly one (b.orders)", res.Errors)
	}
	e := res.Errors[0]
	ext, _ := e["extensions"].(map[string]any)
	if path, _ := json.Marshal(e["path"]); string(path) != `["b","orders"]` || ext["code"] != "UPSTREAM_ERROR" || ext["status"] != float64(500) {
		t.Errorf("error = %v", e)
	}
	if n := be.count("/orders?userId=1"); n != 1 {
		t.Errorf("identical calls were made %d times, want 1", n)
	}
	if be.maxInFlight.Load() < 2 || elapsed > time.Second {
		t.Errorf("sibling fields did not resolve in parallel: max in flight %d, took %v", be.maxInFlight.Load(), elapsed)
	}
	if be.auth.Load() != "Bearer abc" {
		t.Errorf("Authorization not forwarded: %v", be.auth.Load())
	}
}

func TestGraphQLOverHTTP(t *testing.T) {
	g, _ := startGraphQL(t)
	tests := []struct {
		name        string
		method      string
		target      string
		body        string
		contentType string
		accept      string
		status      int
		wantCT      string
		want        string // substring of the body
	}{
		{"GET query", "GET", "/graphql?query=" + url.QueryEscape(`{ user(id: 5) { name } }`), "", "", "application/json", 200, "application/json", `{"data":{"user":{"name":"User 5"}}}`},
		{"GET with variables and operationName", "GET", "/graphql?operationName=B&query=" + url.QueryEscape(`query A { user(id: 1) { id } } query B($i: ID!) { user(id: $i) { name } }`) + "&variables=" + url.QueryEscape(`{"i":"7"}`), "", "", "", 200, "application/json", `"User 7"`},
		{"GET mutation refused", "GET", "/graphql?query=" + url.QueryEscape(`mutation { createUser(input: {name: "x"}) { id } }`), "", "", "application/graphql-response+json", 405, "application/graphql-response+json", "MUTATION_VIA_GET"},
		{"POST mutation with input", "POST", "/graphql", gqlBody(`mutation($n: NewUser!) { createUser(input: $n) { id name status } }`, map[string]any{"n": map[string]any{"name": "zoe"}}), "application/json", "", 200, "application/json", `{"createUser":{"id":"new","name":"zoe","status":"ACTIVE"}}`},
		{"list with result path", "POST", "/graphql", gqlBody(`{ users(ids: ["1","2"]) { id } }`, nil), "application/json", "", 200, "application/json", `{"users":[{"id":"1"},{"id":"2"}]}`},
		{"404 resolves to null", "POST", "/graphql", gqlBody(`{ user(id: 404) { id } }`, nil), "application/json", "", 200, "application/json", `{"data":{"user":null}}`},
		{"validation error, legacy JSON is 200", "POST", "/graphql", gqlBody(`{ user(id: 1) { nope } }`, nil), "application/json", "application/json", 200, "application/json", "GRAPHQL_VALIDATION_FAILED"},
		{"validation error, graphql-response is 400", "POST", "/graphql", gqlBody(`{ user(id: 1) { nope } }`, nil), "application/json", "application/graphql-response+json", 400, "application/graphql-response+json", `Cannot query field \"nope\"`},
		{"syntax error", "POST", "/graphql", gqlBody(`{ user(id: 1) { `, nil), "application/json", "application/graphql-response+json", 400, "application/graphql-response+json", `"errors"`},
		{"depth limit through a fragment", "POST", "/graphql", gqlBody(`{ user(id: 1) { ...F } } fragment F on User { orders { user { orders { id } } } }`, nil), "application/json", "application/graphql-response+json", 400, "", "QUERY_TOO_DEEP"},
		{"complexity limit", "POST", "/graphql", gqlBody(`{ a: user(id: 1) { id name status } b: user(id: 2) { id name status } c: user(id: 3) { id name status orders { id total } } d: user(id: 4) { id name } }`, nil), "application/json", "application/graphql-response+json", 400, "", "QUERY_TOO_COMPLEX"},
		{"alias limit", "POST", "/graphql", gqlBody(`{ a: user(id: 1) { id } b: user(id: 1) { id } c: user(id: 1) { id } d: user(id: 1) { id } }`, nil), "application/json", "application/graphql-response+json", 400, "", "TOO_MANY_ALIASES"},
		{"introspection off", "POST", "/graphql", gqlBody(`{ __schema { types { name } } }`, nil), "application/json", "application/graphql-response+json", 400, "", "INTROSPECTION_DISABLED"},
		{"__typename is not introspection", "POST", "/graphql", gqlBody(`{ user(id: 1) { __typename } }`, nil), "application/json", "", 200, "", `{"data":{"user":{"__typename":"User"}}}`},
		{"batch", "POST", "/graphql", `[{"query":"{ user(id: 1) { id } }"},{"query":"{ user(id: 2) { name } }"}]`, "application/json", "", 200, "application/json", `[{"data":{"user":{"id":"1"}}},{"data":{"user":{"name":"User 2"}}}]`},
		{"batch too large", "POST", "/graphql", `[{"query":"{ __typename }"},{"query":"{ __typename }"},{"query":"{ __typename }"}]`, "application/json", "", 400, "application/json", "bad_request"},
		{"wrong content type", "POST", "/graphql", `{ user(id: 1) { id } }`, "text/plain", "", 415, "application/json", "unsupported_media_type"},
		{"not acceptable", "POST", "/graphql", gqlBody(`{ user(id: 1) { id } }`, nil), "application/json", "text/html", 406, "application/json", "not_acceptable"},
		{"malformed JSON", "POST", "/graphql", `{"query":`, "application/json", "", 400, "application/json", "bad_request"},
		{"PUT refused", "PUT", "/graphql", `{}`, "application/json", "", 405, "application/json", "method_not_allowed"},
		{"persisted query by hash", "POST", "/graphql", `{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"` + sha("{ user(id: 1) { id } }") + `"}}}`, "application/json", "", 200, "", `{"data":{"user":{"id":"1"}}}`},
		{"unknown persisted hash", "POST", "/graphql", `{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"00"}}}`, "application/json", "", 200, "", "PERSISTED_QUERY_NOT_FOUND"},
		{"allow-list refuses other queries", "POST", "/graphql-locked", gqlBody(`{ user(id: 2) { id } }`, nil), "application/json", "", 200, "", "PERSISTED_QUERY_NOT_ALLOWED"},
		{"interface and union by __typename", "POST", "/graphql-node", gqlBody(`{ node(id: 3) { id ... on User { name } } any(id: 4) { ... on User { id } } }`, nil), "application/json", "", 200, "", `{"data":{"any":{"id":"4"},"node":{"id":"3","name":"User 3"}}}`},
		{"allow-list admits its query", "POST", "/graphql-locked", gqlBody(`{ user(id: 1) { id } }`, nil), "application/json", "", 200, "", `{"data":{"user":{"id":"1"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, g.base+tt.target, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			resp, body := g.do(t, req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.wantCT != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.wantCT) {
				t.Errorf("Content-Type = %q, want %q", resp.Header.Get("Content-Type"), tt.wantCT)
			}
			if !strings.Contains(body, tt.want) {
				t.Errorf("body = %s\nwant it to contain %s", body, tt.want)
			}
		})
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
