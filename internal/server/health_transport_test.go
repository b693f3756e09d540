package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil/certs"
)

// probedBackend counts the connections a test upstream accepts (the gateway's pooled one plus
// one per active probe) and the health probes its handler answered.
type probedBackend struct {
	*httptest.Server
	conns, okProbes atomic.Int64
}

func newProbedBackend(t *testing.T) *probedBackend {
	t.Helper()
	b := &probedBackend{}
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			b.okProbes.Add(1)
		}
		io.WriteString(w, "ok "+r.Proto)
	}))
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			b.conns.Add(1)
		}
	}
	// Failed handshakes (of a probe that ignores the service's TLS) are the point, not noise.
	b.Config.ErrorLog = log.New(io.Discard, "", 0)
	return b
}

// waitProbeRounds waits until the backend accepted n more connections than it had: with a
// fresh connection per probe, that many probe attempts, whether they succeeded or not.
func (b *probedBackend) waitProbeRounds(t *testing.T, n int64) {
	t.Helper()
	want := b.conns.Load() + n
	pollUntil(t, fmt.Sprintf("%d probe rounds", n), func() bool { return b.conns.Load() >= want })
}

// mtlsBackend starts a backend serving users.internal with a certificate of a private CA and
// requiring a client certificate of another one. It returns the CA file and a client
// certificate and key the backend accepts.
func mtlsBackend(t *testing.T) (b *probedBackend, caPath, certPath, keyPath string) {
	t.Helper()
	dir := t.TempDir()
	ca := certs.NewCA(t, "internal CA")
	clientCA := certs.NewCA(t, "gateway client CA")
	srvCert, srvKey := ca.Issue(t, "users.internal", []string{"users.internal"}, false)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	b = newProbedBackend(t)
	b.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA.Pool()}
	b.StartTLS()
	t.Cleanup(b.Close)
	caPath = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	gwCert, gwKey := clientCA.Issue(t, "gatehouse", nil, true)
	certPath, keyPath = certs.WriteFiles(t, dir, "gw", gwCert, gwKey)
	return b, caPath, certPath, keyPath
}

// mtlsServiceConfig is a gateway config with one https service whose targets are reached with
// the given server_name, with active health checks.
func mtlsServiceConfig(caPath, certPath, keyPath, serverName string) string {
	return fmt.Sprintf(resilienceHead+`
services:
  - name: s
    targets: [{ url: "https://${B}" }]
    tls: { ca: ["%s"], server_name: %s, cert: "%s", key: "%s" }
    health_check:
      active: { path: /healthz, interval: 30ms, timeout: 2s, healthy_threshold: 1, unhealthy_threshold: 2 }
      all_unhealthy: fail
routes:
  - { name: main, match: { path: /** }, service: s }
`, caPath, serverName, certPath, keyPath)
}

// Active probes of an https service must use its tls settings (private CA, client certificate,
// server_name), as the proxied requests do; probes with the system roots and no client
// certificate fail the handshake and mark a healthy target down, so every request got 503.
func TestActiveHealthCheckUsesServiceTLS(t *testing.T) {
	be, caPath, certPath, keyPath := mtlsBackend(t)
	g := startGateway(t, mtlsServiceConfig(caPath, certPath, keyPath, "users.internal"),
		map[string]string{"B": strings.TrimPrefix(be.URL, "https://")})
	if resp, body := g.get(t, "/x"); resp.StatusCode != 200 || !strings.HasPrefix(body, "ok ") {
		t.Fatalf("before probes: %d %s", resp.StatusCode, body)
	}
	be.waitProbeRounds(t, 5)
	st := upstreamState(t, g, "s")
	resp, body := g.get(t, "/x")
	if resp.StatusCode != 200 || !st.Targets[0].Healthy || be.okProbes.Load() == 0 {
		t.Fatalf("healthy TLS target after active probes: healthy=%v, successful probes=%d, GET /x = %d %s",
			st.Targets[0].Healthy, be.okProbes.Load(), resp.StatusCode, body)
	}
}

// A reload that changes only a service's tls settings must change its probes' too: a checker
// kept with the old settings would hold a fixed target down.
func TestActiveHealthCheckFollowsTLSReload(t *testing.T) {
	be, caPath, certPath, keyPath := mtlsBackend(t)
	g := startGateway(t, mtlsServiceConfig(caPath, certPath, keyPath, "wrong.internal"),
		map[string]string{"B": strings.TrimPrefix(be.URL, "https://")})
	pollUntil(t, "target unhealthy with the wrong server_name", func() bool { return !upstreamState(t, g, "s").Targets[0].Healthy })
	if err := g.reload(mtlsServiceConfig(caPath, certPath, keyPath, "users.internal")); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, "target healthy after fixing server_name", func() bool { return upstreamState(t, g, "s").Targets[0].Healthy })
	if resp, body := g.get(t, "/x"); resp.StatusCode != 200 {
		t.Fatalf("after fixing server_name: %d %s", resp.StatusCode, body)
	}
}

// Active probes of an h2c service must speak h2c: gRPC servers answer only cleartext HTTP/2
// with prior knowledge, and HTTP/1.1 probes marked them down.
func TestActiveHealthCheckSpeaksServiceProtocol(t *testing.T) {
	be := newProbedBackend(t)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true) // prior-knowledge h2c only, as grpc-go serves
	be.Config.Protocols = &protocols
	be.Start()
	t.Cleanup(be.Close)
	g := startGateway(t, resilienceHead+`
services:
  - name: s
    protocol: h2c
    targets: [{ url: "http://${B}" }]
    health_check:
      active: { path: /healthz, interval: 30ms, timeout: 2s, healthy_threshold: 1, unhealthy_threshold: 2 }
routes:
  - { name: main, match: { path: /** }, service: s }
`, map[string]string{"B": hostPort(be.Server)})
	if resp, body := g.get(t, "/x"); resp.StatusCode != 200 || body != "ok HTTP/2.0" {
		t.Fatalf("h2c upstream: %d %s", resp.StatusCode, body)
	}
	be.waitProbeRounds(t, 5)
	st := upstreamState(t, g, "s")
	resp, body := g.get(t, "/x")
	if resp.StatusCode != 200 || !st.Targets[0].Healthy || be.okProbes.Load() == 0 {
		t.Fatalf("healthy h2c target after active probes: healthy=%v, probes answered=%d, GET /x = %d %s",
			st.Targets[0].Healthy, be.okProbes.Load(), resp.StatusCode, body)
	}
}
