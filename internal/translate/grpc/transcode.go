package grpc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/translate/grpc/wire"
	"github.com/gatehouse/gatehouse/internal/upstream"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// DefaultMaxMessageBytes bounds one gRPC response message read by the transcoder.
const DefaultMaxMessageBytes = 16 << 20

// reloadInterval is how often a schema that could not be loaded is tried again.
const reloadInterval = 5 * time.Second

// Options configure a transcoding Handler.
type Options struct {
	// Route names the route in logs.
	Route string
	// Upstream is the gRPC service called (its transport must speak HTTP/2). Required.
	Upstream *upstream.Service
	// Files is the schema. When nil, Load is called (at New and, while it fails, again on
	// requests at most every 5s) to get it.
	Files *protoregistry.Files
	// Load fetches the schema (server reflection).
	Load func(ctx context.Context) (*protoregistry.Files, error)
	// LoadTimeout bounds one Load. Default: 5s.
	LoadTimeout time.Duration
	// Service, a fully qualified gRPC service name, maps requests to its methods by their
	// google.api.http annotations. Either Service or Method.
	Service string
	// Method is the one method called ("pkg.Service/Method"); path parameters come from the
	// route's match.
	Method string
	// Body is where the JSON body goes with Method: "*", a field name or "" (none).
	Body string
	// ResponseBody, with Method, answers with that field of the response message.
	ResponseBody string
	// UseProtoNames writes the .proto field names instead of lowerCamelCase JSON names.
	UseProtoNames bool
	// EmitUnpopulated writes zero-valued fields.
	EmitUnpopulated bool
	// ForwardHeaders are request headers sent as metadata (canonical names).
	ForwardHeaders []string
	// RequestTimeout bounds a call (0: only the client's deadline and the service's own).
	RequestTimeout time.Duration
	// MaxMessageBytes bounds a response message. Default: DefaultMaxMessageBytes.
	MaxMessageBytes int
	// Logger receives load failures and upstream errors. Default: slog.Default().
	Logger *slog.Logger
}

// Handler transcodes REST/JSON requests to gRPC calls. It is immutable once built, apart from
// loading a schema that was not available when it was built.
type Handler struct {
	o     Options
	table atomic.Pointer[table]

	loadMu   sync.Mutex
	lastLoad time.Time
	lastErr  error
}

// table is the compiled mapping from requests to methods.
type table struct {
	bindings []*binding
	types    *dynamicpb.Types
}

// binding maps one HTTP method and path template to a gRPC method.
type binding struct {
	method       protoreflect.MethodDescriptor
	path         string // "/pkg.Service/Method"
	httpMethod   string // "" with an explicit method: the route decides
	tmpl         *pathTemplate
	body         string
	responseBody protoreflect.FieldDescriptor
}

// ErrSchema is wrapped by New's errors about the schema (a method that does not exist, an
// unsupported streaming kind), as opposed to a schema that could not be loaded.
var ErrSchema = errors.New("grpc schema")

