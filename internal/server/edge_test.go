package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/certs"
	"github.com/gatehouse/gatehouse/internal/testutil/geodb"
)

// tlsGateway starts a gateway with a TLS listener (two SNI certificates, optional mTLS), a
// plain listener that redirects to it, and an h2c listener.
func tlsGateway(t *testing.T, clientAuth string) (*gateway, *certs.CA, *certs.CA, string) {
	t.Helper()
	dir := t.TempDir()
	ca := certs.NewCA(t, "server CA")
	clientCA := certs.NewCA(t, "client CA")
	aC, aK := ca.IssueFiles(t, dir, "api", "api.example.com", "127.0.0.1")
	bC, bK := ca.IssueFiles(t, dir, "admin", "admin.example.com")
	caPath := filepath.Join(dir, "clients.pem")
	os.WriteFile(caPath, clientCA.PEM, 0o600)
	be := newEcho(t, "tls-backend")
	auth := ""
	if clientAuth != "" {
		auth = fmt.Sprintf(`, client_auth: { ca: ["%s"], mode: %s }`, caPath, clientAuth)
	}
	g := startGateway(t, fmt.Sprintf(`
version: 1
listeners:
  - name: public
    address: "${LISTEN}"
    tls:
      certificates: [{ cert: "%s", key: "%s" }, { cert: "%s", key: "%s" }]
      reload_interval: 50ms
      %s
  - { name: redirect, address: "127.0.0.1:0", redirect_https: true, https_port: 8443 }
  - { name: h2c, address: "127.0.0.1:0", h2c: true }
services: [{ name: b, targets: [{ url: "http://${B}" }] }]
routes: [{ name: all, match: { path: /** }, service: b }]
`, aC, aK, bC, bK, strings.TrimPrefix(auth, ", ")), map[string]string{"B": hostPort(be)})
	return g, ca, clientCA, bC
}

