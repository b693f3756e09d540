// Package aggregate answers a route by calling several backend services and merging their JSON
// responses into one (the reference design's RequestAggregator and Backends-for-Frontends),
// declaratively: which calls, with which templated paths, how each result is shaped and where
// it goes are all config; the gateway holds no business logic.
//
// Per request, every call whose inputs are ready starts at once on its own goroutine, so the
// latency is that of the slowest chain of calls, not the sum. A call that uses a field of
// another call's result ({product.review_ids}) starts when that one is done. Each call goes
// through upstream.Service.Do (balancer, circuit breaker, retries, health) under its own
// timeout. An optional call that fails yields its default value and marks the response
// degraded; the first required call that fails cancels the others and the client gets one JSON
// error, nothing partial. A client profile (chosen by header, query, host or listener) can skip
// calls and shape the result differently for mobile and web clients.
package aggregate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/aggregate/shape"
	"github.com/gatehouse/gatehouse/internal/aggregate/tmpl"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
)

// Doer runs one backend call with the service's resilience policy. *upstream.Service is the
// implementation; see its Do for the contract (req.URL holds only the path and query).
type Doer interface {
	Do(ctx context.Context, req *http.Request) (*http.Response, error)
}

// Deps are what an aggregate handler uses but does not own.
type Deps struct {
	// Upstream returns the service of that name, or nil. Required.
	Upstream func(name string) Doer
	// Logger receives a warning per failed call. Default: slog.Default().
	Logger *slog.Logger
}

// Response headers set by aggregate routes.
const (
	// HeaderDegraded names the optional calls that failed, with the reason:
	// "reviews;reason=timeout, recommendations;reason=status_500".
	HeaderDegraded = "X-Gatehouse-Degraded"
	// HeaderProfile names the client profile that shaped the response.
	HeaderProfile = "X-Gatehouse-Profile"
)

// Handler serves one aggregate route. It is immutable and safe for concurrent use.
type Handler struct {
	route       string
	calls       []*call
	response    *shape.Shape
	profiles    []*profile
	defProfile  *profile
	timeout     time.Duration
	maxBytes    int64
	forward     []string
	identity    []string
	degraded    string
	vary        string
	reqOps      httpx.HeaderOps
	respOps     httpx.HeaderOps
	passthrough bool
	logger      *slog.Logger
}

type call struct {
	idx      int
	name     string
	service  string
	svc      Doer
	method   string
	path     *tmpl.Template
	rawQuery *tmpl.Template // the part of path after "?", or nil
	query    []kvTemplate
	headers  []kvTemplate
	timeout  time.Duration
	required bool
	def      []byte // JSON of the default (null when none)
	extract  *shape.Path
	shape    *shape.Shape
	key      shape.Path
	merge    bool
	deps     []int
	// paths are the compiled field paths of claims and call placeholders, by placeholder.
	paths map[*tmpl.Ref]shape.Path
}

type kvTemplate struct {
	name string
	t    *tmpl.Template
}

type profile struct {
	name      string
	headers   []cond
	query     []cond
	hosts     []string
	listeners []hostPort
	skip      []bool         // by call index
	shapes    []*shape.Shape // by call index; used where hasShape
	hasShape  []bool
	response  *shape.Shape
	hasResp   bool
}

type cond struct {
	name    string
	exact   string
	present bool
	re      *regexp.Regexp
}

type hostPort struct{ host, port string }

// New compiles the aggregate of route rc (which must have one) from a validated config.
func New(cfg *config.Config, rc *config.Route, deps Deps) (*Handler, error) {
	a := rc.Aggregate
	if a == nil {
		return nil, errors.New("aggregate: route has no aggregate")
	}
	if deps.Upstream == nil {
		return nil, errors.New("aggregate: no upstream lookup")
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.Default()
	}
	h := &Handler{
		route: rc.Name, timeout: a.Timeout.Duration, maxBytes: a.MaxResponseBytes.Bytes,
		forward: config.CanonicalHeaders(a.ForwardHeaders), identity: cfg.RouteIdentityHeaders(rc), degraded: a.DegradedField,
		reqOps: httpx.NewHeaderOps(rc.RequestHeaders), respOps: httpx.NewHeaderOps(rc.ResponseHeaders), logger: logger,
	}
	if h.timeout <= 0 {
		h.timeout = 10 * time.Second
	}
	if h.maxBytes <= 0 {
		h.maxBytes = 1 << 20
	}
	if h.degraded == "" {
		h.degraded = "_degraded"
	}
	index := map[string]int{}
	for i, c := range a.Calls {
		index[c.Name] = i
	}
	deplist := config.AggregateDeps(a)
	for i, c := range a.Calls {
		cc, err := compileCall(i, c, deps, h.timeout)
		if err != nil {
			return nil, fmt.Errorf("aggregate call %s: %w", c.Name, err)
		}
		for _, d := range deplist[i] {
			cc.deps = append(cc.deps, index[d])
		}
		h.calls = append(h.calls, cc)
		h.passthrough = h.passthrough || c.Passthrough
	}
	if h.passthrough && len(h.calls) != 1 {
		return nil, errors.New("aggregate: passthrough needs exactly one call")
	}
	var err error
	if h.response, err = shape.Compile(a.Response.ShapeSpec()); err != nil {
		return nil, fmt.Errorf("aggregate response: %w", err)
	}
	vary := map[string]bool{}
	for _, pc := range a.Profiles {
		p, err := compileProfile(cfg, pc, a, index)
		if err != nil {
			return nil, fmt.Errorf("aggregate profile %s: %w", pc.Name, err)
		}
		for _, c := range p.headers {
			vary[c.name] = true
		}
		h.profiles = append(h.profiles, p)
		if pc.Name == a.DefaultProfile {
			h.defProfile = p
		}
	}
	if a.DefaultProfile != "" && h.defProfile == nil {
		return nil, fmt.Errorf("aggregate: unknown default profile %q", a.DefaultProfile)
	}
	if len(vary) > 0 {
		names := make([]string, 0, len(vary))
		for n := range vary {
			names = append(names, n)
		}
		sort.Strings(names)
		h.vary = strings.Join(names, ", ")
	}
	return h, nil
}

