package config

import (
	"encoding/json"
	"fmt"
	"net/textproto"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/aggregate/shape"
	"github.com/gatehouse/gatehouse/internal/aggregate/tmpl"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// Aggregate describes a route answered by several backend calls whose JSON responses are merged
// into one object (the Backends-for-Frontends pattern). Calls run in parallel unless one uses a
// field of another's result (then it waits for that one). Each result goes under its key, or is
// merged at the top level; optional calls that fail yield their default and mark the response
// degraded ("_degraded": true and the X-Gatehouse-Degraded header naming them); a required call
// that fails fails the request (502, 503 or 504) with nothing partial. Profiles shape the same
// aggregate differently per client type. The route has no service of its own.
type Aggregate struct {
	// Calls are the backend calls. At least one is required.
	Calls []AggregateCall `yaml:"calls"`
	// Response shapes the merged object before it is sent (select, omit, rename, limit).
	Response Shape `yaml:"response"`
	// Profiles shape the aggregate per client type (mobile, web, ...); the first whose match
	// holds is used.
	Profiles []AggregateProfile `yaml:"profiles"`
	// DefaultProfile names the profile used when none matches. Default: none (the calls and
	// response as defined above).
	DefaultProfile string `yaml:"default_profile"`
	// Timeout bounds the whole aggregate, sequential steps included; calls without their own
	// timeout get it. Default: 10s.
	Timeout Duration `yaml:"timeout"`
	// MaxResponseBytes caps each backend response body; a larger one is a failed call. Default:
	// 1MiB.
	MaxResponseBytes ByteSize `yaml:"max_response_bytes"`
	// ForwardHeaders are client request headers copied to every call (e.g. [Authorization,
	// Accept-Language]). X-Request-ID, traceparent/tracestate and the auth identity headers
	// (auth.identity_headers, forward-auth response headers: on this route the auth service's
	// values) are always sent. Default: none.
	ForwardHeaders []string `yaml:"forward_headers"`
	// DegradedField is the top-level boolean field saying whether an optional call failed;
	// "-" leaves it out (the X-Gatehouse-Degraded header is still set). Default: _degraded.
	DegradedField string `yaml:"degraded_field"`
}

// AggregateCall is one backend call of an aggregate route.
type AggregateCall struct {
	// Name identifies the call in templates ({product.review_ids}), profiles, logs and the
	// X-Gatehouse-Degraded header; it is also the result's key unless key or merge is set.
	// Letters, digits, _ and -; not query, header, claims or identity. Required, unique.
	Name string `yaml:"name"`
	// Service is the service called, with its balancer, circuit breaker, retries and health
	// checks. Required.
	Service string `yaml:"service"`
	// Method of the call. Calls send no body. Default: GET.
	Method string `yaml:"method"`
	// Path is the path (and optional ?query) requested, a template: "{id}" is a path parameter
	// of the route, "{**}" what its /** matched, "{query.NAME}", "{header.NAME}",
	// "{claims.sub}" (dotted claim paths), "{identity.subject}" (also consumer, tier, issuer,
	// method), "{CALL.field.path}" a field of another call's result (this call then runs after
	// it), and "{x|fallback}" a value used when x is missing. Values are percent-escaped, and a
	// value that is empty, "." or ".." or holds "/" or "\\" fails the call, so a value cannot add
	// or climb path segments. Arrays become comma-separated lists. A missing value
	// without fallback fails the call. Required.
	Path string `yaml:"path"`
	// Query parameters added to the call, each value a template as in path.
	Query map[string]string `yaml:"query"`
	// Headers set on the call, each value a template as in path.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds this call from its start (after the calls it waits for), inside the
	// aggregate's timeout. An optional call that times out yields its default. Default: the
	// aggregate's timeout.
	Timeout Duration `yaml:"timeout"`
	// Required calls must succeed (2xx with JSON): otherwise the request fails with 502 (503
	// while the service's circuit is open, 504 on timeout, 404 when the call answered 404).
	// Default: false (optional).
	Required bool `yaml:"required"`
	// Default is the value an optional call yields when it fails, any YAML/JSON value: [], {},
	// "text", 0 or null. Default: null.
	Default JSONValue `yaml:"default"`
	// Extract takes one field of the response as the call's result before anything else, e.g.
	// "data" for {"data": {...}}. Default: the whole response.
	Extract string `yaml:"extract"`
	// Shape trims this call's result (select, omit, rename, limit) before it is merged.
	Shape Shape `yaml:"shape"`
	// Key is where the result goes in the merged object, a field path such as "recent_orders"
	// or "product.reviews". Default: the call's name.
	Key string `yaml:"key"`
	// Merge puts the fields of the result (an object) at the top level of the merged object
	// instead of under a key; later calls overwrite earlier ones' fields. Default: false.
	Merge bool `yaml:"merge"`
	// Passthrough streams this call's response (status, headers, body) to the client untouched,
	// without decoding it: for an aggregate of exactly this one call, to reach a backend path
	// built from claims or query parameters at no decoding cost. A plain route (service:) is
	// the same streaming proxy without templates. Default: false.
	Passthrough bool `yaml:"passthrough"`
}

// Shape trims a JSON value. Paths are dotted fields; "items[]" is every element of an array,
// "items[0]" one element, and a field step over an array applies to each element
// ("images.url" is "images[].url"); "." is the value itself. Rename runs first (so the other
// rules use the new names), then select, omit and limit.
type Shape struct {
	// Select keeps only these paths, e.g. [id, name, "images[0].thumbnail_url"].
	Select []string `yaml:"select"`
	// Omit removes these paths, e.g. [internal_notes, "reviews[].author.email"].
	Omit []string `yaml:"omit"`
	// Rename moves values from a path to a new field path, e.g. {full_description:
	// description, "images[0].thumbnail_url": thumbnail}; a source through an array
	// ("images[].full_url") collects a list.
	Rename map[string]string `yaml:"rename"`
	// Limit truncates arrays to at most this many elements, e.g. {reviews: 10}; "." is the
	// value itself when it is an array.
	Limit map[string]int `yaml:"limit"`
}

// AggregateProfile shapes an aggregate for one kind of client (mobile, web, partner): it can
// skip calls and replace the shape of calls and of the response.
type AggregateProfile struct {
	// Name identifies the profile; it is sent back in the X-Gatehouse-Profile header. Required,
	// unique.
	Name string `yaml:"name"`
	// Match selects the clients this profile serves. At least one condition is required.
	Match ProfileMatch `yaml:"match"`
	// Skip lists calls not made for this profile (their keys are absent). A call another call
	// needs cannot be skipped alone.
	Skip []string `yaml:"skip"`
	// Calls replace the shape of the named calls for this profile, e.g. {product: {select: [id,
	// name, price]}}.
	Calls map[string]Shape `yaml:"calls"`
	// Response replaces the aggregate's response shape for this profile.
	Response *Shape `yaml:"response"`
}

// ProfileMatch selects a client profile; all given conditions must hold.
type ProfileMatch struct {
	// Headers that must match, as in routes[].match.headers, e.g. {X-Client-Type: mobile}.
	Headers map[string]ValueMatch `yaml:"headers"`
	// Query parameters that must match, as in routes[].match.query.
	Query map[string]ValueMatch `yaml:"query"`
	// Hosts the request must be for: exact or "*.example.com"; case and port are ignored.
	Hosts []string `yaml:"hosts"`
	// Listeners (by name) the request must have arrived on: one config can run a mobile and a
	// web gateway on separate listeners.
	Listeners []string `yaml:"listeners"`
}

// JSONValue is any YAML value that has a JSON form: null, a boolean, a number, a string, a
// list or a mapping with string keys.
type JSONValue struct {
	// JSON is the value's JSON encoding; nil when the value was not given.
	JSON json.RawMessage
}

// UnmarshalYAML implements yaml.NodeUnmarshaler.
func (j *JSONValue) UnmarshalYAML(n ast.Node) error {
	var v any
	if err := yaml.NodeToValue(n, &v); err != nil {
		return &nodeError{n.GetToken(), fmt.Sprintf("invalid value: %v", err)}
	}
	v, ok := jsonable(v)
	data, err := json.Marshal(v)
	if !ok || err != nil {
		return &nodeError{n.GetToken(), "the value has no JSON form (mapping keys must be strings)"}
	}
	j.JSON = data
	return nil
}

// MarshalYAML renders the value as JSON (a subset of YAML).
func (j JSONValue) MarshalYAML() ([]byte, error) {
	if j.JSON == nil {
		return []byte("null"), nil
	}
	return j.JSON, nil
}

// jsonable converts YAML-decoded mappings to map[string]any; false when a key is not a string.
func jsonable(v any) (any, bool) {
	ok := true
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k], ok = jsonable(e)
			if !ok {
				return nil, false
			}
		}
		return t, true
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			s, isStr := k.(string)
			if !isStr {
				return nil, false
			}
			if out[s], ok = jsonable(e); !ok {
				return nil, false
			}
		}
		return out, true
	case []any:
		for i, e := range t {
			if t[i], ok = jsonable(e); !ok {
				return nil, false
			}
		}
		return t, true
	}
	return v, true
}

