// Package graphql serves a GraphQL endpoint whose schema is SDL from the config and whose fields
// are resolved by REST calls to the gateway's services.
//
// Queries are parsed and validated with gqlparser (which also drives the depth, complexity,
// alias and introspection limits) and executed with graphql-go, whose schema is built at run
// time from the SDL. Resolvers return thunks, so sibling fields (and list items) call their
// services in parallel; identical calls within one request are made once.
package graphql

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	gql "github.com/graphql-go/graphql"
	gqlparse "github.com/graphql-go/graphql/language/parser"
	"github.com/graphql-go/graphql/language/source"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/upstream"
)

// Media types of GraphQL over HTTP.
const (
	mediaGraphQLResponse = "application/graphql-response+json"
	mediaJSON            = "application/json"
)

// maxRequestBytes bounds a GraphQL request body (the route's body limit applies first).
const maxRequestBytes = 1 << 20

// Options configure a Handler.
type Options struct {
	// Route names the route in logs.
	Route string
	// Schema is the SDL.
	Schema string
	// Resolvers map "Type.field" to REST calls.
	Resolvers map[string]Resolver
	// Upstream returns a service by name (runtime.Runtime.Upstream). Required.
	Upstream func(name string) *upstream.Service
	// Limits; see config.GraphQLRoute.
	MaxDepth, MaxComplexity, MaxAliases, MaxBatchSize, MaxCalls int
	// Introspection allows __schema and __type.
	Introspection bool
	// Persisted are known query documents, addressable by SHA-256; PersistedOnly allows only them.
	Persisted     []string
	PersistedOnly bool
	// ForwardHeaders are copied to every REST call (canonical names).
	ForwardHeaders []string
	// RequestTimeout bounds the whole execution (0: none beyond the client's).
	RequestTimeout time.Duration
	// Logger receives backend failures. Default: slog.Default().
	Logger *slog.Logger
}

// Handler is a GraphQL endpoint. It is immutable and safe for concurrent use.
type Handler struct {
	o         Options
	src       *ast.Schema
	schema    gql.Schema
	resolvers map[string]*Resolver
	persisted map[string]string // sha256 hex -> document
}

