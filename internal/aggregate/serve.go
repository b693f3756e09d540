package aggregate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/aggregate/shape"
	"github.com/gatehouse/gatehouse/internal/aggregate/tmpl"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/router"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// reason says why a call failed; it appears in X-Gatehouse-Degraded and in logs.
type reason string

const (
	reasonTimeout     reason = "timeout"
	reasonCircuitOpen reason = "circuit_open"
	reasonUnavailable reason = "unavailable" // no healthy target
	reasonError       reason = "error"       // transport error
	reasonStatus      reason = "status"      // non-2xx; the header says status_<code>
	reasonInvalidJSON reason = "invalid_json"
	reasonTooLarge    reason = "too_large"
	reasonNoField     reason = "missing_field" // extract found nothing
	reasonNotObject   reason = "not_object"    // merge of a non-object
	reasonInput       reason = "missing_input" // a placeholder had no value
	reasonBadValue    reason = "bad_input"     // a value cannot fill a path segment
	reasonDependency  reason = "dependency"    // a call it needs failed
	reasonCanceled    reason = "canceled"
)

// failure is a failed call.
type failure struct {
	reason reason
	status int           // reasonStatus
	ref    *tmpl.Ref     // reasonInput, reasonBadValue
	dep    string        // reasonDependency
	retry  time.Duration // reasonCircuitOpen
	err    error         // internal detail, for the log only
}

func (f *failure) label() string {
	if f.reason == reasonStatus {
		return "status_" + strconv.Itoa(f.status)
	}
	return string(f.reason)
}

// result is one call's outcome. value is the decoded (extracted, not yet shaped) JSON.
type result struct {
	value any
	fail  *failure
	dur   time.Duration
}

// state is one request's execution.
type state struct {
	r       *http.Request
	info    *httpx.Info
	results []result
	done    []chan struct{}
	query   url.Values
}

// ServeHTTP runs the calls and writes the merged response.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := httpx.InfoFrom(r.Context())
	if info == nil {
		info = &httpx.Info{}
	}
	if h.passthrough {
		h.servePassthrough(w, r, info)
		return
	}
	prof := h.pick(r)
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()

	n := len(h.calls)
	st := &state{r: r, info: info, results: make([]result, n), done: make([]chan struct{}, n), query: r.URL.Query()}
	fin := make(chan int, n)
	started := 0
	for i, c := range h.calls {
		if prof != nil && prof.skip[i] {
			continue
		}
		st.done[i] = make(chan struct{})
		started++
		go func() {
			h.runCall(ctx, st, c)
			close(st.done[i])
			fin <- i
		}()
	}
	failed := -1
	for range started {
		i := <-fin
		if st.results[i].fail != nil && h.calls[i].required && failed < 0 {
			failed = i
			cancel() // nothing partial: stop the others now
		}
	}
	for i, c := range h.calls {
		if res := st.results[i]; res.fail != nil && st.done[i] != nil && (i == failed || failed < 0) {
			h.logFailure(st, c, res)
		}
	}
	if failed >= 0 {
		h.writeFailure(w, r, h.calls[failed], st.results[failed].fail)
		return
	}
	h.writeMerged(w, r, st, prof)
}

