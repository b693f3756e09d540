package config

import (
	"fmt"
	"github.com/gatehouse/gatehouse/internal/router"
	"regexp"
	"strings"
	"time"
)

// ListenerTLS terminates TLS on a listener.
type ListenerTLS struct {
	// Certificates are PEM certificate chains with their keys. The one whose names match the
	// client's SNI is served; the first is the default. Files are re-read when they change on
	// disk (checked every reload_interval), without a restart. At least one is required.
	Certificates []Certificate `yaml:"certificates"`
	// MinVersion is the lowest TLS version accepted: "1.2" or "1.3". Default: "1.2" (with only
	// AEAD, forward-secret cipher suites).
	MinVersion string `yaml:"min_version"`
	// ClientAuth verifies client certificates (mutual TLS).
	ClientAuth *ClientAuth `yaml:"client_auth"`
	// ReloadInterval is how often certificate files are checked for changes. Default: 2s.
	ReloadInterval Duration `yaml:"reload_interval"`
}

// Certificate is one certificate chain and its private key.
type Certificate struct {
	// Cert is the path of the PEM certificate chain (leaf first). Required.
	Cert string `yaml:"cert"`
	// Key is the path of the PEM private key. Required.
	Key string `yaml:"key"`
}

// ClientAuth configures mutual TLS on a listener.
type ClientAuth struct {
	// CA lists PEM files of the CAs client certificates must chain to. Required.
	CA []string `yaml:"ca"`
	// Mode is "require" (handshake fails without a valid certificate) or "optional" (a
	// certificate, if sent, must be valid). Default: require.
	Mode string `yaml:"mode"`
	// SubjectHeader carries the verified client certificate's subject (RFC 2253 form) to the
	// upstream; a client-sent header of that name is always removed. "" disables it.
	// Default: X-Client-Cert-Subject.
	SubjectHeader *string `yaml:"subject_header"`
}