// ShapeSpec converts the config form into the shaping engine's.
func (s Shape) ShapeSpec() shape.Spec {
	return shape.Spec{Select: s.Select, Omit: s.Omit, Rename: s.Rename, Limit: s.Limit}
}

func (c *Config) defaultAggregate() {
	for i := range c.Routes {
		a := c.Routes[i].Aggregate
		if a == nil {
			continue
		}
		defDur(&a.Timeout, 10*time.Second)
		defSize(&a.MaxResponseBytes, 1<<20)
		if a.DegradedField == "" {
			a.DegradedField = "_degraded"
		}
		for j := range a.Calls {
			call := &a.Calls[j]
			if call.Method == "" {
				call.Method = "GET"
			}
			call.Method = strings.ToUpper(call.Method)
			if !call.Timeout.Set() || call.Timeout.Duration > a.Timeout.Duration {
				call.Timeout = a.Timeout
			}
		}
	}
}

// AggregateDeps returns, for each call of a, the names of the calls it waits for (the calls
// its templates reference), in config order.
func AggregateDeps(a *Aggregate) [][]string {
	out := make([][]string, len(a.Calls))
	for i, call := range a.Calls {
		seen := map[string]bool{}
		for _, t := range callTemplates(call) {
			parsed, err := tmpl.Parse(t)
			if err != nil {
				continue
			}
			for _, r := range parsed.Refs() {
				if r.Source == tmpl.Call && r.Call != call.Name {
					seen[r.Call] = true
				}
			}
		}
		for _, other := range a.Calls {
			if seen[other.Name] {
				out[i] = append(out[i], other.Name)
			}
		}
	}
	return out
}

