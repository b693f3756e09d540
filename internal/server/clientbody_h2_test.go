package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// An HTTP/2 target that resets the stream while the client's body is still streaming is the
// target's failure (502), not the client's: the transport closes the body, and the read that
// this wakes is not the client's error.
func TestUpstreamResetMidBodyIsNotTheClients(t *testing.T) {
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadFull(r.Body, make([]byte, 5))
		panic(http.ErrAbortHandler) // RST_STREAM
	}))
	var bp http.Protocols
	bp.SetUnencryptedHTTP2(true)
	be.Config.Protocols = &bp
	be.Start()
	t.Cleanup(be.Close)
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}", h2c: true }]
server: { access_log: { enabled: false } }
services:
  - { name: s, protocol: h2c, targets: [{ url: "http://${B}" }] }
routes:
  - { name: main, match: { path: /** }, service: s, timeouts: { request: 0s } }
`, map[string]string{"B": hostPort(be)})
	var cp http.Protocols
	cp.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &cp}
	t.Cleanup(tr.CloseIdleConnections)
	for i := range 3 {
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write([]byte("hello world"))
			time.Sleep(time.Second)
			_ = pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, "http://"+g.addr+"/x", pr)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 502 {
			t.Errorf("#%d: %d %s, want 502: the target reset the stream", i, resp.StatusCode, b)
		}
	}
}
