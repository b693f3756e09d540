package server

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil/certs"
)

// A listener a reload keeps strips the certificate subject headers of the mTLS listeners the
// reload adds: a client must not claim a certificate identity through the plain door.
func TestReloadedCertHeadersStrippedOnKeptListeners(t *testing.T) {
	dir := t.TempDir()
	ca, clientCA := certs.NewCA(t, "server CA"), certs.NewCA(t, "client CA")
	crt, key := ca.IssueFiles(t, dir, "api", "api.example.com", "127.0.0.1")
	caPath := filepath.Join(dir, "clients.pem")
	if err := os.WriteFile(caPath, clientCA.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	be := newEcho(t, "b")
	base := `
version: 1
listeners:
  - { name: public, address: "${LISTEN}" }
%s
server: { access_log: { enabled: false } }
services: [{ name: b, targets: [{ url: "http://${B}" }] }]
routes: [{ name: all, match: { path: /** }, service: b }]
`
	g := startGateway(t, fmt.Sprintf(base, ""), map[string]string{"B": hostPort(be)})
	mtls := fmt.Sprintf(`  - name: mtls
    address: "%s"
    tls:
      certificates: [{ cert: "%s", key: "%s" }]
      client_auth: { ca: ["%s"], mode: require, subject_header: X-Client-Verified }`, freeAddr(t), crt, key, caPath)
	if err := g.reload(fmt.Sprintf(base, mtls)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	resp, body := g.get(t, "/x", "X-Client-Verified", "CN=root")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if v := http.Header(decodeEcho(t, body).Header).Get("X-Client-Verified"); v != "" {
		t.Fatalf("the upstream got a client's X-Client-Verified %q through the kept plain listener", v)
	}
}