// New builds a Handler. With Files it fails if the schema does not fit the options; with Load
// it tries to load the schema, and if that fails the handler answers 503 and retries on later
// requests (the error is returned as LoadErr for logging).
func New(o Options) (h *Handler, loadErr error, err error) {
	if o.Upstream == nil {
		return nil, nil, errors.New("grpc: upstream is required")
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.LoadTimeout <= 0 {
		o.LoadTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h = &Handler{o: o}
	files := o.Files
	if files == nil {
		if o.Load == nil {
			return nil, nil, errors.New("grpc: a schema (files or a loader) is required")
		}
		ctx, cancel := context.WithTimeout(context.Background(), o.LoadTimeout)
		files, loadErr = o.Load(ctx)
		cancel()
		h.lastLoad = time.Now()
		if loadErr != nil {
			h.lastErr = loadErr
			return h, loadErr, nil
		}
	}
	t, err := buildTable(&h.o, files)
	if err != nil {
		return nil, nil, err
	}
	h.table.Store(t)
	return h, nil, nil
}

// Summary describes the handler for the route table.
func (h *Handler) Summary() string {
	target := h.o.Method
	if target == "" {
		target = h.o.Service + " (google.api.http)"
	}
	t := h.table.Load()
	if t == nil {
		return "grpc " + target + " (schema not loaded yet)"
	}
	return fmt.Sprintf("grpc %s, %d binding(s)", target, len(t.bindings))
}

func buildTable(o *Options, files *protoregistry.Files) (*table, error) {
	t := &table{types: dynamicpb.NewTypes(files)}
	if o.Method != "" {
		svcName, mName, _ := strings.Cut(o.Method, "/")
		sd, err := findService(files, svcName)
		if err != nil {
			return nil, err
		}
		md := sd.Methods().ByName(protoreflect.Name(mName))
		if md == nil {
			return nil, fmt.Errorf("%w: service %s has no method %s", ErrSchema, svcName, mName)
		}
		if md.IsStreamingClient() {
			return nil, fmt.Errorf("%w: %s is client-streaming; only unary and server-streaming methods can be transcoded (proxy gRPC clients to it instead)", ErrSchema, o.Method)
		}
		b := &binding{method: md, path: "/" + o.Method, body: o.Body}
		if err := b.check(o.ResponseBody); err != nil {
			return nil, err
		}
		t.bindings = []*binding{b}
		return t, nil
	}
	sd, err := findService(files, o.Service)
	if err != nil {
		return nil, err
	}
	for i := 0; i < sd.Methods().Len(); i++ {
		md := sd.Methods().Get(i)
		rule := httpRule(md)
		if rule == nil || md.IsStreamingClient() {
			continue
		}
		for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
			verb, pattern := ruleVerb(r)
			if pattern == "" {
				continue
			}
			tmpl, err := parseTemplate(pattern)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrSchema, md.FullName(), err)
			}
			b := &binding{method: md, path: "/" + string(sd.FullName()) + "/" + string(md.Name()), httpMethod: verb, tmpl: tmpl, body: r.GetBody()}
			if err := b.check(r.GetResponseBody()); err != nil {
				return nil, err
			}
			t.bindings = append(t.bindings, b)
		}
	}
	if len(t.bindings) == 0 {
		return nil, fmt.Errorf("%w: service %s has no method with a google.api.http annotation (use method: to map a route explicitly)", ErrSchema, o.Service)
	}
	// More literal segments first, so /v1/users:search beats /v1/users/{id}; stable otherwise.
	sort.SliceStable(t.bindings, func(i, j int) bool { return t.bindings[i].tmpl.literals > t.bindings[j].tmpl.literals })
	return t, nil
}

func (b *binding) check(responseBody string) error {
	in := b.method.Input()
	if b.body != "" && b.body != "*" {
		f := in.Fields().ByName(protoreflect.Name(b.body))
		if f == nil {
			return fmt.Errorf("%w: %s has no field %q for the body", ErrSchema, in.FullName(), b.body)
		}
	}
	if responseBody != "" {
		out := b.method.Output()
		f := out.Fields().ByName(protoreflect.Name(responseBody))
		if f == nil {
			return fmt.Errorf("%w: %s has no field %q for response_body", ErrSchema, out.FullName(), responseBody)
		}
		b.responseBody = f
	}
	return nil
}

func findService(files *protoregistry.Files, name string) (protoreflect.ServiceDescriptor, error) {
	d, err := files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, fmt.Errorf("%w: service %s is not in the schema", ErrSchema, name)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a service", ErrSchema, name)
	}
	return sd, nil
}

// httpRule returns the method's google.api.http annotation. The options are re-read with the
// gateway's registry so the extension is found whether the schema came from a file or from
// reflection (which leave it as unknown bytes).
func httpRule(md protoreflect.MethodDescriptor) *annotations.HttpRule {
	opts, ok := md.Options().(*descriptorpb.MethodOptions)
	if !ok || opts == nil {
		return nil
	}
	raw, err := proto.Marshal(opts)
	if err != nil {
		return nil
	}
	var fresh descriptorpb.MethodOptions
	if err := (proto.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(raw, &fresh); err != nil {
		return nil
	}
	rule, _ := proto.GetExtension(&fresh, annotations.E_Http).(*annotations.HttpRule)
	if rule == nil || ruleVerbPattern(rule) == "" {
		return nil
	}
	return rule
}

func ruleVerb(r *annotations.HttpRule) (string, string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Custom:
		return strings.ToUpper(p.Custom.GetKind()), p.Custom.GetPath()
	}
	return "", ""
}