func callTemplates(c AggregateCall) []string {
	out := []string{c.Path}
	for _, k := range sortedMapKeys(c.Query) {
		out = append(out, c.Query[k])
	}
	for _, k := range sortedMapKeys(c.Headers) {
		out = append(out, c.Headers[k])
	}
	return out
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *Source) validateAggregate(add func(path, format string, args ...any)) {
	c := s.Config
	services := map[string]bool{}
	for _, svc := range c.Services {
		services[svc.Name] = true
	}
	listeners := map[string]bool{}
	for _, l := range c.Listeners {
		listeners[l.Name] = true
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		a := r.Aggregate
		if a == nil {
			continue
		}
		p := fmt.Sprintf("routes[%d]", i)
		if r.GRPC != nil {
			add(p+".grpc", "cannot be combined with aggregate")
		}
		for _, f := range []struct {
			name string
			set  bool
		}{{"strip_prefix", r.StripPrefix != ""}, {"rewrite", r.Rewrite != ""}, {"preserve_host", r.PreserveHost},
			{"timeouts", r.Timeouts.Connect.Set() || r.Timeouts.ResponseHeader.Set() || r.Timeouts.Request.Set()}} {
			if f.set {
				add(p+"."+f.name, "is not used by an aggregate route (each call names its path; use aggregate.timeout and calls[].timeout)")
			}
		}
		validateAggregateBody(add, p+".aggregate", a, r.Match.Path, services, listeners)
	}
}

