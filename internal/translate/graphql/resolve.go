package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	gql "github.com/graphql-go/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/gatehouse/gatehouse/internal/router"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// maxResponseBytes bounds one REST answer.
const maxResponseBytes = 10 << 20

// Resolver is the REST call that resolves one field.
type Resolver struct {
	// Service is called through the gateway's upstream.Service (balancer, breaker, retries).
	Service string
	// Method is the HTTP method (upper case).
	Method string
	// Path is a template: "/users/{args.id}".
	Path string
	// Query maps parameter names to templates.
	Query map[string]string
	// Body is "", "args", "args.<name>" or "parent".
	Body string
	// Result is a dotted path into the JSON answer ("" for all of it).
	Result string
}

var refRe = regexp.MustCompile(`\{([^{}]*)\}`)

// fieldError is a field's error with GraphQL error extensions.
type fieldError struct {
	msg  string
	code string
	ext  map[string]any
}

func (e *fieldError) Error() string { return e.msg }

// Extensions implements gqlerrors.ExtendedError.
func (e *fieldError) Extensions() map[string]any {
	out := map[string]any{"code": e.code}
	for k, v := range e.ext {
		out[k] = v
	}
	return out
}

// exec is the state of one HTTP request's execution, shared by its resolvers: the context, the
// de-duplicated calls and the call budget. Resolvers reach it through the context.
type exec struct {
	ctx     context.Context
	h       *Handler
	headers http.Header
	wg      sync.WaitGroup
	mu      sync.Mutex
	calls   map[string]*call
	errs    map[string]*fieldError // by response path
}

func pathKey(path []any) string {
	b, _ := json.Marshal(path)
	return string(b)
}

func (ex *exec) noteError(path []any, fe *fieldError) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.errs == nil {
		ex.errs = map[string]*fieldError{}
	}
	ex.errs[pathKey(path)] = fe
}

func (ex *exec) errorAt(path []any) *fieldError {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	return ex.errs[pathKey(path)]
}

type call struct {
	done chan struct{}
	val  any
	err  error
}

type execKey struct{}

// resolver returns the graphql-go resolve function of a field: a configured REST call, or a
// lookup of the field in the parent's JSON object.
func (h *Handler) resolver(typeName string, f *ast.FieldDefinition) gql.FieldResolveFn {
	res, ok := h.resolvers[typeName+"."+f.Name]
	scalar := f.Type.Name()
	if !ok {
		name := f.Name
		return func(p gql.ResolveParams) (any, error) {
			if m, ok := p.Source.(map[string]any); ok {
				return number(m[name], scalar), nil
			}
			return nil, nil
		}
	}
	return func(p gql.ResolveParams) (any, error) {
		ex, _ := p.Context.Value(execKey{}).(*exec)
		if ex == nil {
			return nil, errors.New("graphql: no execution state")
		}
		req, key, err := res.build(p)
		if err != nil {
			return nil, &fieldError{msg: err.Error(), code: "BAD_REQUEST"}
		}
		c := ex.start(key, res, req)
		var path []any
		if p.Info.Path != nil {
			path = p.Info.Path.AsArray()
		}
		// Returning a thunk lets graphql-go resolve every sibling field (and the items of a
		// list) before waiting for any of them: their calls run in parallel.
		return func() (any, error) {
			<-c.done
			if fe, ok := c.err.(*fieldError); ok {
				// graphql-go drops the extensions of errors returned by thunks; they are put
				// back by path after execution.
				ex.noteError(path, fe)
			}
			return number(c.val, scalar), c.err
		}, nil
	}
}

// number gives a json.Number from a backend answer (see exec.do) the Go type graphql-go
// serializes as the field's type: an ID or String keeps the digits as sent, an Int is an int64
// (out of range it fails as graphql-go's Int does), anything else a float64. Lists are
// converted item by item; other values are returned as they are.
func number(v any, typeName string) any {
	switch v := v.(type) {
	case json.Number:
		switch typeName {
		case "ID", "String":
			return string(v)
		case "Int":
			if i, err := v.Int64(); err == nil {
				return i
			}
		}
		f, err := v.Float64()
		if err != nil {
			return string(v)
		}
		return f
	case []any:
		var out []any // a copy only for a list that holds numbers
		for i, e := range v {
			if _, ok := e.(json.Number); ok && out == nil {
				out = append(make([]any, 0, len(v)), v[:i]...)
			}
			if out != nil {
				out = append(out, number(e, typeName))
			}
		}
		if out != nil {
			return out
		}
	}
	return v
}

// start begins a call, or joins an identical one already made in this request.
func (ex *exec) start(key string, res *Resolver, req *restCall) *call {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if c, ok := ex.calls[key]; ok {
		return c
	}
	c := &call{done: make(chan struct{})}
	ex.calls[key] = c
	if len(ex.calls) > ex.h.o.MaxCalls {
		c.err = &fieldError{msg: fmt.Sprintf("the query needs more than %d backend calls", ex.h.o.MaxCalls), code: "TOO_MANY_CALLS"}
		close(c.done)
		return c
	}
	ex.wg.Add(1)
	go func() {
		defer ex.wg.Done()
		defer close(c.done)
		c.val, c.err = ex.do(res, req)
	}()
	return c
}