// New compiles the schema and resolvers.
func New(o Options) (*Handler, error) {
	if o.Upstream == nil {
		return nil, errors.New("graphql: upstream lookup is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	src, err := gqlparser.LoadSchema(&ast.Source{Name: "schema", Input: o.Schema})
	if err != nil {
		return nil, fmt.Errorf("graphql schema: %w", err)
	}
	h := &Handler{o: o, src: src, resolvers: map[string]*Resolver{}, persisted: map[string]string{}}
	for k, r := range o.Resolvers {
		r := r
		if r.Method == "" {
			r.Method = http.MethodGet
		}
		h.resolvers[k] = &r
	}
	if h.schema, err = buildSchema(src, h.resolver); err != nil {
		return nil, fmt.Errorf("graphql schema: %w", err)
	}
	for _, doc := range o.Persisted {
		h.persisted[hash(doc)] = doc
	}
	return h, nil
}

func hash(doc string) string {
	sum := sha256.Sum256([]byte(doc))
	return hex.EncodeToString(sum[:])
}

// Summary describes the endpoint for the route table.
func (h *Handler) Summary() string {
	return fmt.Sprintf("graphql (%d resolvers, depth<=%d, complexity<=%d)", len(h.resolvers), h.o.MaxDepth, h.o.MaxComplexity)
}

// params is one GraphQL-over-HTTP request.
type params struct {
	Query         string          `json:"query"`
	OperationName string          `json:"operationName"`
	Variables     map[string]any  `json:"variables"`
	Extensions    json.RawMessage `json:"extensions"`
}

// response is one GraphQL response; Data is omitted for request errors.
type response struct {
	Data   any   `json:"data,omitempty"`
	Errors []any `json:"errors,omitempty"`
	// requestError marks a response without execution (parse, validation, limits).
	requestError bool
	// hasData marks that execution ran (data is then present, possibly null).
	hasData bool
}

func (r response) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if len(r.Errors) > 0 {
		m["errors"] = r.Errors
	}
	if r.hasData {
		m["data"] = r.Data
	}
	return json.Marshal(m)
}

// httpError ends a request that is not a GraphQL request at all.
type httpError struct {
	status int
	code   string
	msg    string
}

// ServeHTTP implements GraphQL over HTTP.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mediaType := negotiate(r.Header.Get("Accept"))
	if mediaType == "" {
		httpx.WriteError(w, r, http.StatusNotAcceptable, "not_acceptable", "accept application/graphql-response+json or application/json")
		return
	}
	batch, list, herr := h.readRequest(r)
	if herr != nil {
		if herr.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET, POST")
		}
		httpx.WriteError(w, r, herr.status, herr.code, herr.msg)
		return
	}
	ctx := r.Context()
	if h.o.RequestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.o.RequestTimeout)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	ex := &exec{ctx: ctx, h: h, headers: h.callHeaders(r), calls: map[string]*call{}}
	defer func() {
		// Calls whose fields were abandoned (a null propagated past them) must not outlive
		// the request.
		cancel()
		ex.wg.Wait()
	}()
	ctx = context.WithValue(ctx, execKey{}, ex)

	results := make([]response, len(list))
	for i := range list {
		results[i] = h.run(ctx, r.Method, &list[i])
	}
	w.Header().Set("Content-Type", mediaType+"; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	var body []byte
	var err error
	status := http.StatusOK
	if batch {
		body, err = json.Marshal(results)
	} else {
		res := results[0]
		if res.requestError && mediaType == mediaGraphQLResponse {
			status = http.StatusBadRequest
			if isMethodError(res) {
				status = http.StatusMethodNotAllowed
				w.Header().Set("Allow", "POST")
			}
		} else if isMethodError(res) {
			status = http.StatusMethodNotAllowed
			w.Header().Set("Allow", "POST")
		}
		body, err = json.Marshal(res)
	}
	if err != nil {
		httpx.WriteError(w, r, http.StatusInternalServerError, httpx.CodeInternal, "the response cannot be encoded")
		return
	}
	body = append(body, '\n')
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

const codeMutationViaGET = "MUTATION_VIA_GET"

func isMethodError(res response) bool {
	if len(res.Errors) != 1 {
		return false
	}
	e, ok := res.Errors[0].(*gqlerror.Error)
	return ok && e.Extensions["code"] == codeMutationViaGET
}

// negotiate picks the response media type from Accept; "" when neither is acceptable.
func negotiate(accept string) string {
	if strings.TrimSpace(accept) == "" {
		return mediaJSON
	}
	best, bestQ := "", 0.0
	for _, part := range strings.Split(accept, ",") {
		mt, ps, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := ps["q"]; ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		var cand string
		switch mt {
		case mediaGraphQLResponse, "application/*", "*/*":
			cand = mediaGraphQLResponse
		case mediaJSON:
			cand = mediaJSON
		default:
			continue
		}
		if q > bestQ || (q == bestQ && cand == mediaGraphQLResponse && mt == mediaGraphQLResponse) {
			best, bestQ = cand, q
		}
	}
	if bestQ == 0 {
		return ""
	}
	return best
}

// readRequest decodes a GET or POST GraphQL request (a POST may be a batch: a JSON array).
func (h *Handler) readRequest(r *http.Request) (bool, []params, *httpError) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		q := r.URL.Query()
		p := params{Query: q.Get("query"), OperationName: q.Get("operationName")}
		if v := q.Get("variables"); v != "" {
			if err := json.Unmarshal([]byte(v), &p.Variables); err != nil {
				return false, nil, &httpError{http.StatusBadRequest, httpx.CodeBadRequest, "variables must be a JSON object"}
			}
		}
		if v := q.Get("extensions"); v != "" {
			if !json.Valid([]byte(v)) {
				return false, nil, &httpError{http.StatusBadRequest, httpx.CodeBadRequest, "extensions must be a JSON object"}
			}
			p.Extensions = json.RawMessage(v)
		}
		return false, []params{p}, nil
	case http.MethodPost:
	default:
		return false, nil, &httpError{http.StatusMethodNotAllowed, httpx.CodeMethodNotAllowed, "GraphQL requests use GET or POST"}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != mediaJSON {
		return false, nil, &httpError{http.StatusUnsupportedMediaType, "unsupported_media_type", "POST a JSON body with Content-Type: application/json"}
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return false, nil, &httpError{http.StatusRequestEntityTooLarge, httpx.CodeBodyTooLarge, "request body is too large"}
		}
		return false, nil, &httpError{http.StatusBadRequest, httpx.CodeBadRequest, "the request body could not be read"}
	}
	if len(data) > maxRequestBytes {
		return false, nil, &httpError{http.StatusRequestEntityTooLarge, httpx.CodeBodyTooLarge, "request body is too large"}
	}
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "[") {
		if h.o.MaxBatchSize == 0 {
			return false, nil, &httpError{http.StatusBadRequest, httpx.CodeBadRequest, "batched requests are not enabled"}
		}
		var list []params
		if err := json.Unmarshal(data, &list); err != nil {
			return false, nil, &httpError{http.StatusBadRequest, httpx.CodeBadRequest, "the body is not a JSON array of GraphQL requests"}
		}
		if len(list) == 0 || len(list) > h.o.MaxBatchSize {
			return false, nil, &httpError{http.StatusBadRequest, httpx.CodeBadRequest, fmt.Sprintf("a batch holds 1 to %d requests", h.o.MaxBatchSize)}
		}
		return true, list, nil
	}
	var p params
	if err := json.Unmarshal(data, &p); err != nil {
		return false, nil, &httpError{http.StatusBadRequest, httpx.CodeBadRequest, "the body is not a JSON GraphQL request"}
	}
	return false, []params{p}, nil
}

