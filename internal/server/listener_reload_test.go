package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestListenerChangeUnderLoadDropsNothing reloads, many times over, a listener whose settings
// change but whose address does not (its connection cap, and whether it serves h2c, which
// swaps the HTTP server behind it), while clients open a new connection per request: the new
// listener takes over the bound socket, so no connection the kernel queued is reset.
func TestListenerChangeUnderLoadDropsNothing(t *testing.T) {
	echo := newEcho(t, "echo")
	const y = `
version: 1
listeners: [{ name: public, address: "${LISTEN}", max_conns: ${MC}, h2c: ${H2C} }]
services: [{ name: echo, targets: [{ url: "http://${ECHO}" }] }]
routes: [{ name: r, match: { path: /** }, service: echo }]
`
	g := startGateway(t, y, map[string]string{"ECHO": hostPort(echo), "MC": "1000", "H2C": "false", "LISTEN": freeAddr(t)})
	stop := make(chan struct{})
	var mu sync.Mutex
	var ok, bad int
	var errs []string
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(g.base + "/x")
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
					bad++
					if len(errs) < 5 {
						errs = append(errs, failure)
					}
				}
				mu.Unlock()
			}
		})
	}
	for i := range 100 {
		g.env["MC"] = fmt.Sprint(1000 + i)
		g.env["H2C"] = fmt.Sprint(i%2 == 1)
		if err := g.reload(y); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests served across 100 listener changes", ok)
	if bad > 0 || ok == 0 {
		t.Fatalf("%d requests failed (%d served) during listener changes: %v", bad, ok, errs)
	}
}

// TestListenerPortNotShared checks that another process cannot join a listener's port: the
// socket is bound without SO_REUSEPORT, so a second gateway started on the same address fails
// instead of quietly taking half the connections.
func TestListenerPortNotShared(t *testing.T) {
	echo := newEcho(t, "echo")
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services: [{ name: echo, targets: [{ url: "http://${ECHO}" }] }]
routes: [{ name: r, match: { path: /** }, service: echo }]
`, map[string]string{"ECHO": hostPort(echo)})
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", g.addr)
	if err == nil {
		ln.Close()
		t.Fatalf("a second SO_REUSEPORT socket bound %s, which the gateway serves", g.addr)
	}
}
