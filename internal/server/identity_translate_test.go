package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/middleware/auth"
)

// TestGraphQLCallsCarryIdentity checks that a GraphQL route's REST calls carry the identity
// headers the auth middleware set, as proxied and aggregated requests do, and never a
// client's own value for them.
func TestGraphQLCallsCarryIdentity(t *testing.T) {
	var mu sync.Mutex
	var consumers []string
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		consumers = append(consumers, r.Header.Get("X-Consumer"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id": "1", "name": "a"}`)
	}))
	defer users.Close()
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
auth:
  consumers: [{ name: partner-a, keys: ["${KEY_HASH}"] }]
  identity_headers: { X-Consumer: consumer }
services: [{ name: users, targets: [{ url: "http://${USERS}" }] }]
routes:
  - name: graphql
    match: { path: /graphql }
    plugins: { api_key: {} }
    graphql:
      schema: "type Query { user(id: ID!): User } type User { id: ID! name: String }"
      resolvers: { Query.user: { service: users, path: "/users/{args.id}" } }
`, map[string]string{"USERS": hostPort(users), "KEY_HASH": auth.HashKey(partnerKey)})
	req, _ := http.NewRequest(http.MethodPost, g.base+"/graphql", strings.NewReader(gqlBody(`{ user(id: "1") { name } }`, nil)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", partnerKey)
	req.Header.Set("X-Consumer", "mallory")
	resp, body := g.do(t, req)
	mu.Lock()
	defer mu.Unlock()
	if resp.StatusCode != 200 || len(consumers) != 1 || consumers[0] != "partner-a" {
		t.Fatalf("status %d %s; the backend saw X-Consumer %q, want [partner-a]", resp.StatusCode, body, consumers)
	}
}
