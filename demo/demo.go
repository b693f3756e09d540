// Package demo holds the built-in demo of `gatehouse demo`: small in-process HTTP services
// (users v1 on two instances, users v2, orders, products on two weighted instances) with a
// little JSON data, and the embedded default config that routes to them.
package demo

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"

	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

//go:embed gatehouse.yaml
var configYAML []byte

// Demo credentials. They are public (printed in the banner, written here) and trusted only by
// the demo config: never reuse them.
const (
	// JWTSecret is the HMAC secret of the demo issuer (`gatehouse token` signs with it by default).
	JWTSecret = "gatehouse-demo-secret-do-not-use-in-production"
	// JWTIssuer is the demo issuer's iss.
	JWTIssuer = "gatehouse-demo"
	// JWTAudience is the audience the demo issuer expects.
	JWTAudience = "demo"
	// APIKey is the demo consumer's API key; the demo config stores only its SHA-256.
	APIKey = "demo-key-8c1f9e2a7b3d4c5e6f708192a3b4c5d6"
)

// ConfigYAML returns the embedded demo config (with ${DEMO_*} placeholders).
func ConfigYAML() []byte { return append([]byte(nil), configYAML...) }

// Demo is a set of running demo services.
type Demo struct {
	servers []*http.Server
	addrs   map[string]string
}

type user struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

var users = []user{
	{"1", "Ada Lovelace", "ada@example.com"},
	{"2", "Alan Turing", "alan@example.com"},
	{"3", "Grace Hopper", "grace@example.com"},
}

type order struct {
	ID     string  `json:"id"`
	UserID string  `json:"user_id"`
	Total  float64 `json:"total"`
	Status string  `json:"status"`
}

var orders = []order{
	{"1001", "1", 42.50, "shipped"},
	{"1002", "1", 9.99, "processing"},
	{"1003", "2", 120.00, "delivered"},
}

type product struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Price float64 `json:"price"`
}

var products = []product{
	{"p1", "Mechanical keyboard", 89.00},
	{"p2", "USB-C cable", 7.50},
	{"p3", "27\" monitor", 249.00},
}

// Start starts every demo service on a free loopback port.
func Start() (*Demo, error) {
	d := &Demo{addrs: map[string]string{}}
	services := []struct {
		name string
		h    http.Handler
	}{
		{"USERS_1", usersV1("users-1")},
		{"USERS_2", usersV1("users-2")},
		{"USERS_V2", usersV2()},
		{"ORDERS", ordersSvc()},
		{"PRODUCTS_1", productsSvc("products-1")},
		{"PRODUCTS_2", productsSvc("products-2")},
	}
	for _, s := range services {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("demo service %s: %w", s.name, err)
		}
		srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 5 * time.Second}
		d.servers = append(d.servers, srv)
		d.addrs[s.name] = ln.Addr().String()
		go func() { _ = srv.Serve(ln) }()
	}
	return d, nil
}

// Close stops the demo services.
func (d *Demo) Close() {
	for _, s := range d.servers {
		_ = s.Close()
	}
}

// Addr returns the address of a demo service by its placeholder name (e.g. "USERS_1").
func (d *Demo) Addr(name string) string { return d.addrs[name] }

// Config returns the demo config with the gateway listening on listen and the admin API
// (dashboard, metrics) on admin ("" for none).
func (d *Demo) Config(listen, admin string) (*config.Config, error) {
	lookup := func(name string) (string, bool) {
		switch name {
		case "DEMO_LISTEN":
			return listen, true
		case "DEMO_ADMIN":
			return admin, true
		case "DEMO_JWT_SECRET":
			return JWTSecret, true
		case "DEMO_API_KEY_HASH":
			sum := sha256.Sum256([]byte(APIKey))
			return "sha256:" + hex.EncodeToString(sum[:]), true
		}
		if v, ok := d.addrs[strings.TrimPrefix(name, "DEMO_")]; ok && strings.HasPrefix(name, "DEMO_") {
			return v, true
		}
		return "", false
	}
	return config.Load("demo/gatehouse.yaml (embedded)", configYAML, lookup)
}