func compileCall(i int, c config.AggregateCall, deps Deps, aggTimeout time.Duration) (*call, error) {
	cc := &call{idx: i, name: c.Name, service: c.Service, method: c.Method, timeout: c.Timeout.Duration,
		required: c.Required, merge: c.Merge, paths: map[*tmpl.Ref]shape.Path{}}
	if cc.method == "" {
		cc.method = http.MethodGet
	}
	if cc.timeout <= 0 || cc.timeout > aggTimeout {
		cc.timeout = aggTimeout
	}
	if cc.svc = deps.Upstream(c.Service); cc.svc == nil {
		return nil, fmt.Errorf("unknown service %q", c.Service)
	}
	pathText, queryText, hasQuery := strings.Cut(c.Path, "?")
	var err error
	if cc.path, err = tmpl.Parse(pathText); err != nil {
		return nil, err
	}
	if hasQuery {
		if cc.rawQuery, err = tmpl.Parse(queryText); err != nil {
			return nil, err
		}
	}
	for _, k := range sortedKeys(c.Query) {
		t, err := tmpl.Parse(c.Query[k])
		if err != nil {
			return nil, err
		}
		cc.query = append(cc.query, kvTemplate{k, t})
	}
	for _, k := range sortedKeys(c.Headers) {
		t, err := tmpl.Parse(c.Headers[k])
		if err != nil {
			return nil, err
		}
		cc.headers = append(cc.headers, kvTemplate{textproto.CanonicalMIMEHeaderKey(k), t})
	}
	for _, t := range cc.templates() {
		for _, r := range t.Refs() {
			if r.Source == tmpl.Claims || r.Source == tmpl.Call {
				p, err := shape.ParsePath(r.Name)
				if err != nil {
					return nil, fmt.Errorf("{%s}: %w", r.Text, err)
				}
				cc.paths[r] = p
			}
		}
	}
	cc.def = c.Default.JSON
	if cc.def == nil {
		cc.def = []byte("null")
	}
	if !json.Valid(cc.def) {
		return nil, errors.New("default is not valid JSON")
	}
	if c.Extract != "" {
		p, err := shape.ParsePath(c.Extract)
		if err != nil {
			return nil, fmt.Errorf("extract: %w", err)
		}
		cc.extract = &p
	}
	if cc.shape, err = shape.Compile(c.Shape.ShapeSpec()); err != nil {
		return nil, fmt.Errorf("shape: %w", err)
	}
	key := c.Key
	if key == "" {
		key = c.Name
	}
	if cc.key, err = shape.ParsePath(key); err != nil || !cc.key.KeysOnly() || cc.key.IsRoot() {
		return nil, fmt.Errorf("key %q is not a field path", key)
	}
	return cc, nil
}

func (c *call) templates() []*tmpl.Template {
	out := []*tmpl.Template{c.path}
	if c.rawQuery != nil {
		out = append(out, c.rawQuery)
	}
	for _, kv := range c.query {
		out = append(out, kv.t)
	}
	for _, kv := range c.headers {
		out = append(out, kv.t)
	}
	return out
}

