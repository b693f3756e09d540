// Package auth authenticates requests (JWT, API keys, forward auth) and authorizes them against
// a route's required permissions.
//
// The identity headers a client may not send (auth.identity_headers, auth.strip_headers,
// forward_auth response headers) are dropped by the runtime on arrival, before routing, so no
// route match, policy or upstream ever sees a spoofed X-User-ID. On a protected route this
// middleware reads the credential,
// verifies it, checks permissions, records the caller in httpx.Info.Identity (rate limits key on
// it) and sets the identity headers from it. Failures answer with the gateway's JSON error and an
// RFC 6750 WWW-Authenticate challenge, and are logged at warn level without the credential.
package auth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/httpx"
	"github.com/gatehouse/gatehouse/internal/middleware"
)

// Stable error codes of this package (the "error" field of the JSON body).
const (
	CodeMissingCredentials = "missing_credentials"
	CodeInvalidToken       = "invalid_token"
	CodeTokenExpired       = "token_expired"
	CodeInvalidAPIKey      = "invalid_api_key"
	CodeUnauthorized       = "unauthorized"
	CodeForbidden          = "forbidden"
	CodeAuthUnavailable    = "auth_unavailable"
)

// Identity methods (httpx.Identity.Method).
const (
	MethodJWT         = "jwt"
	MethodAPIKey      = "api_key"
	MethodForwardAuth = "forward_auth"
)

// maxHeaderValue bounds an identity header value sent upstream.
const maxHeaderValue = 1024

// New builds the authentication and authorization middleware of route, or returns nil for a
// public route (no jwt, api_key or forward_auth plugin).
func New(cfg *config.Config, route *config.Route, deps middleware.Deps) (middleware.Middleware, error) {
	h, err := newHandler(cfg, route, deps)
	if h == nil || err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler {
		return &wrapped{h: h, next: next}
	}, nil
}

