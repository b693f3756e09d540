package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/router"
)

// Balancer kinds accepted in services[].balancer.
var balancerKinds = []string{"round_robin", "weighted_round_robin", "least_conn", "p2c", "consistent_hash"}

// ApplyDefaults fills every unset field with its documented default.
func (c *Config) ApplyDefaults() {
	s := &c.Server
	defSize(&s.MaxBodyBytes, 10<<20)
	defSize(&s.MaxHeaderBytes, 32<<10)
	defDur(&s.ReadHeaderTimeout, 10*time.Second)
	defDur(&s.ReadTimeout, 60*time.Second)
	defDur(&s.WriteTimeout, 0)
	defDur(&s.IdleTimeout, 120*time.Second)
	defDur(&s.ShutdownTimeout, 30*time.Second)
	if s.AccessLog.Enabled == nil {
		on := true
		s.AccessLog.Enabled = &on
	}
	if s.AccessLog.Output == "" {
		s.AccessLog.Output = "stdout"
	}
	if s.AccessLog.Format == "" {
		s.AccessLog.Format = "json"
	}
	if s.AccessLog.BufferSize == nil {
		b := Size(256 << 10)
		s.AccessLog.BufferSize = &b
	}
	for i := range c.Services {
		svc := &c.Services[i]
		weighted := false
		for j := range svc.Targets {
			if svc.Targets[j].Weight == 0 {
				svc.Targets[j].Weight, svc.Targets[j].weightDefaulted = 1, true
			}
			if svc.Targets[j].Weight != svc.Targets[0].Weight {
				weighted = true
			}
		}
		if svc.Balancer == "" {
			svc.Balancer = "round_robin"
			if weighted {
				svc.Balancer = "weighted_round_robin"
			}
		}
		defDur(&svc.Timeouts.Connect, 5*time.Second)
		defDur(&svc.Timeouts.ResponseHeader, 30*time.Second)
		defDur(&svc.Timeouts.Request, 60*time.Second)
		if svc.Pool.MaxIdlePerTarget == 0 {
			svc.Pool.MaxIdlePerTarget = 256
		}
		defDur(&svc.Pool.IdleTimeout, 90*time.Second)
	}
	c.defaultAuth()
	c.defaultRateLimits()
	c.defaultResilience()
	c.defaultObservability()
	c.defaultEdge()
	c.defaultCache()
	c.defaultAggregate()
	c.defaultTranslate()
}

func defDur(d *Duration, v time.Duration) {
	if !d.Set() {
		*d = Dur(v)
	}
}

func defSize(b *ByteSize, v int64) {
	if !b.Set() {
		*b = Size(v)
	}
}

// EffectiveTimeouts merges a route's timeout overrides over its service's.
func EffectiveTimeouts(svc Timeouts, route Timeouts) Timeouts {
	if route.Connect.Set() {
		svc.Connect = route.Connect
	}
	if route.ResponseHeader.Set() {
		svc.ResponseHeader = route.ResponseHeader
	}
	if route.Request.Set() {
		svc.Request = route.Request
	}
	return svc
}

