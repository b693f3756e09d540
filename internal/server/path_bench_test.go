package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/golang-jwt/jwt/v5"
)

// The request path's allocation budget: allocations of the whole process per proxied request,
// measured with a client and a backend that allocate nothing per request, so the figure is the
// gateway's own (HTTP/1.1 server, edge, route chain, proxy loop, upstream client). Raise a
// budget only with a reason in the commit; bench/README.md lists where the allocations go.
var pathAllocBudget = map[string]float64{
	"plain":     18, // measured 16 (2026-11-29, session 7): see bench/README.md "Allocation budget"
	"realistic": 28, // measured 26: plus JWT (token cache hit), a memory rate limit, metrics
}

const benchJWTSecret = "path-bench-secret-0123456789abcdef"

// rawBackend answers every request with "HTTP/1.1 200 OK" and a 2-byte body, without
// allocating per request. It reads heads only (requests carry no body).
func rawBackend(tb testing.TB) string {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
	return serveConns(tb, func(c net.Conn, br *bufio.Reader) error {
		if err := skipHead(br); err != nil {
			return err
		}
		_, err := c.Write(resp)
		return err
	})
}

// serveConns listens on a loopback port and, on each connection, calls exchange (one request
// and its response) until it fails; it returns the address.
func serveConns(tb testing.TB, exchange func(c net.Conn, br *bufio.Reader) error) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for exchange(c, br) == nil {
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// skipHead reads one message head without keeping it.
func skipHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
		if len(line) == 2 && line[0] == '\r' {
			return nil
		}
	}
}

// rawClient sends one fixed request per call on a keep-alive connection and reads the
// response (Content-Length framing) without allocating.
type rawClient struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
	buf [64]byte
}

func (rc *rawClient) do() error {
	if _, err := rc.c.Write(rc.req); err != nil {
		return err
	}
	status := true
	length := -1
	for {
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if status {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
				return errors.New("unexpected status: " + string(line))
			}
			status = false
			continue
		}
		if len(line) == 2 {
			break
		}
		if len(line) > 16 && bytes.EqualFold(line[:15], []byte("Content-Length:")) {
			n, err := strconv.Atoi(string(bytes.TrimSpace(line[15:])))
			if err != nil {
				return err
			}
			length = n
		}
	}
	if length < 0 {
		return errors.New("response without Content-Length")
	}
	_, err := rc.br.Discard(length) // not io.CopyN, which allocates a LimitReader per call
	return err
}

// pathGateway starts a gateway with one route to a raw backend, in "plain" or "realistic"
// form, and returns a raw client connected to it.
func pathGateway(tb testing.TB, mode string) *rawClient {
	tb.Helper()
	yaml := `
version: 1
listeners: [{ name: public, address: "127.0.0.1:0" }]
server: { access_log: { output: stdout } }
services: [{ name: b, targets: [{ url: "http://` + rawBackend(tb) + `" }] }]
routes:
  - name: all
    match: { path: "/**" }
    service: b
`
	var token string
	if mode == "realistic" {
		yaml += `    plugins:
      jwt: { issuers: [bench] }
      rate_limit:
        - { key: ip, limit: 100000000, per: 1s, store: memory }
auth:
  issuers:
    - { name: bench, issuer: bench, audiences: [bench], algorithms: [HS256], hmac_secret: "` + benchJWTSecret + `" }
metrics: { enabled: true, go_runtime: false }
`
		var err error
		token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"iss": "bench", "aud": "bench", "sub": "u1", "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString([]byte(benchJWTSecret))
		if err != nil {
			tb.Fatal(err)
		}
	} else {
		yaml += "metrics: { enabled: false }\n"
	}
	cfg, err := config.Load("path.yaml", []byte(yaml), nil)
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), AccessLogWriter: io.Discard})
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	c, err := net.Dial("tcp", srv.Addrs()["public"])
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	req := "GET /api/v1/items?page=2 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	req += "\r\n"
	rc := &rawClient{c: c, br: bufio.NewReaderSize(c, 4096), req: []byte(req)}
	for range 50 { // warm pools, caches and the upstream connection
		if err := rc.do(); err != nil {
			tb.Fatal(err)
		}
	}
	return rc
}

// BenchmarkRequestPath measures one proxied request through the real listener: HTTP/1.1
// server, edge, route chain, proxy loop and upstream client, over loopback. allocs/op is the
// gateway's (see pathAllocBudget).
//
//	go test -run '^$' -bench RequestPath -benchmem ./internal/server
func BenchmarkRequestPath(b *testing.B) {
	for _, mode := range []string{"plain", "realistic"} {
		b.Run(mode, func(b *testing.B) {
			rc := pathGateway(b, mode)
			b.ReportAllocs()
			for b.Loop() {
				if err := rc.do(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRequestPathAllocBudget keeps the request path within its allocation budget.
func TestRequestPathAllocBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations over 300 requests")
	}
	if raceEnabled {
		t.Skip("the race detector changes allocation counts (sync.Pool drops items at random)")
	}
	for mode, budget := range pathAllocBudget {
		t.Run(mode, func(t *testing.T) {
			rc := pathGateway(t, mode)
			var failed error
			got := testing.AllocsPerRun(300, func() {
				if err := rc.do(); err != nil && failed == nil {
					failed = err
				}
			})
			if failed != nil {
				t.Fatal(failed)
			}
			t.Logf("%s: %.1f allocations per request (budget %.0f)", mode, got, budget)
			if got > budget {
				t.Errorf("%s request path: %.1f allocations per request, budget %.0f", mode, got, budget)
			}
		})
	}
}
