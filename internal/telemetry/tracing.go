package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/reqctx"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingOptions configures NewTracing.
type TracingOptions struct {
	// Endpoint is the OTLP/HTTP collector base URL; spans go to its /v1/traces unless it has a
	// path of its own.
	Endpoint string
	// Headers are sent with every export.
	Headers map[string]string
	// SampleRatio is the fraction of new traces recorded (parent-based).
	SampleRatio float64
	// ServiceName is the service.name resource attribute.
	ServiceName string
	// Timeout bounds one export.
	Timeout time.Duration
	// Exporter, when set, replaces the OTLP exporter and spans are exported synchronously as
	// they end (tests use an in-memory exporter).
	Exporter sdktrace.SpanExporter
}

// Tracing records OpenTelemetry spans: a server span per request and a client span per
// upstream attempt. A nil *Tracing records nothing.
type Tracing struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TraceContext
}

// NewTracing builds the tracer provider and its exporter. The exporter connects lazily; an
// unreachable collector costs dropped spans, never failed requests.
func NewTracing(o TracingOptions) (*Tracing, error) {
	exp := o.Exporter
	var export sdktrace.TracerProviderOption
	if exp != nil {
		export = sdktrace.WithSyncer(exp)
	} else {
		u, err := url.Parse(o.Endpoint)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("tracing: endpoint %q is not a URL", o.Endpoint)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/v1/traces"
		}
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.String())}
		if len(o.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(o.Headers))
		}
		if o.Timeout > 0 {
			opts = append(opts, otlptracehttp.WithTimeout(o.Timeout))
		}
		if exp, err = otlptracehttp.New(context.Background(), opts...); err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		export = sdktrace.WithBatcher(exp, sdktrace.WithMaxQueueSize(4096))
	}
	name := o.ServiceName
	if name == "" {
		name = "gatehouse"
	}
	tp := sdktrace.NewTracerProvider(
		export,
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", name))),
	)
	return &Tracing{tp: tp, tracer: tp.Tracer("github.com/gatehouse/gatehouse")}, nil
}

// Shutdown flushes buffered spans and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// StartServer starts the server span of a request, as a child of the request's `traceparent`
// when it carries one. The span is named after the method until SetRoute renames it.
func (t *Tracing) StartServer(ctx context.Context, r *http.Request, requestID string) (context.Context, trace.Span) {
	ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	return t.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.URL.Path),
		attribute.String("server.address", r.Host),
		attribute.String("network.protocol.version", strings.TrimPrefix(r.Proto, "HTTP/")),
		attribute.String("gatehouse.request_id", requestID),
	))
}

// Inject writes the span context of ctx into h as `traceparent` and `tracestate`.
func (t *Tracing) Inject(ctx context.Context, h http.Header) {
	t.prop.Inject(ctx, propagation.HeaderCarrier(h))
}

// EndServer finishes a server span with the response status.
func EndServer(span trace.Span, status int, clientIP string) {
	if status == 0 {
		status = http.StatusOK
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status), attribute.String("client.address", clientIP))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// requestKey carries the *Request of the request being served.
type requestKey struct{}

// Request is the telemetry state of one request, carried in its context by the edge so the
// proxy can report upstream attempts without knowing about metrics or tracing. Only the
// goroutine serving the request touches it.
type Request struct {
	// Tracing is nil when tracing is off.
	Tracing *Tracing
	// Route receives the upstream attempt metrics (nil before routing or with metrics off).
	Route *RouteMetrics
	// Attempts counts the attempts reported through StartAttempt.
	Attempts int

	attemptStart  time.Time
	attemptTarget string
	attemptSpan   trace.Span
}

// WithRequest returns ctx carrying rs.
func WithRequest(ctx context.Context, rs *Request) context.Context {
	return context.WithValue(ctx, requestKey{}, rs)
}

// BindRequest stores rs in the request's Scope itself (see httpx.BindInfo); false means s
// could not take it and the caller must use WithRequest.
func BindRequest(s *reqctx.Scope, rs *Request) bool {
	return s.Set(requestKey{}, rs)
}

// RequestFrom returns the telemetry state of the request ctx belongs to, or nil.
func RequestFrom(ctx context.Context) *Request {
	rs, _ := ctx.Value(requestKey{}).(*Request)
	return rs
}

// StartAttempt reports that an upstream attempt to target ("host:port") starts with the
// outgoing headers h, at start (the caller's clock reading, which it then measures the
// attempt's duration from): it starts a client span (child of the server span) and writes its
// `traceparent` into h. Every StartAttempt must be followed by
// one EndAttempt with the same ctx. Attempts of one request must not overlap. Without
// telemetry state in ctx it does nothing.
func StartAttempt(ctx context.Context, h http.Header, target string, start time.Time) {
	rs := RequestFrom(ctx)
	if rs == nil {
		return
	}
	rs.Attempts++
	rs.attemptStart, rs.attemptTarget = start, target
	if rs.Tracing != nil {
		sctx, span := rs.Tracing.tracer.Start(ctx, "upstream "+target, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("server.address", target), attribute.Int("gatehouse.attempt", rs.Attempts)))
		rs.attemptSpan = span
		rs.Tracing.Inject(sctx, h)
	}
}

// EndAttempt reports the end of the attempt started last, d after its start: its response
// status, or err when no response came back.
func EndAttempt(ctx context.Context, status int, err error, d time.Duration) {
	rs := RequestFrom(ctx)
	if rs == nil || rs.attemptStart.IsZero() {
		return
	}
	rs.Route.UpstreamAttempt(rs.attemptTarget, status, err, d)
	rs.attemptStart = time.Time{}
	if span := rs.attemptSpan; span != nil {
		rs.attemptSpan = nil
		endClientSpan(span, status, err)
	}
}

func endClientSpan(span trace.Span, status int, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "upstream error")
	} else {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}

// CallAttempt starts an attempt of a call made for the request ctx belongs to outside its proxy
// chain (an aggregate's calls, which run concurrently, unlike StartAttempt's): a client span,
// child of the request's server span, whose traceparent goes into h, and the attempt metric
// under rm (the call's route and service; nil: none). It returns the function that ends it.
func CallAttempt(ctx context.Context, rm *RouteMetrics, h http.Header, target string) func(status int, err error) {
	start := time.Now()
	var span trace.Span
	if rs := RequestFrom(ctx); rs != nil && rs.Tracing != nil {
		var sctx context.Context
		sctx, span = rs.Tracing.tracer.Start(ctx, "upstream "+target, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("server.address", target)))
		rs.Tracing.Inject(sctx, h)
	}
	return func(status int, err error) {
		rm.UpstreamAttempt(target, status, err, time.Since(start))
		if span != nil {
			endClientSpan(span, status, err)
		}
	}
}

// ErrNoResponse stands for an upstream attempt that produced no response, when the edge
// reports an attempt the proxy did not.
var ErrNoResponse = errors.New("upstream attempt failed")