// UpstreamTLS configures TLS to a service's https targets.
type UpstreamTLS struct {
	// CA lists PEM files of CAs to trust instead of the system roots.
	CA []string `yaml:"ca"`
	// ServerName is the SNI name sent and verified. Default: the target URL's host.
	ServerName string `yaml:"server_name"`
	// Cert and Key are a client certificate presented to the upstream (mutual TLS).
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// InsecureSkipVerify disables certificate verification. Only for tests. Default: false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SecurityHeaders are response headers that harden browsers' handling of responses. Each is
// added only when the upstream did not set it; "off" disables one.
type SecurityHeaders struct {
	// HSTS is Strict-Transport-Security, sent on TLS connections only.
	// Default: "max-age=31536000; includeSubDomains".
	HSTS string `yaml:"hsts"`
	// ContentSecurityPolicy is Content-Security-Policy. Default: off (APIs usually serve JSON; set
	// e.g. "default-src 'none'; frame-ancestors 'none'").
	ContentSecurityPolicy string `yaml:"content_security_policy"`
	// ContentTypeOptions is X-Content-Type-Options. Default: "nosniff".
	ContentTypeOptions string `yaml:"content_type_options"`
	// FrameOptions is X-Frame-Options. Default: "DENY".
	FrameOptions string `yaml:"frame_options"`
	// ReferrerPolicy is Referrer-Policy. Default: "no-referrer".
	ReferrerPolicy string `yaml:"referrer_policy"`
	// RemoveUpstreamHeaders lists upstream response headers that reveal internals and are
	// dropped. Default: [Server, X-Powered-By, X-AspNet-Version]. [] keeps them all.
	RemoveUpstreamHeaders []string `yaml:"remove_upstream_headers"`
}

// IPRules allow or deny client IPs. Deny wins; when Allow is not empty, only listed clients pass.
type IPRules struct {
	// Allow lists CIDRs or IPs that may call. Empty: everyone not denied.
	Allow []string `yaml:"allow"`
	// Deny lists CIDRs or IPs that are refused with 403.
	Deny []string `yaml:"deny"`
}

// Geo resolves the client's country.
type Geo struct {
	// Database is a MaxMind-format .mmdb file (GeoLite2/GeoIP2 Country or City, or any database
	// with country.iso_code). One of database or header is required.
	Database string `yaml:"database"`
	// Header is a country header set by a CDN in front of the gateway (e.g. CF-IPCountry). It is
	// believed only from server.trusted_proxies; it wins over the database when present.
	Header string `yaml:"header"`
	// UpstreamHeader carries the resolved country (or "XX" if unknown) to the upstream; a
	// client-sent header of that name is always removed. Default: X-Client-Country.
	UpstreamHeader string `yaml:"upstream_header"`
	// Allow lists the only countries (ISO 3166-1 alpha-2) that may call any route. Empty: all
	// not denied. With Allow set, clients of unknown country are refused too.
	Allow []string `yaml:"allow"`
	// Deny lists countries refused with 403 on every route.
	Deny []string `yaml:"deny"`
}

// Rules returns the gateway-wide country rules.
func (g *Geo) Rules() GeoRules { return GeoRules{Allow: g.Allow, Deny: g.Deny} }

// GeoRules allow or deny countries. Deny wins; with Allow set, clients of unknown country are
// refused too.
type GeoRules struct {
	// Allow lists the only countries that may call. Empty: all not denied.
	Allow []string `yaml:"allow"`
	// Deny lists countries refused with 403.
	Deny []string `yaml:"deny"`
}

// Bots classifies clients as bots and acts on them.
type Bots struct {
	// KnownBad is the action for the list of known bad bots and attack tools shipped with the
	// binary (sqlmap, nikto, masscan, ...): block, tag, rate_limit or off. Default: block.
	KnownBad string `yaml:"known_bad"`
	// Rules are your own rules, checked in order after the known-bad list; the first match acts.
	Rules []BotRule `yaml:"rules"`
	// TagHeader carries the matched rule's name upstream for the tag action; a client-sent
	// header of that name is always removed. Default: X-Bot.
	TagHeader string `yaml:"tag_header"`
	// RateLimit is the per-client-IP limit for the rate_limit action. Default: 10 per 1m, burst 5
	// (the default applies only when rate_limit is left out: a rate_limit block sets all three).
	RateLimit *BotRateLimit `yaml:"rate_limit"`
}

// BotRule matches a client by its User-Agent or by headers real browsers always send.
type BotRule struct {
	// Name identifies the rule in logs and in the tag header. Required.
	Name string `yaml:"name"`
	// UserAgent is an RE2 expression matched against User-Agent (case-insensitive).
	UserAgent string `yaml:"user_agent"`
	// MissingHeaders match when any of these request headers is absent (e.g. [Accept-Language]).
	MissingHeaders []string `yaml:"missing_headers"`
	// Action is block (403), tag (upstream header) or rate_limit. Required.
	Action string `yaml:"action"`
}

// BotRateLimit is the stricter limit applied to clients flagged with the rate_limit action.
type BotRateLimit struct {
	// Limit requests per Per, at least 1. Required in a rate_limit block (without one: 10).
	Limit int `yaml:"limit"`
	// Per is the period. Required in a rate_limit block (without one: 1m).
	Per Duration `yaml:"per"`
	// Burst is how many requests may arrive at once beyond the steady rate. Default: 0 in a
	// rate_limit block (without one: 5).
	Burst int `yaml:"burst"`
}

// CORS configures cross-origin resource sharing for a route.
type CORS struct {
	// AllowedOrigins may use "*" (any) or one wildcard ("https://*.example.com"). Required.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowedMethods for cross-origin requests. Default: [GET, POST, HEAD].
	AllowedMethods []string `yaml:"allowed_methods"`
	// AllowedHeaders the browser may send. Default: [Accept, Content-Type, X-Requested-With].
	// "*" allows any.
	AllowedHeaders []string `yaml:"allowed_headers"`
	// ExposedHeaders the browser may read from responses. Default: none.
	ExposedHeaders []string `yaml:"exposed_headers"`
	// AllowCredentials lets cookies and Authorization cross origins (not with origin "*", nor a
	// wildcard that stands for any host such as "https://*": name the domain, "https://*.example.com").
	// Default: false.
	AllowCredentials bool `yaml:"allow_credentials"`
	// MaxAge lets browsers cache a preflight result. Default: 0 (browser default).
	MaxAge Duration `yaml:"max_age"`
}

var countryCode = regexp.MustCompile(`^[A-Z]{2}$`)

func (c *Config) defaultEdge() {
	s := &c.Server
	defSize(&s.MaxURIBytes, 8<<10)
	defSecurityHeaders(&s.SecurityHeaders)
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.HTTPSPort == 0 {
			l.HTTPSPort = 443
		}
		if l.TLS != nil {
			if l.TLS.MinVersion == "" {
				l.TLS.MinVersion = "1.2"
			}
			defDur(&l.TLS.ReloadInterval, 2*time.Second)
			if ca := l.TLS.ClientAuth; ca != nil {
				if ca.Mode == "" {
					ca.Mode = "require"
				}
				if ca.SubjectHeader == nil {
					h := "X-Client-Cert-Subject"
					ca.SubjectHeader = &h
				}
			}
		}
	}
	if g := s.Geo; g != nil && g.UpstreamHeader == "" {
		g.UpstreamHeader = "X-Client-Country"
	}
	if b := s.Bots; b != nil {
		if b.KnownBad == "" {
			b.KnownBad = "block"
		}
		if b.TagHeader == "" {
			b.TagHeader = "X-Bot"
		}
		if b.RateLimit == nil {
			b.RateLimit = &BotRateLimit{Limit: 10, Per: Dur(time.Minute), Burst: 5}
		}
	}
	for i := range c.Routes {
		// strip_prefix is compared with the normalized request path, so it is normalized too:
		// "/%7ebob" strips "/~bob". One that does not normalize is left for Validate to report.
		if sp := c.Routes[i].StripPrefix; sp != "" && !strings.ContainsAny(sp, "{}*") {
			if n, err := router.NormalizePath(sp); err == nil {
				c.Routes[i].StripPrefix = n
			}
		}
		if cors := c.Routes[i].Plugins.CORS; cors != nil {
			if cors.AllowedMethods == nil {
				cors.AllowedMethods = []string{"GET", "POST", "HEAD"}
			}
			if cors.AllowedHeaders == nil {
				cors.AllowedHeaders = []string{"Accept", "Content-Type", "X-Requested-With"}
			}
		}
	}
}