func ruleVerbPattern(r *annotations.HttpRule) string { _, p := ruleVerb(r); return p }

// schema returns the compiled table, loading the schema if it is still missing.
func (h *Handler) schema(ctx context.Context) (*table, error) {
	if t := h.table.Load(); t != nil {
		return t, nil
	}
	h.loadMu.Lock()
	defer h.loadMu.Unlock()
	if t := h.table.Load(); t != nil {
		return t, nil
	}
	if time.Since(h.lastLoad) < reloadInterval {
		return nil, h.lastErr
	}
	h.lastLoad = time.Now()
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.o.LoadTimeout)
	defer cancel()
	files, err := h.o.Load(lctx)
	if err == nil {
		var t *table
		if t, err = buildTable(&h.o, files); err == nil {
			h.table.Store(t)
			h.o.Logger.Info("grpc schema loaded", "route", h.o.Route)
			return t, nil
		}
	}
	h.lastErr = err
	h.o.Logger.Warn("grpc schema unavailable", "route", h.o.Route, "error", err.Error())
	return nil, err
}

// ServeHTTP transcodes one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	t, err := h.schema(ctx)
	if err != nil {
		w.Header().Set("Retry-After", "5")
		httpx.WriteError(w, r, http.StatusServiceUnavailable, httpx.CodeServiceUnavailable, "the gRPC service's schema is not available yet")
		return
	}
	info := httpx.InfoFrom(ctx)
	b, vars, status := t.find(r, info)
	if b == nil {
		if status == http.StatusMethodNotAllowed {
			httpx.WriteError(w, r, status, httpx.CodeMethodNotAllowed, "this method is not allowed on this path")
			return
		}
		httpx.WriteError(w, r, http.StatusNotFound, httpx.CodeNotFound, "no gRPC method is mapped to this path")
		return
	}
	msg := dynamicpb.NewMessage(b.method.Input())
	if err := h.bind(r, b, vars, msg, t.types); err != nil {
		if err == errBodyTooLarge {
			httpx.WriteError(w, r, http.StatusRequestEntityTooLarge, httpx.CodeBodyTooLarge, err.Error())
			return
		}
		httpx.WriteError(w, r, http.StatusBadRequest, httpx.CodeBadRequest, err.Error())
		return
	}
	payload, err := proto.Marshal(msg)
	if err != nil {
		httpx.WriteError(w, r, http.StatusBadRequest, httpx.CodeBadRequest, "the request cannot be encoded")
		return
	}

	if h.o.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.o.RequestTimeout)
		defer cancel()
	}
	if d, ok := wire.ParseTimeout(r.Header.Get("Grpc-Timeout")); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, "/", bytes.NewReader(wire.AppendFrame(nil, payload)))
	if err != nil {
		httpx.WriteError(w, r, http.StatusInternalServerError, httpx.CodeInternal, "the request cannot be sent")
		return
	}
	out.URL = &url.URL{Path: b.path}
	out.Header = h.metadata(r, info)
	if dl, ok := ctx.Deadline(); ok {
		out.Header.Set("Grpc-Timeout", wire.FormatTimeout(time.Until(dl)))
	}
	if info != nil {
		info.UpstreamStart = time.Now()
	}
	resp, err := h.o.Upstream.Do(ctx, out)
	if err != nil {
		h.upstreamError(w, r, ctx, err)
		return
	}
	defer resp.Body.Close()
	if info != nil {
		info.UpstreamDuration = time.Since(info.UpstreamStart)
	}
	if b.method.IsStreamingServer() {
		h.stream(w, r, ctx, b, resp, t.types)
		return
	}
	h.unary(w, r, ctx, b, resp, t.types)
}