// NewDeferred is New split in two around the rate limits: identify authenticates the request
// and, when it must be refused, leaves the refusal in the request's httpx.Info
// (Info.Refusal) and goes on; enforce, placed after the rate limits, writes that refusal.
// A refused request is so counted by the limits keyed on IP (its identity is anonymous), and
// an over-limit client guessing credentials gets 429. Both are nil when the route has no
// authentication to do.
func NewDeferred(cfg *config.Config, route *config.Route, deps middleware.Deps) (identify, enforce middleware.Middleware, err error) {
	h, err := newHandler(cfg, route, deps)
	if h == nil || err != nil {
		return nil, nil, err
	}
	identify = func(next http.Handler) http.Handler {
		return &wrapped{h: h, next: next, deferred: true}
	}
	enforce = func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if info := httpx.InfoFrom(r.Context()); info != nil && info.Refusal != nil {
				info.Refusal(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	return identify, enforce, nil
}

// newHandler compiles route's authentication, or returns nil when it has none to do.
func newHandler(cfg *config.Config, route *config.Route, deps middleware.Deps) (*handler, error) {
	logger := deps.Logger
	if logger == nil {
		logger = slog.Default()
	}
	a := &cfg.Auth
	h := &handler{
		route:    route.Name,
		realm:    a.Realm,
		maxToken: int(a.MaxTokenSize.Bytes),
		logger:   logger,
	}
	if h.maxToken <= 0 {
		h.maxToken = 8 << 10
	}
	if h.realm == "" {
		h.realm = "gatehouse"
	}
	for name, src := range a.IdentityHeaders {
		h.identity = append(h.identity, identityHeader{name: textproto.CanonicalMIMEHeaderKey(name), source: src})
	}
	slices.SortFunc(h.identity, func(x, y identityHeader) int { return strings.Compare(x.name, y.name) })

	p := route.Plugins
	acquire := deps.Acquire
	if acquire == nil {
		return nil, errors.New("auth: deps.Acquire is required")
	}
	if p.JWT != nil {
		jr := &jwtRoute{cookie: p.JWT.Cookie, allowQuery: p.JWT.AllowQuery, queryParam: p.JWT.QueryParam,
			perms: p.JWT.Permissions, hide: p.JWT.HideCredentials}
		if jr.cookie == "-" {
			jr.cookie = ""
		}
		for _, ic := range a.Issuers {
			if len(p.JWT.Issuers) > 0 && !slices.Contains(p.JWT.Issuers, ic.Name) {
				continue
			}
			m, err := loadIssuerMaterial(ic, a.TokenCache)
			if err != nil {
				return nil, err
			}
			res, err := acquire(m.key(), func() (io.Closer, error) { return newIssuer(m, logger) })
			if err != nil {
				return nil, err
			}
			jr.issuers = append(jr.issuers, res.(*issuer))
		}
		if len(jr.issuers) == 0 {
			return nil, fmt.Errorf("route %s: jwt: no issuer configured", route.Name)
		}
		h.jwt = jr
	}
	if p.APIKey != nil {
		res, err := acquire(consumersKey(a.Consumers), func() (io.Closer, error) { return newConsumerStore(a.Consumers) })
		if err != nil {
			return nil, err
		}
		ar := &apiKeyRoute{store: res.(*consumerStore), header: textproto.CanonicalMIMEHeaderKey(p.APIKey.Header),
			allowQuery: p.APIKey.AllowQuery, queryParam: p.APIKey.QueryParam, consumers: p.APIKey.Consumers,
			perms: p.APIKey.Permissions, hide: p.APIKey.HideCredentials == nil || *p.APIKey.HideCredentials}
		h.apiKey = ar
	}
	if p.ForwardAuth != nil {
		fc := *p.ForwardAuth
		res, err := acquire(forwardKey(&fc), func() (io.Closer, error) { return newForwardAuth(fc), nil })
		if err != nil {
			return nil, err
		}
		h.forward = res.(*forwardAuth)
	}
	if h.jwt == nil && h.apiKey == nil && h.forward == nil {
		return nil, nil
	}
	return h, nil
}

type handler struct {
	route    string
	realm    string
	identity []identityHeader
	maxToken int
	jwt      *jwtRoute
	apiKey   *apiKeyRoute
	forward  *forwardAuth
	logger   *slog.Logger
}

type identityHeader struct {
	name, source string
}

type jwtRoute struct {
	issuers    []*issuer
	cookie     string
	allowQuery bool
	queryParam string
	perms      config.Permissions
	hide       bool
}

type apiKeyRoute struct {
	store      *consumerStore
	header     string
	allowQuery bool
	queryParam string
	consumers  []string
	perms      config.Permissions
	hide       bool
}

type wrapped struct {
	h        *handler
	next     http.Handler
	deferred bool // NewDeferred's identify: a refusal is left in Info for enforce
}

func (w *wrapped) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.h.serve(rw, r, w.next, w.deferred)
}

// failure is a refused request: what the client gets and what the security log records.
type failure struct {
	status  int
	code    string
	msg     string
	reason  string
	method  string
	kid     string
	subject string
	claimed string // the subject a token that failed verification names: anyone can write it
	issuer  string
	keyID   string
	scope   []string  // required permissions (403)
	fwd     *decision // forward-auth denial to relay
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, next http.Handler, deferred bool) {
	info := httpx.InfoFrom(r.Context())
	id, f := h.authenticate(r, info)
	if f == nil {
		f = h.authorize(id)
	}
	if f != nil {
		if deferred && info != nil {
			info.Refusal = func(w http.ResponseWriter, r *http.Request) { h.refuse(w, r, info, f) }
			next.ServeHTTP(w, r)
			return
		}
		h.refuse(w, r, info, f)
		return
	}
	if info != nil {
		info.Identity = id
	}
	h.setIdentityHeaders(r.Header, id)
	next.ServeHTTP(w, r)
}

// credential is where a credential was found.
type credential struct {
	method string // MethodJWT or MethodAPIKey
	value  string
	from   string // "header", "cookie", "query"
}

// extract finds the request's credential, in this order: Authorization: Bearer (jwt), the API
// key header, the token cookie, then the query parameters when allowed. The first one present
// decides. ok is false when a credential is present but ambiguous (repeated).
func (h *handler) extract(r *http.Request) (c credential, ok bool) {
	if h.jwt != nil {
		if vs := r.Header["Authorization"]; len(vs) > 0 {
			if len(vs) > 1 {
				return credential{method: MethodJWT}, false
			}
			v := strings.TrimSpace(vs[0])
			if strings.EqualFold(v, "Bearer") {
				return credential{method: MethodJWT, from: "header"}, true // the scheme without a token
			}
			scheme, tok, found := strings.Cut(v, " ")
			if found && strings.EqualFold(scheme, "Bearer") {
				return credential{method: MethodJWT, value: strings.TrimSpace(tok), from: "header"}, true
			}
		}
	}
	if h.apiKey != nil {
		if vs := r.Header[h.apiKey.header]; len(vs) > 0 {
			if len(vs) > 1 {
				return credential{method: MethodAPIKey}, false
			}
			return credential{method: MethodAPIKey, value: vs[0], from: "header"}, true
		}
	}
	if h.jwt != nil && h.jwt.cookie != "" {
		if cks := r.CookiesNamed(h.jwt.cookie); len(cks) > 1 {
			// Repeated, as a second Authorization header: which one an upstream reading the
			// cookie itself would take is its parser's choice, not the gateway's.
			return credential{method: MethodJWT}, false
		} else if len(cks) == 1 && cks[0].Value != "" {
			return credential{method: MethodJWT, value: cks[0].Value, from: "cookie"}, true
		}
	}
	if (h.jwt != nil && h.jwt.allowQuery) || (h.apiKey != nil && h.apiKey.allowQuery) {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return credential{}, true
		}
		if h.jwt != nil && h.jwt.allowQuery {
			if vs := q[h.jwt.queryParam]; len(vs) > 0 {
				return credential{method: MethodJWT, value: vs[0], from: "query"}, len(vs) == 1
			}
		}
		if h.apiKey != nil && h.apiKey.allowQuery {
			if vs := q[h.apiKey.queryParam]; len(vs) > 0 {
				return credential{method: MethodAPIKey, value: vs[0], from: "query"}, len(vs) == 1
			}
		}
	}
	return credential{}, true
}

