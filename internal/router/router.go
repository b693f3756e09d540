package router

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// HeaderMatchKind says how a Condition compares a header or query value.
type HeaderMatchKind int

const (
	// MatchExact matches when the first value equals Condition.Value exactly
	// (case-sensitively; query values are compared after unescaping).
	MatchExact HeaderMatchKind = iota
	// MatchPresent matches when the header or query parameter is present,
	// whatever its value (an empty value counts).
	MatchPresent
	// MatchRegex matches when the first value matches Condition.Regex, with
	// regexp.MatchString semantics: unanchored unless the pattern anchors
	// itself.
	MatchRegex
)

// String returns the configuration name of k.
func (k HeaderMatchKind) String() string {
	switch k {
	case MatchExact:
		return "exact"
	case MatchPresent:
		return "present"
	case MatchRegex:
		return "regex"
	}
	return "HeaderMatchKind(" + strconv.Itoa(int(k)) + ")"
}

// Condition is one header or query-parameter requirement of a Spec.
// Only the first value of a repeated header or parameter is compared, as
// http.Header.Get and url.Values.Get do.
type Condition struct {
	// Name is the header name (canonicalized by Compile with
	// textproto.CanonicalMIMEHeaderKey) or the query parameter name (compared
	// exactly, after unescaping the request's key).
	Name string
	// Kind selects the comparison.
	Kind HeaderMatchKind
	// Value is the expected value for MatchExact. For MatchRegex with a nil
	// Regex, Compile compiles Value.
	Value string
	// Regex is the pattern for MatchRegex.
	Regex *regexp.Regexp
}

// Spec is the match part of one configured Route, as built by the Runtime.
type Spec struct {
	// Name identifies the Route in Describe output and errors.
	Name string
	// Hosts lists exact ("api.example.com") and wildcard ("*.example.com")
	// host patterns, compared case-insensitively against the request host
	// without its port. Empty matches any host.
	Hosts []string
	// Path is the path pattern: literal segments, "{name}" parameter
	// segments and an optional final "**". See the package documentation.
	Path string
	// Methods lists the allowed methods; empty allows any. GET implies HEAD.
	Methods []string
	// Headers lists header conditions; all must hold.
	Headers []Condition
	// Query lists query-parameter conditions; all must hold.
	Query []Condition
}

// SpecError reports an invalid Spec. Compile joins several of them with
// errors.Join; use errors.As or unwrap the join to inspect each.
type SpecError struct {
	// Index is the position of the Spec in the slice given to Compile.
	Index int
	// Name is the Spec's name, for messages.
	Name string
	// Field is one of "path", "hosts", "methods", "headers", "query".
	Field string
	// Msg describes the problem.
	Msg string
}

// Error implements error.
func (e *SpecError) Error() string {
	return fmt.Sprintf("route %d %q: %s: %s", e.Index, e.Name, e.Field, e.Msg)
}

// ConflictError reports two Specs that match exactly the same requests, so
// the later one could never be chosen.
type ConflictError struct {
	// Index is the later Spec.
	Index int
	// Other is the earlier Spec it duplicates.
	Other int
	// Name and OtherName are the Specs' names, for messages.
	Name, OtherName string
}

// Error implements error.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("route %d %q conflicts with route %d %q: both match exactly the same requests",
		e.Index, e.Name, e.Other, e.OtherName)
}

// Param is one path parameter extracted by Lookup.
type Param struct {
	// Key is the parameter name from the pattern.
	Key string
	// Value is the matched segment, a substring of the normalized (still
	// escaped) path.
	Value string
}

// maxInlineParams is how many Params a Match holds without allocating.
const maxInlineParams = 8

// Match receives the result of Lookup. It is owned by the caller and may be
// reused (pooled) across lookups; Lookup resets it. Do not share one Match
// between concurrent lookups.
type Match struct {
	// Route is the index of the matched Spec in the slice given to Compile,
	// or -1.
	Route int
	// Params are the path parameters in pattern order. The slice is backed by
	// storage inside the Match: it is valid until the next Lookup with the
	// same Match.
	Params []Param
	// Rest is what "**" matched, without a leading slash ("" if nothing or no
	// "**").
	Rest string

	params [maxInlineParams]Param
	allow  uint64 // methods of Routes that matched all but the method
	table  *Table
}

