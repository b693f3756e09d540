package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

const tracingYAML = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
tracing: { enabled: true, endpoint: "http://127.0.0.1:1", sample_ratio: ${RATIO:-1} }
services:
  - name: echo
    targets: [{ url: "http://${ECHO}" }]
routes:
  - name: users
    match: { path: "/users/{id}" }
    service: echo
`

// waitSpans waits until the exporter holds n spans (the server span ends after the response
// is written, so it can trail the client's read).
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, n int) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		spans := exp.GetSpans()
		if len(spans) >= n || time.Now().After(deadline) {
			if len(spans) != n {
				t.Fatalf("got %d spans, want %d: %+v", len(spans), n, spans)
			}
			return spans
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serverAndClient picks the server span and the client (upstream attempt) span.
func serverAndClient(t *testing.T, spans tracetest.SpanStubs) (server, client tracetest.SpanStub) {
	t.Helper()
	var ns, nc int
	for _, sp := range spans {
		switch sp.SpanKind {
		case trace.SpanKindServer:
			server, ns = sp, ns+1
		case trace.SpanKindClient:
			client, nc = sp, nc+1
		}
	}
	if ns != 1 || nc != 1 {
		t.Fatalf("want one server and one client span, got %d and %d", ns, nc)
	}
	return server, client
}

// parseTraceparent splits a W3C traceparent into trace ID, parent span ID and flags.
func parseTraceparent(t *testing.T, v string) (traceID, spanID, flags string) {
	t.Helper()
	p := strings.Split(v, "-")
	if len(p) != 4 || p[0] != "00" || len(p[1]) != 32 || len(p[2]) != 16 || len(p[3]) != 2 {
		t.Fatalf("malformed traceparent %q", v)
	}
	return p[1], p[2], p[3]
}

func TestTracingServerSpanIsParentOfUpstream(t *testing.T) {
	echo := newEcho(t, "echo")
	exp := tracetest.NewInMemoryExporter()
	g := startObsGateway(t, tracingYAML, map[string]string{"ECHO": hostPort(echo)}, func(o *Options) { o.SpanExporter = exp })

	const clientTrace, clientSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	resp, body := g.get(t, "/users/42", "Traceparent", "00-"+clientTrace+"-"+clientSpan+"-01", "Tracestate", "vendor=abc")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	up := http.Header(decodeEcho(t, body).Header)
	if got := up.Values("Traceparent"); len(got) != 1 {
		t.Fatalf("upstream got traceparent %v, want exactly one", got)
	}
	traceID, parentID, flags := parseTraceparent(t, up.Get("Traceparent"))
	if up.Get("Tracestate") != "vendor=abc" {
		t.Errorf("tracestate %q not propagated", up.Get("Tracestate"))
	}

	// Two spans: the server span, and the client span of the upstream attempt (ended first).
	spans := waitSpans(t, exp, 2)
	s, c := serverAndClient(t, spans)
	if c.Parent.SpanID() != s.SpanContext.SpanID() || c.SpanContext.TraceID() != s.SpanContext.TraceID() {
		t.Errorf("client span parent %s, want the server span %s", c.Parent.SpanID(), s.SpanContext.SpanID())
	}
	if s.SpanKind != trace.SpanKindServer || s.Name != "GET /users/{id}" {
		t.Errorf("span kind %v name %q, want server \"GET /users/{id}\"", s.SpanKind, s.Name)
	}
	// Parent: the client's span; child: what the upstream sees as its parent.
	if s.SpanContext.TraceID().String() != clientTrace || s.Parent.SpanID().String() != clientSpan || !s.Parent.IsRemote() {
		t.Errorf("server span trace %s parent %s, want child of %s/%s", s.SpanContext.TraceID(), s.Parent.SpanID(), clientTrace, clientSpan)
	}
	if traceID != clientTrace || parentID != c.SpanContext.SpanID().String() || flags != "01" {
		t.Errorf("upstream traceparent %s/%s/%s, want %s/%s/01 (the client span)", traceID, parentID, flags, clientTrace, c.SpanContext.SpanID())
	}
	attrs := map[string]string{}
	for _, a := range s.Attributes {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	for k, v := range map[string]string{"http.request.method": "GET", "http.route": "/users/{id}", "gatehouse.route": "users",
		"gatehouse.service": "echo", "http.response.status_code": "200", "gatehouse.request_id": resp.Header.Get("X-Request-Id")} {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, attrs[k], v)
		}
	}

	// Without an incoming traceparent the server span is a root and still propagates.
	exp.Reset()
	_, body = g.get(t, "/users/7")
	traceID, parentID, _ = parseTraceparent(t, http.Header(decodeEcho(t, body).Header).Get("Traceparent"))
	s, c = serverAndClient(t, waitSpans(t, exp, 2))
	if s.Parent.IsValid() || traceID != s.SpanContext.TraceID().String() || parentID != c.SpanContext.SpanID().String() {
		t.Errorf("root span: parent %v; upstream traceparent %s/%s, client span %s/%s", s.Parent, traceID, parentID, c.SpanContext.TraceID(), c.SpanContext.SpanID())
	}

	// A 404 is traced too, and marked by status, not as an error.
	exp.Reset()
	g.get(t, "/nope")
	s = waitSpans(t, exp, 1)[0]
	if s.Name != "GET" || s.Status.Code.String() == "Error" {
		t.Errorf("404 span name %q status %v", s.Name, s.Status)
	}
}

// TestTracingSampledOutStillPropagates: with sample_ratio 0 nothing is recorded, but the
// upstream still gets a traceparent (not sampled) continuing the client's trace.
func TestTracingSampledOutStillPropagates(t *testing.T) {
	echo := newEcho(t, "echo")
	exp := tracetest.NewInMemoryExporter()
	g := startObsGateway(t, tracingYAML, map[string]string{"ECHO": hostPort(echo), "RATIO": "0"}, func(o *Options) { o.SpanExporter = exp })
	_, body := g.get(t, "/users/1")
	traceID, _, flags := parseTraceparent(t, http.Header(decodeEcho(t, body).Header).Get("Traceparent"))
	if traceID == strings.Repeat("0", 32) || flags != "00" {
		t.Errorf("sampled-out traceparent %s flags %s", traceID, flags)
	}
	const clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	_, body = g.get(t, "/users/1", "Traceparent", "00-"+clientTrace+"-00f067aa0ba902b7-00")
	if traceID, _, _ = parseTraceparent(t, http.Header(decodeEcho(t, body).Header).Get("Traceparent")); traceID != clientTrace {
		t.Errorf("trace %s not continued: %s", clientTrace, traceID)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans recorded with sample_ratio 0", n)
	}
}

// TestTracingOffPassesTraceparentThrough: with tracing off (the default) the client's trace
// headers still reach the upstream unchanged.
func TestTracingOffPassesTraceparentThrough(t *testing.T) {
	echo := newEcho(t, "echo")
	y := strings.Replace(tracingYAML, `tracing: { enabled: true, endpoint: "http://127.0.0.1:1", sample_ratio: ${RATIO:-1} }`, "", 1)
	g := startObsGateway(t, y, map[string]string{"ECHO": hostPort(echo)}, nil)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	_, body := g.get(t, "/users/1", "Traceparent", tp, "Tracestate", "a=b")
	h := http.Header(decodeEcho(t, body).Header)
	if h.Get("Traceparent") != tp || h.Get("Tracestate") != "a=b" {
		t.Errorf("upstream traceparent %q tracestate %q, want them unchanged", h.Get("Traceparent"), h.Get("Tracestate"))
	}
}

var _ sdktrace.SpanExporter = (*tracetest.InMemoryExporter)(nil)
