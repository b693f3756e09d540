package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkObservabilityOverhead measures what metrics (and tracing) add per request, through
// Server.ServeHTTP: "edge" requests match no route (routing and instrumentation only, no
// network), "proxy" requests go to a loopback backend.
//
//	go test -run '^$' -bench ObservabilityOverhead -benchmem ./internal/server
func BenchmarkObservabilityOverhead(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer backend.Close()
	base := `
version: 1
listeners: [{ name: public, address: "127.0.0.1:0" }]
server: { access_log: { enabled: false } }
services: [{ name: echo, targets: [{ url: "http://` + strings.TrimPrefix(backend.URL, "http://") + `" }] }]
routes: [{ name: echo, match: { path: /api/** }, service: echo }]
`
	modes := []struct{ name, yaml string }{
		{"metrics=off", "metrics: { enabled: false }\n"},
		{"metrics=on", "metrics: { go_runtime: false }\n"},
		{"metrics+tracing=on", "metrics: { go_runtime: false }\ntracing: { enabled: true, endpoint: \"http://127.0.0.1:1\" }\n"},
	}
	for _, path := range []struct{ name, path string }{{"edge", "/nowhere"}, {"proxy", "/api/x"}} {
		for _, m := range modes {
			b.Run(path.name+"/"+m.name, func(b *testing.B) {
				cfg, err := config.Load("bench.yaml", []byte(base+m.yaml), nil)
				if err != nil {
					b.Fatal(err)
				}
				srv, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler), SpanExporter: tracetest.NewNoopExporter()})
				if err != nil {
					b.Fatal(err)
				}
				defer srv.Shutdown(context.Background())
				req := httptest.NewRequest("GET", path.path, nil)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					w := httptest.NewRecorder()
					srv.ServeHTTP(w, req)
				}
			})
		}
	}
}