// find picks the binding for the request; status is 404 or 405 when there is none.
func (t *table) find(r *http.Request, info *httpx.Info) (*binding, map[string]string, int) {
	if len(t.bindings) == 1 && t.bindings[0].tmpl == nil {
		vars := map[string]string{}
		if info != nil {
			for _, p := range info.Match.Params {
				v, err := url.PathUnescape(p.Value)
				if err != nil {
					v = p.Value
				}
				vars[p.Key] = v
			}
		}
		return t.bindings[0], vars, 0
	}
	path := r.URL.EscapedPath()
	if info != nil && info.Path != "" {
		path = info.Path
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	status := http.StatusNotFound
	for _, b := range t.bindings {
		vars, ok := b.tmpl.match(path)
		if !ok {
			continue
		}
		if b.httpMethod != method {
			status = http.StatusMethodNotAllowed
			continue
		}
		return b, vars, 0
	}
	return nil, nil, status
}

// metadata builds the gRPC request headers.
func (h *Handler) metadata(r *http.Request, info *httpx.Info) http.Header {
	md := http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}, "User-Agent": {"gatehouse-transcoder"}}
	for _, k := range h.o.ForwardHeaders {
		if v, ok := r.Header[k]; ok {
			md[k] = v
		}
	}
	for _, k := range []string{"Traceparent", "Tracestate"} {
		if v, ok := r.Header[k]; ok {
			md[k] = v
		}
	}
	if info != nil && info.RequestID != "" {
		md["X-Request-Id"] = []string{info.RequestID}
	}
	return md
}

func (h *Handler) marshalOptions(types *dynamicpb.Types) protojson.MarshalOptions {
	return protojson.MarshalOptions{UseProtoNames: h.o.UseProtoNames, EmitUnpopulated: h.o.EmitUnpopulated, Resolver: types}
}

// encode renders one response message (or its response_body field) as JSON.
func (h *Handler) encode(b *binding, m *dynamicpb.Message, types *dynamicpb.Types) ([]byte, error) {
	mo := h.marshalOptions(types)
	if f := b.responseBody; f != nil {
		return marshalField(mo, m, f)
	}
	return mo.Marshal(m)
}

// marshalField renders one field's value as JSON, the way protojson renders it inside its
// message: the field is copied into an otherwise empty message, which is marshalled, and the
// value is cut out.
func marshalField(mo protojson.MarshalOptions, m *dynamicpb.Message, f protoreflect.FieldDescriptor) ([]byte, error) {
	if f.Message() != nil && !f.IsList() && !f.IsMap() {
		if !m.Has(f) {
			if mo.EmitUnpopulated {
				return mo.Marshal(dynamicpb.NewMessage(f.Message()))
			}
			return []byte("{}"), nil
		}
		return mo.Marshal(m.Get(f).Message().Interface())
	}
	wrapper := dynamicpb.NewMessage(m.Descriptor())
	if m.Has(f) {
		wrapper.Set(f, m.Get(f))
	}
	mo.EmitUnpopulated = true
	mo.Multiline = false
	raw, err := mo.Marshal(wrapper)
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	name := f.JSONName()
	if mo.UseProtoNames {
		name = string(f.Name())
	}
	return obj[name], nil
}

func (h *Handler) unary(w http.ResponseWriter, r *http.Request, ctx context.Context, b *binding, resp *http.Response, types *dynamicpb.Types) {
	var msg []byte
	var err error
	if resp.StatusCode == http.StatusOK {
		msg, err = wire.ReadFrame(resp.Body, h.o.MaxMessageBytes, resp.Header.Get("Grpc-Encoding"))
		if err == nil {
			// Read to the end so the trailers arrive.
			_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, int64(h.o.MaxMessageBytes)))
		} else if errors.Is(err, io.EOF) {
			msg, err = nil, nil
		}
	}
	if err != nil {
		h.streamFailure(w, r, ctx, err)
		return
	}
	st := statusOf(resp)
	if st.Code != wire.OK {
		h.writeStatus(w, r, st)
		return
	}
	if msg == nil {
		h.writeStatus(w, r, Status{Code: wire.Internal, Message: "the gRPC server answered without a message"})
		return
	}
	m := dynamicpb.NewMessage(b.method.Output())
	if err := (proto.UnmarshalOptions{Resolver: types}).Unmarshal(msg, m); err != nil {
		h.o.Logger.Warn("grpc response does not match the schema", "route", h.o.Route, "method", b.path, "error", err.Error())
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, "the gRPC response does not match the schema")
		return
	}
	body, err := h.encode(b, m, types)
	if err != nil {
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, "the gRPC response cannot be rendered as JSON")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}