func (h *handler) authenticate(r *http.Request, info *httpx.Info) (*httpx.Identity, *failure) {
	if h.forward != nil {
		return h.forwardAuth(r, info)
	}
	c, ok := h.extract(r)
	if !ok {
		return nil, &failure{status: http.StatusUnauthorized, code: CodeInvalidToken, method: c.method,
			msg: "the request carries more than one credential", reason: "repeated credential"}
	}
	switch c.method {
	case MethodJWT:
		return h.verifyJWT(r, c)
	case MethodAPIKey:
		return h.verifyAPIKey(r, c)
	}
	return nil, &failure{status: http.StatusUnauthorized, code: CodeMissingCredentials,
		msg: "this route requires credentials", reason: "no credential"}
}

func (h *handler) verifyJWT(r *http.Request, c credential) (*httpx.Identity, *failure) {
	invalid := func(reason string) *failure {
		return &failure{status: http.StatusUnauthorized, code: CodeInvalidToken, method: MethodJWT,
			msg: "the access token is invalid", reason: reason}
	}
	if c.value == "" {
		return nil, invalid("empty token")
	}
	if len(c.value) > h.maxToken {
		return nil, invalid("token larger than " + strconv.Itoa(h.maxToken) + " bytes")
	}
	candidates := h.jwt.issuers
	if len(candidates) > 1 {
		iss := peekIssuer(c.value)
		candidates = nil
		for _, is := range h.jwt.issuers {
			if is.iss == "" || is.iss == iss {
				candidates = append(candidates, is)
			}
		}
		if len(candidates) == 0 {
			return nil, invalid(fmt.Sprintf("no configured issuer for iss %q", truncate(iss, 128)))
		}
	}
	hash := cacheKey(sha256.Sum256([]byte(c.value)))
	var last error
	for _, is := range candidates {
		v, err := is.verify(r.Context(), c.value, hash)
		if err != nil {
			last = err
			continue
		}
		h.hideJWT(r, c)
		return &httpx.Identity{Method: MethodJWT, Subject: v.subject, Issuer: v.issuer,
			Permissions: v.permissions, Claims: v.claims}, nil
	}
	f := invalid("token rejected")
	var te *tokenError
	if errors.As(last, &te) {
		f.reason, f.kid, f.claimed = te.reason, te.kid, te.subject
		if te.expired {
			f.code, f.msg = CodeTokenExpired, "the access token has expired"
		}
	}
	if len(candidates) == 1 {
		f.issuer = candidates[0].name
	}
	return nil, f
}

func (h *handler) hideJWT(r *http.Request, c credential) {
	switch c.from {
	case "query":
		r.URL.RawQuery = removeQueryParam(r.URL.RawQuery, h.jwt.queryParam)
	case "header":
		if h.jwt.hide {
			delete(r.Header, "Authorization")
		}
	case "cookie":
		if h.jwt.hide {
			removeCookie(r, h.jwt.cookie)
		}
	}
}