// runCall waits for the calls c needs, then runs c and records its result.
func (h *Handler) runCall(ctx context.Context, st *state, c *call) {
	start := time.Now()
	res := &st.results[c.idx]
	defer func() { res.dur = time.Since(start) }()
	for _, d := range c.deps {
		select {
		case <-st.done[d]:
		case <-ctx.Done():
			res.fail = ctxFailure(ctx, st.r.Context())
			return
		}
		if st.results[d].fail != nil {
			res.fail = &failure{reason: reasonDependency, dep: h.calls[d].name}
			return
		}
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, f := h.buildRequest(cctx, st, c)
	if f != nil {
		res.fail = f
		return
	}
	resp, err := c.svc.Do(cctx, req)
	if err != nil {
		res.fail = classify(err, cctx, st.r.Context())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		res.fail = &failure{reason: reasonStatus, status: resp.StatusCode}
		return
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, h.maxBytes+1))
	if err != nil {
		res.fail = classify(err, cctx, st.r.Context())
		return
	}
	if int64(len(data)) > h.maxBytes {
		res.fail = &failure{reason: reasonTooLarge, err: fmt.Errorf("response over %d bytes", h.maxBytes)}
		return
	}
	v, err := decodeJSON(data)
	if err != nil {
		res.fail = &failure{reason: reasonInvalidJSON, err: err}
		return
	}
	if c.extract != nil {
		ev, ok := shape.Get(v, *c.extract)
		if !ok {
			res.fail = &failure{reason: reasonNoField, err: fmt.Errorf("no field %s in the response", c.extract)}
			return
		}
		v = ev
	}
	if _, isObj := v.(map[string]any); c.merge && !isObj {
		res.fail = &failure{reason: reasonNotObject, err: errors.New("merge needs a JSON object")}
		return
	}
	res.value = v
}

// decodeJSON decodes one JSON value (numbers kept exact); an empty body is null.
func decodeJSON(data []byte) (any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("decode: data after the JSON value")
	}
	return v, nil
}

func ctxFailure(ctx, client context.Context) *failure {
	if client.Err() != nil {
		return &failure{reason: reasonCanceled, err: client.Err()}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &failure{reason: reasonTimeout, err: ctx.Err()}
	}
	return &failure{reason: reasonCanceled, err: ctx.Err()}
}

// classify turns a Do or body-read error into a failure.
func classify(err error, cctx, client context.Context) *failure {
	var oe *upstream.OpenError
	switch {
	case errors.As(err, &oe):
		return &failure{reason: reasonCircuitOpen, retry: oe.RetryAfter, err: err}
	case errors.Is(err, upstream.ErrNoHealthyTarget):
		return &failure{reason: reasonUnavailable, err: err}
	case client.Err() != nil:
		return &failure{reason: reasonCanceled, err: err}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(cctx.Err(), context.DeadlineExceeded):
		return &failure{reason: reasonTimeout, err: err}
	case errors.Is(err, context.Canceled):
		return &failure{reason: reasonCanceled, err: err}
	}
	return &failure{reason: reasonError, err: err}
}

// buildRequest renders c's templates into the outgoing request.
func (h *Handler) buildRequest(ctx context.Context, st *state, c *call) (*http.Request, *failure) {
	resolve := func(ref *tmpl.Ref) (string, bool) { return h.resolve(st, c, ref) }
	var bad *tmpl.Ref
	path, err := c.path.Render(resolve, func(ref *tmpl.Ref, v string) string {
		if !safeSegment(ref, v) && bad == nil {
			bad = ref
		}
		return escapePath(ref, v)
	})
	if err != nil {
		return nil, missing(err)
	}
	if bad != nil {
		return nil, &failure{reason: reasonBadValue, ref: bad, err: fmt.Errorf("{%s} is not a path segment", bad.Text)}
	}
	var rawQuery strings.Builder
	if c.rawQuery != nil {
		q, err := c.rawQuery.Render(resolve, func(_ *tmpl.Ref, v string) string { return url.QueryEscape(v) })
		if err != nil {
			return nil, missing(err)
		}
		rawQuery.WriteString(q)
	}
	for _, kv := range c.query {
		v, err := kv.t.Render(resolve, nil)
		if err != nil {
			return nil, missing(err)
		}
		if rawQuery.Len() > 0 {
			rawQuery.WriteByte('&')
		}
		rawQuery.WriteString(url.QueryEscape(kv.name))
		rawQuery.WriteByte('=')
		rawQuery.WriteString(url.QueryEscape(v))
	}
	u, err := url.Parse(path)
	if err != nil || u.Host != "" || u.Scheme != "" {
		return nil, &failure{reason: reasonInput, err: fmt.Errorf("rendered path %q is not a path", path)}
	}
	u.RawQuery = rawQuery.String()
	req, err := http.NewRequestWithContext(ctx, c.method, "/", nil)
	if err != nil {
		return nil, &failure{reason: reasonError, err: err}
	}
	req.URL = u
	req.Header = h.callHeaders(st)
	for _, kv := range c.headers {
		v, err := kv.t.Render(resolve, nil)
		if err != nil {
			return nil, missing(err)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, &failure{reason: reasonInput, err: fmt.Errorf("header %s: value has control characters", kv.name)}
		}
		req.Header[kv.name] = []string{v}
	}
	h.reqOps.Apply(req.Header)
	return req, nil
}

