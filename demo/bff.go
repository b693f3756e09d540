package demo

import (
	_ "embed"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// The Backends-for-Frontends demo: the services behind the reference design's dashboard and
// product page (users, orders, notifications, recommendations, catalog, reviews) and the
// embedded config that aggregates them (bff.yaml).
//
// Every BFF demo service honours two request headers, which the demo routes forward, so that
// degradation can be shown with curl: "X-Demo-Fail: <service>" makes that service answer 503
// and "X-Demo-Slow: <service>" makes it answer after 3 seconds.

//go:embed bff.yaml
var bffYAML []byte

// BFFConfigYAML returns the embedded BFF demo config (with ${DEMO_*} placeholders).
func BFFConfigYAML() []byte { return append([]byte(nil), bffYAML...) }

// BFFSlowDelay is how long a service told to be slow (X-Demo-Slow) waits before answering.
const BFFSlowDelay = 3 * time.Second

// BFF is a set of running BFF demo services.
type BFF struct {
	servers []*http.Server
	addrs   map[string]string
}

// StartBFF starts every BFF demo service on a free loopback port.
func StartBFF() (*BFF, error) {
	b := &BFF{addrs: map[string]string{}}
	services := []struct {
		name string
		h    http.Handler
	}{
		{"USERS", bffUsers()},
		{"ORDERS", bffOrders()},
		{"NOTIFICATIONS", bffNotifications()},
		{"RECOMMENDATIONS", bffRecommendations()},
		{"CATALOG", bffCatalog()},
		{"REVIEWS", bffReviews()},
	}
	for _, s := range services {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("bff demo service %s: %w", s.name, err)
		}
		srv := &http.Server{Handler: demoFaults(strings.ToLower(s.name), s.h), ReadHeaderTimeout: 5 * time.Second}
		b.servers = append(b.servers, srv)
		b.addrs[s.name] = ln.Addr().String()
		go func() { _ = srv.Serve(ln) }()
	}
	return b, nil
}

// Close stops the BFF demo services.
func (b *BFF) Close() {
	for _, s := range b.servers {
		_ = s.Close()
	}
}

// Lookup resolves the BFF placeholders of bff.yaml: DEMO_BFF_<SERVICE> is that service's
// address (DEMO_BFF_USERS, _ORDERS, _NOTIFICATIONS, _RECOMMENDATIONS, _CATALOG, _REVIEWS).
func (b *BFF) Lookup(name string) (string, bool) {
	if rest, ok := strings.CutPrefix(name, "DEMO_BFF_"); ok {
		v, ok := b.addrs[rest]
		return v, ok
	}
	return "", false
}

// Config returns the BFF demo config with the gateway's public, mobile and web listeners on
// the given addresses (the mobile and web listeners select their profile by port, so they
// need fixed ports).
func (b *BFF) Config(listen, mobileListen, webListen string) (*config.Config, error) {
	lookup := func(name string) (string, bool) {
		switch name {
		case "DEMO_LISTEN":
			return listen, true
		case "DEMO_BFF_MOBILE_LISTEN":
			return mobileListen, true
		case "DEMO_BFF_WEB_LISTEN":
			return webListen, true
		case "DEMO_JWT_SECRET":
			return JWTSecret, true
		}
		return b.Lookup(name)
	}
	return config.Load("demo/bff.yaml (embedded)", bffYAML, lookup)
}

// BFFBanner is the curl tour of the BFF demo, for a gateway on public with the mobile and web
// listeners on mobile and web.
func BFFBanner(public, mobile, web string) string {
	return fmt.Sprintf(`
Backends for Frontends (demo/bff.yaml):
  TOKEN=$(go run ./cmd/gatehouse token -sub 1)
  curl -s -H "Authorization: Bearer $TOKEN" http://%[1]s/bff/dashboard          # 4 services in parallel
  curl -si -H "Authorization: Bearer $TOKEN" -H 'X-Demo-Fail: notifications' -H 'X-Demo-Slow: recommendations' \
       http://%[1]s/bff/dashboard                                                # degraded after 1s, user intact
  curl -si -H "Authorization: Bearer $TOKEN" -H 'X-Demo-Fail: users' http://%[1]s/bff/dashboard   # 502, nothing partial
  curl -s http://%[1]s/bff/products/p1                                           # web: rich page, reviews by review_ids
  curl -s -H 'X-Client-Type: mobile' http://%[1]s/bff/products/p1                # mobile: id, name, price, thumbnail
  curl -s http://%[1]s/bff/m/products/p1                                         # mobile, chosen by route
  curl -s http://%[2]s/bff/products/p1                                           # the mobile gateway (its own listener)
  curl -s http://%[3]s/bff/products/p1                                           # the web gateway
  curl -s -H "Authorization: Bearer $TOKEN" http://%[1]s/bff/me                  # pass-through, streamed untouched
`, public, mobile, web)
}

