package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/demo"
)

type bffGateway struct {
	public, mobile, web string
	usersAddr           string
	token               string
}

// startBFFDemo runs the BFF demo services and the embedded demo/bff.yaml through the real server.
func startBFFDemo(t *testing.T) *bffGateway {
	t.Helper()
	b, err := demo.StartBFF()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	mobile, web := freeAddr(t), freeAddr(t)
	cfg, err := b.Config("127.0.0.1:0", mobile, web)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.AccessLog.Output = "stderr"
	srv, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AccessLogWriter: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		http.DefaultClient.CloseIdleConnections()
	})
	users, _ := b.Lookup("DEMO_BFF_USERS")
	return &bffGateway{public: srv.Addrs()["public"], mobile: mobile, web: web, usersAddr: users,
		token: aggToken(t, demo.JWTSecret, map[string]any{"iss": demo.JWTIssuer, "aud": demo.JWTAudience, "sub": "1"})}
}

func bffGet(t *testing.T, url string, hdr ...string) (*http.Response, map[string]any, string, time.Duration) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && resp.StatusCode == 200 {
		obj = decodeObject(t, string(raw))
	}
	return resp, obj, string(raw), time.Since(start)
}

func aggKeys(m map[string]any) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// TestAggregateBFFDemoProductPage: the reference design's MobileBFF / WebBFF product page from
// the shipped demo config, chosen by header, by route and by listener.
func TestAggregateBFFDemoProductPage(t *testing.T) {
	g := startBFFDemo(t)
	const webKeys = "_degraded,description,id,images,name,price,related_products,review_summary,reviews,specifications"
	const mobileKeys = "_degraded,id,name,price,thumbnail"
	tests := []struct {
		name, url string
		hdr       []string
		profile   string
		keys      string
	}{
		{"web by default", "http://" + g.public + "/bff/products/p1", nil, "web", webKeys},
		{"web by header", "http://" + g.public + "/bff/products/p1", []string{"X-Client-Type", "web"}, "web", webKeys},
		{"mobile by header", "http://" + g.public + "/bff/products/p1", []string{"X-Client-Type", "mobile"}, "mobile", mobileKeys},
		{"mobile by route", "http://" + g.public + "/bff/m/products/p1", nil, "mobile", mobileKeys},
		{"mobile gateway (listener)", "http://" + g.mobile + "/bff/products/p1", []string{"X-Client-Type", "web"}, "mobile-listener", mobileKeys},
		{"web gateway (listener)", "http://" + g.web + "/bff/products/p1", nil, "web", webKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, obj, raw, _ := bffGet(t, tt.url, tt.hdr...)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			if resp.Header.Get("X-Gatehouse-Profile") != tt.profile || aggKeys(obj) != tt.keys || obj["_degraded"] != false {
				t.Fatalf("profile %q keys %s: %s", resp.Header.Get("X-Gatehouse-Profile"), aggKeys(obj), raw)
			}
			if tt.keys == mobileKeys {
				if obj["thumbnail"] != "https://img.example.com/p1/1-thumb.jpg" || obj["price"] != 89.0 || obj["name"] != "Mechanical keyboard" {
					t.Fatalf("mobile page: %s", raw)
				}
				return
			}
			reviews, _ := obj["reviews"].([]any)
			related, _ := obj["related_products"].([]any)
			images, _ := obj["images"].([]any)
			summary, _ := obj["review_summary"].(map[string]any)
			// p1 has 12 reviews (fetched by its review_ids) and 12 related products: 10 and 8 kept.
			if len(reviews) != 10 || len(related) != 8 || len(images) != 3 || images[0] != "https://img.example.com/p1/1.jpg" ||
				summary["count"] != 12.0 || strings.Contains(raw, "supplier_internal") || strings.Contains(raw, "full_description") {
				t.Fatalf("web page: %s", raw)
			}
		})
	}

	// A product without reviews is not degraded: the template's empty fallback asks for none.
	resp, obj, raw, _ := bffGet(t, "http://"+g.public+"/bff/products/p3")
	if resp.StatusCode != 200 || obj["_degraded"] != false || mustJSON(t, obj["reviews"]) != "[]" {
		t.Fatalf("p3: %d %s", resp.StatusCode, raw)
	}
	// get_product_page degradation: reviews down, the page still renders without them.
	resp, obj, raw, _ = bffGet(t, "http://"+g.public+"/bff/products/p1", "X-Demo-Fail", "reviews")
	if resp.StatusCode != 200 || obj["_degraded"] != true || mustJSON(t, obj["reviews"]) != "[]" || obj["review_summary"] != nil ||
		resp.Header.Get("X-Gatehouse-Degraded") != "reviews;reason=status_503, review_summary;reason=status_503" || obj["name"] != "Mechanical keyboard" {
		t.Fatalf("reviews down: %d %v %s", resp.StatusCode, resp.Header, raw)
	}
	// The product itself is required.
	resp, _, raw, _ = bffGet(t, "http://"+g.public+"/bff/products/p1", "X-Demo-Fail", "catalog")
	if resp.StatusCode != 502 || !strings.Contains(raw, `"bad_gateway"`) {
		t.Fatalf("catalog down: %d %s", resp.StatusCode, raw)
	}
	resp, _, raw, _ = bffGet(t, "http://"+g.public+"/bff/products/nope")
	if resp.StatusCode != 404 || !strings.Contains(raw, `"not_found"`) {
		t.Fatalf("unknown product: %d %s", resp.StatusCode, raw)
	}
}