func missing(err error) *failure {
	f := &failure{reason: reasonInput, err: err}
	var me *tmpl.MissingError
	if errors.As(err, &me) {
		f.ref = me.Ref
	}
	return f
}

// safeSegment reports whether v may fill a path placeholder (router.SegmentValue); {**}
// carries the request's own normalized segments.
func safeSegment(ref *tmpl.Ref, v string) bool {
	return ref.Source == tmpl.Param && ref.Name == "**" || router.SegmentValue(v)
}

// escapePath escapes a value for a path: every segment on its own for {**} (which matched
// several segments, already escaped and normalized), the whole value otherwise, so that a
// value never adds a segment.
func escapePath(ref *tmpl.Ref, v string) string {
	if ref.Source == tmpl.Param && ref.Name == "**" {
		return v
	}
	return url.PathEscape(v)
}

// callHeaders are the headers every call carries: request ID, trace context, the identity
// headers the auth middleware set, the configured forward_headers.
func (h *Handler) callHeaders(st *state) http.Header {
	in := st.r.Header
	out := make(http.Header, 8)
	if st.info.RequestID != "" {
		out["X-Request-Id"] = []string{st.info.RequestID}
	}
	for _, k := range [...]string{"Traceparent", "Tracestate"} {
		if v := in[k]; len(v) > 0 {
			out[k] = v
		}
	}
	for _, k := range h.identity {
		if v := in[k]; len(v) > 0 {
			out[k] = v
		}
	}
	for _, k := range h.forward {
		if v := in[k]; len(v) > 0 {
			out[k] = v
		}
	}
	if st.info.ClientIP.IsValid() {
		out["X-Forwarded-For"] = []string{st.info.ClientIP.String()}
	}
	proto := "http"
	if st.r.TLS != nil {
		proto = "https"
	}
	out["X-Forwarded-Proto"] = []string{proto}
	out["X-Forwarded-Host"] = []string{st.r.Host}
	if _, ok := out["Accept"]; !ok {
		out["Accept"] = []string{"application/json"}
	}
	out["User-Agent"] = []string{"Gatehouse"}
	return out
}

// resolve returns a placeholder's value (unescaped).
func (h *Handler) resolve(st *state, c *call, ref *tmpl.Ref) (string, bool) {
	switch ref.Source {
	case tmpl.Param:
		if ref.Name == "**" {
			return st.info.Match.Rest, true
		}
		v, ok := st.info.Match.Param(ref.Name)
		if !ok {
			return "", false
		}
		if u, err := url.PathUnescape(v); err == nil {
			v = u
		}
		return v, v != ""
	case tmpl.Query:
		vs := st.query[ref.Name]
		if len(vs) == 0 || vs[0] == "" {
			return "", false
		}
		return vs[0], true
	case tmpl.Header:
		v := st.r.Header.Get(ref.Name)
		return v, v != ""
	case tmpl.Claims:
		id := st.info.Identity
		if id == nil || id.Claims == nil {
			return "", false
		}
		v, ok := shape.Get(map[string]any(id.Claims), c.paths[ref])
		if !ok {
			return "", false
		}
		return tmpl.Stringify(v)
	case tmpl.Identity:
		id := st.info.Identity
		if id == nil {
			return "", false
		}
		var v string
		switch ref.Name {
		case "subject":
			v = id.Subject
		case "consumer":
			v = id.Consumer
		case "tier":
			v = id.Tier
		case "issuer":
			v = id.Issuer
		case "method":
			v = id.Method
		}
		return v, v != ""
	case tmpl.Call:
		for _, d := range c.deps {
			if h.calls[d].name == ref.Call {
				v, ok := shape.Get(st.results[d].value, c.paths[ref])
				if !ok {
					return "", false
				}
				return tmpl.Stringify(v)
			}
		}
	}
	return "", false
}