// stream writes a server stream as newline-delimited JSON, one message per line, flushed as
// they arrive. An error before the first message is an ordinary error response; after it, the
// last line is {"error": {...}} (the HTTP status is already sent).
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, ctx context.Context, b *binding, resp *http.Response, types *dynamicpb.Types) {
	rc := http.NewResponseController(w)
	started := false
	start := func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusOK)
		}
	}
	fail := func(st Status) {
		if !started {
			h.writeStatus(w, r, st)
			return
		}
		line, _ := json.Marshal(map[string]any{"error": map[string]any{"code": st.Code.HTTPStatus(), "status": strings.ToUpper(st.Code.String()), "message": st.Message}})
		_, _ = w.Write(append(line, '\n'))
		_ = rc.Flush()
	}
	if resp.StatusCode == http.StatusOK {
		for {
			frame, err := wire.ReadFrame(resp.Body, h.o.MaxMessageBytes, resp.Header.Get("Grpc-Encoding"))
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if r.Context().Err() == nil {
					h.o.Logger.Warn("grpc stream failed", "route", h.o.Route, "method", b.path, "error", err.Error())
				}
				fail(failureStatus(r, ctx, err))
				return
			}
			m := dynamicpb.NewMessage(b.method.Output())
			if err := (proto.UnmarshalOptions{Resolver: types}).Unmarshal(frame, m); err != nil {
				fail(Status{Code: wire.Internal, Message: "the gRPC response does not match the schema"})
				return
			}
			line, err := h.encode(b, m, types)
			if err != nil {
				fail(Status{Code: wire.Internal, Message: "the gRPC response cannot be rendered as JSON"})
				return
			}
			start()
			if _, err := w.Write(append(line, '\n')); err != nil {
				return // the client went away
			}
			_ = rc.Flush()
		}
	}
	if st := statusOf(resp); st.Code != wire.OK {
		fail(st)
		return
	}
	start()
}

// failureStatus classifies an error while reading the upstream response; ctx is the call's
// context (the request's, with the call deadline).
func failureStatus(r *http.Request, ctx context.Context, err error) Status {
	switch {
	case timedOut(ctx, err):
		return Status{Code: wire.DeadlineExceeded, Message: "the gRPC service did not answer in time"}
	case r.Context().Err() != nil || errors.Is(err, context.Canceled):
		return Status{Code: wire.Canceled, Message: "the request was canceled"}
	case errors.Is(err, wire.ErrFrameTooLarge):
		return Status{Code: wire.ResourceExhausted, Message: "the gRPC response message is too large"}
	}
	return Status{Code: wire.Unavailable, Message: "the gRPC service failed to answer"}
}

func (h *Handler) streamFailure(w http.ResponseWriter, r *http.Request, ctx context.Context, err error) {
	st := failureStatus(r, ctx, err)
	if st.Code != wire.Canceled {
		h.o.Logger.Warn("grpc upstream error", "route", h.o.Route, "error", err.Error())
	}
	h.writeStatus(w, r, st)
}

// writeStatus answers with the HTTP status of a gRPC status and the gateway's JSON error body;
// the error code is the gRPC code's name ("not_found", "invalid_argument", ...).
func (h *Handler) writeStatus(w http.ResponseWriter, r *http.Request, st Status) {
	if st.Code == wire.Canceled && r.Context().Err() != nil {
		if info := httpx.InfoFrom(r.Context()); info != nil {
			info.ErrorCode = "client_closed_request"
		}
		w.WriteHeader(499)
		return
	}
	msg := st.Message
	if msg == "" {
		msg = strings.ReplaceAll(st.Code.String(), "_", " ")
	}
	w.Header().Set("Grpc-Status", strconv.Itoa(int(st.Code)))
	httpx.WriteError(w, r, st.Code.HTTPStatus(), st.Code.String(), msg)
}