// Validate reports every problem in a defaulted config, each located at its field.
func (s *Source) Validate() Errors {
	c := s.Config
	var errs Errors
	add := func(path, format string, args ...any) { errs = append(errs, s.errorf(path, format, args...)) }

	if c.Version != 1 {
		add("version", "must be 1 (got %d)", c.Version)
	}
	if len(c.Listeners) == 0 {
		add("listeners", "at least one listener is required")
	}
	names, addrs := map[string]int{}, map[string]int{}
	for i, l := range c.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		checkName(add, p+".name", l.Name, "listener", names, i)
		if l.Address == "" {
			add(p+".address", "is required (host:port, e.g. \":8080\")")
		} else if _, port, err := net.SplitHostPort(l.Address); err != nil || port == "" {
			add(p+".address", "%q is not host:port", redactURL(l.Address))
		} else if j, dup := addrs[l.Address]; dup && port != "0" {
			add(p+".address", "%q is already used by listeners[%d]", l.Address, j)
		} else {
			addrs[l.Address] = i
		}
	}

	for i, cidr := range c.Server.TrustedProxies {
		if _, err := ParsePrefix(cidr); err != nil {
			add(fmt.Sprintf("server.trusted_proxies[%d]", i), "%q is not an IP address or CIDR", cidr)
		}
	}
	if c.Server.MaxHeaderBytes.Bytes < 1024 {
		add("server.max_header_bytes", "must be at least 1KiB")
	}
	switch o := c.Server.AccessLog.Output; {
	case o == "stdout" || o == "stderr" || strings.HasPrefix(o, "/") || strings.HasPrefix(o, "."):
	default:
		add("server.access_log.output", "%q must be stdout, stderr or a file path starting with / or .", o)
	}
	if f := c.Server.AccessLog.Format; f != "json" && f != "common" {
		add("server.access_log.format", "unknown format %q (want json or common)", f)
	}

	svcNames := map[string]int{}
	for i, svc := range c.Services {
		p := fmt.Sprintf("services[%d]", i)
		checkName(add, p+".name", svc.Name, "service", svcNames, i)
		if len(svc.Targets) == 0 {
			add(p+".targets", "at least one target is required")
		}
		for j, t := range svc.Targets {
			tp := fmt.Sprintf("%s.targets[%d]", p, j)
			if msg := checkTargetURL(t.URL); msg != "" {
				add(tp+".url", "%s", msg)
			}
			if t.Weight < 1 || t.weightDefaulted && s.written(tp+".weight") {
				// Kong drains a target with weight 0; here a target with a weight gets traffic,
				// so an explicit 0 is refused rather than read as the default 1.
				add(tp+".weight", "must be at least 1 (to drain a target, remove it: a reload keeps the other targets' state)")
			}
		}
		if !contains(balancerKinds, svc.Balancer) {
			add(p+".balancer", "unknown balancer %q (want one of %s)", svc.Balancer, strings.Join(balancerKinds, ", "))
		}
		if svc.Balancer == "consistent_hash" {
			if svc.HashOn == "" {
				add(p+".hash_on", "is required with consistent_hash (header:<Name>, cookie:<name> or client_ip)")
			}
		}
		if svc.HashOn != "" {
			if _, _, err := ParseHashOn(svc.HashOn); err != nil {
				add(p+".hash_on", "%v", err)
			} else if svc.Balancer != "consistent_hash" {
				add(p+".hash_on", "is only used with balancer: consistent_hash")
			}
		}
		if svc.Pool.MaxIdlePerTarget < 0 {
			add(p+".pool.max_idle_per_target", "must not be negative")
		}
		if svc.Pool.MaxPerTarget < 0 {
			add(p+".pool.max_per_target", "must not be negative")
		}
		if svc.Timeouts.Connect.Duration == 0 {
			add(p+".timeouts.connect", "must be greater than 0 (every backend call has a timeout)")
		}
		if svc.Timeouts.ResponseHeader.Duration == 0 {
			add(p+".timeouts.response_header", "must be greater than 0 (every backend call has a timeout)")
		}
	}

	routeNames := map[string]int{}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		checkName(add, p+".name", r.Name, "route", routeNames, i)
		composite := r.Aggregate != nil || r.GraphQL != nil
		switch {
		case r.Aggregate != nil && r.GraphQL != nil:
			add(p+".graphql", "cannot be combined with aggregate")
		case r.Service == "" && !composite:
			add(p+".service", "is required (or aggregate / graphql)")
		case r.Service != "" && composite:
			add(p+".service", "cannot be combined with aggregate or graphql (they name their services per call)")
		case r.Service != "":
			if _, ok := svcNames[r.Service]; !ok {
				add(p+".service", "unknown service %q", r.Service)
			}
		}
		if r.StripPrefix != "" && r.Rewrite != "" {
			add(p+".rewrite", "cannot be combined with strip_prefix (rewrite replaces the whole path)")
		}
		if r.StripPrefix != "" && (!strings.HasPrefix(r.StripPrefix, "/") || strings.ContainsAny(r.StripPrefix, "{}*")) {
			add(p+".strip_prefix", "%q must be a literal path starting with /", r.StripPrefix)
		} else if _, err := router.NormalizePath(r.StripPrefix); r.StripPrefix != "" && err != nil {
			add(p+".strip_prefix", "%q is not a valid path: %v", r.StripPrefix, err)
		}
		if r.Rewrite != "" {
			if err := checkRewrite(r.Rewrite, r.Match.Path); err != "" {
				add(p+".rewrite", "%s", err)
			}
		}
		for _, ops := range []struct {
			name string
			h    HeaderOps
		}{{"request_headers", r.RequestHeaders}, {"response_headers", r.ResponseHeaders}} {
			for k := range ops.h.Add {
				checkHeaderName(add, p+"."+ops.name+".add."+k, k)
			}
			for k := range ops.h.Set {
				checkHeaderName(add, p+"."+ops.name+".set."+k, k)
			}
			for j, k := range ops.h.Remove {
				checkHeaderName(add, fmt.Sprintf("%s.%s.remove[%d]", p, ops.name, j), k)
			}
		}
	}
	_, rerrs := s.RouterSpecs()
	errs = append(errs, rerrs...)
	for _, v := range []func(add func(path, format string, args ...any)){s.validateAuth, s.validateRateLimits, s.validateResilience, s.validateEdge, s.validateCache, s.validateAggregate, s.validateTranslate, s.validateObservability, s.validateFiles} {
		v(add)
	}
	sortErrors(errs)
	return errs
}