// Param returns the value of the path parameter key.
func (m *Match) Param(key string) (string, bool) {
	for _, p := range m.Params {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// Allow returns the value of the Allow header after Lookup returned
// MethodNotAllowed: the sorted union of the methods of the Routes that
// matched everything but the method, joined with ", ". It returns "" in
// other cases. It allocates.
func (m *Match) Allow() string {
	if m.table == nil || m.allow == 0 {
		return ""
	}
	var names []string
	for i, name := range m.table.methods {
		if m.allow&(1<<uint(i)) != 0 {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func (m *Match) reset(t *Table) {
	m.Route = -1
	m.Rest = ""
	if cap(m.Params) > maxInlineParams {
		m.Params = m.Params[:0] // keep storage grown by an earlier lookup
	} else {
		m.Params = m.params[:0]
	}
	m.allow = 0
	m.table = t
}

// Result is the outcome of Lookup.
type Result int

const (
	// NotFound means no Route matches the host and path (with conditions).
	NotFound Result = iota
	// Found means Match describes the chosen Route.
	Found
	// MethodNotAllowed means some Route matches everything but the method;
	// Match.Allow gives the Allow header.
	MethodNotAllowed
)

// String returns a short name of r.
func (r Result) String() string {
	switch r {
	case NotFound:
		return "NotFound"
	case Found:
		return "Found"
	case MethodNotAllowed:
		return "MethodNotAllowed"
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

// Table is a compiled, immutable route table. It is safe for concurrent use.
type Table struct {
	routes     []*route // by Spec index
	exact      map[string]*hostTable
	exactOrder []*hostTable // sorted by host, for Describe
	wild       []*hostTable // longest suffix first
	any        *hostTable
	methods    []string          // method universe; bit i of a mask is methods[i]
	methodBits map[string]uint64 // method -> its bit
}

type hostTable struct {
	pattern string // "api.example.com", "*.example.com", or "*" for any host
	suffix  string // ".example.com" for wildcards
	root    *node
}

type route struct {
	index      int
	name       string
	pattern    string // normalized pattern with parameter names
	methods    uint64 // 0 allows any method
	methodList []string
	headers    []cond
	query      []cond
	paramNames []string
	weight     int
}

type cond struct {
	name  string
	kind  HeaderMatchKind
	value string
	re    *regexp.Regexp
}

// maxLinearChildren is the number of literal children scanned linearly
// before a node switches to a map.
const maxLinearChildren = 8

type node struct {
	seg    string // literal segment, "{}" for a parameter node
	lits   []*node
	litMap map[string]*node
	param  *node
	end    []*route // patterns ending at this node
	wild   []*route // patterns ending with "**" after this node
}

func (n *node) child(seg string) *node {
	if n.litMap != nil {
		return n.litMap[seg]
	}
	for _, c := range n.lits {
		if c.seg == seg {
			return c
		}
	}
	return nil
}

// Lookup finds the Route for a request and fills m, which must not be nil.
//
// host is the request Host (a port, a trailing dot and letter case are
// ignored); path is the output of NormalizePath; h is the request header;
// rawQuery is the request's raw, still escaped query string (r.URL.RawQuery),
// parsed lazily and only for the parameter names that Routes test.
//
// Lookup allocates nothing when the result is Found or NotFound, except
// when a Route has a MatchRegex condition on an escaped query value or a path
// has more than 8 parameters.
func (t *Table) Lookup(host, method, path string, h http.Header, rawQuery string, m *Match) Result {
	if m == nil {
		return NotFound
	}
	m.reset(t)
	if t == nil || len(path) == 0 || path[0] != '/' {
		return NotFound
	}
	req := request{path: path, method: t.methodBits[method], header: h, query: rawQuery}
	var buf [maxHostLen]byte
	if n := canonicalHost(&buf, host); n > 0 {
		hk := buf[:n]
		if ht := t.exact[string(hk)]; ht != nil && t.walk(ht.root, 1, &req, m) {
			return Found
		}
		for _, ht := range t.wild {
			if n > len(ht.suffix) && hk[0] != '.' && string(hk[n-len(ht.suffix):]) == ht.suffix &&
				t.walk(ht.root, 1, &req, m) {
				return Found
			}
		}
	}
	if t.any != nil && t.walk(t.any.root, 1, &req, m) {
		return Found
	}
	if m.allow != 0 {
		return MethodNotAllowed
	}
	return NotFound
}

const maxHostLen = 255

// canonicalHost writes the lowercase host, without port and trailing dot,
// into buf and returns its length, or 0 if there is none or it is too long.
func canonicalHost(buf *[maxHostLen]byte, host string) int {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[:i+1]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	host = strings.TrimSuffix(host, ".")
	if len(host) > maxHostLen {
		return 0
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return len(host)
}

type request struct {
	path   string
	method uint64 // bit of the request method, 0 if no Route names it
	header http.Header
	query  string
}

// walk matches the path segments starting at start (the index just after a
// '/', or -1 when the path is exhausted) below n.
func (t *Table) walk(n *node, start int, req *request, m *Match) bool {
	if start < 0 {
		for _, r := range n.end {
			if try(r, req, "", m) {
				return true
			}
		}
		for _, r := range n.wild {
			if try(r, req, "", m) {
				return true
			}
		}
		return false
	}
	path := req.path
	seg, next := path[start:], -1
	if i := strings.IndexByte(seg, '/'); i >= 0 {
		seg, next = seg[:i], start+i+1
	}
	if c := n.child(seg); c != nil && t.walk(c, next, req, m) {
		return true
	}
	if n.param != nil && seg != "" {
		m.Params = append(m.Params, Param{Value: seg})
		if t.walk(n.param, next, req, m) {
			return true
		}
		m.Params = m.Params[:len(m.Params)-1]
	}
	for _, r := range n.wild {
		if try(r, req, path[start:], m) {
			return true
		}
	}
	return false
}

// try checks the conditions and method of r and fills m if all hold.
func try(r *route, req *request, rest string, m *Match) bool {
	for i := range r.headers {
		if !r.headers[i].matchHeader(req.header) {
			return false
		}
	}
	for i := range r.query {
		if !r.query[i].matchQuery(req.query) {
			return false
		}
	}
	if r.methods != 0 && r.methods&req.method == 0 {
		m.allow |= r.methods
		return false
	}
	m.Route = r.index
	m.Rest = rest
	m.allow = 0
	for i := range m.Params {
		m.Params[i].Key = r.paramNames[i]
	}
	return true
}

func (c *cond) matchHeader(h http.Header) bool {
	vs := h[c.name]
	if len(vs) == 0 {
		return false
	}
	switch c.kind {
	case MatchPresent:
		return true
	case MatchExact:
		return vs[0] == c.value
	default:
		return c.re.MatchString(vs[0])
	}
}

func (c *cond) matchQuery(raw string) bool {
	v, found := queryValue(raw, c.name)
	if !found {
		return false
	}
	switch c.kind {
	case MatchPresent:
		return true
	case MatchExact:
		return unescapeEqual(v, c.value)
	default:
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				return false
			}
			v = u
		}
		return c.re.MatchString(v)
	}
}

// queryValue returns the raw value of the first parameter of raw whose
// unescaped key is key, without allocating.
func queryValue(raw, key string) (string, bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if unescapeEqual(k, key) {
			return v, true
		}
	}
	return "", false
}

// unescapeEqual reports whether the query-escaped s unescapes ('+' is a
// space) to want, without allocating. A malformed escape never matches.
func unescapeEqual(s, want string) bool {
	j := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(s) {
				return false
			}
			hi, _, ok1 := unhex(s[i+1])
			lo, _, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return false
			}
			c = hi<<4 | lo
			i += 2
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

// Compile validates specs and builds the route table. Errors name the
// offending Spec: a *SpecError per invalid field and a *ConflictError per
// Spec that duplicates an earlier one, joined with errors.Join.
func Compile(specs []Spec) (*Table, error) {
	var errs []error
	routes := make([]*route, len(specs))
	hosts := make([][]string, len(specs))
	segs := make([][]patSeg, len(specs))
	for i := range specs {
		r, hs, ss, serrs := compileSpec(i, &specs[i])
		routes[i], hosts[i], segs[i] = r, hs, ss
		errs = append(errs, serrs...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	seen := make(map[string]int, len(specs))
	for i, r := range routes {
		k := conflictKey(r, hosts[i], segs[i])
		if j, dup := seen[k]; dup {
			errs = append(errs, &ConflictError{Index: i, Other: j, Name: r.name, OtherName: routes[j].name})
			continue
		}
		seen[k] = i
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	t := &Table{routes: routes, exact: map[string]*hostTable{}, methodBits: map[string]uint64{}}
	for i, r := range routes {
		for _, name := range r.methodList {
			bit, ok := t.methodBits[name]
			if !ok {
				if len(t.methods) == 64 {
					return nil, &SpecError{Index: i, Name: r.name, Field: "methods", Msg: "more than 64 distinct methods in the table"}
				}
				bit = 1 << uint(len(t.methods))
				t.methods = append(t.methods, name)
				t.methodBits[name] = bit
			}
			r.methods |= bit
		}
	}
	for i, r := range routes {
		if len(hosts[i]) == 0 {
			if t.any == nil {
				t.any = &hostTable{pattern: "*", root: &node{}}
			}
			insert(t.any.root, segs[i], r)
			continue
		}
		for _, hp := range hosts[i] {
			insert(t.hostTable(hp).root, segs[i], r)
		}
	}
	for _, ht := range t.exact {
		t.exactOrder = append(t.exactOrder, ht)
		finish(ht.root)
	}
	slices.SortFunc(t.exactOrder, func(a, b *hostTable) int { return strings.Compare(a.pattern, b.pattern) })
	slices.SortFunc(t.wild, func(a, b *hostTable) int {
		if len(a.suffix) != len(b.suffix) {
			return len(b.suffix) - len(a.suffix)
		}
		return strings.Compare(a.suffix, b.suffix)
	})
	for _, ht := range t.wild {
		finish(ht.root)
	}
	if t.any != nil {
		finish(t.any.root)
	}
	return t, nil
}

func (t *Table) hostTable(pattern string) *hostTable {
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		for _, ht := range t.wild {
			if ht.pattern == pattern {
				return ht
			}
		}
		ht := &hostTable{pattern: pattern, suffix: suffix, root: &node{}}
		t.wild = append(t.wild, ht)
		return ht
	}
	ht := t.exact[pattern]
	if ht == nil {
		ht = &hostTable{pattern: pattern, root: &node{}}
		t.exact[pattern] = ht
	}
	return ht
}

type segKind uint8

const (
	segLiteral segKind = iota
	segParam
	segWild
)

type patSeg struct {
	kind segKind
	text string // normalized literal, or parameter name
}

func insert(n *node, segs []patSeg, r *route) {
	for _, s := range segs {
		switch s.kind {
		case segLiteral:
			c := n.child(s.text)
			if c == nil {
				c = &node{seg: s.text}
				n.lits = append(n.lits, c)
			}
			n = c
		case segParam:
			if n.param == nil {
				n.param = &node{seg: "{}"}
			}
			n = n.param
		case segWild:
			n.wild = append(n.wild, r)
			return
		}
	}
	n.end = append(n.end, r)
}

// finish orders a built trie: routes by precedence, children for Describe
// and lookup.
func finish(n *node) {
	byPrecedence := func(a, b *route) int {
		if a.weight != b.weight {
			return b.weight - a.weight
		}
		return a.index - b.index
	}
	slices.SortFunc(n.end, byPrecedence)
	slices.SortFunc(n.wild, byPrecedence)
	slices.SortFunc(n.lits, func(a, b *node) int { return strings.Compare(a.seg, b.seg) })
	if len(n.lits) > maxLinearChildren {
		n.litMap = make(map[string]*node, len(n.lits))
		for _, c := range n.lits {
			n.litMap[c.seg] = c
		}
	}
	for _, c := range n.lits {
		finish(c)
	}
	if n.param != nil {
		finish(n.param)
	}
}

func compileSpec(i int, s *Spec) (*route, []string, []patSeg, []error) {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, &SpecError{Index: i, Name: s.Name, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	r := &route{index: i, name: s.Name}

	segs, names, pattern, err := compilePath(s.Path)
	if err != nil {
		fail("path", "%s", err)
	}
	r.pattern, r.paramNames = pattern, names

	var hosts []string
	for _, h := range s.Hosts {
		p, err := compileHost(h)
		if err != nil {
			fail("hosts", "%q: %s", h, err)
			continue
		}
		if !slices.Contains(hosts, p) {
			hosts = append(hosts, p)
		}
	}
	slices.Sort(hosts)

	for _, m := range s.Methods {
		if !isToken(m) {
			fail("methods", "invalid method %q", m)
			continue
		}
		m = strings.ToUpper(m)
		if !slices.Contains(r.methodList, m) {
			r.methodList = append(r.methodList, m)
		}
	}
	if slices.Contains(r.methodList, http.MethodGet) && !slices.Contains(r.methodList, http.MethodHead) {
		r.methodList = append(r.methodList, http.MethodHead)
	}
	slices.Sort(r.methodList)

	for j, c := range s.Headers {
		if !isToken(c.Name) {
			fail("headers", "[%d]: invalid header name %q", j, c.Name)
			continue
		}
		name := textproto.CanonicalMIMEHeaderKey(c.Name)
		if name == "Host" {
			fail("headers", "[%d]: match the Host header with hosts", j)
			continue
		}
		cc, err := compileCond(name, c)
		if err != nil {
			fail("headers", "[%d] %s: %s", j, name, err)
			continue
		}
		r.headers = append(r.headers, cc)
	}
	for j, c := range s.Query {
		if c.Name == "" {
			fail("query", "[%d]: empty parameter name", j)
			continue
		}
		cc, err := compileCond(c.Name, c)
		if err != nil {
			fail("query", "[%d] %s: %s", j, c.Name, err)
			continue
		}
		r.query = append(r.query, cc)
	}
	sortConds(r.headers)
	sortConds(r.query)

	r.weight = len(r.headers) + len(r.query)
	if len(r.methodList) > 0 {
		r.weight++
	}
	return r, hosts, segs, errs
}

func compileCond(name string, c Condition) (cond, error) {
	cc := cond{name: name, kind: c.Kind}
	switch c.Kind {
	case MatchExact:
		cc.value = c.Value
	case MatchPresent:
	case MatchRegex:
		cc.re = c.Regex
		if cc.re == nil {
			if c.Value == "" {
				return cc, errors.New("regex condition without a pattern")
			}
			re, err := regexp.Compile(c.Value)
			if err != nil {
				return cc, err
			}
			cc.re = re
		}
		cc.value = cc.re.String()
	default:
		return cc, fmt.Errorf("unknown match kind %d", c.Kind)
	}
	return cc, nil
}

func sortConds(cs []cond) {
	slices.SortFunc(cs, func(a, b cond) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if a.kind != b.kind {
			return int(a.kind) - int(b.kind)
		}
		return strings.Compare(a.value, b.value)
	})
}

// compilePath parses a path pattern into segments, parameter names and its
// normalized text.
func compilePath(p string) ([]patSeg, []string, string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, nil, "", errors.New(`pattern must start with "/"`)
	}
	var (
		segs  []patSeg
		names []string
		b     strings.Builder
	)
	parts := strings.Split(p[1:], "/")
	for k, part := range parts {
		last := k == len(parts)-1
		b.WriteByte('/')
		switch {
		case part == "**":
			if !last {
				return nil, nil, "", errors.New(`"**" must be the last segment`)
			}
			segs = append(segs, patSeg{kind: segWild})
			b.WriteString("**")
		case strings.HasPrefix(part, "{"):
			if !strings.HasSuffix(part, "}") {
				if strings.Contains(part, "}") {
					return nil, nil, "", fmt.Errorf("parameter %q must be a whole segment", part)
				}
				return nil, nil, "", fmt.Errorf("unclosed %q in segment %q", "{", part)
			}
			name := part[1 : len(part)-1]
			if name == "" {
				return nil, nil, "", errors.New("empty parameter name")
			}
			if !isParamName(name) {
				return nil, nil, "", fmt.Errorf("invalid parameter name %q", name)
			}
			if slices.Contains(names, name) {
				return nil, nil, "", fmt.Errorf("duplicate parameter name %q", name)
			}
			names = append(names, name)
			segs = append(segs, patSeg{kind: segParam, text: name})
			b.WriteString(part)
		case strings.ContainsAny(part, "{}"):
			return nil, nil, "", fmt.Errorf("segment %q: a parameter must be a whole segment like {name}", part)
		case strings.Contains(part, "*") && strings.Trim(part, "*") == "":
			return nil, nil, "", fmt.Errorf("segment %q: use {name} for one segment or a final ** for the rest", part)
		case part == "":
			if !last {
				return nil, nil, "", errors.New(`empty segment ("//")`)
			}
			segs = append(segs, patSeg{kind: segLiteral}) // trailing slash
		default:
			n, err := NormalizePath("/" + part)
			if err != nil {
				return nil, nil, "", fmt.Errorf("segment %q: %w", part, err)
			}
			lit := n[1:]
			if lit == "" { // "." or ".." (however spelled) normalizes away
				return nil, nil, "", fmt.Errorf("segment %q: dot segments are not allowed", part)
			}
			segs = append(segs, patSeg{kind: segLiteral, text: lit})
			b.WriteString(lit)
		}
	}
	return segs, names, b.String(), nil
}

func isParamName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return s != ""
}

// isToken reports whether s is an RFC 9110 token (method and header names).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return s != ""
}

// compileHost validates a host pattern and returns it lowercased without a
// trailing dot.
func compileHost(h string) (string, error) {
	p := strings.TrimSuffix(strings.ToLower(h), ".")
	switch {
	case p == "":
		return "", errors.New("empty host")
	case p == "*":
		return "", errors.New(`"*" alone is not a host pattern; leave hosts empty to match any host`)
	case strings.HasPrefix(p, "["):
		if !strings.HasSuffix(p, "]") || len(p) < 4 || strings.Trim(p[1:len(p)-1], "0123456789abcdef:.") != "" {
			return "", errors.New("invalid IP literal")
		}
		return p, nil
	}
	name := strings.TrimPrefix(p, "*.")
	if strings.Contains(p, ":") {
		return "", errors.New("host patterns must not include a port")
	}
	if len(name) > maxHostLen {
		return "", errors.New("host too long")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" {
			return "", errors.New("empty label")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				if c == '*' {
					return "", errors.New(`"*" is allowed only as the whole first label, as in "*.example.com"`)
				}
				return "", fmt.Errorf("invalid character %q", c)
			}
		}
	}
	return p, nil
}

// conflictKey identifies the set of requests a route matches, ignoring
// parameter names and the order of hosts and conditions.
func conflictKey(r *route, hosts []string, segs []patSeg) string {
	var b strings.Builder
	field := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	field("hosts")
	for _, h := range hosts {
		field(h)
	}
	field("path")
	for _, s := range segs {
		switch s.kind {
		case segLiteral:
			field("/" + s.text)
		case segParam:
			field("{}")
		case segWild:
			field("**")
		}
	}
	field("methods")
	for _, m := range r.methodList {
		field(m)
	}
	for _, cs := range [][]cond{r.headers, r.query} {
		field("conds")
		for _, c := range cs {
			field(c.name)
			field(c.kind.String())
			field(c.value)
		}
	}
	return b.String()
}

// Describe returns a deterministic text dump of the table: one block per host
// table in precedence order, each listing its Routes in precedence order with
// pattern, methods, conditions, index and name.
func (t *Table) Describe() string {
	var b strings.Builder
	tables := append(append(slices.Clone(t.exactOrder), t.wild...), t.any)
	for _, ht := range tables {
		if ht == nil {
			continue
		}
		fmt.Fprintf(&b, "host %s\n", ht.pattern)
		describeNode(&b, ht.root)
	}
	return b.String()
}

func describeNode(b *strings.Builder, n *node) {
	for _, r := range n.end {
		describeRoute(b, r)
	}
	for _, c := range n.lits {
		describeNode(b, c)
	}
	if n.param != nil {
		describeNode(b, n.param)
	}
	for _, r := range n.wild {
		describeRoute(b, r)
	}
}

func describeRoute(b *strings.Builder, r *route) {
	methods := "*"
	if len(r.methodList) > 0 {
		methods = strings.Join(r.methodList, ",")
	}
	fmt.Fprintf(b, "  %s  methods=%s", r.pattern, methods)
	for _, kc := range []struct {
		kind  string
		conds []cond
	}{{"header", r.headers}, {"query", r.query}} {
		for _, c := range kc.conds {
			switch c.kind {
			case MatchExact:
				fmt.Fprintf(b, "  %s %s=%q", kc.kind, c.name, c.value)
			case MatchPresent:
				fmt.Fprintf(b, "  %s %s present", kc.kind, c.name)
			case MatchRegex:
				fmt.Fprintf(b, "  %s %s~%q", kc.kind, c.name, c.value)
			}
		}
	}
	fmt.Fprintf(b, "  => #%d %q\n", r.index, r.name)
}