func (h *handler) verifyAPIKey(r *http.Request, c credential) (*httpx.Identity, *failure) {
	ak := h.apiKey
	co, keyID := ak.store.lookup(c.value)
	if co == nil {
		return nil, &failure{status: http.StatusUnauthorized, code: CodeInvalidAPIKey, method: MethodAPIKey,
			msg: "the API key is invalid", reason: "unknown API key", keyID: keyID}
	}
	if len(ak.consumers) > 0 && !slices.Contains(ak.consumers, co.name) {
		// The key is genuine: its holder is known but not admitted here, a 403 (as Kong's ACL).
		return nil, &failure{status: http.StatusForbidden, code: CodeForbidden, method: MethodAPIKey,
			msg: "this API key is not allowed on this route", reason: "consumer " + co.name + " is not allowed on this route", keyID: keyID}
	}
	if ak.hide {
		if c.from == "query" {
			r.URL.RawQuery = removeQueryParam(r.URL.RawQuery, ak.queryParam)
		} else {
			delete(r.Header, ak.header)
		}
	}
	return &httpx.Identity{Method: MethodAPIKey, Consumer: co.name, Tier: co.tier,
		Permissions: co.permissions, Claims: co.claims}, nil
}

func (h *handler) forwardAuth(r *http.Request, info *httpx.Info) (*httpx.Identity, *failure) {
	d, err := h.forward.check(r, info)
	if err != nil {
		return nil, &failure{status: http.StatusServiceUnavailable, code: CodeAuthUnavailable, method: MethodForwardAuth,
			msg: "the authentication service is unavailable", reason: err.Error()}
	}
	if !d.allow {
		f := &failure{status: d.status, code: CodeUnauthorized, method: MethodForwardAuth, fwd: d,
			msg: "the authentication service refused the request", reason: "denied by the auth service (" + strconv.Itoa(d.status) + ")"}
		if d.status == http.StatusForbidden {
			f.code = CodeForbidden
		}
		return nil, f
	}
	for _, name := range h.forward.respHdr {
		// The auth service's value, or none: a client's own copy of a response header (one
		// that carries credentials is not stripped on arrival) never reaches the upstream.
		if vs, ok := d.headers[name]; ok {
			r.Header[name] = append([]string(nil), vs...)
		} else {
			delete(r.Header, name)
		}
	}
	return &httpx.Identity{Method: MethodForwardAuth, Subject: d.subject}, nil
}

// authorize checks the route's required permissions against the identity's.
func (h *handler) authorize(id *httpx.Identity) *failure {
	var need config.Permissions
	switch {
	case id.Method == MethodJWT && h.jwt != nil:
		need = h.jwt.perms
	case id.Method == MethodAPIKey && h.apiKey != nil:
		need = h.apiKey.perms
	}
	if need.Empty() {
		return nil
	}
	ok := true
	for _, p := range need.AllOf {
		ok = ok && slices.Contains(id.Permissions, p)
	}
	if ok && len(need.AnyOf) > 0 {
		ok = slices.ContainsFunc(need.AnyOf, func(p string) bool { return slices.Contains(id.Permissions, p) })
	}
	if ok {
		return nil
	}
	scope := append(append([]string(nil), need.AllOf...), need.AnyOf...)
	return &failure{status: http.StatusForbidden, code: CodeForbidden, method: id.Method,
		msg: "the credential lacks a permission this route requires", reason: "missing permission",
		subject: id.Subject, issuer: id.Issuer, keyID: id.Consumer, scope: scope}
}

// refuse answers a refused request and writes the security log line.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, info *httpx.Info, f *failure) {
	attrs := []slog.Attr{
		slog.String("route", h.route),
		slog.Int("status", f.status),
		slog.String("error", f.code),
		slog.String("reason", truncate(f.reason, 256)),
	}
	if info != nil {
		attrs = append(attrs, slog.String("request_id", info.RequestID), slog.String("client_ip", info.ClientIP.String()))
	}
	for _, kv := range [][2]string{{"auth_method", f.method}, {"kid", f.kid}, {"subject", f.subject}, {"unverified_subject", f.claimed}, {"issuer", f.issuer}, {"key_id", f.keyID}} {
		if kv[1] != "" {
			attrs = append(attrs, slog.String(kv[0], truncate(kv[1], 128)))
		}
	}
	h.logger.LogAttrs(r.Context(), slog.LevelWarn, "auth failure", attrs...)

	hdr := w.Header()
	if d := f.fwd; d != nil {
		for _, v := range d.headers["Www-Authenticate"] {
			hdr.Add("Www-Authenticate", v)
		}
		if len(d.headers["Www-Authenticate"]) == 0 {
			// RFC 9110 section 15.5.2: a 401 must carry a challenge; when the service sent none,
			// the gateway supplies its own.
			h.challenge(hdr, f)
		}
		if d.body != nil {
			if info != nil {
				info.ErrorCode = f.code
				hdr.Set("X-Request-Id", info.RequestID)
			}
			if d.ctype != "" {
				hdr.Set("Content-Type", d.ctype)
			}
			hdr.Set("Cache-Control", "no-store")
			hdr.Set("X-Content-Type-Options", "nosniff")
			hdr.Set("Content-Length", strconv.Itoa(len(d.body)))
			w.WriteHeader(d.status)
			if r.Method != http.MethodHead {
				_, _ = w.Write(d.body)
			}
			return
		}
	} else {
		h.challenge(hdr, f)
	}
	httpx.WriteError(w, r, f.status, f.code, f.msg)
}

