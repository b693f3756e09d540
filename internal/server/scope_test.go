package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// The request's context is a reqctx.Scope from the server to the upstream client. These tests
// pin what the layers that used to wrap it (timeouts, the 1xx trace, the standard library's
// derived contexts) must still do with it.

func earlyHintsBackend(t *testing.T, tls bool) (*httptest.Server, string) {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "page")
	})
	var be *httptest.Server
	if tls {
		be = httptest.NewTLSServer(h)
	} else {
		be = httptest.NewServer(h)
	}
	t.Cleanup(be.Close)
	return be, strings.TrimPrefix(strings.TrimPrefix(be.URL, "https://"), "http://")
}

// TestEarlyHintsWithTimeouts: a 103 reaches the client whatever Scopes the request's deadline
// and per-try timeouts add, for plain and https targets (the latter through net/http's
// Transport).
func TestEarlyHintsWithTimeouts(t *testing.T) {
	for _, c := range []struct {
		name, service string
		tls           bool
	}{
		{"no timeouts", `timeouts: { request: 0s }`, false},
		{"route timeout", `timeouts: { request: 5s }`, false},
		{"retries", `retries: { attempts: 2 }`, false},
		{"per-try timeout", `timeouts: { request: 0s }, retries: { attempts: 2, per_try_timeout: 2s }`, false},
		{"per-try and route timeout", `timeouts: { request: 5s }, retries: { attempts: 2, per_try_timeout: 2s }`, false},
		{"https target, per-try timeout", `tls: { insecure_skip_verify: true }, retries: { attempts: 2, per_try_timeout: 2s }`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, hp := earlyHintsBackend(t, c.tls)
			scheme := "http"
			if c.tls {
				scheme = "https"
			}
			g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services:
  - { name: s, targets: [{ url: "`+scheme+`://${S}" }], `+c.service+` }
routes: [{ name: s, match: { path: /** }, service: s }]
`, map[string]string{"S": hp})
			expectEarlyHints(t, g.addr)
		})
	}
}

// expectEarlyHints sends GET /page to a gateway at addr and expects the backend's 103 with its
// Link field first, then the final 200 "page" without that field.
func expectEarlyHints(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "GET /page HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	early, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if early.StatusCode != http.StatusEarlyHints || early.Header.Get("Link") != "</app.css>; rel=preload; as=style" {
		t.Fatalf("first response %d with Link %q, want the upstream's 103", early.StatusCode, early.Header.Get("Link"))
	}
	final, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(final.Body)
	if final.StatusCode != 200 || string(body) != "page" {
		t.Fatalf("final response %d %q", final.StatusCode, body)
	}
	if v := final.Header.Get("Link"); v != "" {
		t.Errorf("final response carries the interim Link field %q", v)
	}
}

// An h2c client gets the 103 too: net/http's server, a Scope made by the runtime.
func TestEarlyHintsH2C(t *testing.T) {
	_, hp := earlyHintsBackend(t, false)
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }, { name: h2c, address: "127.0.0.1:0", h2c: true }]
services: [{ name: s, targets: [{ url: "http://${S}" }] }]
routes: [{ name: s, match: { path: /** }, service: s }]
`, map[string]string{"S": hp})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	var got []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, _ textproto.MIMEHeader) error { got = append(got, code); return nil }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://"+g.srv.Addrs()["h2c"]+"/page", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || fmt.Sprint(got) != "[103]" {
		t.Fatalf("proto %s, 1xx %v; want HTTP/2 and one 103", resp.Proto, got)
	}
}

// contextGoroutines counts the goroutines the context package starts for a context derived
// from a parent in which it finds neither a cancelCtx nor an AfterFunc method.
func contextGoroutines() int {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "context.(*cancelCtx).propagateCancel.func")
}

// TestNoContextGoroutinePerRequest: requests in flight cost no context goroutine, whatever
// wraps the request's Scope (a consistent-hash key, the tracing span, net/http's Transport for
// https and h2 targets, which derives a context of its own).
func TestNoContextGoroutinePerRequest(t *testing.T) {
	head := "version: 1\nlisteners: [{ name: public, address: \"${LISTEN}\" }]\n"
	route := "routes: [{ name: s, match: { path: /** }, service: s }]\n"
	for _, c := range []struct {
		name, yaml string
		tls        bool
	}{
		{"plain", `services: [{ name: s, targets: [{ url: "http://${S}" }] }]`, false},
		{"consistent hash", `services: [{ name: s, balancer: consistent_hash, hash_on: "header:X-User", targets: [{ url: "http://${S}" }] }]`, false},
		{"consistent hash, no timeout", `services: [{ name: s, balancer: consistent_hash, hash_on: "header:X-User", timeouts: { request: 0s }, targets: [{ url: "http://${S}" }] }]`, false},
		{"https target", `services: [{ name: s, tls: { insecure_skip_verify: true }, targets: [{ url: "https://${S}" }] }]`, true},
		{"h2 service", `services: [{ name: s, protocol: h2, tls: { insecure_skip_verify: true }, targets: [{ url: "https://${S}" }] }]`, true},
		{"tracing", "tracing: { enabled: true, endpoint: \"http://127.0.0.1:1\", sample_ratio: 0 }\n" +
			`services: [{ name: s, targets: [{ url: "http://${S}" }] }]`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			entered := make(chan struct{}, 16)
			release := make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				entered <- struct{}{}
				<-release
				_, _ = io.WriteString(w, "ok")
			})
			be := httptest.NewUnstartedServer(h)
			if c.tls {
				be.EnableHTTP2 = true
				be.StartTLS()
			} else {
				be.Start()
			}
			t.Cleanup(be.Close)
			hp := strings.TrimPrefix(strings.TrimPrefix(be.URL, "https://"), "http://")
			g := startGateway(t, head+c.yaml+"\n"+route, map[string]string{"S": hp})
			const n = 8
			before := contextGoroutines()
			done := make(chan struct{}, n)
			for range n {
				go func() {
					defer func() { done <- struct{}{} }()
					req, _ := http.NewRequest("GET", g.base+"/x", nil)
					req.Header.Set("X-User", "u")
					resp, err := http.DefaultClient.Do(req)
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}()
			}
			for range n {
				select {
				case <-entered:
				case <-time.After(5 * time.Second):
					close(release)
					t.Fatal("the backend did not see every request")
				}
			}
			extra := contextGoroutines() - before
			close(release)
			for range n {
				<-done
			}
			if extra > 0 {
				t.Errorf("%d context goroutines for %d requests in flight, want none", extra, n)
			}
		})
	}
}