func validateAggregateBody(add func(string, string, ...any), p string, a *Aggregate, matchPath string, services, listeners map[string]bool) {
	params := pathParams(matchPath)
	if a.Timeout.Duration <= 0 {
		add(p+".timeout", "must be greater than 0 (every backend call has a timeout)")
	}
	if a.MaxResponseBytes.Bytes <= 0 {
		add(p+".max_response_bytes", "must be greater than 0")
	}
	for j, h := range a.ForwardHeaders {
		checkHeaderName(add, fmt.Sprintf("%s.forward_headers[%d]", p, j), h)
	}
	if f := a.DegradedField; f != "-" && (strings.ContainsAny(f, ".[]") || strings.TrimSpace(f) != f) {
		add(p+".degraded_field", "%q must be a plain field name (or \"-\" to leave it out)", f)
	}
	if len(a.Calls) == 0 {
		add(p+".calls", "at least one call is required")
		return
	}
	names := map[string]int{}
	keys := map[string]string{}
	for j, call := range a.Calls {
		cp := fmt.Sprintf("%s.calls[%d]", p, j)
		switch {
		case call.Name == "":
			add(cp+".name", "is required")
		case !tmpl.ValidName(call.Name):
			add(cp+".name", "%q must be letters, digits, _ or - and not one of %s", call.Name, strings.Join(tmpl.Reserved, ", "))
		default:
			if k, dup := names[call.Name]; dup {
				add(cp+".name", "duplicate call name %q (also at index %d)", call.Name, k)
			} else {
				names[call.Name] = j
			}
		}
		if call.Service == "" {
			add(cp+".service", "is required")
		} else if !services[call.Service] {
			add(cp+".service", "unknown service %q", call.Service)
		}
		if !validToken(call.Method) {
			add(cp+".method", "%q is not a valid HTTP method", call.Method)
		}
		if call.Timeout.Duration <= 0 {
			add(cp+".timeout", "must be greater than 0")
		}
		if call.Required && call.Default.JSON != nil {
			add(cp+".default", "a required call has no default (it fails the request instead)")
		}
		if call.Merge && call.Key != "" {
			add(cp+".key", "cannot be combined with merge")
		}
		if call.Merge && call.Default.JSON != nil && !jsonIsObjectOrNull(call.Default.JSON) {
			add(cp+".default", "must be an object or null when merge is set")
		}
		if call.Extract != "" {
			if _, err := shape.ParsePath(call.Extract); err != nil {
				add(cp+".extract", "%v", err)
			}
		}
		if !call.Merge {
			key := call.Key
			if key == "" {
				key = call.Name
			} else if kp, err := shape.ParsePath(key); err != nil || kp.IsRoot() || !kp.KeysOnly() {
				add(cp+".key", "%q must be a field path without brackets, e.g. recent_orders or product.reviews", key)
			}
			if other, dup := keys[key]; dup && key != "" {
				add(cp+".key", "result key %q is already used by call %q", key, other)
			} else {
				keys[key] = call.Name
			}
		}
		checkShape(add, cp+".shape", call.Shape)
		// Templates.
		if call.Path == "" {
			add(cp+".path", "is required (e.g. /users/{claims.sub}/orders?limit=5)")
		} else if !strings.HasPrefix(call.Path, "/") {
			add(cp+".path", "%q must start with /", call.Path)
		} else {
			checkTemplate(add, cp+".path", call.Path, params, call.Name, a)
		}
		for _, k := range sortedMapKeys(call.Query) {
			if k == "" {
				add(cp+".query", "empty parameter name")
			}
			checkTemplate(add, cp+".query."+k, call.Query[k], params, call.Name, a)
		}
		for _, k := range sortedMapKeys(call.Headers) {
			checkHeaderName(add, cp+".headers."+k, k)
			checkTemplate(add, cp+".headers."+k, call.Headers[k], params, call.Name, a)
		}
		if call.Passthrough {
			switch {
			case len(a.Calls) != 1:
				add(cp+".passthrough", "needs an aggregate of exactly one call (the response is streamed untouched)")
			case call.Extract != "" || call.Merge || call.Key != "" || call.Default.JSON != nil || !call.Shape.ShapeSpec().Empty() ||
				!a.Response.ShapeSpec().Empty() || len(a.Profiles) > 0:
				add(cp+".passthrough", "streams the response untouched: it cannot be combined with extract, shape, key, merge, default, response or profiles")
			}
		}
	}
	checkShape(add, p+".response", a.Response)
	// Dependencies: no cycles.
	deps := AggregateDeps(a)
	if cyc := findCycle(a, deps); cyc != "" {
		add(p+".calls", "calls wait for each other in a cycle: %s", cyc)
	}
	// Profiles.
	profiles := map[string]int{}
	for j, pr := range a.Profiles {
		pp := fmt.Sprintf("%s.profiles[%d]", p, j)
		checkName(add, pp+".name", pr.Name, "profile", profiles, j)
		m := pr.Match
		if len(m.Headers) == 0 && len(m.Query) == 0 && len(m.Hosts) == 0 && len(m.Listeners) == 0 {
			add(pp+".match", "needs at least one condition (use default_profile for clients no profile matches)")
		}
		for _, k := range sortedMapKeys(m.Headers) {
			checkHeaderName(add, pp+".match.headers."+k, k)
			checkValueMatch(add, pp+".match.headers."+k, m.Headers[k])
		}
		for _, k := range sortedMapKeys(m.Query) {
			checkValueMatch(add, pp+".match.query."+k, m.Query[k])
		}
		for k, h := range m.Hosts {
			if h == "" || strings.ContainsAny(h, "/ ") || strings.Contains(h[min(len(h), 1):], "*") {
				add(fmt.Sprintf("%s.match.hosts[%d]", pp, k), "%q is not a host name or *.domain wildcard", h)
			}
		}
		for k, l := range m.Listeners {
			if !listeners[l] {
				add(fmt.Sprintf("%s.match.listeners[%d]", pp, k), "unknown listener %q", l)
			}
		}
		skipped := map[string]bool{}
		for k, name := range pr.Skip {
			if _, ok := names[name]; !ok {
				add(fmt.Sprintf("%s.skip[%d]", pp, k), "unknown call %q", name)
			}
			skipped[name] = true
		}
		for ci, call := range a.Calls {
			if skipped[call.Name] {
				continue
			}
			for _, d := range deps[ci] {
				if skipped[d] {
					add(pp+".skip", "call %q needs %q: skip both or neither", call.Name, d)
				}
			}
		}
		for _, name := range sortedMapKeys(pr.Calls) {
			if _, ok := names[name]; !ok {
				add(pp+".calls."+name, "unknown call %q", name)
			}
			checkShape(add, pp+".calls."+name, pr.Calls[name])
		}
		if pr.Response != nil {
			checkShape(add, pp+".response", *pr.Response)
		}
	}
	if a.DefaultProfile != "" {
		if _, ok := profiles[a.DefaultProfile]; !ok {
			add(p+".default_profile", "unknown profile %q", a.DefaultProfile)
		}
	}
}

