// Package edge holds the gateway's edge protections: client IP and country rules, bot rules,
// security response headers (route middleware, built by New), the country resolver that runs
// before routing (Geo), the gateway-wide in-flight cap and URI limit (Guard), and per-listener
// connection caps (LimitListener).
package edge

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/middleware"
)

//go:embed knownbots.txt
var knownBotsText string

// knownBots is the shipped list of bad-bot User-Agent substrings (lower case).
var knownBots = func() []string {
	var out []string
	for _, line := range strings.Split(knownBotsText, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	return out
}()

// ipLevel is one level of allow/deny rules (server or route).
type ipLevel struct {
	allow, deny []netip.Prefix
}

func newIPLevel(r config.IPRules) (ipLevel, error) {
	var l ipLevel
	for _, s := range r.Allow {
		p, err := config.ParsePrefix(s)
		if err != nil {
			return l, err
		}
		l.allow = append(l.allow, p)
	}
	for _, s := range r.Deny {
		p, err := config.ParsePrefix(s)
		if err != nil {
			return l, err
		}
		l.deny = append(l.deny, p)
	}
	return l, nil
}

func (l ipLevel) empty() bool { return len(l.allow) == 0 && len(l.deny) == 0 }

func (l ipLevel) permits(ip netip.Addr) bool {
	for _, p := range l.deny {
		if p.Contains(ip) {
			return false
		}
	}
	if len(l.allow) == 0 {
		return true
	}
	for _, p := range l.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

type geoLevel struct {
	allow, deny map[string]bool
}

func newGeoLevel(r config.GeoRules) geoLevel {
	l := geoLevel{}
	if len(r.Allow) > 0 {
		l.allow = map[string]bool{}
		for _, c := range r.Allow {
			l.allow[c] = true
		}
	}
	if len(r.Deny) > 0 {
		l.deny = map[string]bool{}
		for _, c := range r.Deny {
			l.deny[c] = true
		}
	}
	return l
}

func (l geoLevel) empty() bool { return l.allow == nil && l.deny == nil }

func (l geoLevel) permits(country string) bool {
	if l.deny[country] {
		return false
	}
	return l.allow == nil || l.allow[country]
}

type botRule struct {
	name    string
	ua      *regexp.Regexp
	missing []string
	action  string
}

type policy struct {
	logger    *slog.Logger
	route     string
	ips       []ipLevel
	geos      []geoLevel
	knownBad  string
	rules     []botRule
	tagHeader string
	limiter   *ipLimiter
	headers   config.SecurityHeaders
	remove    []string
	set       [][2]string
	hsts      string
}

// New builds the route's edge middleware: IP rules, country rules, bot rules and security
// headers (server-wide settings merged with the route's). It is nil only when nothing applies.
func New(cfg *config.Config, route *config.Route, deps middleware.Deps) (middleware.Middleware, error) {
	p := &policy{logger: deps.Logger, route: route.Name}
	if p.logger == nil {
		p.logger = slog.Default()
	}
	for _, r := range []*config.IPRules{&cfg.Server.IPRules, route.Plugins.IPRules} {
		if r == nil {
			continue
		}
		l, err := newIPLevel(*r)
		if err != nil {
			return nil, fmt.Errorf("ip_rules: %w", err)
		}
		if !l.empty() {
			p.ips = append(p.ips, l)
		}
	}
	if g := cfg.Server.Geo; g != nil {
		if l := newGeoLevel(g.Rules()); !l.empty() {
			p.geos = append(p.geos, l)
		}
	}
	if g := route.Plugins.Geo; g != nil {
		if l := newGeoLevel(*g); !l.empty() {
			p.geos = append(p.geos, l)
		}
	}
	if b := cfg.Server.Bots; b != nil {
		p.knownBad, p.tagHeader = b.KnownBad, textproto.CanonicalMIMEHeaderKey(b.TagHeader)
		for _, r := range b.Rules {
			br := botRule{name: r.Name, action: r.Action}
			if r.UserAgent != "" {
				re, err := regexp.Compile("(?i)" + r.UserAgent)
				if err != nil {
					return nil, fmt.Errorf("bots: %w", err)
				}
				br.ua = re
			}
			for _, h := range r.MissingHeaders {
				br.missing = append(br.missing, textproto.CanonicalMIMEHeaderKey(h))
			}
			p.rules = append(p.rules, br)
		}
		rl := b.RateLimit
		key := fmt.Sprintf("edge/bot-limiter|%d|%s|%d", rl.Limit, rl.Per.Duration, rl.Burst)
		v, err := deps.Acquire(key, func() (io.Closer, error) {
			return newIPLimiter(rl.Limit, rl.Per.Duration, rl.Burst, 100_000), nil
		})
		if err != nil {
			return nil, err
		}
		p.limiter = v.(*ipLimiter)
	}
	p.headers = config.EffectiveSecurityHeaders(cfg.Server.SecurityHeaders, route.Plugins.SecurityHeaders)
	for _, k := range p.headers.RemoveUpstreamHeaders {
		p.remove = append(p.remove, textproto.CanonicalMIMEHeaderKey(k))
	}
	p.set, p.hsts = securityFields(p.headers)
	return p.wrap, nil
}

// securityFields are the response fields sh adds (HSTS apart: it goes on TLS responses only).
func securityFields(sh config.SecurityHeaders) (set [][2]string, hsts string) {
	for _, kv := range [][2]string{
		{"Content-Security-Policy", sh.ContentSecurityPolicy},
		{"X-Content-Type-Options", sh.ContentTypeOptions},
		{"X-Frame-Options", sh.FrameOptions},
		{"Referrer-Policy", sh.ReferrerPolicy},
	} {
		if kv[1] != "" && kv[1] != "off" {
			set = append(set, kv)
		}
	}
	if sh.HSTS != "off" {
		hsts = sh.HSTS
	}
	return set, hsts
}

// ServerHeaders are the server's security headers for answers the gateway gives outside any
// route (404, 405, a malformed request): the fields a route without its own security_headers
// adds, so a scanner or a browser sees the same policy on every response.
type ServerHeaders struct {
	set  [][2]string
	hsts string
}

// NewServerHeaders compiles cfg's server-wide security headers.
func NewServerHeaders(cfg *config.Config) *ServerHeaders {
	h := &ServerHeaders{}
	h.set, h.hsts = securityFields(config.EffectiveSecurityHeaders(cfg.Server.SecurityHeaders, nil))
	return h
}

// Apply adds the fields hdr does not have yet (HSTS on TLS only).
func (h *ServerHeaders) Apply(hdr http.Header, tls bool) {
	for _, kv := range h.set {
		if _, ok := hdr[kv[0]]; !ok {
			hdr[kv[0]] = []string{kv[1]}
		}
	}
	if tls && h.hsts != "" {
		if _, ok := hdr["Strict-Transport-Security"]; !ok {
			hdr["Strict-Transport-Security"] = []string{h.hsts}
		}
	}
}

func (p *policy) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := httpx.InfoFrom(r.Context())
		if info == nil {
			info = &httpx.Info{}
		}
		hw := &headerWriter{ResponseWriter: w, p: p, tls: r.TLS != nil}
		if !p.admit(hw, r, info) {
			return
		}
		next.ServeHTTP(hw, r)
	})
}