// timedOut reports whether a failed call ran out of time: the error says so, or the call's
// deadline has passed. The gRPC server is sent that deadline too, and when its own expiry
// wins the race it may reset the stream instead of answering, which the transport reports
// as a plain stream error; the call still timed out.
func timedOut(ctx context.Context, err error) bool {
	if upstream.IsTimeout(err) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// upstreamError answers a call that got no response (breaker open, no healthy target,
// transport error, deadline).
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, ctx context.Context, err error) {
	var open *upstream.OpenError
	switch {
	case errors.As(err, &open):
		secs := int64((open.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
		httpx.WriteError(w, r, http.StatusServiceUnavailable, httpx.CodeServiceUnavailable, "the upstream service is unavailable; retry later")
	case errors.Is(err, upstream.ErrNoHealthyTarget):
		httpx.WriteError(w, r, http.StatusServiceUnavailable, httpx.CodeServiceUnavailable, "no healthy upstream target is available")
	case r.Context().Err() == context.Canceled:
		if info := httpx.InfoFrom(r.Context()); info != nil {
			info.ErrorCode = "client_closed_request"
		}
		w.WriteHeader(499)
	case timedOut(ctx, err):
		httpx.WriteError(w, r, http.StatusGatewayTimeout, httpx.CodeGatewayTimeout, "the upstream service did not respond in time")
	default:
		h.o.Logger.Warn("grpc upstream error", "route", h.o.Route, "error", err.Error())
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, "the upstream service failed to respond")
	}
}

// errBodyTooLarge is bind's error for a body over the route's max_body_bytes (413).
var errBodyTooLarge = errors.New("request body is too large")

// bind fills the request message: the JSON body first, then query parameters (unless the body
// filled the whole message), then path variables (which win).
func (h *Handler) bind(r *http.Request, b *binding, vars map[string]string, msg *dynamicpb.Message, types *dynamicpb.Types) error {
	uo := protojson.UnmarshalOptions{Resolver: types}
	skip := map[string]bool{}
	wholeBody := false
	if b.body != "" && r.Body != nil && r.Body != http.NoBody {
		data, err := io.ReadAll(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return errBodyTooLarge
			}
			return errors.New("the request body could not be read")
		}
		if len(bytes.TrimSpace(data)) > 0 {
			if b.body == "*" {
				wholeBody = true
				if err := uo.Unmarshal(data, msg); err != nil {
					return fmt.Errorf("invalid JSON body: %s", cleanProtoErr(err))
				}
			} else {
				f := msg.Descriptor().Fields().ByName(protoreflect.Name(b.body))
				if err := unmarshalField(uo, msg, f, data); err != nil {
					return fmt.Errorf("invalid JSON body for %s: %s", b.body, cleanProtoErr(err))
				}
				skip[string(f.Name())] = true
			}
		}
	}
	// Query parameters fill what the body does not: nothing when the body was the whole
	// message (as google.api.http specifies for body "*").
	if !wholeBody {
		q := r.URL.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if _, isVar := vars[k]; isVar || skip[strings.SplitN(k, ".", 2)[0]] {
				continue
			}
			if err := setPath(msg, k, q[k], types); err != nil {
				return fmt.Errorf("query parameter %q: %s", k, err)
			}
		}
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := setPath(msg, k, []string{vars[k]}, types); err != nil {
			return fmt.Errorf("path parameter %q: %s", k, err)
		}
	}
	return nil
}

// unmarshalField decodes JSON into one field of msg, by wrapping it as {"field": ...}.
func unmarshalField(uo protojson.UnmarshalOptions, msg *dynamicpb.Message, f protoreflect.FieldDescriptor, data []byte) error {
	wrapped := make([]byte, 0, len(data)+len(f.Name())+8)
	wrapped = append(wrapped, '{')
	wrapped = strconv.AppendQuote(wrapped, string(f.Name()))
	wrapped = append(wrapped, ':')
	wrapped = append(wrapped, data...)
	wrapped = append(wrapped, '}')
	tmp := dynamicpb.NewMessage(msg.Descriptor())
	if err := uo.Unmarshal(wrapped, tmp); err != nil {
		return err
	}
	if tmp.Has(f) {
		msg.Set(f, tmp.Get(f))
	}
	return nil
}