func jsonIsObjectOrNull(raw json.RawMessage) bool {
	s := strings.TrimSpace(string(raw))
	return s == "null" || strings.HasPrefix(s, "{")
}

func checkValueMatch(add func(string, string, ...any), path string, v ValueMatch) {
	if v.Regex != "" {
		if _, err := regexp.Compile(v.Regex); err != nil {
			add(path+".regex", "invalid regular expression: %v", err)
		}
	}
}

func checkShape(add func(string, string, ...any), p string, s Shape) {
	_, err := shape.Compile(s.ShapeSpec())
	if err == nil {
		return
	}
	if se, ok := err.(*shape.SpecError); ok {
		switch se.Field {
		case "select", "omit":
			add(fmt.Sprintf("%s.%s[%d]", p, se.Field, se.Index), "%v", se.Err)
		default:
			add(p+"."+se.Field+"."+se.Key, "%v", se.Err)
		}
		return
	}
	add(p, "%v", err)
}

// checkTemplate validates one call template: syntax, path parameters of the route, references
// to other calls.
func checkTemplate(add func(string, string, ...any), path, text string, params map[string]bool, self string, a *Aggregate) {
	t, err := tmpl.Parse(text)
	if err != nil {
		add(path, "%v", err)
		return
	}
	for _, r := range t.Refs() {
		switch r.Source {
		case tmpl.Param:
			if !params[r.Name] {
				if r.Name == "**" {
					add(path, "{**} needs a route path ending in /**")
				} else {
					add(path, "{%s} is not a parameter of the route's path", r.Name)
				}
			}
		case tmpl.Header:
			if !validToken(r.Name) {
				add(path, "{%s}: %q is not a valid header name", r.Text, r.Name)
			}
		case tmpl.Call:
			if r.Call == self {
				add(path, "{%s}: a call cannot use its own result", r.Text)
				continue
			}
			if !slices.ContainsFunc(a.Calls, func(c AggregateCall) bool { return c.Name == r.Call }) {
				add(path, "{%s}: no call named %q (placeholders are {param}, {query.x}, {header.x}, {claims.x}, {identity.x} or {call.field})", r.Text, r.Call)
				continue
			}
			if _, err := shape.ParsePath(r.Name); err != nil {
				add(path, "{%s}: %v", r.Text, err)
			}
		}
	}
}