// writeMerged builds the merged object, shapes it for the profile and writes it.
func (h *Handler) writeMerged(w http.ResponseWriter, r *http.Request, st *state, prof *profile) {
	var out any = map[string]any{}
	var degraded []string
	for i, c := range h.calls {
		if st.done[i] == nil {
			continue // skipped by the profile
		}
		res := st.results[i]
		var v any
		if res.fail != nil {
			degraded = append(degraded, c.name+";reason="+res.fail.label())
			v, _ = decodeJSON(c.def) // validated at compile time
		} else {
			sh := c.shape
			if prof != nil && prof.hasShape[i] {
				sh = prof.shapes[i]
			}
			v = sh.Apply(res.value)
		}
		if c.merge {
			if m, ok := v.(map[string]any); ok {
				obj, ok := out.(map[string]any)
				if !ok {
					obj = map[string]any{}
				}
				for k, e := range m {
					obj[k] = e
				}
				out = obj
			}
			continue
		}
		out = shape.Set(out, c.key, v)
	}
	resp := h.response
	if prof != nil && prof.hasResp {
		resp = prof.response
	}
	out = resp.Apply(out)
	if m, ok := out.(map[string]any); ok && h.degraded != "-" {
		m[h.degraded] = len(degraded) > 0
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		h.logger.Error("aggregate encode failed", "route", h.route, "request_id", st.info.RequestID, "error", err.Error())
		httpx.WriteError(w, r, http.StatusInternalServerError, httpx.CodeInternal, "the aggregated response could not be encoded")
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	if st.info.RequestID != "" {
		hdr.Set("X-Request-Id", st.info.RequestID)
	}
	if h.vary != "" {
		hdr.Add("Vary", h.vary)
	}
	if prof != nil {
		hdr.Set(HeaderProfile, prof.name)
	}
	h.respOps.Apply(hdr)
	if len(degraded) > 0 {
		hdr.Set(HeaderDegraded, strings.Join(degraded, ", "))
		// A partial answer stands in for a failure of the moment: no cache (the gateway's
		// or a client's) may keep it once the backend is back.
		hdr.Set("Cache-Control", "no-store")
	}
	hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// writeFailure answers for a required call that failed.
func (h *Handler) writeFailure(w http.ResponseWriter, r *http.Request, c *call, f *failure) {
	name := strconv.Quote(c.name)
	switch f.reason {
	case reasonCanceled:
		if r.Context().Err() != nil {
			if info := httpx.InfoFrom(r.Context()); info != nil {
				info.ErrorCode = "client_closed_request"
			}
			w.WriteHeader(499)
			return
		}
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, "required backend call "+name+" was canceled")
	case reasonTimeout:
		httpx.WriteError(w, r, http.StatusGatewayTimeout, httpx.CodeGatewayTimeout, "required backend call "+name+" timed out")
	case reasonCircuitOpen:
		secs := int((f.retry + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		httpx.WriteError(w, r, http.StatusServiceUnavailable, httpx.CodeServiceUnavailable, "required backend call "+name+" is unavailable (circuit open)")
	case reasonUnavailable:
		httpx.WriteError(w, r, http.StatusServiceUnavailable, httpx.CodeServiceUnavailable, "required backend call "+name+" has no healthy target")
	case reasonStatus:
		if f.status == http.StatusNotFound {
			httpx.WriteError(w, r, http.StatusNotFound, httpx.CodeNotFound, "required backend call "+name+" found nothing")
			return
		}
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, fmt.Sprintf("required backend call %s answered status %d", name, f.status))
	case reasonInvalidJSON:
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, "required backend call "+name+" did not answer with valid JSON")
	case reasonTooLarge:
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, fmt.Sprintf("required backend call %s answered more than %d bytes", name, h.maxBytes))
	case reasonNoField:
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, "required backend call "+name+" answered without the expected field")
	case reasonNotObject:
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, "required backend call "+name+" did not answer with a JSON object")
	case reasonDependency:
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, fmt.Sprintf("required backend call %s could not run: call %q failed", name, f.dep))
	case reasonBadValue:
		if f.ref.Source != tmpl.Call {
			httpx.WriteError(w, r, http.StatusBadRequest, httpx.CodeBadRequest, fmt.Sprintf("required backend call %s cannot use {%s}: a path segment may not be empty, . or .., nor contain / or \\", name, f.ref.Text))
			return
		}
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, "required backend call "+name+" could not be built from the earlier results")
	case reasonInput:
		if f.ref != nil && f.ref.Source != tmpl.Call {
			httpx.WriteError(w, r, http.StatusBadRequest, httpx.CodeBadRequest, fmt.Sprintf("required backend call %s needs {%s}, which the request does not provide", name, f.ref.Text))
			return
		}
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, "required backend call "+name+" could not be built from the earlier results")
	default:
		httpx.WriteError(w, r, http.StatusBadGateway, httpx.CodeBadGateway, "required backend call "+name+" failed")
	}
}

