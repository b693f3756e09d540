package config

import (
	"encoding/hex"
	"fmt"
	"net/textproto"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// Auth is the gateway-wide authentication setup: the JWT issuers and API-key consumers that
// routes refer to, and the identity headers the gateway sends upstream. A route without jwt,
// api_key or forward_auth plugins is public. With both jwt and api_key on a route, either
// credential is accepted; the first one present decides (Authorization: Bearer, then the API-key
// header, then the token cookie, then query parameters when allowed), and an invalid credential is
// rejected without trying the other method.
type Auth struct {
	// Issuers are the trusted JWT issuers, referred to by name from routes' jwt plugins.
	Issuers []Issuer `yaml:"issuers"`
	// Consumers are the API-key holders, referred to by routes' api_key plugins.
	Consumers []Consumer `yaml:"consumers"`
	// IdentityHeaders are set on the upstream request from the authenticated identity, header name
	// to source: "sub" (the user), "consumer", "tier", "issuer", "method" (jwt, api_key or
	// forward_auth), "permissions" (space separated), "claim:<name>" (a verified JWT claim; dots
	// reach into objects) or "meta:<key>" (consumer metadata). The same headers sent by a client
	// are always removed first, on arrival, before routing, on every route, authenticated or
	// not; so a header clients send credentials in (Authorization, Cookie, an api_key header)
	// cannot be one, and no route can match on one. Values with control characters or longer
	// than 1KiB are not sent. Default: {X-User-ID: sub, X-Consumer: consumer}.
	IdentityHeaders map[string]string `yaml:"identity_headers"`
	// StripHeaders are further client request headers removed on every route before anything
	// else runs, routing included, because upstreams trust them (e.g. X-Roles); not a header
	// clients send credentials in. The identity_headers and every forward_auth response_headers
	// are always stripped too. Default: none.
	StripHeaders []string `yaml:"strip_headers"`
	// MaxTokenSize caps a JWT; larger tokens are rejected with 401 invalid_token before parsing.
	// Default: 8KiB.
	MaxTokenSize ByteSize `yaml:"max_token_size"`
	// TokenCache keeps verified JWTs so a client reusing a token skips the signature check.
	TokenCache TokenCache `yaml:"token_cache"`
	// Realm is the realm named in WWW-Authenticate challenges. Default: gatehouse.
	Realm string `yaml:"realm"`
}

// TokenCache bounds the cache of verified JWTs (one per issuer). Entries are keyed by the token's
// SHA-256 and never outlive the token's exp.
type TokenCache struct {
	// MaxEntries is how many verified tokens are kept per issuer; 0 disables the cache.
	// Default: 10000.
	MaxEntries *int `yaml:"max_entries"`
	// TTL caps how long a verified token is trusted without checking its signature again, so a
	// key removed from the JWKS stops working within it. Default: 5m.
	TTL Duration `yaml:"ttl"`
}

// Issuer is one trusted JWT issuer and where its verification keys come from. Give at least one
// key source: jwks_url, discovery, public_keys, or hmac_secret / hmac_secret_file. HMAC and
// public-key sources cannot be mixed in one issuer.
type Issuer struct {
	// Name identifies the issuer in routes' jwt.issuers. Required, unique.
	Name string `yaml:"name"`
	// Issuer is the expected "iss" claim, e.g. "https://idp.example.com/". Tokens with another
	// iss are rejected. Empty: iss is not checked (only sensible with a single issuer).
	Issuer string `yaml:"issuer"`
	// Audiences lists accepted "aud" values; a token must name at least one. Empty: aud is not
	// checked.
	Audiences []string `yaml:"audiences"`
	// Algorithms is the explicit allow-list of signature algorithms: RS256, RS384, RS512, PS256,
	// PS384, PS512, ES256, ES384, EdDSA (public keys) or HS256, HS384, HS512 (hmac_secret).
	// "none" is never accepted. Required.
	Algorithms []string `yaml:"algorithms"`
	// JWKSURL is the issuer's JWK Set (https, or http for loopback). It is fetched at start,
	// refreshed every jwks_refresh, and fetched again when a token names an unknown key ID (at
	// most once per jwks_min_refetch).
	JWKSURL string `yaml:"jwks_url"`
	// Discovery is the issuer's base URL; the JWK Set URL is read from
	// <discovery>/.well-known/openid-configuration (jwks_uri). Use instead of jwks_url.
	Discovery string `yaml:"discovery"`
	// PublicKeys are PEM files holding public keys or certificates (PKIX "PUBLIC KEY",
	// "RSA PUBLIC KEY" or "CERTIFICATE" blocks). They verify tokens whatever their kid.
	PublicKeys []string `yaml:"public_keys"`
	// HMACSecret is the shared secret for HS256/384/512. Take it from the environment
	// (`hmac_secret: ${JWT_SECRET}`), never inline. At least 32, 48 or 64 bytes for HS256, HS384
	// or HS512.
	HMACSecret Secret `yaml:"hmac_secret"`
	// HMACSecretFile reads the shared secret from a file instead (trailing newline removed).
	HMACSecretFile string `yaml:"hmac_secret_file"`
	// Leeway is the clock skew allowed when checking exp, nbf and iat. Default: 30s.
	Leeway Duration `yaml:"leeway"`
	// PermissionsClaim names the claim holding the caller's permissions: an array of strings
	// ("permissions", "roles") or a space-separated string ("scope"); dots reach into objects
	// ("realm_access.roles"). Default: permissions.
	PermissionsClaim string `yaml:"permissions_claim"`
	// JWKSRefresh is how often the JWK Set is fetched in the background. Default: 1h.
	JWKSRefresh Duration `yaml:"jwks_refresh"`
	// JWKSMinRefetch is the least time between two fetches of the JWK Set triggered by tokens
	// with an unknown kid (and the retry interval after a failed fetch), so a flood of made-up key
	// IDs cannot hammer the identity provider. Default: 30s.
	JWKSMinRefetch Duration `yaml:"jwks_min_refetch"`
	// FetchTimeout bounds each discovery and JWK Set request. Default: 5s.
	FetchTimeout Duration `yaml:"fetch_timeout"`
}

// Secret is a string that is never rendered back: it marshals as "REDACTED".
type Secret string

// String hides the value from logs and %v.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// MarshalYAML hides the value when a config is dumped.
func (s Secret) MarshalYAML() ([]byte, error) { return []byte(s.String()), nil }

// Consumer is an API-key holder: an application or partner calling the gateway.
type Consumer struct {
	// Name identifies the consumer (sent upstream as the "consumer" identity). Required, unique.
	Name string `yaml:"name"`
	// Keys are the consumer's API keys, stored as hashes: "sha256:<64 hex digits>" of the key
	// (`gatehouse hash-key` prints it). Keys must be long random strings (`gatehouse hash-key
	// -generate` makes one). At least one is required; two allow rotation.
	Keys []string `yaml:"keys"`
	// Tier is the consumer's tier or group, e.g. gold; rate limits can key on it.
	Tier string `yaml:"tier"`
	// Permissions are granted to every request made with this consumer's keys.
	Permissions []string `yaml:"permissions"`
	// Metadata is free-form data about the consumer, sent upstream through identity headers
	// ("meta:<key>").
	Metadata map[string]string `yaml:"metadata"`
}

// Permissions is a route's authorization requirement, checked against the caller's permissions
// (the issuer's permissions_claim, a consumer's permissions). A caller lacking them gets 403
// forbidden. Both lists may be given; both must then hold.
type Permissions struct {
	// AllOf lists permissions the caller must all have.
	AllOf []string `yaml:"all_of"`
	// AnyOf lists permissions of which the caller must have at least one.
	AnyOf []string `yaml:"any_of"`
}

// Empty reports whether no permission is required.
func (p Permissions) Empty() bool { return len(p.AllOf) == 0 && len(p.AnyOf) == 0 }

// JWTPlugin configures JWT authentication on a route. The token is read from the Authorization
// header ("Bearer <token>"), else from the cookie, else (only when allow_query is set) from the
// query parameter.
type JWTPlugin struct {
	// Issuers names the accepted issuers (auth.issuers[].name); a token is verified by the one
	// whose issuer matches its iss. Empty: every configured issuer.
	Issuers []string `yaml:"issuers"`
	// Cookie is the cookie a token may come in; "-" disables cookies. Default: access_token.
	Cookie string `yaml:"cookie"`
	// AllowQuery accepts the token in the query parameter named by query_param (it is removed
	// before forwarding). Tokens in URLs leak into logs and browser history: avoid it.
	// Default: false.
	AllowQuery bool `yaml:"allow_query"`
	// QueryParam is the query parameter read when allow_query is set. Default: access_token.
	QueryParam string `yaml:"query_param"`
	// Permissions are required of the token's permissions.
	Permissions Permissions `yaml:"permissions"`
	// HideCredentials removes the token (Authorization header or cookie) from the upstream request.
	// Default: false.
	HideCredentials bool `yaml:"hide_credentials"`
}

// APIKeyPlugin configures API-key authentication on a route.
type APIKeyPlugin struct {
	// Header carries the key. Default: X-API-Key.
	Header string `yaml:"header"`
	// AllowQuery also accepts the key in the query parameter named by query_param.
	// Default: false.
	AllowQuery bool `yaml:"allow_query"`
	// QueryParam is the query parameter read when allow_query is set. Default: api_key.
	QueryParam string `yaml:"query_param"`
	// Consumers restricts the route to these consumers (auth.consumers[].name). Empty: any.
	Consumers []string `yaml:"consumers"`
	// Permissions are required of the consumer's permissions.
	Permissions Permissions `yaml:"permissions"`
	// HideCredentials removes the key (header or query parameter) from the upstream request.
	// Default: true.
	HideCredentials *bool `yaml:"hide_credentials"`
}

// ForwardAuthPlugin delegates the auth decision to an external service (like nginx
// auth_request). The gateway sends a GET to url with the original method (X-Forwarded-Method),
// URI (X-Forwarded-Uri), host (X-Forwarded-Host), scheme (X-Forwarded-Proto), client IP
// (X-Forwarded-For, X-Real-IP), the request ID and the request_headers, never the body. A 2xx
// answer allows the request and copies response_headers onto it; 401 and 403 are returned to the
// client; any other answer, an error or a timeout gives 503 (fail closed). It cannot be combined
// with jwt or api_key on one route.
type ForwardAuthPlugin struct {
	// URL of the auth service (http or https). Required.
	URL string `yaml:"url"`
	// Timeout bounds the call to the auth service. Default: 2s.
	Timeout Duration `yaml:"timeout"`
	// RequestHeaders are the client headers sent to the auth service; they are also the
	// credential the decision cache is keyed by. Default: [Authorization, Cookie].
	RequestHeaders []string `yaml:"request_headers"`
	// ResponseHeaders are copied from an allowing answer onto the upstream request, e.g.
	// [X-User-ID]. Clients cannot send them: they are stripped from every request. One that
	// clients send credentials in (Authorization, Cookie, an api_key header: an internal token
	// for the upstream) is not stripped on arrival, so other routes still read clients'
	// credentials; on this route the upstream gets the answer's value, or none.
	ResponseHeaders []string `yaml:"response_headers"`
	// SubjectHeader is the auth service's response header naming the user (the identity's
	// subject). Default: X-User-ID.
	SubjectHeader string `yaml:"subject_header"`
	// ReturnDenyBody sends the auth service's 401/403 body (at most 64KiB) and Content-Type to
	// the client instead of the gateway's JSON error. Default: false.
	ReturnDenyBody bool `yaml:"return_deny_body"`
	// CacheTTL caches each decision (allow, 401, 403; never errors) for this long, keyed by the
	// request_headers values, so a revoked credential stops working within it. The decision then
	// applies to every request with that credential on the routes sharing this forward_auth
	// config, whatever the path: keep it 0 when the service decides per path. Default: 0s (off).
	CacheTTL Duration `yaml:"cache_ttl"`
	// CacheMaxEntries bounds the decision cache. Default: 10000.
	CacheMaxEntries int `yaml:"cache_max_entries"`
}

// Algorithms accepted in auth.issuers[].algorithms.
var (
	asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}
	hmacAlgs       = map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}
	identitySource = []string{"sub", "consumer", "tier", "issuer", "method", "permissions"}
)

