package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// listenersYAML is a config with the public listener plus the given ones (YAML list items).
func listenersYAML(tag string, listeners ...string) string {
	var ls strings.Builder
	for _, l := range listeners {
		ls.WriteString("  - " + l + "\n")
	}
	return fmt.Sprintf(`
version: 1
listeners:
  - { name: public, address: "${LISTEN}" }
%sadmin: { address: "127.0.0.1:0", token: "${ADMIN_TOKEN}" }
services:
  - name: a
    targets: [{ url: "http://${A}" }]
routes:
  - name: main
    match: { path: /** }
    service: a
    response_headers: { set: { X-Config: %s } }
`, ls.String(), tag)
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// configAt answers the X-Config header served on addr over a new connection.
func configAt(addr string) (string, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + "/x")
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return resp.Header.Get("X-Config"), nil
}

// TestReloadKeepsListenersWhenABindFails moves a listener to an address another process holds:
// the reload must fail whole (old Runtime, old listeners, nothing half-bound) and say why, and a
// later valid reload must still add, move, change and remove listeners.
func TestReloadKeepsListenersWhenABindFails(t *testing.T) {
	a := newEcho(t, "a")
	busy, err := net.Listen("tcp", "127.0.0.1:0") // another process holding the address
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	env := map[string]string{"A": hostPort(a), "ADMIN_TOKEN": adminToken, "SECOND": freeAddr(t),
		"BUSY": busy.Addr().String(), "MOVED": freeAddr(t), "ADDED": freeAddr(t)}
	g := startObsGateway(t, listenersYAML("one", `{ name: second, address: "${SECOND}" }`), env, nil)

	// A kept-alive connection to the public listener tells whether it was ever rebound.
	public := &http.Client{Transport: &http.Transport{}, Timeout: 3 * time.Second}
	defer public.CloseIdleConnections()
	getPublic := func() (tag string, reused bool) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, g.base+"/x", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		}))
		resp, err := public.Do(req)
		if err != nil {
			t.Fatalf("public listener: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body) // so the connection is kept
		resp.Body.Close()
		return resp.Header.Get("X-Config"), reused
	}
	wantServes := func(name, addr, tag string) {
		t.Helper()
		if got, err := configAt(addr); err != nil || got != tag {
			t.Errorf("listener %s (%s): X-Config %q, %v; want %q", name, addr, got, err, tag)
		}
	}
	wantRefused := func(name, addr string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Errorf("listener %s (%s) still accepts connections", name, addr)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	reloadFile := func(yaml string) (int, string) {
		t.Helper()
		if err := os.WriteFile(g.srv.opts.ConfigPath, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		resp, body := g.admin(t, "POST", "/api/v1/reload", "")
		return resp.StatusCode, body
	}
	lastReload := func() admin.Reload {
		t.Helper()
		_, body := g.admin(t, "GET", "/api/v1/reloads", "")
		var rl struct {
			Reloads []admin.Reload `json:"reloads"`
		}
		if err := json.Unmarshal([]byte(body), &rl); err != nil || len(rl.Reloads) == 0 {
			t.Fatalf("reloads %v: %s", err, body)
		}
		return rl.Reloads[len(rl.Reloads)-1]
	}

	if tag, _ := getPublic(); tag != "one" {
		t.Fatalf("public X-Config %q", tag)
	}
	wantServes("second", env["SECOND"], "one")
	addrs := g.srv.Addrs()
	current := g.srv.Runtime()

	// Add a listener (bound first) and move second onto the busy address.
	status, body := reloadFile(listenersYAML("two", `{ name: third, address: "${ADDED}" }`,
		`{ name: second, address: "${BUSY}" }`))
	if status != http.StatusUnprocessableEntity {
		t.Errorf("reload answered %d, want 422: %s", status, body)
	}
	want := "listener second: cannot bind " + env["BUSY"] + ": address already in use"
	ev := lastReload()
	if ev.OK || ev.Error != want {
		t.Errorf("reload recorded as %+v, want failed with %q", ev, want)
	}
	if !strings.Contains(body, want) {
		t.Errorf("reload answer %s does not say %q", body, want)
	}
	if g.srv.Runtime() != current {
		t.Error("a reload whose listener could not bind replaced the Runtime")
	}
	if tag, reused := getPublic(); tag != "one" || !reused {
		t.Errorf("public listener after the failed reload: X-Config %q, connection reused %v", tag, reused)
	}
	wantServes("second", env["SECOND"], "one")
	wantRefused("third (bound by the failed attempt)", env["ADDED"])
	if got := g.srv.Addrs(); fmt.Sprint(got) != fmt.Sprint(addrs) {
		t.Errorf("listeners %v after the failed reload, want %v", got, addrs)
	}
	logs := g.logs.String()
	if strings.Contains(logs, "listener drained") || strings.Contains(logs, "config reloaded") {
		t.Errorf("the failed reload drained a listener or was logged as applied:\n%s", logs)
	}
	if !strings.Contains(logs, "config rejected") {
		t.Error("the failed reload was not logged")
	}

	// Once valid: second moves, third is added, public stays bound.
	if status, body := reloadFile(listenersYAML("three", `{ name: second, address: "${MOVED}" }`,
		`{ name: third, address: "${ADDED}" }`)); status != http.StatusOK {
		t.Fatalf("valid reload answered %d: %s", status, body)
	}
	if ev := lastReload(); !ev.OK {
		t.Errorf("valid reload recorded as %+v", ev)
	}
	if tag, reused := getPublic(); tag != "three" || !reused {
		t.Errorf("public listener after a reload that kept it: X-Config %q, connection reused %v", tag, reused)
	}
	wantServes("second", env["MOVED"], "three")
	wantServes("third", env["ADDED"], "three")
	wantRefused("second at its old address", env["SECOND"])

	// Third is removed and second changes in place (same address, rebound).
	if status, body := reloadFile(listenersYAML("four", `{ name: second, address: "${MOVED}", max_conns: 100 }`)); status != http.StatusOK {
		t.Fatalf("valid reload answered %d: %s", status, body)
	}
	wantServes("second", env["MOVED"], "four")
	wantRefused("third", env["ADDED"])
	if tag, reused := getPublic(); tag != "four" || !reused {
		t.Errorf("public listener: X-Config %q, connection reused %v", tag, reused)
	}
}