func defSecurityHeaders(h *SecurityHeaders) {
	if h.HSTS == "" {
		h.HSTS = "max-age=31536000; includeSubDomains"
	}
	if h.ContentSecurityPolicy == "" {
		h.ContentSecurityPolicy = "off"
	}
	if h.ContentTypeOptions == "" {
		h.ContentTypeOptions = "nosniff"
	}
	if h.FrameOptions == "" {
		h.FrameOptions = "DENY"
	}
	if h.ReferrerPolicy == "" {
		h.ReferrerPolicy = "no-referrer"
	}
	if h.RemoveUpstreamHeaders == nil {
		h.RemoveUpstreamHeaders = []string{"Server", "X-Powered-By", "X-AspNet-Version"}
	}
}

// EffectiveSecurityHeaders merges a route's overrides over the server's headers.
func EffectiveSecurityHeaders(server SecurityHeaders, route *SecurityHeaders) SecurityHeaders {
	if route == nil {
		return server
	}
	out := server
	for _, f := range []struct{ dst, src *string }{
		{&out.HSTS, &route.HSTS}, {&out.ContentSecurityPolicy, &route.ContentSecurityPolicy},
		{&out.ContentTypeOptions, &route.ContentTypeOptions}, {&out.FrameOptions, &route.FrameOptions},
		{&out.ReferrerPolicy, &route.ReferrerPolicy},
	} {
		if *f.src != "" {
			*f.dst = *f.src
		}
	}
	if route.RemoveUpstreamHeaders != nil {
		out.RemoveUpstreamHeaders = route.RemoveUpstreamHeaders
	}
	return out
}