// HMACMinBytes is the shortest secret an issuer may use with the HMAC algorithm alg (RFC 7518
// 3.2: at least the hash size), or 0 when alg is not one.
func HMACMinBytes(alg string) int { return hmacAlgs[alg] }

// KeyHashPrefix starts every consumer key hash.
const KeyHashPrefix = "sha256:"

func (c *Config) defaultAuth() {
	a := &c.Auth
	if a.IdentityHeaders == nil {
		a.IdentityHeaders = map[string]string{"X-User-ID": "sub", "X-Consumer": "consumer"}
	}
	defSize(&a.MaxTokenSize, 8<<10)
	if a.TokenCache.MaxEntries == nil {
		n := 10000
		a.TokenCache.MaxEntries = &n
	}
	defDur(&a.TokenCache.TTL, 5*time.Minute)
	if a.Realm == "" {
		a.Realm = "gatehouse"
	}
	for i := range a.Issuers {
		is := &a.Issuers[i]
		defDur(&is.Leeway, 30*time.Second)
		if is.PermissionsClaim == "" {
			is.PermissionsClaim = "permissions"
		}
		defDur(&is.JWKSRefresh, time.Hour)
		defDur(&is.JWKSMinRefetch, 30*time.Second)
		defDur(&is.FetchTimeout, 5*time.Second)
	}
	for i := range c.Routes {
		p := &c.Routes[i].Plugins
		if j := p.JWT; j != nil {
			if j.Cookie == "" {
				j.Cookie = "access_token"
			}
			if j.QueryParam == "" {
				j.QueryParam = "access_token"
			}
		}
		if k := p.APIKey; k != nil {
			if k.Header == "" {
				k.Header = "X-API-Key"
			}
			if k.QueryParam == "" {
				k.QueryParam = "api_key"
			}
			if k.HideCredentials == nil {
				on := true
				k.HideCredentials = &on
			}
		}
		if f := p.ForwardAuth; f != nil {
			defDur(&f.Timeout, 2*time.Second)
			if f.RequestHeaders == nil {
				f.RequestHeaders = []string{"Authorization", "Cookie"}
			}
			if f.SubjectHeader == "" {
				f.SubjectHeader = "X-User-ID"
			}
			defDur(&f.CacheTTL, 0)
			if f.CacheMaxEntries == 0 {
				f.CacheMaxEntries = 10000
			}
		}
	}
}

