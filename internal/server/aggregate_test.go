package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// aggBackend is a JSON test upstream for aggregate routes: it records every request and answers
// according to a mode that can be switched while it runs.
type aggBackend struct {
	srv   *httptest.Server
	mode  atomic.Value // string: ok, 500, 404, hang, notjson, big
	delay atomic.Int64 // before answering, in ns
	body  atomic.Value // string: the JSON answered in mode ok
	calls atomic.Int64
	mu    sync.Mutex
	reqs  []*http.Request
}

func newAggBackend(t *testing.T, body string) *aggBackend {
	t.Helper()
	b := &aggBackend{}
	b.mode.Store("ok")
	b.body.Store(body)
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *aggBackend) serve(w http.ResponseWriter, r *http.Request) {
	b.calls.Add(1)
	b.mu.Lock()
	b.reqs = append(b.reqs, r.Clone(r.Context()))
	b.mu.Unlock()
	if d := time.Duration(b.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	switch b.mode.Load().(string) {
	case "500":
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":"boom","debug":"at 10.1.2.3:5432"}`)
	case "404":
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"not_found"}`)
	case "hang":
		<-r.Context().Done()
	case "notjson":
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html>oops</html>")
	case "big":
		io.WriteString(w, `{"blob":"`+strings.Repeat("x", 4096)+`"}`)
	default:
		io.WriteString(w, b.body.Load().(string))
	}
}

func (b *aggBackend) last(t *testing.T) *http.Request {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.reqs) == 0 {
		t.Fatal("backend was not called")
	}
	return b.reqs[len(b.reqs)-1]
}

// aggToken signs an HS256 JWT for the test issuer.
func aggToken(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "HS256", "typ": "JWT"}) + "." + enc(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func decodeObject(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, body)
	}
	return m
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const aggSecret = "aggregate-test-secret-of-32-bytes-at-least"

const aggDashboardYAML = `version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { access_log: { enabled: false } }
services:
  - { name: users, targets: [{ url: "http://${USERS}" }] }
  - { name: orders, targets: [{ url: "http://${ORDERS}" }] }
  - { name: notifications, targets: [{ url: "http://${NOTIFS}" }] }
  - name: recommendations
    targets: [{ url: "http://${RECS}" }]
    circuit_breaker: { failure_threshold: 2, recovery_timeout: 1m }
auth:
  issuers: [{ name: t, issuer: test, audiences: [api], algorithms: [HS256], hmac_secret: "${SECRET}" }]
routes:
  - name: dashboard
    match: { path: /dashboard, methods: [GET] }
    plugins: { jwt: { issuers: [t] } }
    aggregate:
      timeout: 2s
      max_response_bytes: 1KiB
      forward_headers: [Accept-Language]
      calls:
        - { name: user, service: users, path: "/users/{claims.sub}", required: true, shape: { omit: [internal_notes] } }
        - { name: recent_orders, service: orders, path: "/users/{claims.sub}/orders?limit=5", timeout: 300ms, default: [] }
        - { name: notifications, service: notifications, path: "/users/{claims.sub}/notifications", query: { unread: "true" }, timeout: 300ms, default: [] }
        - { name: recommendations, service: recommendations, path: "/users/{claims.sub}/recommendations", timeout: 300ms, default: [] }
`

type aggDashboard struct {
	g                           *gateway
	users, orders, notifs, recs *aggBackend
	token                       string
}

func startAggDashboard(t *testing.T) *aggDashboard {
	t.Helper()
	d := &aggDashboard{
		users:  newAggBackend(t, `{"id":"7","name":"Ada","internal_notes":"vip"}`),
		orders: newAggBackend(t, `[{"id":"o1"},{"id":"o2"}]`),
		notifs: newAggBackend(t, `[{"id":"n1"}]`),
		recs:   newAggBackend(t, `[{"product_id":"p2"}]`),
	}
	d.g = startGateway(t, aggDashboardYAML, map[string]string{"USERS": hostPort(d.users.srv), "ORDERS": hostPort(d.orders.srv),
		"NOTIFS": hostPort(d.notifs.srv), "RECS": hostPort(d.recs.srv), "SECRET": aggSecret})
	d.token = aggToken(t, aggSecret, map[string]any{"iss": "test", "aud": "api", "sub": "7"})
	return d
}

func (d *aggDashboard) get(t *testing.T, hdr ...string) (*http.Response, string, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, body := d.g.get(t, "/dashboard", append([]string{"Authorization", "Bearer " + d.token}, hdr...)...)
	return resp, body, time.Since(start)
}

// TestAggregateDashboard reproduces the reference design's RequestAggregator.get_dashboard with
// one slow and one failing optional backend: the answer comes in about the optional timeout,
// not the sum of the latencies, is marked degraded, and the required data is intact.
func TestAggregateDashboard(t *testing.T) {
	d := startAggDashboard(t)

	// All healthy: every part present, not degraded.
	resp, body, _ := d.get(t)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	want := `{"_degraded":false,"notifications":[{"id":"n1"}],"recent_orders":[{"id":"o1"},{"id":"o2"}],"recommendations":[{"product_id":"p2"}],"user":{"id":"7","name":"Ada"}}`
	if got := mustJSON(t, decodeObject(t, body)); got != want {
		t.Fatalf("dashboard:\n got %s\nwant %s", got, want)
	}
	if resp.Header.Get("X-Gatehouse-Degraded") != "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers: %v", resp.Header)
	}

	// Two required-path backends take 200ms each, recommendations hangs, notifications fails.
	d.users.delay.Store(int64(200 * time.Millisecond))
	d.orders.delay.Store(int64(200 * time.Millisecond))
	d.recs.mode.Store("hang")
	d.notifs.mode.Store("500")
	resp, body, took := d.get(t, "Accept-Language", "de", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if resp.StatusCode != 200 {
		t.Fatalf("degraded dashboard status %d: %s", resp.StatusCode, body)
	}
	// Parallel: ≈ the 300ms optional timeout. In sequence it would be 200+200+300 = 700ms.
	if took < 290*time.Millisecond || took > 600*time.Millisecond {
		t.Errorf("degraded dashboard took %v; want about the 300ms optional timeout", took)
	}
	got := decodeObject(t, body)
	if got["_degraded"] != true || mustJSON(t, got["user"]) != `{"id":"7","name":"Ada"}` || mustJSON(t, got["recent_orders"]) != `[{"id":"o1"},{"id":"o2"}]` ||
		mustJSON(t, got["notifications"]) != `[]` || mustJSON(t, got["recommendations"]) != `[]` {
		t.Fatalf("degraded dashboard: %s", body)
	}
	if h := resp.Header.Get("X-Gatehouse-Degraded"); h != "notifications;reason=status_500, recommendations;reason=timeout" {
		t.Fatalf("X-Gatehouse-Degraded = %q", h)
	}
	if strings.Contains(body, "10.1.2.3") || strings.Contains(body, "127.0.0.1") {
		t.Fatalf("internal details leaked: %s", body)
	}

	// What each backend received: the templated path and query, the request ID, the trace
	// context, the identity header set by auth, the forwarded header, never the token.
	id := resp.Header.Get("X-Request-Id")
	for _, c := range []struct {
		b   *aggBackend
		uri string
	}{{d.users, "/users/7"}, {d.orders, "/users/7/orders?limit=5"}, {d.notifs, "/users/7/notifications?unread=true"}, {d.recs, "/users/7/recommendations"}} {
		r := c.b.last(t)
		if r.RequestURI != c.uri || r.Header.Get("X-Request-Id") != id || id == "" || r.Header.Get("X-User-Id") != "7" ||
			r.Header.Get("Accept-Language") != "de" || r.Header.Get("Authorization") != "" ||
			r.Header.Get("Traceparent") != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
			t.Errorf("backend got %s %v", r.RequestURI, r.Header)
		}
	}
}

// TestAggregateOpenCircuitYieldsDefault: once the recommendations breaker is open, the call is
// not made at all and yields its default at once.
func TestAggregateOpenCircuitYieldsDefault(t *testing.T) {
	d := startAggDashboard(t)
	d.recs.mode.Store("500")
	for range 2 {
		d.get(t) // two failures open the breaker (failure_threshold: 2)
	}
	before := d.recs.calls.Load()
	resp, body, took := d.get(t)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("X-Gatehouse-Degraded"), "recommendations;reason=circuit_open") {
		t.Fatalf("status %d, degraded %q: %s", resp.StatusCode, resp.Header.Get("X-Gatehouse-Degraded"), body)
	}
	if d.recs.calls.Load() != before {
		t.Fatal("a call went through an open circuit")
	}
	if took > 250*time.Millisecond {
		t.Errorf("open circuit took %v; want an immediate default", took)
	}
}

// TestAggregateRequiredFailure: a failing required call fails the request with a clear JSON
// error and nothing partial; the status says why.
func TestAggregateRequiredFailure(t *testing.T) {
	d := startAggDashboard(t)
	tests := []struct {
		mode   string
		status int
		code   string
		msg    string
	}{
		{"500", 502, "bad_gateway", `required backend call "user" answered status 500`},
		{"404", 404, "not_found", `required backend call "user" found nothing`},
		{"notjson", 502, "bad_gateway", `required backend call "user" did not answer with valid JSON`},
		{"big", 502, "bad_gateway", `required backend call "user" answered more than 1024 bytes`},
		{"hang", 504, "gateway_timeout", `required backend call "user" timed out`},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			d.users.mode.Store(tt.mode)
			resp, body, took := d.get(t)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			e := decodeError(t, resp, body)
			if e.Error != tt.code || e.Message != tt.msg {
				t.Fatalf("error %+v; want %s %q", e, tt.code, tt.msg)
			}
			if strings.Contains(body, "recent_orders") || strings.Contains(body, "o1") || strings.Contains(body, "10.1.2.3") {
				t.Fatalf("partial or internal data in the error: %s", body)
			}
			if tt.mode == "hang" && (took < 1900*time.Millisecond || took > 3*time.Second) {
				t.Errorf("hanging required call answered after %v; want the 2s aggregate timeout", took)
			}
		})
	}
	// A required failure does not wait for slow optional calls.
	d.users.mode.Store("500")
	d.recs.mode.Store("hang")
	if resp, body, took := d.get(t); resp.StatusCode != 502 || took > 250*time.Millisecond {
		t.Fatalf("required failure with a hanging optional call: %d after %v: %s", resp.StatusCode, took, body)
	}
	// Without a token the route's jwt plugin refuses before any backend is called.
	before := d.users.calls.Load()
	if resp, _ := d.g.get(t, "/dashboard"); resp.StatusCode != 401 || d.users.calls.Load() != before {
		t.Fatalf("unauthenticated: %d", resp.StatusCode)
	}
}

const aggChainYAML = `version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { access_log: { enabled: false } }
services:
  - { name: catalog, targets: [{ url: "http://${CATALOG}" }] }
  - { name: reviews, targets: [{ url: "http://${REVIEWS}" }] }
routes:
  - name: product
    match: { path: "/products/{id}" }
    aggregate:
      calls:
        - { name: product, service: catalog, path: "/products/{id}", extract: data, required: true }
        - name: reviews
          service: reviews
          path: "/reviews"
          query: { ids: "{product.review_ids}", lang: "{query.lang|en}" }
          default: []
          key: product.reviews
          shape: { select: [id, rating], limit: { ".": 2 } }
  - name: optional-chain
    match: { path: "/loose/{id}" }
    aggregate:
      calls:
        - { name: product, service: catalog, path: "/products/{id}", extract: data, timeout: 200ms }
        - { name: reviews, service: reviews, path: "/reviews?ids={product.review_ids}", default: [] }
  - name: traversal
    match: { path: "/t/{id}" }
    aggregate:
      calls:
        - { name: product, service: catalog, path: "/products/{id}/x", required: true }
`

// TestAggregateSequentialChaining: the reviews call waits for the product and uses its
// review_ids; when the product (optional) fails, the reviews call is not made.
func TestAggregateSequentialChaining(t *testing.T) {
	catalog := newAggBackend(t, `{"data":{"id":"p1","name":"Keyboard","review_ids":["r1","r2","r3"]}}`)
	reviews := newAggBackend(t, `[{"id":"r1","rating":5,"author":"a"},{"id":"r2","rating":4,"author":"b"},{"id":"r3","rating":3,"author":"c"}]`)
	catalog.delay.Store(int64(100 * time.Millisecond))
	reviews.delay.Store(int64(100 * time.Millisecond))
	g := startGateway(t, aggChainYAML, map[string]string{"CATALOG": hostPort(catalog.srv), "REVIEWS": hostPort(reviews.srv)})

	start := time.Now()
	resp, body := g.get(t, "/products/p1?lang=de")
	took := time.Since(start)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	want := `{"_degraded":false,"product":{"id":"p1","name":"Keyboard","review_ids":["r1","r2","r3"],"reviews":[{"id":"r1","rating":5},{"id":"r2","rating":4}]}}`
	if got := mustJSON(t, decodeObject(t, body)); got != want {
		t.Fatalf("chained:\n got %s\nwant %s", got, want)
	}
	if r := reviews.last(t); r.URL.Query().Get("ids") != "r1,r2,r3" || r.URL.Query().Get("lang") != "de" {
		t.Fatalf("reviews called with %s", r.RequestURI)
	}
	if took < 200*time.Millisecond {
		t.Fatalf("chained calls took %v; the second must start after the first (100ms each)", took)
	}

	// The product is optional on /loose: when it fails, its dependent is not called either.
	catalog.mode.Store("hang")
	before := reviews.calls.Load()
	resp, body = g.get(t, "/loose/p1")
	if resp.StatusCode != 200 || resp.Header.Get("X-Gatehouse-Degraded") != "product;reason=timeout, reviews;reason=dependency" {
		t.Fatalf("status %d, degraded %q: %s", resp.StatusCode, resp.Header.Get("X-Gatehouse-Degraded"), body)
	}
	if got := mustJSON(t, decodeObject(t, body)); got != `{"_degraded":true,"product":null,"reviews":[]}` || reviews.calls.Load() != before {
		t.Fatalf("dependent of a failed call: %s (reviews calls %d -> %d)", got, before, reviews.calls.Load())
	}

	// Path parameters are escaped into one segment: no traversal on the backend.
	catalog.mode.Store("ok")
	catalog.delay.Store(0)
	if resp, body := g.get(t, "/t/a%20b%3F"); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	} else if r := catalog.last(t); r.RequestURI != "/products/a%20b%3F/x" {
		t.Fatalf("backend got %q", r.RequestURI)
	}
}

// TestAggregateProfiles: the same aggregate shaped for mobile and web clients, chosen by a
// header, and by host; the default profile; Vary.
func TestAggregateProfiles(t *testing.T) {
	catalog := newAggBackend(t, `{"id":"p1","name":"Keyboard","price":89,"full_description":"long","images":[{"thumbnail_url":"t1","full_url":"f1"},{"thumbnail_url":"t2","full_url":"f2"}],"supplier":"x"}`)
	reviews := newAggBackend(t, `[1,2,3,4,5,6,7,8,9,10,11,12]`)
	g := startGateway(t, `version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { access_log: { enabled: false } }
services:
  - { name: catalog, targets: [{ url: "http://${CATALOG}" }] }
  - { name: reviews, targets: [{ url: "http://${REVIEWS}" }] }
routes:
  - name: page
    match: { path: "/p/{id}" }
    response_headers: { set: { Cache-Control: "max-age=5" } }
    aggregate:
      default_profile: web
      calls:
        - { name: product, service: catalog, path: "/products/{id}", required: true, merge: true }
        - { name: reviews, service: reviews, path: "/reviews/{id}", default: [] }
      profiles:
        - name: mobile
          match: { headers: { X-Client-Type: mobile } }
          skip: [reviews]
          calls: { product: { rename: { "images[0].thumbnail_url": thumbnail }, select: [id, name, price, thumbnail] } }
        - name: mobile-host
          match: { hosts: ["m.example.com"] }
          skip: [reviews]
          calls: { product: { select: [id, name] } }
        - name: web
          match: { headers: { X-Client-Type: { regex: "^(web|desktop)$" } } }
          calls: { product: { rename: { full_description: description, "images[].full_url": images }, select: [id, name, description, price, images] } }
          response: { limit: { reviews: 10 } }
`, map[string]string{"CATALOG": hostPort(catalog.srv), "REVIEWS": hostPort(reviews.srv)})

	tests := []struct {
		name    string
		hdr     []string
		profile string
		want    string
	}{
		{"mobile by header", []string{"X-Client-Type", "mobile"}, "mobile", `{"_degraded":false,"id":"p1","name":"Keyboard","price":89,"thumbnail":"t1"}`},
		{"mobile by host", []string{"Host", "M.example.com:8080"}, "mobile-host", `{"_degraded":false,"id":"p1","name":"Keyboard"}`},
		{"web by header", []string{"X-Client-Type", "desktop"}, "web",
			`{"_degraded":false,"description":"long","id":"p1","images":["f1","f2"],"name":"Keyboard","price":89,"reviews":[1,2,3,4,5,6,7,8,9,10]}`},
		{"default profile", nil, "web",
			`{"_degraded":false,"description":"long","id":"p1","images":["f1","f2"],"name":"Keyboard","price":89,"reviews":[1,2,3,4,5,6,7,8,9,10]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := reviews.calls.Load()
			resp, body := g.get(t, "/p/p1", tt.hdr...)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := mustJSON(t, decodeObject(t, body)); got != tt.want {
				t.Fatalf("\n got %s\nwant %s", got, tt.want)
			}
			if resp.Header.Get("X-Gatehouse-Profile") != tt.profile || resp.Header.Get("Vary") != "X-Client-Type" || resp.Header.Get("Cache-Control") != "max-age=5" {
				t.Fatalf("headers %v", resp.Header)
			}
			if skipped := reviews.calls.Load() == before; skipped != strings.HasPrefix(tt.profile, "mobile") {
				t.Fatalf("reviews call made = %v for profile %s", !skipped, tt.profile)
			}
		})
	}
	// The mobile payload is a fraction of the web one.
	_, mobile := g.get(t, "/p/p1", "X-Client-Type", "mobile")
	_, web := g.get(t, "/p/p1", "X-Client-Type", "web")
	if len(mobile)*3 > len(web)*2 {
		t.Fatalf("mobile payload %dB is not much smaller than web %dB", len(mobile), len(web))
	}
}

