package edge

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/middleware"
	"github.com/gatehouse/gatehouse/internal/testutil/geodb"
)

func deps() middleware.Deps {
	return middleware.Deps{Acquire: func(key string, build func() (io.Closer, error)) (io.Closer, error) { return build() }}
}

// run sends r through the route's edge middleware with the given client IP and country.
func run(t *testing.T, cfg *config.Config, route *config.Route, r *http.Request, ip, country string) *httptest.ResponseRecorder {
	t.Helper()
	cfg.ApplyDefaults()
	mw, err := New(cfg, route, deps())
	if err != nil {
		t.Fatal(err)
	}
	info := &httpx.Info{RequestID: "rid", ClientIP: netip.MustParseAddr(ip), Country: country}
	r = r.WithContext(httpx.WithInfo(r.Context(), info))
	w := httptest.NewRecorder()
	mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "nginx/1.2.3")
		w.Header().Set("X-Powered-By", "PHP")
		w.Header().Set("X-Seen-Bot", r.Header.Get("X-Bot"))
		io.WriteString(w, "ok")
	})).ServeHTTP(w, r)
	return w
}

func TestIPRules(t *testing.T) {
	cfg := &config.Config{Server: config.Server{IPRules: config.IPRules{Allow: []string{"10.0.0.0/8", "192.0.2.7"}, Deny: []string{"10.6.0.0/16"}}}}
	route := &config.Route{Name: "r", Plugins: config.Plugins{IPRules: &config.IPRules{Deny: []string{"10.9.9.9"}}}}
	for ip, want := range map[string]int{"10.1.2.3": 200, "192.0.2.7": 200, "10.6.1.1": 403, "10.9.9.9": 403, "203.0.113.1": 403, "::ffff:10.1.2.3": 200} {
		ipAddr := netip.MustParseAddr(ip).Unmap().String()
		if w := run(t, cfg, route, httptest.NewRequest("GET", "/", nil), ipAddr, ""); w.Code != want {
			t.Errorf("%s: status %d, want %d (%s)", ip, w.Code, want, w.Body)
		} else if want == 403 && !strings.Contains(w.Body.String(), `"error":"ip_denied"`) {
			t.Errorf("%s: body %s", ip, w.Body)
		}
	}
}

func TestGeoRules(t *testing.T) {
	cfg := &config.Config{Server: config.Server{Geo: &config.Geo{Header: "CF-IPCountry", Deny: []string{"KP"}}}}
	route := &config.Route{Name: "r", Plugins: config.Plugins{Geo: &config.GeoRules{Allow: []string{"DE", "FR"}}}}
	for cc, want := range map[string]int{"DE": 200, "FR": 200, "US": 403, "KP": 403, "XX": 403} {
		if w := run(t, cfg, route, httptest.NewRequest("GET", "/", nil), "203.0.113.1", cc); w.Code != want {
			t.Errorf("%s: status %d, want %d", cc, w.Code, want)
		}
	}
}