// Banner is what `gatehouse demo` prints once the gateway listens on addr.
func (d *Demo) Banner(addr string) string {
	base := "http://" + addr
	return fmt.Sprintf(`
Gatehouse demo is running on %[1]s
Built-in services: users v1 (2 instances), users v2, orders, products (2 weighted instances).

Try:
  curl -s %[1]s/api/v1/users/1                           # URL versioning: v1
  curl -s %[1]s/api/v2/users/1                           # URL versioning: v2 (another service)
  curl -s -H 'Accept-Version: v2' %[1]s/api/users/1      # header versioning: v2
  curl -s %[1]s/api/users/1                              # header versioning: default v1
  for i in 1 2 3 4; do curl -s %[1]s/api/v1/users | grep -o '"served_by":"[^"]*"'; done   # round robin
  curl -s '%[1]s/api/v1/orders?user_id=1'                # orders of user 1
  curl -s %[1]s/api/v1/products/p1                       # products (weighted 3:1)
  curl -si -X DELETE %[1]s/api/v1/orders/1001            # 405 with an Allow header
  curl -si --path-as-is %[1]s/api/v1/%%2e%%2e/admin          # dot segments are resolved before routing: 404
  curl -si %[1]s/api/v1/users/1%%2F..                    # ambiguous encoded slash: 400
  curl -si %[1]s/nope                                    # 404, JSON error with request_id

Authentication (/api/v1/me needs the users:read permission):
  curl -si %[1]s/api/v1/me                               # 401 missing_credentials
  TOKEN=$(go run ./cmd/gatehouse token -sub 1 -perm users:read)   # a demo JWT (HS256, 1h)
  curl -s -H "Authorization: Bearer $TOKEN" %[1]s/api/v1/me
  curl -si -H "Authorization: Bearer $(go run ./cmd/gatehouse token -sub 2)" %[1]s/api/v1/me   # 403 forbidden
  curl -s -H 'X-API-Key: %[2]s' %[1]s/api/v1/me   # the demo consumer's API key
  curl -s -H 'X-User-ID: 3' %[1]s/api/v1/users/1   # spoofed identity headers never reach a service

Press Ctrl-C to stop.
`, base, APIKey)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter, what string) {
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "message": what + " not found"})
}

func usersV1(instance string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"users": users, "served_by": instance, "version": "v1"})
	})
	mux.HandleFunc("POST /users", func(w http.ResponseWriter, r *http.Request) {
		var u user
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&u); err != nil || u.Name == "" {
			writeJSON(w, 400, map[string]string{"error": "bad_request", "message": "send {\"name\": ..., \"email\": ...}"})
			return
		}
		u.ID = "4"
		writeJSON(w, 201, map[string]any{"user": u, "served_by": instance})
	})
	// /me answers with who the gateway says is calling: it trusts X-User-ID and X-Consumer
	// because the gateway strips client copies and sets them after authentication.
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		out := map[string]any{"user_id": r.Header.Get("X-User-ID"), "consumer": r.Header.Get("X-Consumer"), "served_by": instance}
		for _, u := range users {
			if u.ID == r.Header.Get("X-User-ID") {
				out["user"] = u
			}
		}
		writeJSON(w, 200, out)
	})
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		for _, u := range users {
			if u.ID == r.PathValue("id") {
				writeJSON(w, 200, map[string]any{"user": u, "served_by": instance, "version": "v1", "request_id": r.Header.Get("X-Request-Id"),
					"x_user_id": r.Header.Get("X-User-ID")})
				return
			}
		}
		notFound(w, "user")
	})
	return mux
}

func usersV2() http.Handler {
	mux := http.NewServeMux()
	shape := func(u user) map[string]any {
		first, last, _ := strings.Cut(u.Name, " ")
		return map[string]any{"id": u.ID, "name": map[string]string{"first": first, "last": last}, "contact": map[string]string{"email": u.Email}}
	}
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		out := make([]map[string]any, len(users))
		for i, u := range users {
			out[i] = shape(u)
		}
		writeJSON(w, 200, map[string]any{"data": out, "served_by": "users-v2", "version": "v2"})
	})
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		for _, u := range users {
			if u.ID == r.PathValue("id") {
				writeJSON(w, 200, map[string]any{"data": shape(u), "served_by": "users-v2", "version": "v2"})
				return
			}
		}
		notFound(w, "user")
	})
	return mux
}

func ordersSvc() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
		uid := r.URL.Query().Get("user_id")
		out := []order{}
		for _, o := range orders {
			if uid == "" || o.UserID == uid {
				out = append(out, o)
			}
		}
		writeJSON(w, 200, map[string]any{"orders": out, "served_by": "orders"})
	})
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		for _, o := range orders {
			if o.ID == r.PathValue("id") {
				writeJSON(w, 200, map[string]any{"order": o, "served_by": "orders"})
				return
			}
		}
		notFound(w, "order")
	})
	return mux
}

func productsSvc(instance string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"products": products, "served_by": instance})
	})
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		for _, p := range products {
			if p.ID == r.PathValue("id") {
				writeJSON(w, 200, map[string]any{"product": p, "served_by": instance})
				return
			}
		}
		notFound(w, "product")
	})
	return mux
}
