package server

import (
	"context"
	"crypto/tls"
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
	load := startLoad(6, g.base+"/x", nil)
	for i := range 100 {
		g.env["MC"] = fmt.Sprint(1000 + i)
		g.env["H2C"] = fmt.Sprint(i%2 == 1)
		if err := g.reload(y); err != nil {
			load.stop()
			t.Fatal(err)
		}
	}
	ok, bad, errs := load.stop()
	t.Logf("%d requests served across 100 listener changes", ok)
	if bad > 0 || ok == 0 {
		t.Fatalf("%d requests failed (%d served) during listener changes: %v", bad, ok, errs)
	}
}

// load is clients sending GETs, each on a new connection, until stop.
type load struct {
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	ok, bad int
	errs    []string
}

// startLoad starts n clients GETting url (tlsConf: nil for plain HTTP).
func startLoad(n int, url string, tlsConf *tls.Config) *load {
	l := &load{done: make(chan struct{})}
	for range n {
		l.wg.Go(func() {
			tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: tlsConf}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			for {
				select {
				case <-l.done:
					return
				default:
				}
				resp, err := c.Get(url)
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
				l.mu.Lock()
				if failure == "" {
					l.ok++
				} else {
					l.bad++
					if len(l.errs) < 5 {
						l.errs = append(l.errs, failure)
					}
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

// stop ends the load and reports how many requests were served, how many failed, and the first
// failures.
func (l *load) stop() (ok, bad int, errs []string) {
	close(l.done)
	l.wg.Wait()
	return l.ok, l.bad, l.errs
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

// TestRespelledAddressKeepsSocket reloads a listener under other spellings of its address (a
// host name for its IP; "", 0.0.0.0 and [::] for Go's dual-stack wildcard) while a client
// keeps a connection open: each reload takes over the socket serving it, where binding it a
// second time failed with "address already in use", and the kept connection goes on being
// served.
func TestRespelledAddressKeepsSocket(t *testing.T) {
	echo := newEcho(t, "echo")
	const y = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services: [{ name: echo, targets: [{ url: "http://${ECHO}" }] }]
routes: [{ name: r, match: { path: /** }, service: echo, response_headers: { set: { X-Spelling: "${LISTEN}" } } }]
`
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, spellings := range map[string][]string{
		"host name": {"127.0.0.1:" + port, "localhost:" + port, "127.0.0.1:" + port},
		"wildcard":  {":" + port, "0.0.0.0:" + port, "[::]:" + port, ":" + port},
	} {
		t.Run(name, func(t *testing.T) {
			g := startGateway(t, y, map[string]string{"ECHO": hostPort(echo), "LISTEN": spellings[0]})
			kept := &http.Client{Transport: &http.Transport{}}
			defer kept.CloseIdleConnections()
			for _, addr := range spellings[1:] {
				g.env["LISTEN"] = addr
				if err := g.srv.Reload(g.load(y)); err != nil {
					t.Fatalf("reload from %q to %q: %v", spellings[0], addr, err)
				}
				resp, err := kept.Get("http://127.0.0.1:" + port + "/x")
				if err != nil {
					t.Fatalf("after the reload to %q: %v", addr, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if got := resp.Header.Get("X-Spelling"); got != addr {
					t.Fatalf("after the reload to %q the response says %q: not served by the new config", addr, got)
				}
			}
		})
	}
}