func TestBots(t *testing.T) {
	cfg := &config.Config{Server: config.Server{Bots: &config.Bots{
		Rules: []config.BotRule{
			{Name: "curl", UserAgent: "^curl/", Action: "tag"},
			{Name: "headless", UserAgent: "HeadlessChrome", Action: "rate_limit"},
			{Name: "no-lang", MissingHeaders: []string{"Accept-Language"}, Action: "block"},
		},
		RateLimit: &config.BotRateLimit{Limit: 2, Per: config.Dur(time.Minute), Burst: 1},
	}}}
	route := &config.Route{Name: "r"}
	req := func(ua string, lang bool, spoof bool) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("User-Agent", ua)
		if lang {
			r.Header.Set("Accept-Language", "en")
		}
		if spoof {
			r.Header.Set("X-Bot", "trusted-partner")
		}
		return r
	}
	if w := run(t, cfg, route, req("sqlmap/1.7 (https://sqlmap.org)", true, false), "203.0.113.1", ""); w.Code != 403 || !strings.Contains(w.Body.String(), "bot_denied") {
		t.Errorf("known bad bot: %d %s", w.Code, w.Body)
	}
	if w := run(t, cfg, route, req("curl/8.5.0", true, false), "203.0.113.1", ""); w.Code != 200 || w.Header().Get("X-Seen-Bot") != "curl" {
		t.Errorf("tag: %d seen %q", w.Code, w.Header().Get("X-Seen-Bot"))
	}
	if w := run(t, cfg, route, req("Mozilla/5.0 Firefox", true, true), "203.0.113.1", ""); w.Code != 200 || w.Header().Get("X-Seen-Bot") != "" {
		t.Errorf("a browser's spoofed tag header must be removed: %d seen %q", w.Code, w.Header().Get("X-Seen-Bot"))
	}
	if w := run(t, cfg, route, req("Mozilla/5.0 Firefox", false, false), "203.0.113.1", ""); w.Code != 403 {
		t.Errorf("missing header rule: %d", w.Code)
	}
	// rate_limit: one middleware instance (the limiter lives across requests).
	cfg.ApplyDefaults()
	mw, err := New(cfg, route, deps())
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	codes := []int{}
	for i := 0; i < 4; i++ {
		r := req("Mozilla/5.0 HeadlessChrome/120", true, false)
		r = r.WithContext(httpx.WithInfo(r.Context(), &httpx.Info{ClientIP: netip.MustParseAddr("198.51.100.4")}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		codes = append(codes, w.Code)
		if w.Code == 429 && w.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 || codes[3] != 429 {
		t.Errorf("bot rate limit codes %v, want 200 200 429 429", codes)
	}
}

func TestSecurityHeaders(t *testing.T) {
	cfg := &config.Config{}
	route := &config.Route{Name: "r", Plugins: config.Plugins{SecurityHeaders: &config.SecurityHeaders{FrameOptions: "off", ContentSecurityPolicy: "default-src 'none'"}}}
	r := httptest.NewRequest("GET", "https://x/", nil) // r.TLS set: HSTS applies
	w := run(t, cfg, route, r, "203.0.113.1", "")
	h := w.Header()
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Content-Security-Policy": "default-src 'none'",
		"Strict-Transport-Security": "max-age=31536000; includeSubDomains", "X-Frame-Options": "", "Server": "", "X-Powered-By": "",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if w := run(t, cfg, route, httptest.NewRequest("GET", "http://x/", nil), "203.0.113.1", ""); w.Header().Get("Strict-Transport-Security") != "" {
		t.Error("HSTS sent over plain HTTP")
	}
}

func TestGeoResolve(t *testing.T) {
	db := geodb.Write(t, t.TempDir(), map[string]string{"203.0.113.0/24": "DE", "2001:db8::/32": "FR"})
	g, err := NewGeo(&config.Geo{Database: db, Header: "CF-IPCountry", UpstreamHeader: "X-Client-Country"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	cases := []struct {
		ip, cdn string
		trusted bool
		want    string
	}{
		{"203.0.113.9", "", false, "DE"},
		{"2001:db8::1", "", false, "FR"},
		{"198.51.100.1", "", false, "XX"},
		{"203.0.113.9", "US", false, "DE"}, // CDN header from an untrusted peer is ignored
		{"203.0.113.9", "US", true, "US"},
		{"203.0.113.9", "u$", true, "DE"}, // garbage header falls back to the database
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Client-Country", "ZZ") // spoof attempt
		if c.cdn != "" {
			r.Header.Set("CF-IPCountry", c.cdn)
		}
		info := &httpx.Info{ClientIP: netip.MustParseAddr(c.ip), PeerTrusted: c.trusted}
		g.Resolve(r, info)
		if info.Country != c.want || r.Header.Get("X-Client-Country") != c.want || len(r.Header["X-Client-Country"]) != 1 {
			t.Errorf("%+v: country %q header %v", c, info.Country, r.Header["X-Client-Country"])
		}
	}
}

func TestGuard(t *testing.T) {
	var g Guard
	g.Configure(2, 64)
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			started <- struct{}{}
			<-release
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for i := 0; i < 2; i++ {
		go http.Get(srv.URL + "/hold")
	}
	<-started
	<-started
	resp, err := http.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || g.Shed() != 1 {
		t.Fatalf("over capacity: %d shed=%d", resp.StatusCode, g.Shed())
	}
	close(release)
	time.Sleep(50 * time.Millisecond)
	resp, _ = http.Get(srv.URL + "/" + strings.Repeat("a", 100))
	resp.Body.Close()
	if resp.StatusCode != 414 {
		t.Fatalf("long URI: %d", resp.StatusCode)
	}
	resp, _ = http.Get(srv.URL + "/ok")
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after load: %d", resp.StatusCode)
	}
}

func TestLimitListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := LimitListener(ln, 0, 2, nil)
	defer lim.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := lim.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	// The third connection from the same IP is closed by the server at once.
	clients[2].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := clients[2].Read(make([]byte, 1)); err == nil {
		t.Fatal("third connection was not closed")
	}
	if n := len(accepted); n != 2 {
		t.Fatalf("%d connections accepted, want 2", n)
	}
	// Closing one frees a slot.
	(<-accepted).Close()
	clients[0].Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case got := <-accepted:
		got.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("slot not freed after a close")
	}
	for _, c := range clients {
		c.Close()
	}
}

// A limited connection half-closes like the TCP connection it wraps, so the HTTP/1 server's
// lingering close works behind connection caps.
func TestLimitConnCloseWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := LimitListener(ln, 10, 10, nil)
	defer lim.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	sc, err := lim.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	cw, ok := sc.(interface{ CloseWrite() error })
	if !ok {
		t.Fatal("limited connection has no CloseWrite")
	}
	if err := cw.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("client read after CloseWrite = %d, %v; want EOF", n, err)
	}
	// The other direction is still open.
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	sc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := sc.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("server read after CloseWrite = %d, %v", n, err)
	}
}
