package server

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil/certs"
)

// TestFailedReloadKeepsTLSConnections checks that a reload that fails leaves the serving
// listeners untouched: the TLS listener a failed reload built must not have taken connections
// from the socket it shares with the serving one (it starts accepting only when served). Each
// reload changes the TLS listener "public" (same address) and a second listener whose
// certificate file is not a certificate, so the reload fails after public's new generation
// was built.
func TestFailedReloadKeepsTLSConnections(t *testing.T) {
	dir := t.TempDir()
	ca := certs.NewCA(t, "server CA")
	crt, key := ca.IssueFiles(t, dir, "api", "api.example.com", "127.0.0.1")
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	echo := newEcho(t, "echo")
	y := `
version: 1
listeners:
  - { name: public, address: "${LISTEN}", max_conns: ${MC}, tls: { certificates: [{ cert: "${CRT}", key: "${KEY}" }] } }
  - { name: other, address: "${OTHER}", max_conns: ${MC}, tls: { certificates: [{ cert: "${OCRT}", key: "${KEY}" }] } }
services: [{ name: echo, targets: [{ url: "http://${ECHO}" }] }]
routes: [{ name: r, match: { path: /** }, service: echo }]
`
	g := startGateway(t, y, map[string]string{"ECHO": hostPort(echo), "MC": "1000", "CRT": crt, "KEY": key, "OCRT": crt, "OTHER": freeAddr(t)})
	base := "https://" + g.addr
	load := startLoad(6, base+"/x", &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	g.env["OCRT"] = bad
	failed := 0
	for i := range 200 {
		g.env["MC"] = fmt.Sprint(1001 + i)
		if err := g.reload(y); err != nil {
			failed++
		}
	}
	ok, badN, errs := load.stop()
	t.Logf("%d reloads failed as intended; %d requests served", failed, ok)
	if failed == 0 {
		t.Fatal("the reloads did not fail: the test checks nothing")
	}
	if badN > 0 {
		t.Fatalf("%d requests failed during failed reloads (%d served): %v", badN, ok, errs)
	}
}