// challenge sets the RFC 6750 (and API-key) WWW-Authenticate challenges of a refusal; a
// forward-auth 401 gets a plain Bearer challenge (used only when the service sent none).
func (h *handler) challenge(hdr http.Header, f *failure) {
	realm := `realm="` + h.realm + `"`
	if h.jwt != nil && (f.method == MethodJWT || f.method == "") {
		v := "Bearer " + realm
		switch {
		case f.status == http.StatusForbidden:
			v += `, error="insufficient_scope", scope="` + strings.Join(f.scope, " ") + `"`
		case f.code == CodeTokenExpired:
			v += `, error="invalid_token", error_description="the access token expired"`
		case f.code == CodeInvalidToken:
			v += `, error="invalid_token", error_description="the access token is invalid"`
		}
		hdr.Add("Www-Authenticate", v)
	}
	if h.apiKey != nil && (f.method == MethodAPIKey || f.method == "") && f.status == http.StatusUnauthorized {
		hdr.Add("Www-Authenticate", `APIKey `+realm+`, header="`+h.apiKey.header+`"`)
	}
	if f.method == MethodForwardAuth && f.status == http.StatusUnauthorized {
		// The gateway cannot know the service's scheme; Bearer is the generic default for the
		// Authorization header forward auth passes on by default.
		hdr.Add("Www-Authenticate", "Bearer "+realm)
	}
}

// setIdentityHeaders sets the configured identity headers from id (after the client's copies
// were stripped).
func (h *handler) setIdentityHeaders(hdr http.Header, id *httpx.Identity) {
	for _, ih := range h.identity {
		v := identityValue(id, ih.source)
		if v == "" || !safeHeaderValue(v) {
			continue
		}
		hdr[ih.name] = []string{v}
	}
}

func identityValue(id *httpx.Identity, src string) string {
	switch src {
	case "sub":
		return id.Subject
	case "consumer":
		return id.Consumer
	case "tier":
		return id.Tier
	case "issuer":
		return id.Issuer
	case "method":
		return id.Method
	case "permissions":
		return strings.Join(id.Permissions, " ")
	}
	if name, ok := strings.CutPrefix(src, "meta:"); ok {
		if id.Method != MethodAPIKey {
			return ""
		}
		s, _ := id.Claims[name].(string)
		return s
	}
	if name, ok := strings.CutPrefix(src, "claim:"); ok && id.Method == MethodJWT {
		var v any = id.Claims
		for _, p := range strings.Split(name, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return ""
			}
			v = m[p]
		}
		return scalarString(v, true)
	}
	return ""
}

func scalarString(v any, list bool) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case []any:
		if !list {
			return ""
		}
		parts := make([]string, 0, len(v))
		for _, e := range v {
			if s := scalarString(e, false); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, ",")
	}
	return ""
}

// safeHeaderValue rejects values that could not be sent as a header or would smuggle a line
// break into one.
func safeHeaderValue(v string) bool {
	if len(v) > maxHeaderValue {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// removeQueryParam drops every name=value pair of the raw query, keeping the rest as sent.
func removeQueryParam(raw, name string) string {
	parts := strings.Split(raw, "&")
	out := parts[:0]
	for _, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == name {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, "&")
}

// removeCookie drops one cookie from the request's Cookie headers. It edits the raw header
// text rather than re-serializing r.Cookies(): net/http's parser silently discards cookies it
// deems invalid (JSON, commas, raw quotes) and unquotes values, so a rebuilt header would lose
// or rewrite the client's other cookies. Every other piece is kept byte for byte.
func removeCookie(r *http.Request, name string) {
	var kept []string
	for _, line := range r.Header["Cookie"] {
		var parts []string
		for _, p := range strings.Split(line, ";") {
			p = textproto.TrimString(p)
			if p == "" {
				continue
			}
			if k, _, _ := strings.Cut(p, "="); textproto.TrimString(k) == name {
				continue
			}
			parts = append(parts, p)
		}
		if len(parts) > 0 {
			kept = append(kept, strings.Join(parts, "; "))
		}
	}
	if len(kept) == 0 {
		delete(r.Header, "Cookie")
		return
	}
	r.Header["Cookie"] = kept
}