// demoFaults makes a service fail (503) or stall when the request names it in X-Demo-Fail or
// X-Demo-Slow.
func demoFaults(name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if names(r.Header.Get("X-Demo-Fail"))[name] {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable", "message": name + " is failing on purpose"})
			return
		}
		if names(r.Header.Get("X-Demo-Slow"))[name] {
			select {
			case <-time.After(BFFSlowDelay):
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func names(list string) map[string]bool {
	out := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(strings.ToLower(n)); n != "" {
			out[n] = true
		}
	}
	return out
}

type bffUser struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Plan     string `json:"plan"`
	Internal string `json:"internal_notes"`
}

var bffUsersData = map[string]bffUser{
	"1": {"1", "Ada Lovelace", "ada@example.com", "pro", "vip"},
	"2": {"2", "Alan Turing", "alan@example.com", "free", ""},
	"3": {"3", "Grace Hopper", "grace@example.com", "pro", ""},
}

func bffUsers() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		u, ok := bffUsersData[r.PathValue("id")]
		if !ok {
			notFound(w, "user")
			return
		}
		writeJSON(w, 200, u)
	})
	return mux
}

func bffOrders() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}/orders", func(w http.ResponseWriter, r *http.Request) {
		limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil || limit <= 0 || limit > 50 {
			limit = 20
		}
		out := []map[string]any{}
		for i := range 8 {
			if len(out) == limit {
				break
			}
			out = append(out, map[string]any{"id": fmt.Sprintf("o-%s-%d", r.PathValue("id"), 100+i), "total": 10 + i*5, "status": "shipped"})
		}
		writeJSON(w, 200, out)
	})
	return mux
}

func bffNotifications() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}/notifications", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []map[string]any{
			{"id": "n1", "text": "Your order shipped", "unread": true},
			{"id": "n2", "text": "New login from Firefox", "unread": true},
		})
	})
	return mux
}

func bffRecommendations() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}/recommendations", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []map[string]any{{"product_id": "p2", "score": 0.91}, {"product_id": "p3", "score": 0.74}})
	})
	mux.HandleFunc("GET /products/{id}/related", func(w http.ResponseWriter, r *http.Request) {
		out := make([]map[string]any, 0, 12)
		for i := range 12 {
			out = append(out, map[string]any{"id": fmt.Sprintf("rel-%d", i+1), "name": fmt.Sprintf("Related product %d", i+1)})
		}
		writeJSON(w, 200, out)
	})
	return mux
}

type bffImage struct {
	ThumbnailURL string `json:"thumbnail_url"`
	FullURL      string `json:"full_url"`
}

type bffProduct struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Price           float64           `json:"price"`
	FullDescription string            `json:"full_description"`
	Images          []bffImage        `json:"images"`
	Specifications  map[string]string `json:"specifications"`
	ReviewIDs       []string          `json:"review_ids"`
	Supplier        string            `json:"supplier_internal"`
}

func bffProductsData() map[string]bffProduct {
	img := func(id string, n int) []bffImage {
		out := make([]bffImage, n)
		for i := range out {
			out[i] = bffImage{fmt.Sprintf("https://img.example.com/%s/%d-thumb.jpg", id, i+1), fmt.Sprintf("https://img.example.com/%s/%d.jpg", id, i+1)}
		}
		return out
	}
	ids := func(from, to int) []string {
		var out []string
		for i := from; i <= to; i++ {
			out = append(out, "r"+strconv.Itoa(i))
		}
		return out
	}
	return map[string]bffProduct{
		"p1": {"p1", "Mechanical keyboard", 89.00, "A tenkeyless mechanical keyboard with hot-swappable switches and PBT keycaps.",
			img("p1", 3), map[string]string{"layout": "TKL", "switches": "brown", "connection": "USB-C"}, ids(1, 12), "acme-kb"},
		"p2": {"p2", "USB-C cable", 7.50, "A braided 2 m USB-C cable, 100 W.", img("p2", 1), map[string]string{"length": "2m"}, ids(13, 14), "acme-cables"},
		"p3": {"p3", "27\" monitor", 249.00, "A 27 inch 1440p IPS monitor.", img("p3", 2), map[string]string{"size": "27\""}, nil, "acme-displays"},
	}
}

func bffCatalog() http.Handler {
	products := bffProductsData()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := products[r.PathValue("id")]
		if !ok {
			notFound(w, "product")
			return
		}
		writeJSON(w, 200, p)
	})
	return mux
}

func bffReviews() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /reviews", func(w http.ResponseWriter, r *http.Request) {
		out := []map[string]any{}
		for _, id := range strings.Split(r.URL.Query().Get("ids"), ",") {
			if id == "" || len(out) == 50 {
				continue
			}
			n, _ := strconv.Atoi(strings.TrimPrefix(id, "r"))
			out = append(out, map[string]any{"id": id, "rating": 3 + n%3, "text": "Review " + id, "author": "user-" + strconv.Itoa(n)})
		}
		writeJSON(w, 200, out)
	})
	mux.HandleFunc("GET /products/{id}/reviews/summary", func(w http.ResponseWriter, r *http.Request) {
		p, ok := bffProductsData()[r.PathValue("id")]
		if !ok {
			notFound(w, "product")
			return
		}
		sum := 0
		for _, id := range p.ReviewIDs {
			n, _ := strconv.Atoi(strings.TrimPrefix(id, "r"))
			sum += 3 + n%3
		}
		avg := 0.0
		if len(p.ReviewIDs) > 0 {
			avg = float64(sum) / float64(len(p.ReviewIDs))
		}
		writeJSON(w, 200, map[string]any{"count": len(p.ReviewIDs), "average_rating": avg})
	})
	return mux
}