// setPath sets the field at a dotted path ("user.id"), found by .proto or JSON name, from text
// values (several for a repeated field).
func setPath(msg protoreflect.Message, path string, values []string, types *dynamicpb.Types) error {
	parts := strings.Split(path, ".")
	m := msg
	for i, name := range parts {
		f := fieldByName(m.Descriptor(), name)
		if f == nil {
			return fmt.Errorf("%s has no field %q", m.Descriptor().FullName(), name)
		}
		if i < len(parts)-1 {
			if f.Message() == nil || f.IsList() || f.IsMap() {
				return fmt.Errorf("%q is not a message field", name)
			}
			m = m.Mutable(f).Message()
			continue
		}
		switch {
		case f.IsMap():
			return fmt.Errorf("map field %q cannot be set from a parameter", name)
		case f.IsList():
			list := m.Mutable(f).List()
			for _, v := range values {
				pv, err := parseScalar(f, v, list.NewElement, types)
				if err != nil {
					return err
				}
				list.Append(pv)
			}
		default:
			pv, err := parseScalar(f, values[len(values)-1], func() protoreflect.Value { return m.NewField(f) }, types)
			if err != nil {
				return err
			}
			m.Set(f, pv)
		}
	}
	return nil
}

func fieldByName(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	if f := md.Fields().ByName(protoreflect.Name(name)); f != nil {
		return f
	}
	return md.Fields().ByJSONName(name)
}

// parseScalar converts one text value to a field's type. Message-typed fields accept what
// protojson accepts for them inside a JSON string (well-known types such as Timestamp,
// Duration, FieldMask and the wrappers).
func parseScalar(f protoreflect.FieldDescriptor, v string, newMsg func() protoreflect.Value, types *dynamicpb.Types) (protoreflect.Value, error) {
	bad := func() (protoreflect.Value, error) {
		return protoreflect.Value{}, fmt.Errorf("%q is not a valid %s", v, f.Kind())
	}
	switch f.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(v), nil
	case protoreflect.BytesKind:
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			if b, err = base64.URLEncoding.DecodeString(v); err != nil {
				return bad()
			}
		}
		return protoreflect.ValueOfBytes(b), nil
	case protoreflect.BoolKind:
		switch v {
		case "true", "1":
			return protoreflect.ValueOfBool(true), nil
		case "false", "0", "":
			return protoreflect.ValueOfBool(false), nil
		}
		return bad()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return bad()
		}
		return protoreflect.ValueOfInt32(int32(n)), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return bad()
		}
		return protoreflect.ValueOfInt64(n), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad()
		}
		return protoreflect.ValueOfUint32(uint32(n)), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return bad()
		}
		return protoreflect.ValueOfUint64(n), nil
	case protoreflect.FloatKind:
		n, err := strconv.ParseFloat(v, 32)
		if err != nil {
			return bad()
		}
		return protoreflect.ValueOfFloat32(float32(n)), nil
	case protoreflect.DoubleKind:
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return bad()
		}
		return protoreflect.ValueOfFloat64(n), nil
	case protoreflect.EnumKind:
		if ev := f.Enum().Values().ByName(protoreflect.Name(v)); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), nil
		}
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || f.Enum().Values().ByNumber(protoreflect.EnumNumber(n)) == nil {
			return bad()
		}
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		pv := newMsg()
		if err := (protojson.UnmarshalOptions{Resolver: types}).Unmarshal([]byte(strconv.Quote(v)), pv.Message().Interface()); err != nil {
			return protoreflect.Value{}, fmt.Errorf("%q is not a valid %s", v, f.Message().FullName())
		}
		return pv, nil
	}
	return bad()
}

// cleanProtoErr shortens protojson's errors, which start with a package prefix.
func cleanProtoErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "proto: ")
	s = strings.TrimPrefix(s, "proto:")
	return strings.TrimSpace(strings.ReplaceAll(s, "\u00a0", " "))
}