// restCall is a resolved request template.
type restCall struct {
	path, query string
	body        []byte
}

// build fills the resolver's templates for one field; the key identifies identical calls.
func (res *Resolver) build(p gql.ResolveParams) (*restCall, string, error) {
	parent, _ := p.Source.(map[string]any)
	var ferr error
	fill := func(tmpl string, escape func(string) string) string {
		return refRe.ReplaceAllStringFunc(tmpl, func(m string) string {
			v, err := lookupRef(m[1:len(m)-1], p.Args, parent)
			if err != nil && ferr == nil {
				ferr = err
			}
			return escape(text(v))
		})
	}
	rc := &restCall{path: fill(res.Path, func(v string) string {
		if !router.SegmentValue(v) && ferr == nil {
			ferr = errors.New("a value used in the backend path may not be empty, . or .., nor contain / or \\")
		}
		return url.PathEscape(v)
	})}
	if len(res.Query) > 0 {
		q := url.Values{}
		names := make([]string, 0, len(res.Query))
		for k := range res.Query {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if v := fill(res.Query[k], func(s string) string { return s }); v != "" {
				q.Set(k, v)
			}
		}
		rc.query = q.Encode()
	}
	if res.Body != "" {
		v, err := lookupRef(res.Body, p.Args, parent)
		if err != nil {
			return nil, "", err
		}
		if rc.body, err = json.Marshal(v); err != nil {
			return nil, "", fmt.Errorf("body: %w", err)
		}
	}
	if ferr != nil {
		return nil, "", ferr
	}
	key := res.Method + " " + res.Service + " " + rc.path + "?" + rc.query + "\n" + string(rc.body)
	return rc, key, nil
}

// lookupRef resolves "args", "args.a.b", "parent" or "parent.a.b".
func lookupRef(ref string, args map[string]any, parent map[string]any) (any, error) {
	scope, rest, _ := strings.Cut(ref, ".")
	var v any
	switch scope {
	case "args":
		v = args
	case "parent":
		v = parent
	default:
		return nil, fmt.Errorf("unknown reference %q", ref)
	}
	if rest == "" {
		return v, nil
	}
	return dig(v, rest), nil
}

// dig follows a dotted path through JSON objects; nil when any step is missing.
func dig(v any, path string) any {
	if path == "" {
		return v
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// text renders a template value.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return string(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		return strconv.Itoa(v)
	case bool:
		return strconv.FormatBool(v)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// do makes one REST call and decodes its JSON answer.
func (ex *exec) do(res *Resolver, rc *restCall) (any, error) {
	us := ex.h.o.Upstream(res.Service)
	if us == nil {
		return nil, &fieldError{msg: "the backend service is not available", code: "UPSTREAM_UNAVAILABLE", ext: map[string]any{"service": res.Service}}
	}
	var body io.Reader = http.NoBody
	if rc.body != nil {
		body = bytes.NewReader(rc.body)
	}
	req, err := http.NewRequestWithContext(ex.ctx, res.Method, "/", body)
	if err != nil {
		return nil, &fieldError{msg: "the backend call cannot be built", code: "INTERNAL"}
	}
	u, err := url.Parse(rc.path)
	if err != nil {
		return nil, &fieldError{msg: "the backend path is invalid", code: "BAD_REQUEST"}
	}
	u.RawQuery = rc.query
	req.URL = u
	req.Header = ex.headers.Clone()
	if rc.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := us.Do(ex.ctx, req)
	if err != nil {
		code := "UPSTREAM_UNAVAILABLE"
		if errors.Is(err, context.DeadlineExceeded) || upstream.IsTimeout(err) {
			code = "UPSTREAM_TIMEOUT"
		}
		if ex.ctx.Err() == nil {
			ex.h.o.Logger.Warn("graphql backend call failed", "route", ex.h.o.Route, "service", res.Service, "error", err.Error())
		}
		return nil, &fieldError{msg: "the backend service failed to respond", code: code, ext: map[string]any{"service": res.Service}}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, &fieldError{msg: "the backend answer could not be read", code: "UPSTREAM_UNAVAILABLE", ext: map[string]any{"service": res.Service}}
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &fieldError{msg: fmt.Sprintf("the backend service answered %d", resp.StatusCode), code: "UPSTREAM_ERROR",
			ext: map[string]any{"service": res.Service, "status": resp.StatusCode}}
	}
	if len(data) > maxResponseBytes {
		return nil, &fieldError{msg: "the backend answer is too large", code: "UPSTREAM_ERROR", ext: map[string]any{"service": res.Service}}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	// Numbers stay json.Number: as float64 an ID above 2^53 would be rounded, and then served
	// and passed to the next backend as another record's ID.
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.Decode(new(any)) != io.EOF {
		return nil, &fieldError{msg: "the backend answer is not JSON", code: "UPSTREAM_ERROR", ext: map[string]any{"service": res.Service}}
	}
	return dig(v, res.Result), nil
}
