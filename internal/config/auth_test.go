package config

import (
	"strings"
	"testing"
	"time"
)

const authSecret = "0123456789abcdef0123456789abcdef" // 32 bytes: enough for HS256
const authHash = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

// authFull sets every auth field (issuers need two entries: jwks_url and discovery exclude each
// other, as do hmac_secret and hmac_secret_file).
const authFull = base + `auth:
  issuers:
    - name: main
      issuer: https://idp.example.com/
      audiences: [api, web]
      algorithms: [RS256, ES256, EdDSA]
      jwks_url: https://idp.example.com/jwks.json
      public_keys: [certs/idp.pem]
      leeway: 10s
      permissions_claim: realm_access.roles
      jwks_refresh: 10m
      jwks_min_refetch: 1m
      fetch_timeout: 3s
    - name: oidc
      algorithms: [PS256]
      discovery: https://login.example.com
    - name: local
      algorithms: [HS256]
      hmac_secret: ${SECRET}
    - name: filed
      algorithms: [HS512]
      hmac_secret_file: /run/secrets/jwt
  consumers:
    - name: partner-a
      keys: ["` + authHash + `"]
      tier: gold
      permissions: ["users:read"]
      metadata: { team: x }
  identity_headers: { X-User-ID: sub, X-Tenant: "claim:org.id", X-Team: "meta:team" }
  strip_headers: [X-Roles]
  max_token_size: 4KiB
  token_cache: { max_entries: 50, ttl: 1m }
  realm: api
routes:
  - name: jwt
    match: { path: /a }
    service: users
    plugins:
      jwt:
        issuers: [main, local]
        cookie: session
        allow_query: true
        query_param: token
        hide_credentials: true
        permissions: { all_of: ["users:read"], any_of: [admin, support] }
  - name: key
    match: { path: /b }
    service: users
    plugins:
      api_key:
        header: X-Key
        allow_query: true
        query_param: key
        consumers: [partner-a]
        hide_credentials: false
        permissions: { any_of: ["users:read"] }
  - name: fwd
    match: { path: /c }
    service: users
    plugins:
      forward_auth:
        url: http://auth.internal:9000/check
        timeout: 500ms
        request_headers: [Authorization, X-Session]
        response_headers: [X-User-ID, X-Org]
        subject_header: X-Org
        return_deny_body: true
        cache_ttl: 30s
        cache_max_entries: 100
`

func authEnv(name string) (string, bool) {
	if name == "SECRET" {
		return authSecret, true
	}
	return "", false
}

func TestLoadAuthFull(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "auth.yaml", []byte(authFull), authEnv)
	a := c.Auth
	if len(a.Issuers) != 4 || a.Issuers[0].Leeway.Duration != 10*time.Second || a.Issuers[0].PermissionsClaim != "realm_access.roles" ||
		a.Issuers[0].JWKSMinRefetch.Duration != time.Minute || a.Issuers[0].FetchTimeout.Duration != 3*time.Second ||
		a.Issuers[0].JWKSRefresh.Duration != 10*time.Minute || len(a.Issuers[0].Audiences) != 2 {
		t.Errorf("issuer main = %+v", a.Issuers[0])
	}
	if string(a.Issuers[2].HMACSecret) != authSecret {
		t.Errorf("hmac_secret not substituted")
	}
	if a.Issuers[2].HMACSecret.String() != "REDACTED" {
		t.Errorf("Secret.String() = %q, want REDACTED", a.Issuers[2].HMACSecret.String())
	}
	if b, _ := a.Issuers[2].HMACSecret.MarshalYAML(); strings.Contains(string(b), authSecret) {
		t.Errorf("Secret marshals its value")
	}
	// Defaults of the second issuer.
	if o := a.Issuers[1]; o.Leeway.Duration != 30*time.Second || o.PermissionsClaim != "permissions" || o.JWKSRefresh.Duration != time.Hour ||
		o.JWKSMinRefetch.Duration != 30*time.Second || o.FetchTimeout.Duration != 5*time.Second {
		t.Errorf("issuer defaults = %+v", o)
	}
	if a.MaxTokenSize.Bytes != 4096 || *a.TokenCache.MaxEntries != 50 || a.TokenCache.TTL.Duration != time.Minute || a.Realm != "api" {
		t.Errorf("auth = %+v", a)
	}
	if co := a.Consumers[0]; co.Tier != "gold" || co.Metadata["team"] != "x" || co.Permissions[0] != "users:read" {
		t.Errorf("consumer = %+v", co)
	}
	j := c.Routes[0].Plugins.JWT
	if j.Cookie != "session" || !j.AllowQuery || j.QueryParam != "token" || !j.HideCredentials ||
		len(j.Permissions.AllOf) != 1 || len(j.Permissions.AnyOf) != 2 {
		t.Errorf("jwt = %+v", j)
	}
	k := c.Routes[1].Plugins.APIKey
	if k.Header != "X-Key" || !k.AllowQuery || k.QueryParam != "key" || *k.HideCredentials || k.Consumers[0] != "partner-a" {
		t.Errorf("api_key = %+v", k)
	}
	f := c.Routes[2].Plugins.ForwardAuth
	if f.Timeout.Duration != 500*time.Millisecond || f.SubjectHeader != "X-Org" || !f.ReturnDenyBody ||
		f.CacheTTL.Duration != 30*time.Second || f.CacheMaxEntries != 100 || len(f.RequestHeaders) != 2 {
		t.Errorf("forward_auth = %+v", f)
	}
	want := "X-Org X-Roles X-Team X-Tenant X-User-Id"
	if got := strings.Join(c.AuthStripHeaders(), " "); got != want {
		t.Errorf("AuthStripHeaders = %q, want %q", got, want)
	}
}

func TestAuthDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "d.yaml", []byte(base+`auth:
  issuers: [{name: m, algorithms: [HS256], hmac_secret: "`+authSecret+`"}]
  consumers: [{name: c, keys: ["`+authHash+`"]}]
routes:
  - name: r
    match: { path: /a }
    service: users
    plugins: { jwt: {}, api_key: {} }
  - name: f
    match: { path: /f }
    service: users
    plugins: { forward_auth: { url: "http://127.0.0.1:1/" } }
`), noEnv)
	a := c.Auth
	if a.IdentityHeaders["X-User-ID"] != "sub" || a.IdentityHeaders["X-Consumer"] != "consumer" || len(a.IdentityHeaders) != 2 {
		t.Errorf("identity_headers default = %v", a.IdentityHeaders)
	}
	if a.MaxTokenSize.Bytes != 8192 || *a.TokenCache.MaxEntries != 10000 || a.TokenCache.TTL.Duration != 5*time.Minute || a.Realm != "gatehouse" {
		t.Errorf("auth defaults = %+v", a)
	}
	p := c.Routes[0].Plugins
	if p.JWT.Cookie != "access_token" || p.JWT.QueryParam != "access_token" || p.JWT.AllowQuery || p.JWT.HideCredentials {
		t.Errorf("jwt defaults = %+v", p.JWT)
	}
	if p.APIKey.Header != "X-API-Key" || p.APIKey.QueryParam != "api_key" || !*p.APIKey.HideCredentials || p.APIKey.AllowQuery {
		t.Errorf("api_key defaults = %+v", p.APIKey)
	}
	f := c.Routes[1].Plugins.ForwardAuth
	if f.Timeout.Duration != 2*time.Second || f.SubjectHeader != "X-User-ID" || f.CacheTTL.Duration != 0 || f.CacheMaxEntries != 10000 ||
		strings.Join(f.RequestHeaders, ",") != "Authorization,Cookie" {
		t.Errorf("forward_auth defaults = %+v", f)
	}
}