func (h *Handler) logFailure(st *state, c *call, res result) {
	f := res.fail
	if f.reason == reasonCanceled && st.r.Context().Err() != nil {
		return // the client left; nothing is wrong with the backend
	}
	attrs := []any{"route", h.route, "call", c.name, "service", c.service, "required", c.required,
		"reason", f.label(), "duration", res.dur, "request_id", st.info.RequestID}
	if f.err != nil {
		attrs = append(attrs, "error", f.err.Error())
	}
	if f.dep != "" {
		attrs = append(attrs, "needs", f.dep)
	}
	h.logger.Warn("aggregate call failed", attrs...)
}

// servePassthrough runs the single call and streams its response untouched.
func (h *Handler) servePassthrough(w http.ResponseWriter, r *http.Request, info *httpx.Info) {
	c := h.calls[0]
	ctx, cancel := context.WithTimeout(r.Context(), c.timeout)
	defer cancel()
	st := &state{r: r, info: info, query: r.URL.Query()}
	req, f := h.buildRequest(ctx, st, c)
	var resp *http.Response
	if f == nil {
		var err error
		if resp, err = c.svc.Do(ctx, req); err != nil {
			f = classify(err, ctx, r.Context())
		}
	}
	if f != nil {
		h.logFailure(st, c, result{fail: f})
		h.writeFailure(w, r, c, f)
		return
	}
	defer resp.Body.Close()
	hdr := w.Header()
	for k, vs := range resp.Header {
		if hopHeader(k) {
			continue
		}
		hdr[k] = vs
	}
	if info.RequestID != "" {
		hdr.Set("X-Request-Id", info.RequestID)
	}
	h.respOps.Apply(hdr)
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	flush := resp.ContentLength < 0
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if err != nil {
			if err != io.EOF {
				h.logFailure(st, c, result{fail: classify(err, ctx, r.Context())})
				// The status is sent: abort the stream so the client sees it truncated.
				panic(http.ErrAbortHandler)
			}
			return
		}
	}
}

func hopHeader(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}