func (s *Source) validateAuth(add func(path, format string, args ...any)) {
	a := &s.Config.Auth
	issuers := map[string]int{}
	for i := range a.Issuers {
		is := &a.Issuers[i]
		p := fmt.Sprintf("auth.issuers[%d]", i)
		checkName(add, p+".name", is.Name, "issuer", issuers, i)
		validateIssuer(add, p, is)
	}
	consumers := map[string]int{}
	keys := map[string]string{}
	for i, c := range a.Consumers {
		p := fmt.Sprintf("auth.consumers[%d]", i)
		checkName(add, p+".name", c.Name, "consumer", consumers, i)
		if len(c.Keys) == 0 {
			add(p+".keys", "at least one key hash is required (gatehouse hash-key prints one)")
		}
		for j, k := range c.Keys {
			kp := fmt.Sprintf("%s.keys[%d]", p, j)
			if !ValidKeyHash(k) {
				// Never echo the value: it may be a plaintext key pasted by mistake.
				add(kp, "must be %s followed by 64 hex digits (the SHA-256 of the key; gatehouse hash-key prints it), not the key itself", KeyHashPrefix)
				continue
			}
			norm := strings.ToLower(k)
			if other, dup := keys[norm]; dup {
				add(kp, "the same key is already listed (at %s)", other)
			} else {
				keys[norm] = kp
			}
		}
	}
	creds := s.Config.credentialHeaders()
	credential := func(p, name string) {
		if creds[textproto.CanonicalMIMEHeaderKey(name)] {
			add(p, "%s carries clients' credentials: removed from every request, it would be gone before any route reads it", name)
		}
	}
	for k, src := range a.IdentityHeaders {
		hp := "auth.identity_headers." + k
		checkHeaderName(add, hp, k)
		credential(hp, k)
		if !validIdentitySource(src) {
			add(hp, "unknown source %q (want %s, claim:<name> or meta:<key>)", src, strings.Join(identitySource, ", "))
		}
	}
	for i, h := range a.StripHeaders {
		p := fmt.Sprintf("auth.strip_headers[%d]", i)
		checkHeaderName(add, p, h)
		credential(p, h)
	}
	if a.MaxTokenSize.Bytes < 256 || a.MaxTokenSize.Bytes > 1<<20 {
		add("auth.max_token_size", "must be between 256B and 1MiB")
	}
	if *a.TokenCache.MaxEntries < 0 {
		add("auth.token_cache.max_entries", "must not be negative")
	}
	if strings.ContainsAny(a.Realm, "\"\\\r\n") {
		add("auth.realm", "must not contain quotes, backslashes or line breaks")
	}

	for i := range s.Config.Routes {
		r := &s.Config.Routes[i]
		p := fmt.Sprintf("routes[%d].plugins", i)
		if j := r.Plugins.JWT; j != nil {
			if len(a.Issuers) == 0 {
				add(p+".jwt", "needs at least one issuer in auth.issuers")
			}
			for k, name := range j.Issuers {
				if _, ok := issuers[name]; !ok {
					add(fmt.Sprintf("%s.jwt.issuers[%d]", p, k), "unknown issuer %q", name)
				}
			}
			if j.Cookie != "-" && !validCookieName(j.Cookie) {
				add(p+".jwt.cookie", "%q is not a valid cookie name", j.Cookie)
			}
			if j.QueryParam == "" || strings.ContainsAny(j.QueryParam, "&=#?") {
				add(p+".jwt.query_param", "%q is not a valid query parameter name", j.QueryParam)
			}
			validatePermissions(add, p+".jwt.permissions", j.Permissions)
		}
		if k := r.Plugins.APIKey; k != nil {
			if len(a.Consumers) == 0 {
				add(p+".api_key", "needs at least one consumer in auth.consumers")
			}
			checkHeaderName(add, p+".api_key.header", k.Header)
			if strings.ContainsAny(k.QueryParam, "&=#?") {
				add(p+".api_key.query_param", "%q is not a valid query parameter name", k.QueryParam)
			}
			for n, name := range k.Consumers {
				if _, ok := consumers[name]; !ok {
					add(fmt.Sprintf("%s.api_key.consumers[%d]", p, n), "unknown consumer %q", name)
				}
			}
			validatePermissions(add, p+".api_key.permissions", k.Permissions)
		}
		if f := r.Plugins.ForwardAuth; f != nil {
			fp := p + ".forward_auth"
			if r.Plugins.JWT != nil || r.Plugins.APIKey != nil {
				add(fp, "cannot be combined with jwt or api_key on one route")
			}
			if f.URL == "" {
				add(fp+".url", "is required")
			} else if u, err := url.Parse(f.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add(fp+".url", "%q must be an http or https URL", redactURL(f.URL))
			}
			if f.Timeout.Duration == 0 {
				add(fp+".timeout", "must be greater than 0 (every backend call has a timeout)")
			}
			for n, h := range f.RequestHeaders {
				checkHeaderName(add, fmt.Sprintf("%s.request_headers[%d]", fp, n), h)
			}
			for n, h := range f.ResponseHeaders {
				checkHeaderName(add, fmt.Sprintf("%s.response_headers[%d]", fp, n), h)
			}
			checkHeaderName(add, fp+".subject_header", f.SubjectHeader)
			if f.CacheMaxEntries < 0 {
				add(fp+".cache_max_entries", "must not be negative")
			}
		}
	}
}