// TestAggregatePassthroughStreams: a one-call passthrough aggregate streams the backend's
// response untouched and as it arrives.
func TestAggregatePassthroughStreams(t *testing.T) {
	release := make(chan struct{})
	var got atomic.Value
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.RequestURI)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Backend", "feed")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: second\n\n")
	}))
	t.Cleanup(backend.Close)
	g := startGateway(t, `version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
server: { access_log: { enabled: false } }
services:
  - { name: feed, targets: [{ url: "http://${FEED}" }] }
routes:
  - name: feed
    match: { path: "/feed/{topic}" }
    aggregate:
      calls: [{ name: feed, service: feed, path: "/topics/{topic}/events?since={query.since|0}", passthrough: true }]
`, map[string]string{"FEED": hostPort(backend)})

	resp, err := http.Get(g.base + "/feed/news?since=5")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Backend") != "feed" || resp.Header.Get("Content-Type") != "text/event-stream" ||
		resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	first := make([]byte, len("data: first\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "data: first\n\n" {
		t.Fatalf("first event %q, %v (must arrive before the backend finishes)", first, err)
	}
	close(release)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "data: second\n\n" {
		t.Fatalf("rest %q", rest)
	}
	if got.Load() != "/topics/news/events?since=5" {
		t.Fatalf("backend got %v", got.Load())
	}
}