func TestAuthValidation(t *testing.T) {
	t.Parallel()
	iss := func(body string) string { return base + "auth:\n  issuers:\n    - name: m\n" + body }
	rt := func(plugins string) string {
		return base + `auth:
  issuers: [{name: m, algorithms: [HS256], hmac_secret: "` + authSecret + `"}]
  consumers: [{name: c, keys: ["` + authHash + `"]}]
routes:
  - name: r
    match: { path: /a }
    service: users
    plugins: ` + plugins + "\n"
	}
	tests := []struct {
		name, yaml, path, msg string
	}{
		{"no algorithms", iss("      hmac_secret: " + authSecret + "\n"), "auth.issuers[0].algorithms", "explicit list"},
		{"alg none", iss("      algorithms: [none]\n      jwks_url: https://x/j\n"), "auth.issuers[0].algorithms[0]", "never accepted"},
		{"unknown alg", iss("      algorithms: [RS1]\n      jwks_url: https://x/j\n"), "auth.issuers[0].algorithms[0]", "unknown algorithm"},
		{"HS with jwks", iss("      algorithms: [HS256]\n      jwks_url: https://x/j\n"), "auth.issuers[0].algorithms[0]", "algorithm confusion"},
		{"RS with secret", iss("      algorithms: [RS256]\n      hmac_secret: " + authSecret + "\n"), "auth.issuers[0].algorithms[0]", "needs public keys"},
		{"no key source", iss("      algorithms: [RS256]\n"), "auth.issuers[0]", "needs a key source"},
		{"short secret", iss("      algorithms: [HS256]\n      hmac_secret: short\n"), "auth.issuers[0].hmac_secret", "needs at least 32"},
		{"short secret for HS512", iss("      algorithms: [HS512]\n      hmac_secret: " + authSecret + "\n"), "auth.issuers[0].hmac_secret", "needs at least 64"},
		{"http jwks", iss("      algorithms: [RS256]\n      jwks_url: http://idp.example.com/j\n"), "auth.issuers[0].jwks_url", "must use https"},
		{"jwks and discovery", iss("      algorithms: [RS256]\n      jwks_url: https://a/j\n      discovery: https://a\n"), "auth.issuers[0].discovery", "cannot be combined"},
		{"plaintext key", base + "auth:\n  consumers: [{name: c, keys: [my-secret-key]}]\n", "auth.consumers[0].keys[0]", "not the key itself"},
		{"no keys", base + "auth:\n  consumers: [{name: c}]\n", "auth.consumers[0].keys", "at least one key"},
		{"duplicate key", base + "auth:\n  consumers: [{name: c, keys: [\"" + authHash + "\"]}, {name: d, keys: [\"" + "sha256:" + strings.ToUpper(authHash[7:]) + "\"]}]\n", "", ""},
		{"bad identity source", base + "auth:\n  identity_headers: { X-User-ID: subject }\n", "auth.identity_headers.X-User-ID", "unknown source"},
		{"bad strip header", base + "auth:\n  strip_headers: [\"X Bad\"]\n", "auth.strip_headers[0]", "not a valid header name"},
		{"unknown issuer", rt("{ jwt: { issuers: [nope] } }"), "routes[0].plugins.jwt.issuers[0]", `unknown issuer "nope"`},
		{"unknown consumer", rt("{ api_key: { consumers: [nope] } }"), "routes[0].plugins.api_key.consumers[0]", `unknown consumer "nope"`},
		{"bad permission", rt("{ jwt: { permissions: { all_of: [\"a b\"] } } }"), "routes[0].plugins.jwt.permissions.all_of[0]", "not a valid permission"},
		{"forward with jwt", rt("{ jwt: {}, forward_auth: { url: \"http://a/\" } }"), "routes[0].plugins.forward_auth", "cannot be combined"},
		{"forward without url", rt("{ forward_auth: { timeout: 1s } }"), "routes[0].plugins.forward_auth.url", "is required"},
		{"forward bad url", rt("{ forward_auth: { url: \"ftp://a/\" } }"), "routes[0].plugins.forward_auth.url", "http or https"},
		{"jwt without issuers", base + "routes:\n  - name: r\n    match: { path: /a }\n    service: users\n    plugins: { jwt: {} }\n", "routes[0].plugins.jwt", "at least one issuer"},
		{"api_key without consumers", base + "routes:\n  - name: r\n    match: { path: /a }\n    service: users\n    plugins: { api_key: {} }\n", "routes[0].plugins.api_key", "at least one consumer"},
		{"realm quote", base + "auth:\n  realm: 'a\"b'\n", "auth.realm", "must not contain"},
		{"tiny token size", base + "auth:\n  max_token_size: 10\n", "auth.max_token_size", "between"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("a.yaml", []byte(tt.yaml), noEnv)
			if err == nil {
				t.Fatal("config accepted")
			}
			if tt.path == "" {
				if !strings.Contains(err.Error(), "the same key is already listed") {
					t.Fatalf("err = %v", err)
				}
				return
			}
			es, ok := err.(Errors)
			if !ok {
				t.Fatalf("err = %T %v", err, err)
			}
			for _, e := range es {
				if e.Path == tt.path && strings.Contains(e.Msg, tt.msg) {
					if e.Line == 0 {
						t.Errorf("error has no line: %v", e)
					}
					return
				}
			}
			t.Fatalf("no error at %s containing %q; got:\n%v", tt.path, tt.msg, err)
		})
	}
}