func (s *Source) validateEdge(add func(path, format string, args ...any)) {
	c := s.Config
	for i, l := range c.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		if l.MaxConns < 0 {
			add(p+".max_conns", "must not be negative")
		}
		if l.MaxConnsPerIP < 0 {
			add(p+".max_conns_per_ip", "must not be negative")
		}
		if l.HTTPSPort < 1 || l.HTTPSPort > 65535 {
			add(p+".https_port", "must be a port number")
		}
		if l.TLS != nil {
			if l.RedirectHTTPS {
				add(p+".redirect_https", "is for plain listeners (this one has tls)")
			}
			if l.H2C {
				add(p+".h2c", "is for plain listeners; TLS listeners offer HTTP/2 through ALPN")
			}
			if len(l.TLS.Certificates) == 0 {
				add(p+".tls.certificates", "at least one certificate is required")
			}
			for j, cert := range l.TLS.Certificates {
				cp := fmt.Sprintf("%s.tls.certificates[%d]", p, j)
				if cert.Cert == "" {
					add(cp+".cert", "is required (path of a PEM certificate chain)")
				}
				if cert.Key == "" {
					add(cp+".key", "is required (path of a PEM private key)")
				}
			}
			if v := l.TLS.MinVersion; v != "1.2" && v != "1.3" {
				add(p+".tls.min_version", "%q must be \"1.2\" or \"1.3\"", v)
			}
			if ca := l.TLS.ClientAuth; ca != nil {
				if len(ca.CA) == 0 {
					add(p+".tls.client_auth.ca", "at least one CA file is required")
				}
				if ca.Mode != "require" && ca.Mode != "optional" {
					add(p+".tls.client_auth.mode", "%q must be require or optional", ca.Mode)
				}
				if h := *ca.SubjectHeader; h != "" && !validToken(h) {
					add(p+".tls.client_auth.subject_header", "%q is not a valid header name", h)
				}
			}
		}
	}
	for i, svc := range c.Services {
		if t := svc.TLS; t != nil {
			p := fmt.Sprintf("services[%d].tls", i)
			if (t.Cert == "") != (t.Key == "") {
				add(p, "cert and key must be given together")
			}
			https := false
			for _, tg := range svc.Targets {
				https = https || strings.HasPrefix(tg.URL, "https://")
			}
			if !https {
				add(p, "is set but no target uses https://")
			}
		}
	}
	sv := c.Server
	if sv.MaxInFlight < 0 {
		add("server.max_in_flight", "must not be negative")
	}
	switch sv.UnderscoreHeaders {
	case "", "drop", "reject", "allow":
	default:
		add("server.underscore_headers", "must be drop, reject or allow, got %q", sv.UnderscoreHeaders)
	}
	switch sv.PathParameters {
	case "", "reject", "allow":
	default:
		add("server.path_parameters", "must be reject or allow, got %q", sv.PathParameters)
	}
	if sv.MaxURIBytes.Bytes < 256 {
		add("server.max_uri_bytes", "must be at least 256 bytes")
	}
	if sv.ReadHeaderTimeout.Duration <= 0 {
		add("server.read_header_timeout", "must be greater than 0s: it is the slowloris guard")
	}
	if sv.ShutdownTimeout.Duration <= 0 {
		add("server.shutdown_timeout", "must be greater than 0s: a shutdown or a reload's listener drain would cut every in-flight request")
	}
	validateIPRules(add, "server.ip_rules", sv.IPRules)
	validateSecurityHeaders(add, "server.security_headers", sv.SecurityHeaders)
	if g := sv.Geo; g != nil {
		if g.Database == "" && g.Header == "" {
			add("server.geo", "needs a database (.mmdb) or a header set by a trusted CDN")
		}
		if g.Header != "" && !validToken(g.Header) {
			add("server.geo.header", "%q is not a valid header name", g.Header)
		}
		if !validToken(g.UpstreamHeader) {
			add("server.geo.upstream_header", "%q is not a valid header name", g.UpstreamHeader)
		}
		validateCountries(add, "server.geo", g.Rules())
	}
	if b := sv.Bots; b != nil {
		if !contains([]string{"block", "tag", "rate_limit", "off"}, b.KnownBad) {
			add("server.bots.known_bad", "%q must be block, tag, rate_limit or off", b.KnownBad)
		}
		if !validToken(b.TagHeader) {
			add("server.bots.tag_header", "%q is not a valid header name", b.TagHeader)
		}
		if b.RateLimit.Limit < 1 || b.RateLimit.Per.Duration <= 0 || b.RateLimit.Burst < 0 {
			add("server.bots.rate_limit", "needs limit >= 1, per > 0 and burst >= 0")
		}
		for i, r := range b.Rules {
			p := fmt.Sprintf("server.bots.rules[%d]", i)
			if r.Name == "" {
				add(p+".name", "is required")
			}
			if r.UserAgent == "" && len(r.MissingHeaders) == 0 {
				add(p, "needs user_agent or missing_headers")
			}
			if r.UserAgent != "" {
				if _, err := regexp.Compile("(?i)" + r.UserAgent); err != nil {
					add(p+".user_agent", "invalid regular expression: %v", err)
				}
			}
			for j, h := range r.MissingHeaders {
				if !validToken(h) {
					add(fmt.Sprintf("%s.missing_headers[%d]", p, j), "%q is not a valid header name", h)
				}
			}
			if !contains([]string{"block", "tag", "rate_limit"}, r.Action) {
				add(p+".action", "%q must be block, tag or rate_limit", r.Action)
			}
		}
	}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		for j, cc := range r.Match.Countries {
			if !countryCode.MatchString(cc) {
				add(fmt.Sprintf("%s.match.countries[%d]", p, j), "%q is not an upper-case ISO 3166-1 alpha-2 code", cc)
			}
		}
		if len(r.Match.Countries) > 0 && sv.Geo == nil {
			add(p+".match.countries", "needs server.geo to resolve countries")
		}
		pl := r.Plugins
		if pl.IPRules != nil {
			validateIPRules(add, p+".plugins.ip_rules", *pl.IPRules)
		}
		if pl.Geo != nil {
			if sv.Geo == nil {
				add(p+".plugins.geo", "needs server.geo to resolve countries")
			}
			validateCountries(add, p+".plugins.geo", *pl.Geo)
		}
		if pl.SecurityHeaders != nil {
			validateSecurityHeaders(add, p+".plugins.security_headers", *pl.SecurityHeaders)
		}
		if cors := pl.CORS; cors != nil {
			cp := p + ".plugins.cors"
			if len(cors.AllowedOrigins) == 0 {
				add(cp+".allowed_origins", "at least one origin is required (\"*\" for any)")
			}
			for j, o := range cors.AllowedOrigins {
				if o != "*" && (strings.Count(o, "*") > 1 || !(strings.HasPrefix(o, "http://") || strings.HasPrefix(o, "https://"))) {
					add(fmt.Sprintf("%s.allowed_origins[%d]", cp, j), "%q must be \"*\" or an http(s) origin with at most one *", o)
				}
				if o == "*" && cors.AllowCredentials {
					add(cp+".allow_credentials", "cannot be combined with origin \"*\" (browsers refuse it); list the origins")
				} else if cors.AllowCredentials && strings.Contains(o, "*") && !domainWildcard(o) {
					// "https://*" would reflect every https origin with credentials: "*" by
					// another name.
					add(fmt.Sprintf("%s.allowed_origins[%d]", cp, j), "%q: with allow_credentials a wildcard must stand for subdomains of a named domain, like \"https://*.example.com\"", o)
				}
			}
			for j, m := range cors.AllowedMethods {
				if !validToken(m) {
					add(fmt.Sprintf("%s.allowed_methods[%d]", cp, j), "%q is not a valid HTTP method", m)
				}
			}
			for j, h := range append(append([]string{}, cors.AllowedHeaders...), cors.ExposedHeaders...) {
				if h != "*" && !validToken(h) {
					add(fmt.Sprintf("%s.headers[%d]", cp, j), "%q is not a valid header name", h)
				}
			}
		}
	}
}