// callHeaders are the headers every REST call of the request carries.
func (h *Handler) callHeaders(r *http.Request) http.Header {
	out := http.Header{"Accept": {mediaJSON}, "User-Agent": {"gatehouse-graphql"}}
	for _, k := range h.o.ForwardHeaders {
		if v, ok := r.Header[k]; ok {
			out[k] = v
		}
	}
	for _, k := range []string{"Traceparent", "Tracestate"} {
		if v, ok := r.Header[k]; ok {
			out[k] = v
		}
	}
	if info := httpx.InfoFrom(r.Context()); info != nil && info.RequestID != "" {
		out["X-Request-Id"] = []string{info.RequestID}
	}
	return out
}

func requestError(code, format string, args ...any) response {
	e := &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": code}}
	return response{Errors: []any{e}, requestError: true}
}

// run checks and executes one operation.
func (h *Handler) run(ctx context.Context, method string, p *params) response {
	query, res, ok := h.resolveQuery(p)
	if !ok {
		return res
	}
	doc, errs := gqlparser.LoadQuery(h.src, query)
	if len(errs) > 0 {
		out := response{requestError: true}
		for _, e := range errs {
			if e.Extensions == nil {
				e.Extensions = map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"}
			}
			out.Errors = append(out.Errors, e)
		}
		return out
	}
	op := doc.Operations.ForName(p.OperationName)
	if op == nil {
		if p.OperationName != "" {
			return requestError("OPERATION_NOT_FOUND", "unknown operation %q", p.OperationName)
		}
		return requestError("BAD_REQUEST", "the document holds several operations: set operationName")
	}
	if (method == http.MethodGet || method == http.MethodHead) && op.Operation != ast.Query {
		return requestError(codeMutationViaGET, "%s operations must use POST", op.Operation)
	}
	if res, ok := h.checkLimits(doc, op); !ok {
		return res
	}
	// Variables are checked against their declared types (GraphQL spec 6.1.2): graphql-go
	// coerces leniently, so an object or a list given for an ID! would reach a backend path.
	if _, err := validator.VariableValues(h.src, op, p.Variables); err != nil {
		var ge *gqlerror.Error
		if errors.As(err, &ge) {
			if ge.Extensions == nil {
				ge.Extensions = map[string]any{"code": "BAD_USER_INPUT"}
			}
			return response{requestError: true, Errors: []any{ge}}
		}
		return requestError("BAD_USER_INPUT", "the variables do not match their declared types")
	}
	ast2, err := gqlparse.Parse(gqlparse.ParseParams{Source: source.NewSource(&source.Source{Body: []byte(query), Name: "query"})})
	if err != nil {
		return requestError("GRAPHQL_PARSE_FAILED", "the query cannot be parsed")
	}
	result := gql.Execute(gql.ExecuteParams{Schema: h.schema, AST: ast2, OperationName: op.Name, Args: p.Variables, Context: ctx})
	out := response{Data: result.Data, hasData: true}
	ex, _ := ctx.Value(execKey{}).(*exec)
	for _, e := range result.Errors {
		if e.Extensions == nil && ex != nil {
			if fe := ex.errorAt(e.Path); fe != nil {
				e.Extensions = fe.Extensions()
			}
		}
		out.Errors = append(out.Errors, e)
	}
	return out
}