func validateIssuer(add func(path, format string, args ...any), p string, is *Issuer) {
	if len(is.Algorithms) == 0 {
		add(p+".algorithms", "an explicit list of algorithms is required (e.g. [RS256])")
	}
	hasHMAC := is.HMACSecret != "" || is.HMACSecretFile != ""
	hasPublic := is.JWKSURL != "" || is.Discovery != "" || len(is.PublicKeys) > 0
	seen := map[string]bool{}
	for j, alg := range is.Algorithms {
		ap := fmt.Sprintf("%s.algorithms[%d]", p, j)
		_, hmacAlg := hmacAlgs[alg]
		switch {
		case seen[alg]:
			add(ap, "duplicate algorithm %q", alg)
		case strings.EqualFold(alg, "none"):
			add(ap, "\"none\" is never accepted: tokens must be signed")
		case hmacAlg:
			if hasPublic {
				add(ap, "%s needs hmac_secret, not public keys (mixing them allows algorithm confusion)", alg)
			}
		case contains(asymmetricAlgs, alg):
			if hasHMAC {
				add(ap, "%s needs public keys (jwks_url, discovery or public_keys), not hmac_secret", alg)
			}
		default:
			add(ap, "unknown algorithm %q (want one of %s, HS256, HS384, HS512)", alg, strings.Join(asymmetricAlgs, ", "))
		}
		seen[alg] = true
	}
	switch {
	case !hasHMAC && !hasPublic:
		add(p, "needs a key source: jwks_url, discovery, public_keys, hmac_secret or hmac_secret_file")
	case hasHMAC && hasPublic:
		add(p, "cannot mix hmac_secret with public keys; define two issuers")
	}
	if is.HMACSecret != "" && is.HMACSecretFile != "" {
		add(p+".hmac_secret_file", "cannot be combined with hmac_secret")
	}
	if is.HMACSecret != "" {
		for _, alg := range is.Algorithms {
			if min, ok := hmacAlgs[alg]; ok && len(is.HMACSecret) < min {
				add(p+".hmac_secret", "is %d bytes; %s needs at least %d", len(is.HMACSecret), alg, min)
				break
			}
		}
	}
	if is.JWKSURL != "" && is.Discovery != "" {
		add(p+".discovery", "cannot be combined with jwks_url")
	}
	for _, f := range []struct{ name, v string }{{"jwks_url", is.JWKSURL}, {"discovery", is.Discovery}} {
		if f.v == "" {
			continue
		}
		if msg := checkFetchURL(f.v); msg != "" {
			add(p+"."+f.name, "%s", msg)
		}
	}
	if is.JWKSRefresh.Duration < time.Second {
		add(p+".jwks_refresh", "must be at least 1s")
	}
	if is.FetchTimeout.Duration == 0 {
		add(p+".fetch_timeout", "must be greater than 0")
	}
	if is.PermissionsClaim == "" || strings.HasPrefix(is.PermissionsClaim, ".") || strings.HasSuffix(is.PermissionsClaim, ".") {
		add(p+".permissions_claim", "%q is not a claim name", is.PermissionsClaim)
	}
}

