package telemetry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestStatusClassAndMethod(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{0: "2xx", 101: "1xx", 200: "2xx", 304: "3xx", 404: "4xx", 499: "4xx", 503: "5xx", 99: "5xx", 600: "5xx", -1: "5xx"} {
		if got := StatusClass(status); got != want {
			t.Errorf("StatusClass(%d) = %s, want %s", status, got, want)
		}
	}
	for m, want := range map[string]string{"GET": "GET", "DELETE": "DELETE", "get": "OTHER", "BREW": "OTHER", "": "OTHER"} {
		if got := methods[methodIndex(m)]; got != want {
			t.Errorf("method %q -> %s, want %s", m, got, want)
		}
	}
}

func TestRouteMetricsExactCounts(t *testing.T) {
	t.Parallel()
	m := NewMetrics(MetricsOptions{})
	rm := m.Route("users", "users-svc")
	if m.Route("users", "users-svc") != rm {
		t.Fatal("Route is not memoized: a reload would re-bind every route")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				rm.Observe("GET", 200, 3*time.Millisecond)
			}
		}()
	}
	wg.Wait()
	rm.Observe("POST", 503, 2*time.Second)
	rm.Observe("PURGE", 404, time.Millisecond)
	if got := testutil.ToFloat64(m.requests.WithLabelValues("users", "users-svc", "GET", "2xx")); got != 800 {
		t.Errorf("GET 2xx = %v, want 800", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("users", "users-svc", "POST", "5xx")); got != 1 {
		t.Errorf("POST 5xx = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("users", "users-svc", "OTHER", "4xx")); got != 1 {
		t.Errorf("OTHER 4xx = %v, want 1", got)
	}
	rm.UpstreamAttempt("10.0.0.1:80", 200, nil, time.Millisecond)
	rm.UpstreamAttempt("10.0.0.1:80", 0, errors.New("refused"), time.Millisecond)
	rm.UpstreamAttempt("10.0.0.1:80", 0, errors.New("refused"), time.Millisecond)
	if got := testutil.ToFloat64(m.attempts.WithLabelValues("users-svc", "10.0.0.1:80", "error")); got != 2 {
		t.Errorf("attempt errors = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.attempts.WithLabelValues("users-svc", "10.0.0.1:80", "2xx")); got != 1 {
		t.Errorf("attempt 2xx = %v, want 1", got)
	}

	stats := m.RouteStats()
	if len(stats) != 1 {
		t.Fatalf("stats: %+v", stats)
	}
	st := stats[0]
	if st.Route != "users" || st.Requests != 802 || st.Errors != 1 || st.Client != 1 {
		t.Errorf("stats %+v", st)
	}
	// 3ms falls in the 5ms bucket (index 2); 1ms in the first; 2s in the 2.5s bucket.
	if st.Buckets[0] != 1 || st.Buckets[2] != 801 || st.Buckets[len(st.Buckets)-3] != 802 || st.Buckets[len(st.Buckets)-4] != 801 {
		t.Errorf("buckets %v", st.Buckets)
	}
}

func TestNilMetricsAreNoOps(t *testing.T) {
	t.Parallel()
	var m *Metrics
	rm := m.Route("a", "b")
	rm.Observe("GET", 200, time.Millisecond)
	rm.UpstreamAttempt("x", 200, nil, 0)
	m.RequestStarted()
	m.RequestDone()
	m.RateLimitDecision("a", "l", true)
	m.AuthFailure("a", "r")
	m.CacheLookup("a", true)
	m.SetBreakerState("s", "t", BreakerOpen)
	m.ConfigReload(true, time.Now())
	m.SetTargetSource(nil)
	if m.RouteStats() != nil || m.InFlight() != 0 || rm.Name() != "" {
		t.Error("nil metrics returned data")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 {
		t.Errorf("nil metrics handler answered %d", rec.Code)
	}
}

func TestTargetCollectorDeduplicates(t *testing.T) {
	t.Parallel()
	m := NewMetrics(MetricsOptions{})
	m.SetTargetSource(func() []TargetStatus {
		return []TargetStatus{{Service: "s", Target: "http://a", Healthy: true, InFlight: 2}, {Service: "s", Target: "http://a", Healthy: true, InFlight: 2},
			{Service: "s", Target: "http://b", Healthy: false}}
	})
	n, err := testutil.GatherAndCount(m.reg, "gatehouse_target_healthy", "gatehouse_target_in_flight")
	if err != nil || n != 4 {
		t.Fatalf("target series %d (%v), want 4", n, err)
	}
	err = testutil.GatherAndCompare(m.reg, strings.NewReader(`
# HELP gatehouse_target_healthy 1 if the upstream target may receive traffic, 0 if it is marked down.
# TYPE gatehouse_target_healthy gauge
gatehouse_target_healthy{service="s",target="http://a"} 1
gatehouse_target_healthy{service="s",target="http://b"} 0
`), "gatehouse_target_healthy")
	if err != nil {
		t.Error(err)
	}
}

// TestUpstreamAttemptSpans drives the API the proxy calls per attempt: a client span per
// attempt, child of the server span, whose context is what goes upstream.
func TestUpstreamAttemptSpans(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tr, err := NewTracing(TracingOptions{SampleRatio: 1, Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	m := NewMetrics(MetricsOptions{})
	rs := &Request{Tracing: tr, Route: m.Route("r", "svc")}
	in := httptest.NewRequest("GET", "/x", nil)
	ctx, server := tr.StartServer(context.Background(), in, "req-1")
	ctx = WithRequest(ctx, rs)

	for i, outcome := range []struct {
		status int
		err    error
	}{{0, errors.New("connection refused")}, {200, nil}} {
		h := http.Header{}
		StartAttempt(ctx, h, "10.0.0.9:8080", time.Now())
		EndAttempt(ctx, outcome.status, outcome.err, time.Millisecond)
		spans := exp.GetSpans()
		if len(spans) != i+1 {
			t.Fatalf("attempt %d: %d spans", i, len(spans))
		}
		c := spans[i]
		if c.SpanKind != trace.SpanKindClient || c.Parent.SpanID() != server.SpanContext().SpanID() {
			t.Errorf("attempt %d: kind %v parent %s, want client child of %s", i, c.SpanKind, c.Parent.SpanID(), server.SpanContext().SpanID())
		}
		want := "00-" + server.SpanContext().TraceID().String() + "-" + c.SpanContext.SpanID().String() + "-01"
		if h.Get("Traceparent") != want {
			t.Errorf("attempt %d: injected %q, want %q", i, h.Get("Traceparent"), want)
		}
		if (outcome.err != nil) != (c.Status.Code.String() == "Error") {
			t.Errorf("attempt %d: status %v", i, c.Status)
		}
	}
	EndServer(server, 200, "203.0.113.1")
	if rs.Attempts != 2 {
		t.Errorf("attempts %d", rs.Attempts)
	}
	if got := testutil.ToFloat64(m.attempts.WithLabelValues("svc", "10.0.0.9:8080", "error")); got != 1 {
		t.Errorf("error attempts %v", got)
	}
	// Without telemetry state (tracing and metrics off) the calls do nothing.
	h := http.Header{}
	StartAttempt(context.Background(), h, "x", time.Now())
	EndAttempt(context.Background(), 200, nil, time.Millisecond)
	if len(h) != 0 {
		t.Error("headers written without telemetry state")
	}
}

// TestOTLPExport sends spans to a fake collector over OTLP/HTTP.
func TestOTLPExport(t *testing.T) {
	t.Parallel()
	got := make(chan string, 4)
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- r.URL.Path + " " + r.Header.Get("Authorization") + " " + r.Header.Get("Content-Type") + " " + string(body)
		w.WriteHeader(200)
	}))
	defer col.Close()
	tr, err := NewTracing(TracingOptions{Endpoint: col.URL, Headers: map[string]string{"Authorization": "Bearer t"}, SampleRatio: 1,
		ServiceName: "edge-gw", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.StartServer(context.Background(), httptest.NewRequest("GET", "/", nil), "rid")
	EndServer(span, 200, "")
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-got:
		if !strings.HasPrefix(req, "/v1/traces Bearer t application/x-protobuf") || !strings.Contains(req, "edge-gw") {
			t.Errorf("collector got %q", req)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no export reached the collector")
	}
	if _, err := NewTracing(TracingOptions{Endpoint: "::bad"}); err == nil {
		t.Error("bad endpoint accepted")
	}
}

var _ sdktrace.SpanExporter = (*tracetest.InMemoryExporter)(nil)

func BenchmarkRouteMetricsObserve(b *testing.B) {
	m := NewMetrics(MetricsOptions{})
	rm := m.Route("users", "users")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rm.Observe("GET", 200, 1500*time.Microsecond)
		}
	})
}

// The policy counters are resolved once per label set and cached; every call still counts,
// past the cache's bound too.
func TestPolicyCountersCached(t *testing.T) {
	t.Parallel()
	m := NewMetrics(MetricsOptions{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 250 {
				m.RateLimitDecision("r", "l", true)
				m.RateLimitDecision("r", "l", false)
				m.CacheLookup("r", true)
			}
		})
	}
	wg.Wait()
	for i := range maxCachedLabelSets + 10 {
		m.CacheLookup("route-"+strconv.Itoa(i), false)
	}
	m.CacheLookup("route-0", false)                                   // cached
	m.CacheLookup("route-"+strconv.Itoa(maxCachedLabelSets+5), false) // past the bound
	for _, c := range []struct {
		ctr  prometheus.Counter
		want float64
	}{
		{m.rateLimit.WithLabelValues("r", "l", "allowed"), 1000},
		{m.rateLimit.WithLabelValues("r", "l", "denied"), 1000},
		{m.cache.WithLabelValues("r", "hit"), 1000},
		{m.cache.WithLabelValues("route-0", "miss"), 2},
		{m.cache.WithLabelValues("route-"+strconv.Itoa(maxCachedLabelSets+5), "miss"), 2},
	} {
		if got := testutil.ToFloat64(c.ctr); got != c.want {
			t.Errorf("%v = %v, want %v", c.ctr.Desc(), got, c.want)
		}
	}
}