func TestTLSListenerSNIAndHTTP2(t *testing.T) {
	g, ca, _, adminCert := tlsGateway(t, "")
	dial := func(sni string, h2 bool) *http.Response {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: sni}, ForceAttemptHTTP2: h2}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", "https://"+g.addr+"/hello", nil)
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("sni %s: %v", sni, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := dial("api.example.com", true)
	if resp.ProtoMajor != 2 || resp.TLS.PeerCertificates[0].DNSNames[0] != "api.example.com" {
		t.Fatalf("proto %s cert %v", resp.Proto, resp.TLS.PeerCertificates[0].DNSNames)
	}
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("HSTS missing on a TLS response")
	}
	if resp := dial("admin.example.com", false); resp.ProtoMajor != 1 || resp.TLS.PeerCertificates[0].DNSNames[0] != "admin.example.com" {
		t.Fatalf("SNI admin: proto %s cert %v", resp.Proto, resp.TLS.PeerCertificates[0].DNSNames)
	}
	// TLS 1.1 is refused.
	c, err := tls.Dial("tcp", g.addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "api.example.com", MaxVersion: tls.VersionTLS11})
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake accepted")
	}
	// Rotating the admin certificate on disk is picked up without a restart.
	dir := filepath.Dir(adminCert)
	newC, newK := ca.Issue(t, "rotated admin", []string{"admin.example.com"}, false)
	os.WriteFile(filepath.Join(dir, "admin-key.pem"), newK, 0o600)
	os.WriteFile(adminCert, newC, 0o600)
	deadline := time.Now().Add(5 * time.Second)
	for dial("admin.example.com", false).TLS.PeerCertificates[0].Subject.CommonName != "rotated admin" {
		if time.Now().After(deadline) {
			t.Fatal("rotated certificate not served")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMutualTLSSubjectHeader(t *testing.T) {
	g, ca, clientCA, _ := tlsGateway(t, "require")
	cert, key := clientCA.Issue(t, "alice", nil, true)
	pair, _ := tls.X509KeyPair(cert, key)
	client := func(withCert bool) *http.Client {
		cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "api.example.com"}
		if withCert {
			cfg.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
	}
	req, _ := http.NewRequest("GET", "https://"+g.addr+"/who", nil)
	req.Header.Set("X-Client-Cert-Subject", "CN=mallory") // spoof attempt
	resp, err := client(true).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := http.Header(decodeEcho(t, string(body)).Header).Values("X-Client-Cert-Subject")
	if len(got) != 1 || !strings.Contains(got[0], "CN=alice") {
		t.Fatalf("upstream subject header %v, want the verified CN=alice only", got)
	}
	if _, err := client(false).Get("https://" + g.addr + "/who"); err == nil {
		t.Fatal("request without a client certificate accepted in require mode")
	}
}

func TestRedirectAndH2C(t *testing.T) {
	g, _, _, _ := tlsGateway(t, "")
	addrs := g.srv.Addrs()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get("http://" + addrs["redirect"] + "/a/b?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	host, _, _ := net.SplitHostPort(addrs["redirect"])
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://"+host+":8443/a/b?x=1" {
		t.Fatalf("redirect %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// h2c with prior knowledge.
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	defer tr.CloseIdleConnections()
	resp, err = (&http.Client{Transport: tr}).Get("http://" + addrs["h2c"] + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("h2c: %s %d", resp.Proto, resp.StatusCode)
	}
}

const edgeYAML = `
version: 1
listeners: [{ name: public, address: "${LISTEN}", max_conns_per_ip: 8 }]
server:
  read_header_timeout: 300ms
  max_uri_bytes: 512
  ip_rules: { deny: [192.0.2.0/24] }
  geo: { database: "${GEO}" }
  bots: { rules: [{ name: curl, user_agent: "^curl/", action: tag }] }
services: [{ name: b, targets: [{ url: "http://${B}" }] }]
routes:
  - name: de-only
    match: { path: /shop/**, countries: [DE] }
    service: b
    response_headers: { set: { X-Route: de } }
  - name: shop
    match: { path: /shop/** }
    service: b
    response_headers: { set: { X-Route: world } }
  - name: api
    match: { path: /api/**, methods: [GET, PUT] }
    service: b
    plugins:
      cors: { allowed_origins: ["https://app.example.com"], allowed_methods: [GET, PUT], max_age: 1m }
      ip_rules: { deny: [127.0.0.2] }
`

func edgeGateway(t *testing.T) *gateway {
	t.Helper()
	be := newEcho(t, "b")
	geo := geodb.Write(t, t.TempDir(), map[string]string{"127.0.0.0/8": "DE"})
	return startGateway(t, edgeYAML, map[string]string{"B": hostPort(be), "GEO": geo})
}

func TestEdgeRulesThroughServer(t *testing.T) {
	g := edgeGateway(t)
	t.Run("geo routing and upstream header", func(t *testing.T) {
		resp, body := g.get(t, "/shop/cart", "X-Client-Country", "US")
		if resp.Header.Get("X-Route") != "de" {
			t.Fatalf("loopback (DE in the test database) should match the DE route, got %q", resp.Header.Get("X-Route"))
		}
		if got := http.Header(decodeEcho(t, body).Header).Values("X-Client-Country"); len(got) != 1 || got[0] != "DE" {
			t.Fatalf("upstream country header %v (a client value must be replaced)", got)
		}
	})
	t.Run("security headers", func(t *testing.T) {
		resp, _ := g.get(t, "/shop/x")
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" ||
			resp.Header.Get("Strict-Transport-Security") != "" {
			t.Fatalf("headers %v", resp.Header)
		}
	})
	t.Run("cors preflight answered before routing methods and auth", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, g.base+"/api/items", nil)
		req.Header.Set("Origin", "https://app.example.com")
		req.Header.Set("Access-Control-Request-Method", "PUT")
		resp, _ := g.do(t, req)
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PUT") || resp.Header.Get("Access-Control-Max-Age") != "60" {
			t.Fatalf("preflight %d %v", resp.StatusCode, resp.Header)
		}
		req.Header.Set("Origin", "https://evil.example.com")
		resp, _ = g.do(t, req)
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("foreign origin allowed: %v", resp.Header)
		}
		// A preflight for a method no route serves is not answered as CORS.
		req.Header.Set("Origin", "https://app.example.com")
		req.Header.Set("Access-Control-Request-Method", "DELETE")
		if resp, _ = g.do(t, req); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("preflight for an unserved method: %d", resp.StatusCode)
		}
		resp, _ = g.get(t, "/api/items", "Origin", "https://app.example.com")
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
			t.Fatalf("simple CORS request %d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("bot tag", func(t *testing.T) {
		_, body := g.get(t, "/shop/x", "User-Agent", "curl/8.0")
		if got := http.Header(decodeEcho(t, body).Header).Get("X-Bot"); got != "curl" {
			t.Fatalf("X-Bot %q", got)
		}
	})
	t.Run("max uri", func(t *testing.T) {
		resp, body := g.get(t, "/shop/"+strings.Repeat("a", 600))
		if resp.StatusCode != http.StatusRequestURITooLong || decodeError(t, resp, body).Error != "uri_too_long" {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

func TestSlowlorisCutOff(t *testing.T) {
	g := edgeGateway(t)
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		// Send the head one byte every 50ms; the server must give up at read_header_timeout.
		head := "GET /shop/x HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("s", 200) + "\r\n\r\n"
		for i := 0; i < len(head); i++ {
			if _, err := c.Write([]byte{head[i]}); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadAll(c)
		closed <- time.Since(start)
	}()
	// Meanwhile a normal client is served.
	resp, _ := g.get(t, "/shop/fast")
	if resp.StatusCode != 200 {
		t.Fatalf("normal client status %d", resp.StatusCode)
	}
	select {
	case d := <-closed:
		if d > 3*time.Second {
			t.Fatalf("slow client held its connection %v", d)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("slow client was never cut off")
	}
}

func TestConnectionCapPerIP(t *testing.T) {
	g := edgeGateway(t)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 8; i++ {
		c, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	time.Sleep(100 * time.Millisecond)
	extra, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	fmt.Fprint(extra, "GET /shop/x HTTP/1.1\r\nHost: x\r\n\r\n")
	extra.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, _ := extra.Read(make([]byte, 64)); n > 0 {
		t.Fatal("ninth connection from one IP was served")
	}
	// Releasing one lets a new one in.
	conns[0].Close()
	conns = conns[1:]
	var resp *http.Response
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		tr := &http.Transport{}
		resp, err = (&http.Client{Transport: tr, Timeout: time.Second}).Get(g.base + "/shop/x")
		tr.CloseIdleConnections()
		if err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a slot freed: %v", err)
	}
}

func TestSmugglingThroughServer(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(be.Close)
	g := startGateway(t, streamYAML, map[string]string{"S": hostPort(be)})
	for _, raw := range []string{
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc",
		"GET /x HTTP/1.1\r\nHost: a\r\nBad Header: 1\r\n\r\n",
	} {
		out := g.raw(t, raw)
		if !strings.HasPrefix(out, "HTTP/1.1 400") && !strings.HasPrefix(out, "HTTP/1.1 501") {
			t.Errorf("not refused: %q\n-> %q", raw, out)
		}
	}
	out := g.raw(t, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if !strings.Contains(out, `"error":"request_smuggling"`) {
		t.Errorf("CL+TE refusal is not the gateway's JSON error: %q", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 0 {
		t.Fatalf("refused requests reached the upstream: %v", seen)
	}
	if !strings.Contains(g.logs.String(), "request_smuggling") {
		t.Error("smuggling attempt not logged as a security event")
	}
	_ = bufio.NewReader
}

func TestUpstreamTLS(t *testing.T) {
	dir := t.TempDir()
	ca := certs.NewCA(t, "internal CA")
	clientCA := certs.NewCA(t, "gateway client CA")
	srvCert, srvKey := ca.Issue(t, "users.internal", []string{"users.internal"}, false)
	pair, _ := tls.X509KeyPair(srvCert, srvKey)
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s over %s", r.TLS.PeerCertificates[0].Subject.CommonName, r.Proto)
	}))
	be.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA.Pool()}
	be.StartTLS()
	t.Cleanup(be.Close)
	caPath := filepath.Join(dir, "ca.pem")
	os.WriteFile(caPath, ca.PEM, 0o600)
	gwCert, gwKey := clientCA.Issue(t, "gatehouse", nil, true)
	cPath, kPath := certs.WriteFiles(t, dir, "gw", gwCert, gwKey)
	g := startGateway(t, fmt.Sprintf(`
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services:
  - name: good
    targets: [{ url: "https://${B}" }]
    tls: { ca: ["%[1]s"], server_name: users.internal, cert: "%[2]s", key: "%[3]s" }
  - name: unverified
    targets: [{ url: "https://${B}" }]
    tls: { server_name: users.internal, cert: "%[2]s", key: "%[3]s" }
routes:
  - { name: good, match: { path: /good }, service: good }
  - { name: unverified, match: { path: /unverified }, service: unverified }
`, caPath, cPath, kPath), map[string]string{"B": strings.TrimPrefix(be.URL, "https://")})
	resp, body := g.get(t, "/good")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "hello gatehouse over HTTP/") {
		t.Fatalf("upstream mTLS with a custom CA: %d %s", resp.StatusCode, body)
	}
	// Without the custom CA the upstream's certificate does not verify: 502, nothing leaked.
	resp, body = g.get(t, "/unverified")
	if resp.StatusCode != 502 || strings.Contains(body, "x509") {
		t.Fatalf("unverifiable upstream: %d %s", resp.StatusCode, body)
	}
}

// TestSmugglingOverTLS sends ambiguous framing inside TLS (HTTP/1.1 via ALPN): refused like on
// plain listeners, while HTTP/2 and ordinary HTTP/1.1 over TLS keep working.
func TestSmugglingOverTLS(t *testing.T) {
	g, ca, _, _ := tlsGateway(t, "")
	c, err := tls.Dial("tcp", g.addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "api.example.com", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ok HTTP/1.1\r\nHost: api.example.com\r\n\r\n"+
		"POST /x HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	first, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(first.Body)
	if first.StatusCode != 200 || decodeEcho(t, string(body)).Path != "/ok" || first.Header.Get("Strict-Transport-Security") == "" {
		t.Fatalf("first request over TLS: %d %s (HSTS %q)", first.StatusCode, body, first.Header.Get("Strict-Transport-Security"))
	}
	second, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(second.Body)
	if second.StatusCode != 400 || !strings.Contains(string(body), `"error":"request_smuggling"`) {
		t.Fatalf("CL+TE over TLS: %d %s", second.StatusCode, body)
	}
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Fatal("the smuggled request after the refused one was answered")
	}
}
