package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil/redisserver"
)

// BenchmarkGatewayRateLimit compares throughput through the whole server stack (listener,
// routing, proxy to a loopback backend) without a limit, with a memory limit and with a Redis
// limit (each under a budget that never runs out, so every request is proxied).
func BenchmarkGatewayRateLimit(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer backend.Close()
	rs := redisserver.Start(b)
	cases := []struct{ name, plugins string }{
		{"none", ""},
		{"memory", "    plugins: { rate_limit: [{ key: ip, limit: 1000000000, per: 1s, store: memory }] }\n"},
		{"redis", "    plugins: { rate_limit: [{ key: ip, limit: 1000000000, per: 1s, store: redis }] }\n"},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			yaml := `version: 1
listeners: [{ name: public, address: "127.0.0.1:0" }]
server: { access_log: { enabled: false } }
store: { redis: { url: "` + rs.URL() + `", timeout: 1s } }
services: [{ name: a, targets: [{ url: "` + backend.URL + `" }] }]
routes:
  - name: r
    match: { path: /** }
    service: a
` + tc.plugins
			cfg, err := config.Load("bench.yaml", []byte(yaml), nil)
			if err != nil {
				b.Fatal(err)
			}
			srv, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			if err := srv.Start(); err != nil {
				b.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			url := "http://" + srv.Addrs()["public"] + "/x"
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || (tc.name != "none") != strings.HasPrefix(resp.Header.Get("RateLimit"), `"ip";`) {
						b.Errorf("status %d RateLimit %q", resp.StatusCode, resp.Header.Get("RateLimit"))
						return
					}
				}
			})
		})
	}
}