// checkFetchURL accepts https URLs, and http ones only for loopback hosts (keys fetched in the
// clear could be replaced by anyone on the path).
func checkFetchURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Sprintf("%q is not a URL", redactURL(raw))
	}
	switch u.Scheme {
	case "https":
		return ""
	case "http":
		h := u.Hostname()
		if h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1" {
			return ""
		}
		return fmt.Sprintf("%q must use https (http is only allowed for loopback)", redactURL(raw))
	}
	return fmt.Sprintf("%q must use https", redactURL(raw))
}

func validatePermissions(add func(path, format string, args ...any), p string, perms Permissions) {
	for _, l := range []struct {
		name string
		v    []string
	}{{"all_of", perms.AllOf}, {"any_of", perms.AnyOf}} {
		for i, v := range l.v {
			if v == "" || strings.ContainsAny(v, " \t\r\n\"") {
				add(fmt.Sprintf("%s.%s[%d]", p, l.name, i), "%q is not a valid permission (no spaces or quotes)", v)
			}
		}
	}
}

func validIdentitySource(src string) bool {
	if contains(identitySource, src) {
		return true
	}
	for _, prefix := range []string{"claim:", "meta:"} {
		if rest, ok := strings.CutPrefix(src, prefix); ok && rest != "" {
			return true
		}
	}
	return false
}