// admit applies IP, country and bot rules; it writes the refusal itself.
func (p *policy) admit(w http.ResponseWriter, r *http.Request, info *httpx.Info) bool {
	for _, l := range p.ips {
		if !l.permits(info.ClientIP) {
			p.security(r, info, "ip_denied", "client IP is not allowed")
			httpx.WriteError(w, r, http.StatusForbidden, "ip_denied", "requests from your network are not allowed")
			return false
		}
	}
	for _, l := range p.geos {
		if !l.permits(info.Country) {
			p.security(r, info, "geo_denied", "country "+info.Country+" is not allowed")
			httpx.WriteError(w, r, http.StatusForbidden, "geo_denied", "requests from your country are not allowed")
			return false
		}
	}
	if p.tagHeader != "" {
		// The tag is the gateway's verdict; a client may never set it.
		delete(r.Header, p.tagHeader)
		name, action := p.classify(r)
		if name != "" {
			info.Bot = name
			switch action {
			case "block":
				p.security(r, info, "bot_blocked", "bot "+name)
				httpx.WriteError(w, r, http.StatusForbidden, "bot_denied", "automated clients are not allowed here")
				return false
			case "rate_limit":
				if ok, retry := p.limiter.allow(info.ClientIP); !ok {
					p.security(r, info, "bot_rate_limited", "bot "+name)
					w.Header().Set("Retry-After", strconv.Itoa(retry))
					httpx.WriteError(w, r, http.StatusTooManyRequests, "rate_limited", "too many requests from an automated client")
					return false
				}
				r.Header[p.tagHeader] = []string{name}
			case "tag":
				r.Header[p.tagHeader] = []string{name}
			}
		}
	}
	return true
}

