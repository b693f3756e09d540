// Package bench holds the Go benchmarks of whole-gateway features; run.sh holds the wrk proxy
// comparison.
//
// The aggregation benchmark runs the real server (listener, edge, router, chain) on loopback
// with an aggregate route of three JSON backends, next to a plain proxied route to one of them:
//
//	go test ./bench -run '^$' -bench Aggregate -benchmem -benchtime 3s
//
// BenchmarkAggregate3 measures the gateway's cost per request (three backends answering at
// once); BenchmarkAggregate3Latency gives the three backends 5, 10 and 20ms of latency and
// shows that an aggregate costs the slowest call, not the sum (ms/req about 20, not 35).
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server"
)

const benchYAML = `version: 1
listeners: [{ name: public, address: "127.0.0.1:0" }]
server: { access_log: { enabled: false } }
services:
  - { name: users, targets: [{ url: "http://%s" }], pool: { max_idle_per_target: 512 } }
  - { name: orders, targets: [{ url: "http://%s" }], pool: { max_idle_per_target: 512 } }
  - { name: recs, targets: [{ url: "http://%s" }], pool: { max_idle_per_target: 512 } }
routes:
  - name: proxy
    match: { path: "/proxy/users/{id}" }
    service: users
    rewrite: "/users/{id}"
  - name: dashboard
    match: { path: "/dashboard/{id}" }
    aggregate:
      timeout: 2s
      calls:
        - { name: user, service: users, path: "/users/{id}", required: true }
        - { name: recent_orders, service: orders, path: "/users/{id}/orders?limit=5", default: [] }
        - { name: recommendations, service: recs, path: "/users/{id}/recommendations", default: [] }
      profiles:
        - name: mobile
          match: { headers: { X-Client-Type: mobile } }
          calls:
            user: { select: [id, name] }
            recent_orders: { select: [id], limit: { ".": 2 } }
            recommendations: { limit: { ".": 1 } }
`

const (
	userJSON   = `{"id":"7","name":"Ada Lovelace","email":"ada@example.com","plan":"pro","address":{"city":"London","zip":"N1"}}`
	ordersJSON = `[{"id":"o1","total":42.5,"status":"shipped"},{"id":"o2","total":9.99,"status":"processing"},{"id":"o3","total":120,"status":"delivered"}]`
	recsJSON   = `[{"product_id":"p2","score":0.91},{"product_id":"p3","score":0.74},{"product_id":"p9","score":0.51}]`
)

func jsonBackend(body string, delay time.Duration) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if delay > 0 {
			time.Sleep(delay)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
}

// startBench runs the gateway in front of three backends with the given latencies.
func startBench(b *testing.B, delays [3]time.Duration) (base string, stop func()) {
	b.Helper()
	backs := []*httptest.Server{jsonBackend(userJSON, delays[0]), jsonBackend(ordersJSON, delays[1]), jsonBackend(recsJSON, delays[2])}
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	yaml := fmt.Sprintf(benchYAML, addr(backs[0]), addr(backs[1]), addr(backs[2]))
	cfg, err := config.Load("bench.yaml", []byte(yaml), nil)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(cfg, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), AccessLogWriter: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	return "http://" + srv.Addrs()["public"], func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		for _, s := range backs {
			s.Close()
		}
	}
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, DisableCompression: true}}
}

func get(b *testing.B, c *http.Client, url string, hdr ...string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Gatehouse-Degraded") != "" {
		b.Fatalf("%s: status %d degraded %q", url, resp.StatusCode, resp.Header.Get("X-Gatehouse-Degraded"))
	}
}

// BenchmarkAggregate3 is requests through the gateway with parallel clients: a plain proxied
// route to one backend (the reference), the 3-backend aggregate, and the aggregate shaped by
// the mobile profile.
func BenchmarkAggregate3(b *testing.B) {
	base, stop := startBench(b, [3]time.Duration{})
	defer stop()
	for _, bc := range []struct {
		name string
		path string
		hdr  []string
	}{
		{"proxy-1-backend", "/proxy/users/7", nil},
		{"aggregate-3-backends", "/dashboard/7", nil},
		{"aggregate-3-backends-mobile-shaped", "/dashboard/7", []string{"X-Client-Type", "mobile"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := benchClient()
			defer c.CloseIdleConnections()
			get(b, c, base+bc.path, bc.hdr...)
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					get(b, c, base+bc.path, bc.hdr...)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// BenchmarkAggregate3Latency: backends of 5, 10 and 20ms; one request at a time. The
// aggregate's latency is that of the slowest backend (about 20ms), not their sum (35ms).
func BenchmarkAggregate3Latency(b *testing.B) {
	base, stop := startBench(b, [3]time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond})
	defer stop()
	c := benchClient()
	defer c.CloseIdleConnections()
	get(b, c, base+"/dashboard/7")
	b.ResetTimer()
	for range b.N {
		get(b, c, base+"/dashboard/7")
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/req")
}