// RouterSpecs converts the routes' match blocks into router specs and reports invalid patterns
// and conflicting routes at their fields.
func (s *Source) RouterSpecs() ([]router.Spec, Errors) {
	specs, errs := BuildSpecs(s.Config)
	var out Errors
	bad := map[int]bool{}
	for _, e := range errs {
		out = append(out, s.errorf(e.path, "%s", e.msg))
		bad[e.index] = true
	}
	// Routes whose match already failed are left out of the router check, so that the patterns
	// and conflicts of all the others are still reported (validation reports every problem).
	var clean []router.Spec
	var index []int // clean[k] is routes[index[k]]
	for i := range specs {
		if !bad[i] {
			clean = append(clean, specs[i])
			index = append(index, i)
		}
	}
	if _, err := router.Compile(clean); err != nil {
		for _, e := range unwrapAll(err) {
			var se *router.SpecError
			var ce *router.ConflictError
			switch {
			case errors.As(e, &se):
				out = append(out, s.errorf(fmt.Sprintf("routes[%d].match.%s", index[se.Index], se.Field), "%s", se.Msg))
			case errors.As(e, &ce):
				i, other := index[ce.Index], index[ce.Other]
				out = append(out, s.errorf(fmt.Sprintf("routes[%d].match", i),
					"matches exactly the same requests as routes[%d] (%q); make one more specific", other, s.Config.Routes[other].Name))
			default:
				out = append(out, s.errorf("routes", "%v", e))
			}
		}
	}
	if len(out) > 0 {
		return nil, out
	}
	return specs, nil
}

type specErr struct {
	index     int // of the route
	path, msg string
}

// BuildSpecs converts routes into router specs; regexes are compiled here.
func BuildSpecs(c *Config) ([]router.Spec, []specErr) {
	var errs []specErr
	specs := make([]router.Spec, len(c.Routes))
	identity := map[string]bool{}
	for _, name := range c.AuthStripHeaders() {
		identity[name] = true
	}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d].match", i)
		if r.Match.Path == "" {
			errs = append(errs, specErr{i, p + ".path", "is required (e.g. /users/{id} or /api/**)"})
		}
		methods := make([]string, len(r.Match.Methods))
		for j, m := range r.Match.Methods {
			methods[j] = strings.ToUpper(m)
			if !validToken(m) {
				errs = append(errs, specErr{i, fmt.Sprintf("%s.methods[%d]", p, j), fmt.Sprintf("%q is not a valid HTTP method", m)})
			}
		}
		spec := router.Spec{Name: r.Name, Hosts: r.Match.Hosts, Path: r.Match.Path, Methods: methods}
		for _, kind := range []struct {
			name string
			m    map[string]ValueMatch
			out  *[]router.Condition
			hdr  bool
		}{{"headers", r.Match.Headers, &spec.Headers, true}, {"query", r.Match.Query, &spec.Query, false}} {
			keys := make([]string, 0, len(kind.m))
			for k := range kind.m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v := kind.m[k]
				fp := p + "." + kind.name + "." + k
				name := k
				if kind.hdr {
					if !validToken(k) {
						errs = append(errs, specErr{i, fp, fmt.Sprintf("%q is not a valid header name", k)})
						continue
					}
					name = textproto.CanonicalMIMEHeaderKey(k)
					if identity[name] {
						// Dropped from every request before routing: a client's copy would be a
						// spoofed identity, and the gateway's own is set after the route is chosen.
						errs = append(errs, specErr{i, fp, fmt.Sprintf("%s is an identity header the gateway removes from every request before routing (auth.identity_headers, auth.strip_headers, forward_auth response_headers): no request can match it", name)})
						continue
					}
				}
				cond := router.Condition{Name: name}
				switch {
				case v.Present:
					cond.Kind = router.MatchPresent
				case v.Regex != "":
					re, err := regexp.Compile(v.Regex)
					if err != nil {
						errs = append(errs, specErr{i, fp + ".regex", fmt.Sprintf("invalid regular expression: %v", err)})
						continue
					}
					cond.Kind, cond.Value, cond.Regex = router.MatchRegex, v.Regex, re
				default:
					cond.Kind, cond.Value = router.MatchExact, v.Exact
				}
				*kind.out = append(*kind.out, cond)
			}
		}
		if len(r.Match.Countries) > 0 && c.Server.Geo != nil {
			// The edge sets the geo header from its own lookup (never from the client) before
			// routing, so a country match is a header condition on it.
			alt := make([]string, len(r.Match.Countries))
			for j, cc := range r.Match.Countries {
				alt[j] = regexp.QuoteMeta(cc)
			}
			expr := "^(" + strings.Join(alt, "|") + ")$"
			spec.Headers = append(spec.Headers, router.Condition{Name: textproto.CanonicalMIMEHeaderKey(c.Server.Geo.UpstreamHeader),
				Kind: router.MatchRegex, Value: expr, Regex: regexp.MustCompile(expr)})
		}
		specs[i] = spec
	}
	return specs, errs
}