// TestAuthErrorsNeverEchoKeys: a plaintext key pasted into keys must not appear in the error.
func TestAuthErrorsNeverEchoKeys(t *testing.T) {
	t.Parallel()
	_, err := Load("a.yaml", []byte(base+"auth:\n  consumers: [{name: c, keys: [sk_live_supersecret]}]\n"), noEnv)
	if err == nil || strings.Contains(err.Error(), "sk_live_supersecret") {
		t.Fatalf("err = %v", err)
	}
}

func TestValidKeyHash(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		authHash: true, strings.ToUpper(authHash[:7]) + authHash[7:]: false, authHash[:70]: false,
		"sha256:" + strings.Repeat("g", 64): false, "md5:abc": false, "": false,
	} {
		if got := ValidKeyHash(s); got != want {
			t.Errorf("ValidKeyHash(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestLoadFullConfigAuth asserts the auth part of testdata/full.yaml (which sets every field).
func TestLoadFullConfigAuth(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "full.yaml", readTestdata(t, "full.yaml"), noEnv)
	a := c.Auth
	if len(a.Issuers) != 4 || a.Issuers[0].JWKSMinRefetch.Duration != time.Minute || a.Issuers[1].Discovery != "https://login.example.com" ||
		a.Issuers[3].HMACSecretFile != "/run/secrets/jwt" || a.MaxTokenSize.Bytes != 4096 || a.Realm != "api" ||
		a.Consumers[0].Metadata["team"] != "payments" || a.IdentityHeaders["X-Tenant"] != "claim:org.id" {
		t.Fatalf("auth = %+v", a)
	}
	var me, legacy *Route
	for i := range c.Routes {
		switch c.Routes[i].Name {
		case "me":
			me = &c.Routes[i]
		case "legacy":
			legacy = &c.Routes[i]
		}
	}
	if me == nil || legacy == nil || me.Plugins.JWT.QueryParam != "token" || me.Plugins.APIKey.Header != "X-Key" ||
		legacy.Plugins.ForwardAuth.CacheTTL.Duration != 30*time.Second || legacy.Plugins.ForwardAuth.SubjectHeader != "X-Org" {
		t.Fatalf("auth plugins of routes me/legacy not as in full.yaml")
	}
}

// TestRouteMatchOnIdentityHeaderRefused: the identity headers are dropped from every request
// before routing (a client's copy is a spoof, the gateway's own is set after the route is
// chosen), so a route matching on one could never match; it is refused with its location.
func TestRouteMatchOnIdentityHeaderRefused(t *testing.T) {
	t.Parallel()
	_, err := Load("gw.yaml", []byte(base+`auth:
  identity_headers: { X-Tier: tier }
routes:
  - name: gold
    match: { path: /api/**, headers: { x-tier: gold, X-Plan: gold } }
    service: users
`), noEnv)
	checkErrors(t, err, []wantErr{{12, 40, "routes[0].match.headers.x-tier", "X-Tier is an identity header the gateway removes from every request before routing"}})
}

// TestCredentialHeadersNotStripped: identity and strip headers are removed from every request
// before any route runs, so naming a header clients send credentials in would refuse every
// credential; it is a config error. A forward_auth route may hand the upstream one (an
// internal token in Authorization): that one is not stripped on arrival.
func TestCredentialHeadersNotStripped(t *testing.T) {
	t.Parallel()
	_, err := Load("gw.yaml", []byte(base+`auth:
  identity_headers: { authorization: sub }
  strip_headers: [X-Api-Key, X-Roles]
  consumers: [{ name: c, keys: ["sha256:0000000000000000000000000000000000000000000000000000000000000000"] }]
routes:
  - name: r
    match: { path: /a/** }
    service: users
    plugins: { api_key: {} }
`), noEnv)
	checkErrors(t, err, []wantErr{
		{9, 23, "auth.identity_headers.authorization", "authorization carries clients' credentials"},
		{10, 19, "auth.strip_headers[0]", "X-Api-Key carries clients' credentials"},
	})
	c, err := Load("gw.yaml", []byte(base+`routes:
  - name: r
    match: { path: /a/** }
    service: users
    plugins: { forward_auth: { url: "http://127.0.0.1:9/check", response_headers: [Authorization, X-User] } }
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.AuthStripHeaders(), " "); got != "X-Consumer X-User X-User-Id" {
		t.Errorf("AuthStripHeaders = %q: a forward_auth Authorization must not be stripped on arrival", got)
	}
}