// resolveQuery applies persisted queries: a query sent by hash is looked up, and with
// PersistedOnly any other query is refused.
func (h *Handler) resolveQuery(p *params) (string, response, bool) {
	var ext struct {
		PersistedQuery *struct {
			Hash string `json:"sha256Hash"`
		} `json:"persistedQuery"`
	}
	if len(p.Extensions) > 0 {
		_ = json.Unmarshal(p.Extensions, &ext)
	}
	query := p.Query
	if ext.PersistedQuery != nil && ext.PersistedQuery.Hash != "" {
		want := strings.ToLower(ext.PersistedQuery.Hash)
		if query == "" {
			doc, ok := h.persisted[want]
			if !ok {
				return "", requestError("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound"), false
			}
			query = doc
		} else if hash(query) != want {
			return "", requestError("BAD_REQUEST", "the query does not match its sha256Hash"), false
		}
	}
	if query == "" {
		return "", requestError("BAD_REQUEST", "the request has no query"), false
	}
	if h.o.PersistedOnly {
		if _, ok := h.persisted[hash(query)]; !ok {
			return "", requestError("PERSISTED_QUERY_NOT_ALLOWED", "only persisted queries are allowed on this endpoint"), false
		}
	}
	return query, response{}, true
}

// checkLimits enforces depth, complexity, aliases and introspection on the operation (with
// its fragments expanded). Each fragment is measured once and its figures reused at every
// spread, so the check is linear in the document even when fragments spread each other
// exponentially (fragment F(n) spreading F(n-1) twice).
func (h *Handler) checkLimits(doc *ast.QueryDocument, op *ast.OperationDefinition) (response, bool) {
	memo := map[string]*selStats{}
	var measure func(set ast.SelectionSet) selStats
	measure = func(set ast.SelectionSet) selStats {
		var st selStats
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				if s.Name == "__schema" || s.Name == "__type" {
					st.introspect = true
				}
				if s.Alias != "" && s.Alias != s.Name {
					st.aliases = satAdd(st.aliases, 1)
				}
				if strings.HasPrefix(s.Name, "__") {
					continue // meta fields: not a backend call, and introspection has its own limits
				}
				sub := measure(s.SelectionSet)
				st.add(sub)
				st.fields = satAdd(st.fields, 1)
				st.depth = max(st.depth, sub.depth+1)
			case *ast.InlineFragment:
				sub := measure(s.SelectionSet)
				st.add(sub)
				st.depth = max(st.depth, sub.depth)
			case *ast.FragmentSpread:
				fs, seen := memo[s.Name]
				if !seen {
					f := doc.Fragments.ForName(s.Name)
					if f == nil {
						continue
					}
					memo[s.Name] = nil // being measured: a cycle (validation refuses it anyway) adds nothing
					m := measure(f.SelectionSet)
					fs = &m
					memo[s.Name] = fs
				}
				if fs == nil {
					continue
				}
				st.add(*fs)
				st.depth = max(st.depth, fs.depth)
			}
		}
		return st
	}
	st := measure(op.SelectionSet)
	maxDepth, fields, aliases, introspect := st.depth, st.fields, st.aliases, st.introspect
	switch {
	case introspect && !h.o.Introspection:
		return requestError("INTROSPECTION_DISABLED", "introspection is disabled on this endpoint"), false
	case maxDepth > h.o.MaxDepth:
		return requestError("QUERY_TOO_DEEP", "the query is nested deeper than %d", h.o.MaxDepth), false
	case fields > h.o.MaxComplexity:
		return requestError("QUERY_TOO_COMPLEX", "the query selects more than %d fields", h.o.MaxComplexity), false
	case aliases > h.o.MaxAliases:
		return requestError("TOO_MANY_ALIASES", "the query uses more than %d aliases", h.o.MaxAliases), false
	}
	return response{}, true
}

// selStats are what checkLimits measures of a selection set with its fragments expanded.
type selStats struct {
	fields, aliases, depth int
	introspect             bool
}

// add adds o's counts to s (not its depth: the caller knows at which level o sits).
func (s *selStats) add(o selStats) {
	s.fields = satAdd(s.fields, o.fields)
	s.aliases = satAdd(s.aliases, o.aliases)
	s.introspect = s.introspect || o.introspect
}

// satAdd adds without overflowing: expanded fragments can multiply counts beyond any int.
func satAdd(a, b int) int {
	const ceiling = 1 << 40
	return min(a+b, ceiling)
}