// classify returns the first matching bot rule's name and action ("" if none).
func (p *policy) classify(r *http.Request) (string, string) {
	ua := r.Header.Get("User-Agent")
	if p.knownBad != "off" && ua != "" {
		lower := strings.ToLower(ua)
		for _, b := range knownBots {
			if strings.Contains(lower, b) {
				return "known-bad:" + b, p.knownBad
			}
		}
	}
	for i := range p.rules {
		br := &p.rules[i]
		if br.ua != nil && br.ua.MatchString(ua) {
			return br.name, br.action
		}
		for _, h := range br.missing {
			if len(r.Header[h]) == 0 {
				return br.name, br.action
			}
		}
	}
	return "", ""
}

func (p *policy) security(r *http.Request, info *httpx.Info, event, reason string) {
	p.logger.Warn("security event", "event", event, "reason", reason, "route", p.route,
		"request_id", info.RequestID, "client_ip", info.ClientIP.String(), "path", info.Path)
}

// headerWriter applies the security headers when the response head is written: upstream
// headers that reveal internals are dropped, and each hardening header is added unless the
// upstream set its own.
type headerWriter struct {
	http.ResponseWriter
	p    *policy
	tls  bool
	done bool
	// vals backs the values apply adds, in the writer's own allocation when they fit.
	vals [8]string
}

func (w *headerWriter) apply() {
	if w.done {
		return
	}
	w.done = true
	h := w.ResponseWriter.Header()
	for _, k := range w.p.remove {
		delete(h, k)
	}
	// The values added share one backing array, the writer's own when they fit (else one
	// allocation per response, not one per header); each slice's capacity is capped at one so
	// an append elsewhere copies it.
	vals := w.vals[:0]
	if len(w.p.set)+1 > len(w.vals) {
		vals = make([]string, 0, len(w.p.set)+1)
	}
	one := func(v string) []string {
		vals = append(vals, v)
		n := len(vals)
		return vals[n-1 : n : n]
	}
	for _, kv := range w.p.set {
		if _, ok := h[kv[0]]; !ok {
			h[kv[0]] = one(kv[1])
		}
	}
	if w.tls && w.p.hsts != "" {
		if _, ok := h["Strict-Transport-Security"]; !ok {
			h["Strict-Transport-Security"] = one(w.p.hsts)
		}
	}
}

// AdoptHeader passes AdoptHeader on: apply reads the underlying writer's map when the head
// is written, so it sees the adopted one.
func (w *headerWriter) AdoptHeader(h http.Header) bool { return httpx.AdoptHeader(w.ResponseWriter, h) }

func (w *headerWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.apply()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerWriter) Write(b []byte) (int, error) {
	w.apply()
	return w.ResponseWriter.Write(b)
}

func (w *headerWriter) Flush() {
	w.apply()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *headerWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *headerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