func compileProfile(cfg *config.Config, pc config.AggregateProfile, a *config.Aggregate, index map[string]int) (*profile, error) {
	n := len(a.Calls)
	p := &profile{name: pc.Name, skip: make([]bool, n), shapes: make([]*shape.Shape, n), hasShape: make([]bool, n)}
	var err error
	if p.headers, err = conds(pc.Match.Headers, true); err != nil {
		return nil, err
	}
	if p.query, err = conds(pc.Match.Query, false); err != nil {
		return nil, err
	}
	for _, host := range pc.Match.Hosts {
		p.hosts = append(p.hosts, strings.ToLower(host))
	}
	for _, name := range pc.Match.Listeners {
		found := false
		for _, l := range cfg.Listeners {
			if l.Name == name {
				host, port, err := net.SplitHostPort(l.Address)
				if err != nil {
					return nil, fmt.Errorf("listener %s: %w", name, err)
				}
				if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
					host = ""
				}
				p.listeners = append(p.listeners, hostPort{host, port})
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown listener %q", name)
		}
	}
	for _, name := range pc.Skip {
		i, ok := index[name]
		if !ok {
			return nil, fmt.Errorf("skip: unknown call %q", name)
		}
		p.skip[i] = true
	}
	for name, s := range pc.Calls {
		i, ok := index[name]
		if !ok {
			return nil, fmt.Errorf("calls: unknown call %q", name)
		}
		if p.shapes[i], err = shape.Compile(s.ShapeSpec()); err != nil {
			return nil, fmt.Errorf("calls.%s: %w", name, err)
		}
		p.hasShape[i] = true
	}
	if pc.Response != nil {
		if p.response, err = shape.Compile(pc.Response.ShapeSpec()); err != nil {
			return nil, fmt.Errorf("response: %w", err)
		}
		p.hasResp = true
	}
	return p, nil
}

func conds(m map[string]config.ValueMatch, header bool) ([]cond, error) {
	var out []cond
	for _, k := range sortedKeys(m) {
		v := m[k]
		c := cond{name: k, exact: v.Exact, present: v.Present}
		if header {
			c.name = textproto.CanonicalMIMEHeaderKey(k)
		}
		if v.Regex != "" {
			re, err := regexp.Compile(v.Regex)
			if err != nil {
				return nil, err
			}
			c.re = re
		}
		out = append(out, c)
	}
	return out, nil
}

// Summary describes the aggregate for the compiled route table.
func (h *Handler) Summary() string {
	var b strings.Builder
	b.WriteString("aggregate")
	if h.passthrough {
		b.WriteString(" passthrough")
	}
	for _, c := range h.calls {
		fmt.Fprintf(&b, " %s=%s:%s%s", c.name, c.service, c.path, c.suffix())
	}
	fmt.Fprintf(&b, " timeout=%v", h.timeout)
	if len(h.profiles) > 0 {
		names := make([]string, len(h.profiles))
		for i, p := range h.profiles {
			names[i] = p.name
		}
		fmt.Fprintf(&b, " profiles=%s", strings.Join(names, ","))
	}
	return b.String()
}

func (c *call) suffix() string {
	var parts []string
	if c.required {
		parts = append(parts, "required")
	}
	if len(c.deps) > 0 {
		parts = append(parts, "after")
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, ",") + ")"
}

// pick returns the request's client profile (nil: none).
func (h *Handler) pick(r *http.Request) *profile {
	if len(h.profiles) == 0 {
		return nil
	}
	var query map[string][]string
	for _, p := range h.profiles {
		if p.matches(r, &query) {
			return p
		}
	}
	return h.defProfile
}

func (p *profile) matches(r *http.Request, query *map[string][]string) bool {
	for _, c := range p.headers {
		if !c.match(r.Header[c.name]) {
			return false
		}
	}
	if len(p.query) > 0 {
		if *query == nil {
			*query = r.URL.Query()
		}
		for _, c := range p.query {
			if !c.match((*query)[c.name]) {
				return false
			}
		}
	}
	if len(p.hosts) > 0 && !slices.ContainsFunc(p.hosts, func(pattern string) bool { return hostMatch(pattern, r.Host) }) {
		return false
	}
	if len(p.listeners) > 0 {
		la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if la == nil {
			return false
		}
		host, port, err := net.SplitHostPort(la.String())
		if err != nil {
			return false
		}
		ok := slices.ContainsFunc(p.listeners, func(l hostPort) bool {
			return l.port == port && (l.host == "" || strings.EqualFold(l.host, host) || sameIP(l.host, host))
		})
		if !ok {
			return false
		}
	}
	return true
}

func sameIP(a, b string) bool {
	x, y := net.ParseIP(a), net.ParseIP(b)
	return x != nil && y != nil && x.Equal(y)
}

func (c cond) match(values []string) bool {
	if len(values) == 0 {
		return false
	}
	switch {
	case c.present:
		return true
	case c.re != nil:
		return c.re.MatchString(values[0])
	}
	return values[0] == c.exact
}

// hostMatch matches an exact or "*.domain" pattern (lower case) against a Host header.
func hostMatch(pattern, host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return len(host) > len(suffix) && strings.HasSuffix(host, suffix)
	}
	return host == pattern
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