// ValidKeyHash reports whether s is a consumer key hash: "sha256:" and 64 hex digits.
func ValidKeyHash(s string) bool {
	h, ok := strings.CutPrefix(s, KeyHashPrefix)
	if !ok || len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
}

func validCookieName(s string) bool {
	return validToken(s)
}

// AuthStripHeaders returns the canonical names of the client request headers the gateway removes
// on every route: auth.identity_headers, auth.strip_headers and every forward_auth
// response_headers, sorted. A forward_auth response header that carries clients' credentials
// (Authorization, an API key header: an auth service handing the upstream an internal token) is
// not among them, or no route could read a client's credential: the forward_auth route
// replaces or removes it itself once its auth service has answered.
func (c *Config) AuthStripHeaders() []string {
	set := map[string]bool{}
	for k := range c.Auth.IdentityHeaders {
		set[textproto.CanonicalMIMEHeaderKey(k)] = true
	}
	for _, k := range c.Auth.StripHeaders {
		set[textproto.CanonicalMIMEHeaderKey(k)] = true
	}
	creds := c.credentialHeaders()
	for i := range c.Routes {
		if f := c.Routes[i].Plugins.ForwardAuth; f != nil {
			for _, k := range f.ResponseHeaders {
				if k = textproto.CanonicalMIMEHeaderKey(k); !creds[k] {
					set[k] = true
				}
			}
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// RouteIdentityHeaders are the headers the gateway vouches for on route's upstream calls
// (aggregate, GraphQL and gRPC routes send them on): AuthStripHeaders and the route's own
// forward_auth response_headers, whose values on that route are the auth service's or none,
// credential headers included (an internal token).
func (c *Config) RouteIdentityHeaders(route *Route) []string {
	out := c.AuthStripHeaders()
	if f := route.Plugins.ForwardAuth; f != nil {
		for _, k := range f.ResponseHeaders {
			if k = textproto.CanonicalMIMEHeaderKey(k); !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// credentialHeaders are the canonical names of the request headers clients send credentials
// in: Authorization, Proxy-Authorization, Cookie, every api_key header and every forward_auth
// request_headers.
func (c *Config) credentialHeaders() map[string]bool {
	set := map[string]bool{"Authorization": true, "Proxy-Authorization": true, "Cookie": true}
	for i := range c.Routes {
		p := &c.Routes[i].Plugins
		if p.APIKey != nil && p.APIKey.Header != "" {
			set[textproto.CanonicalMIMEHeaderKey(p.APIKey.Header)] = true
		}
		if p.ForwardAuth != nil {
			for _, k := range p.ForwardAuth.RequestHeaders {
				set[textproto.CanonicalMIMEHeaderKey(k)] = true
			}
		}
	}
	return set
}
