package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil/certs"
)

// TestFailedReloadKeepsTLSConnections: a reload that fails must leave the serving listeners
// untouched, so the TLS listener a failed reload built must not have taken connections from
// the socket it shares with the serving one (it starts accepting only when served). Here each reload changes the
// TLS listener "public" (same address) and a second listener whose certificate file is not a
// certificate, so the reload fails after public's new generation was built.
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
	stop := make(chan struct{})
	var mu sync.Mutex
	var ok, badN int
	var errs []string
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"}}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(base + "/x")
				failure := ""
				if err != nil {
					failure = err.Error()
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failure = resp.Status
					}
				}
				mu.Lock()
				if failure == "" {
					ok++
				} else {
					badN++
					if len(errs) < 3 {
						errs = append(errs, failure)
					}
				}
				mu.Unlock()
			}
		})
	}
	g.env["OCRT"] = bad
	failed := 0
	for i := range 200 {
		g.env["MC"] = fmt.Sprint(1001 + i)
		if err := g.reload(y); err != nil {
			failed++
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d reloads failed as intended; %d requests served", failed, ok)
	if failed == 0 {
		t.Fatal("the reloads did not fail: the test checks nothing")
	}
	if badN > 0 {
		t.Fatalf("%d requests failed during failed reloads (%d served): %v", badN, ok, errs)
	}
}
