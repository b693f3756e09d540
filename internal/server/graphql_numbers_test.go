package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestGraphQLKeepsNumericIDs checks that numbers in backend answers keep their digits: an ID
// above 2^53 came back as "9.007199254740992e+15" and the next backend was called with a
// neighbouring record's ID, since answers were decoded as float64.
func TestGraphQLKeepsNumericIDs(t *testing.T) {
	var mu sync.Mutex
	var gotUserIDs []string
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id": 9007199254740993, "name": "big"}`)
	}))
	defer users.Close()
	orders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotUserIDs = append(gotUserIDs, r.URL.Query().Get("userId"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[{"id": 12345678, "total": 1}]`)
	}))
	defer orders.Close()
	g := startGateway(t, graphqlYAML, map[string]string{"USERS": hostPort(users), "ORDERS": hostPort(orders)})
	status, _, body := gqlPost(t, g, "/graphql", gqlBody(`{ user(id: "1") { id orders { id } } }`, nil), "")
	var res struct {
		Data struct {
			User struct {
				ID     string `json:"id"`
				Orders []struct {
					ID string `json:"id"`
				} `json:"orders"`
			} `json:"user"`
		} `json:"data"`
	}
	_ = json.Unmarshal([]byte(body), &res)
	mu.Lock()
	defer mu.Unlock()
	if status != 200 || res.Data.User.ID != "9007199254740993" || len(res.Data.User.Orders) != 1 ||
		res.Data.User.Orders[0].ID != "12345678" || len(gotUserIDs) != 1 || gotUserIDs[0] != "9007199254740993" {
		t.Fatalf("status %d body %s\norders backend got userId=%q", status, body, gotUserIDs)
	}
}