// TestAggregateBFFDemoDashboard: the demo's RequestAggregator dashboard, healthy, degraded
// (one failing and one slow service) and with its required user service down; and the
// pass-through route.
func TestAggregateBFFDemoDashboard(t *testing.T) {
	g := startBFFDemo(t)
	url := "http://" + g.public + "/bff/dashboard"
	auth := "Bearer " + g.token

	resp, obj, raw, _ := bffGet(t, url, "Authorization", auth)
	if resp.StatusCode != 200 || aggKeys(obj) != "_degraded,notifications,recent_orders,recommendations,user" || obj["_degraded"] != false {
		t.Fatalf("dashboard: %d %s", resp.StatusCode, raw)
	}
	if orders, _ := obj["recent_orders"].([]any); len(orders) != 5 {
		t.Fatalf("recent_orders (limit=5): %s", raw)
	}
	if user, _ := obj["user"].(map[string]any); user["name"] != "Ada Lovelace" {
		t.Fatalf("user: %s", raw)
	}

	resp, obj, raw, took := bffGet(t, url, "Authorization", auth, "X-Demo-Fail", "notifications", "X-Demo-Slow", "recommendations")
	if resp.StatusCode != 200 || obj["_degraded"] != true || mustJSON(t, obj["notifications"]) != "[]" || mustJSON(t, obj["recommendations"]) != "[]" ||
		resp.Header.Get("X-Gatehouse-Degraded") != "notifications;reason=status_503, recommendations;reason=timeout" {
		t.Fatalf("degraded dashboard: %d %v %s", resp.StatusCode, resp.Header, raw)
	}
	if user, _ := obj["user"].(map[string]any); user["name"] != "Ada Lovelace" {
		t.Fatalf("required data not intact: %s", raw)
	}
	if took < 950*time.Millisecond || took > 2*time.Second {
		t.Errorf("degraded dashboard took %v; want about the 1s optional timeout (the slow service takes 3s)", took)
	}

	resp, _, raw, _ = bffGet(t, url, "Authorization", auth, "X-Demo-Fail", "users")
	if resp.StatusCode != 502 || !strings.Contains(raw, `required backend call \"user\" answered status 503`) || strings.Contains(raw, "recent_orders") {
		t.Fatalf("users down: %d %s", resp.StatusCode, raw)
	}

	// Pass-through: the users service's bytes, untouched.
	resp, _, raw, _ = bffGet(t, "http://"+g.public+"/bff/me", "Authorization", auth)
	_, _, direct, _ := bffGet(t, "http://"+g.usersAddr+"/users/1")
	if resp.StatusCode != 200 || raw != direct {
		t.Fatalf("passthrough: %d %q, direct %q", resp.StatusCode, raw, direct)
	}
}