func validateIPRules(add func(path, format string, args ...any), p string, r IPRules) {
	for j, v := range r.Allow {
		if _, err := ParsePrefix(v); err != nil {
			add(fmt.Sprintf("%s.allow[%d]", p, j), "%q is not an IP address or CIDR", v)
		}
	}
	for j, v := range r.Deny {
		if _, err := ParsePrefix(v); err != nil {
			add(fmt.Sprintf("%s.deny[%d]", p, j), "%q is not an IP address or CIDR", v)
		}
	}
}

func validateCountries(add func(path, format string, args ...any), p string, r GeoRules) {
	for j, v := range r.Allow {
		if !countryCode.MatchString(v) {
			add(fmt.Sprintf("%s.allow[%d]", p, j), "%q is not an upper-case ISO 3166-1 alpha-2 code", v)
		}
	}
	for j, v := range r.Deny {
		if !countryCode.MatchString(v) {
			add(fmt.Sprintf("%s.deny[%d]", p, j), "%q is not an upper-case ISO 3166-1 alpha-2 code", v)
		}
	}
}

func validateSecurityHeaders(add func(path, format string, args ...any), p string, h SecurityHeaders) {
	for _, f := range []struct{ name, v string }{
		{"hsts", h.HSTS}, {"content_security_policy", h.ContentSecurityPolicy},
		{"content_type_options", h.ContentTypeOptions}, {"frame_options", h.FrameOptions},
		{"referrer_policy", h.ReferrerPolicy},
	} {
		if strings.ContainsAny(f.v, "\r\n\x00") {
			add(p+"."+f.name, "must not contain line breaks or NUL")
		}
	}
	for j, k := range h.RemoveUpstreamHeaders {
		if !validToken(k) {
			add(fmt.Sprintf("%s.remove_upstream_headers[%d]", p, j), "%q is not a valid header name", k)
		}
	}
}

// domainWildcard reports whether origin's wildcard stands for the subdomains of a named domain
// ("https://*.example.com"), not for any host ("https://*", "https://*.com").
func domainWildcard(origin string) bool {
	_, rest, ok := strings.Cut(origin, "://*.")
	return ok && strings.Contains(rest, ".") && !strings.ContainsAny(rest, "*/")
}