// pathParams returns the parameter names of a route path pattern ("**" for a trailing /**).
func pathParams(pattern string) map[string]bool {
	out := map[string]bool{}
	for _, seg := range strings.Split(pattern, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out[seg[1:len(seg)-1]] = true
		}
		if seg == "**" {
			out["**"] = true
		}
	}
	return out
}

// findCycle returns a description of a dependency cycle among calls, or "".
func findCycle(a *Aggregate, deps [][]string) string {
	index := map[string]int{}
	for i, c := range a.Calls {
		index[c.Name] = i
	}
	state := make([]int, len(a.Calls)) // 0 new, 1 on stack, 2 done
	var stack []string
	var visit func(i int) string
	visit = func(i int) string {
		state[i] = 1
		stack = append(stack, a.Calls[i].Name)
		for _, d := range deps[i] {
			j, ok := index[d]
			if !ok {
				continue
			}
			switch state[j] {
			case 1:
				start := slices.Index(stack, d)
				return strings.Join(append(slices.Clone(stack[start:]), d), " -> ")
			case 0:
				if c := visit(j); c != "" {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = 2
		return ""
	}
	for i := range a.Calls {
		if state[i] == 0 {
			if c := visit(i); c != "" {
				return c
			}
		}
	}
	return ""
}

// CanonicalHeaders canonicalizes header names (for forward_headers).
func CanonicalHeaders(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = textproto.CanonicalMIMEHeaderKey(n)
	}
	return out
}