func unwrapAll(err error) []error {
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range u.Unwrap() {
			out = append(out, unwrapAll(e)...)
		}
		return out
	}
	return []error{err}
}

func checkName(add func(string, string, ...any), path, name, what string, seen map[string]int, i int) {
	if name == "" {
		add(path, "is required")
		return
	}
	if j, dup := seen[name]; dup {
		add(path, "duplicate %s name %q (also at index %d)", what, name, j)
		return
	}
	seen[name] = i
}

func checkHeaderName(add func(string, string, ...any), path, name string) {
	if !validToken(name) {
		add(path, "%q is not a valid header name", name)
	}
}

// checkTargetURL returns what is wrong with a target URL ("" if nothing). The URL is quoted
// with its credentials redacted: rejected configs are logged and shown by the admin API.
func checkTargetURL(raw string) string {
	if raw == "" {
		return "is required (e.g. http://127.0.0.1:8081)"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("%q is not a valid URL", redactURL(raw))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Sprintf("%q must use http or https", redactURL(raw))
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Sprintf("%q has no host", redactURL(raw))
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Sprintf("%q must not carry a query, fragment or credentials", redactURL(raw))
	}
	return ""
}

// checkRewrite verifies that every {name} in the template is captured by the path pattern.
func checkRewrite(tmpl, pattern string) string {
	if !strings.HasPrefix(tmpl, "/") {
		return fmt.Sprintf("%q must start with /", tmpl)
	}
	params := map[string]bool{}
	for _, seg := range strings.Split(pattern, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			params[seg[1:len(seg)-1]] = true
		}
		if seg == "**" {
			params["**"] = true
		}
	}
	rest := tmpl
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			if strings.ContainsRune(rest, '}') {
				return "unbalanced }"
			}
			return ""
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "unbalanced {"
		}
		name := rest[i+1 : i+j]
		if !params[name] {
			if name == "**" {
				return "{**} needs a path pattern ending in /**"
			}
			return fmt.Sprintf("{%s} is not a parameter of the path pattern %q", name, pattern)
		}
		rest = rest[i+j+1:]
	}
}

// ParseHashOn splits a hash_on value into its kind ("header", "cookie", "client_ip") and name.
func ParseHashOn(v string) (kind, name string, err error) {
	if v == "client_ip" {
		return "client_ip", "", nil
	}
	kind, name, ok := strings.Cut(v, ":")
	if !ok || (kind != "header" && kind != "cookie") || name == "" || !validToken(name) {
		return "", "", fmt.Errorf("%q must be header:<Name>, cookie:<name> or client_ip", v)
	}
	if kind == "header" {
		name = textproto.CanonicalMIMEHeaderKey(name)
	}
	return kind, name, nil
}

// ParsePrefix parses a CIDR or a single IP (as a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err == nil && p.Addr().Is4In6() && p.Bits() >= 96 {
			// Client addresses are unmapped before they are matched: "::ffff:192.0.2.0/120"
			// must be 192.0.2.0/24 to match anyone.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// validToken reports whether s is an RFC 9110 token (header names, methods).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// written reports whether path is a key written in the config file (false without positions).
func (s *Source) written(path string) bool {
	if s.pos == nil {
		return false
	}
	_, ok := s.pos.byPath[path]
	return ok
}
