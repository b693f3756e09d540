package auth_test

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/middleware/auth"
	"github.com/golang-jwt/jwt/v5"
)

const hmacSecret = "test-secret-of-at-least-32-bytes!!"

const apiKey = "gh_test_key_0123456789abcdefghijklmnop"

const gatewayYAML = `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services:
  - name: echo
    targets: [{ url: "http://${ECHO}" }]
auth:
  issuers:
    - name: idp
      issuer: https://idp.test/
      audiences: [api]
      algorithms: [RS256, ES256, EdDSA]
      jwks_url: http://${JWKS}/jwks.json
      leeway: 0s
      jwks_min_refetch: ${MIN_REFETCH:-200ms}
    - name: local
      issuer: local
      audiences: [api]
      algorithms: [HS256]
      hmac_secret: ${SECRET}
  consumers:
    - name: partner
      tier: gold
      keys: ["${KEYHASH}"]
      permissions: ["users:read"]
      metadata: { team: blue }
    - name: other
      keys: ["sha256:0000000000000000000000000000000000000000000000000000000000000000"]
  identity_headers:
    X-User-ID: sub
    X-Consumer: consumer
    X-Tier: tier
    X-Perms: permissions
    X-Team: "meta:team"
    X-Org: "claim:org.id"
    X-Auth-Method: method
  strip_headers: [X-Roles]
routes:
  - name: public
    match: { path: /public/** }
    service: echo
  - name: users
    match: { path: /users/** }
    service: echo
    plugins:
      jwt: { issuers: [idp, local], permissions: { all_of: ["users:read"] } }
      api_key: {}
  - name: admin
    match: { path: /admin/** }
    service: echo
    plugins:
      jwt: { issuers: [idp], permissions: { any_of: [admin, root], all_of: ["users:read"] } }
  - name: query
    match: { path: /q/** }
    service: echo
    plugins:
      jwt: { issuers: [idp], allow_query: true, hide_credentials: true }
  - name: others
    match: { path: /others/** }
    service: echo
    plugins:
      api_key: { consumers: [other] }
`

type fixture struct {
	g      *gateway
	jwks   *jwksServer
	rsa    *signer
	ec     *signer
	ed     *signer
	secret []byte
}

func newFixture(t *testing.T, env ...string) *fixture {
	t.Helper()
	f := &fixture{rsa: newRSA(t, "rsa-1"), ec: newEC(t, "ec-1"), ed: newEd(t, "ed-1"), secret: []byte(hmacSecret)}
	f.jwks = newJWKS(t, f.rsa, f.ec, f.ed)
	e := map[string]string{"ECHO": hostPort(newEcho(t)), "JWKS": hostPort(f.jwks.Server), "SECRET": hmacSecret,
		"KEYHASH": auth.HashKey(apiKey)}
	for i := 0; i+1 < len(env); i += 2 {
		e[env[i]] = env[i+1]
	}
	f.g = startGateway(t, gatewayYAML, e)
	return f
}

var readPerm = jwt.MapClaims{"permissions": []string{"users:read"}}

func TestJWTAlgorithmsAndIdentity(t *testing.T) {
	f := newFixture(t)
	claims := jwt.MapClaims{"sub": "alice", "permissions": []string{"users:read", "x"}, "org": map[string]any{"id": "acme"}}
	for _, s := range []*signer{f.rsa, f.ec, f.ed} {
		t.Run(s.alg, func(t *testing.T) {
			r := f.g.get(t, "/users/1", bearer(s.sign(t, claims))...)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			e := r.echo
			if e.h("X-User-Id") != "alice" || e.h("X-Perms") != "users:read x" || e.h("X-Org") != "acme" || e.h("X-Auth-Method") != "jwt" {
				t.Fatalf("identity headers upstream: %v", e.Header)
			}
			if e.h("X-Consumer") != "" || e.h("X-Tier") != "" {
				t.Fatalf("consumer headers on a JWT request: %v", e.Header)
			}
			if e.h("Authorization") == "" {
				t.Fatal("the token was removed although hide_credentials is off")
			}
		})
	}
	t.Run("HS256", func(t *testing.T) {
		r := f.g.get(t, "/users/1", bearer(signHS(t, f.secret, jwt.MapClaims{"sub": "bob", "permissions": "users:read"}))...)
		if r.status != 200 || r.echo.h("X-User-Id") != "bob" {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
	t.Run("scope string claim", func(t *testing.T) {
		// permissions given as a space-separated string are split.
		r := f.g.get(t, "/users/1", bearer(f.rsa.sign(t, jwt.MapClaims{"permissions": "a users:read"}))...)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
	t.Run("cookie", func(t *testing.T) {
		r := f.g.get(t, "/users/1", "Cookie", "theme=dark; access_token="+f.rsa.sign(t, readPerm))
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
}

func TestJWTAttacks(t *testing.T) {
	f := newFixture(t)
	valid := f.rsa.sign(t, readPerm)
	parts := strings.Split(valid, ".")

	// alg none: header {"alg":"none"}, no signature.
	noneTok := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, withDefaults(readPerm, "https://idp.test/"))
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	// HS256 signed with the RSA public key (the classic confusion attack), kid of the RSA key.
	confusion := func() string {
		pub, _ := x509.MarshalPKIXPublicKey(f.rsa.key.Public())
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, withDefaults(readPerm, "https://idp.test/"))
		tok.Header["kid"] = "rsa-1"
		s, err := tok.SignedString(pemKey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	// Same with the public key's JWK modulus bytes as the secret.
	confusionN := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, withDefaults(readPerm, "https://idp.test/"))
		tok.Header["kid"] = "rsa-1"
		s, _ := tok.SignedString(f.rsa.key.Public().(*rsa.PublicKey).N.Bytes())
		return s
	}()
	tampered := func() string {
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		var m map[string]any
		_ = json.Unmarshal(payload, &m)
		m["sub"] = "admin"
		m["permissions"] = []string{"users:read", "admin"}
		b, _ := json.Marshal(m)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	}()
	attacker := newRSA(t, "rsa-1") // right kid, wrong key
	past := time.Now().Add(-time.Hour).Unix()
	future := time.Now().Add(time.Hour).Unix()
	expiredForged := func() string {
		tok := attacker.sign(t, jwt.MapClaims{"exp": past, "iat": past - 60})
		return tok
	}()
	huge := f.rsa.sign(t, jwt.MapClaims{"permissions": []string{"users:read"}, "pad": strings.Repeat("x", 9000)})

	tests := []struct {
		name   string
		hdr    []string
		path   string
		status int
		code   string
	}{
		{"missing", nil, "/users/1", 401, "missing_credentials"},
		{"alg none", bearer(noneTok), "/users/1", 401, "invalid_token"},
		{"HS256 with the RSA public key", bearer(confusion), "/users/1", 401, "invalid_token"},
		{"HS256 with the RSA modulus", bearer(confusionN), "/users/1", 401, "invalid_token"},
		{"tampered payload", bearer(tampered), "/users/1", 401, "invalid_token"},
		{"signature of another key", bearer(attacker.sign(t, readPerm)), "/users/1", 401, "invalid_token"},
		{"signature stripped", bearer(parts[0] + "." + parts[1] + "."), "/users/1", 401, "invalid_token"},
		{"malformed", bearer("not.a.jwt"), "/users/1", 401, "invalid_token"},
		{"garbage", bearer("%%%"), "/users/1", 401, "invalid_token"},
		{"empty bearer", []string{"Authorization", "Bearer "}, "/users/1", 401, "invalid_token"},
		{"expired", bearer(f.rsa.sign(t, jwt.MapClaims{"permissions": []string{"users:read"}, "exp": past, "iat": past - 60})), "/users/1", 401, "token_expired"},
		{"expired and forged is invalid, not expired", bearer(expiredForged), "/users/1", 401, "invalid_token"},
		// A new token with the same audience or issuer would fail again: not "expired".
		{"expired with a wrong aud is invalid", bearer(f.rsa.sign(t, jwt.MapClaims{"aud": "other", "exp": past, "iat": past - 60})), "/users/1", 401, "invalid_token"},
		{"expired with a wrong iss is invalid", bearer(f.rsa.sign(t, jwt.MapClaims{"iss": "https://evil.test/", "exp": past, "iat": past - 60})), "/users/1", 401, "invalid_token"},
		{"not yet valid", bearer(f.rsa.sign(t, jwt.MapClaims{"nbf": future})), "/users/1", 401, "invalid_token"},
		{"issued in the future", bearer(f.rsa.sign(t, jwt.MapClaims{"iat": future})), "/users/1", 401, "invalid_token"},
		{"no exp", bearer(f.rsa.sign(t, jwt.MapClaims{"exp": nil, "permissions": []string{"users:read"}})), "/users/1", 401, "invalid_token"},
		{"wrong iss", bearer(f.rsa.sign(t, jwt.MapClaims{"iss": "https://evil.test/"})), "/users/1", 401, "invalid_token"},
		{"wrong aud", bearer(f.rsa.sign(t, jwt.MapClaims{"aud": "other"})), "/users/1", 401, "invalid_token"},
		{"no aud", bearer(f.rsa.sign(t, jwt.MapClaims{"aud": nil})), "/users/1", 401, "invalid_token"},
		{"HS256 token from the idp issuer", bearer(signHS(t, f.secret, jwt.MapClaims{"iss": "https://idp.test/"})), "/users/1", 401, "invalid_token"},
		{"unknown kid", bearer(newRSA(t, "nope").sign(t, readPerm)), "/users/1", 401, "invalid_token"},
		{"oversized token", bearer(huge), "/users/1", 401, "invalid_token"},
		{"two Authorization headers", append(bearer(valid), bearer(valid)...), "/users/1", 401, "invalid_token"},
		{"basic auth is no bearer", []string{"Authorization", "Basic dTpw"}, "/users/1", 401, "missing_credentials"},
		{"no permission", bearer(f.rsa.sign(t, jwt.MapClaims{"permissions": []string{"other"}})), "/users/1", 403, "forbidden"},
		{"any_of unmet", bearer(f.rsa.sign(t, readPerm)), "/admin/x", 403, "forbidden"},
		{"all_of unmet", bearer(f.rsa.sign(t, jwt.MapClaims{"permissions": []string{"root"}})), "/admin/x", 403, "forbidden"},
		{"token in query not allowed", nil, "/users/1?access_token=" + valid, 401, "missing_credentials"},
		{"invalid bearer is not rescued by an API key", append(bearer("bad"), "X-API-Key", apiKey), "/users/1", 401, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.g.get(t, tt.path, tt.hdr...)
			wantError(t, r, tt.status, tt.code)
			challenge := strings.Join(r.header.Values("Www-Authenticate"), " | ")
			switch {
			case tt.status == 403:
				if !strings.Contains(challenge, `error="insufficient_scope"`) {
					t.Errorf("WWW-Authenticate = %q", challenge)
				}
			case tt.code == "missing_credentials":
				if !strings.HasPrefix(challenge, `Bearer realm="gatehouse"`) || strings.Contains(challenge, "error=") {
					t.Errorf("WWW-Authenticate = %q", challenge)
				}
			default:
				if !strings.Contains(challenge, `Bearer realm="gatehouse", error="invalid_token"`) {
					t.Errorf("WWW-Authenticate = %q", challenge)
				}
			}
			if !strings.Contains(f.g.logs.String(), `"request_id":"`+r.err.RequestID+`"`) {
				t.Errorf("no security log line with the request ID")
			}
		})
	}
	t.Run("allowed", func(t *testing.T) {
		if r := f.g.get(t, "/admin/x", bearer(f.rsa.sign(t, jwt.MapClaims{"permissions": []string{"users:read", "root"}}))...); r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
	logs := f.g.logs.String()
	for _, secret := range []string{valid, parts[2], tampered, apiKey} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a credential was logged")
		}
	}
	for _, want := range []string{`"level":"WARN","msg":"auth failure"`, `"route":"users"`, `"client_ip":"127.0.0.1"`, `"kid":"nope"`, `"error":"token_expired"`,
		`"unverified_subject":"admin"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("security log lacks %s", want)
		}
	}
	// The tampered token names sub "admin": a token that failed verification must not put
	// its subject in the log as if it were the caller.
	if strings.Contains(logs, `"subject":"admin"`) {
		t.Errorf("an unverified subject is logged as the subject")
	}
}

func TestQueryToken(t *testing.T) {
	f := newFixture(t)
	tok := f.rsa.sign(t, nil)
	r := f.g.get(t, "/q/x?a=1&access_token="+tok+"&b=2")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if r.echo.Query != "a=1&b=2" {
		t.Fatalf("upstream query %q: the token must be removed", r.echo.Query)
	}
	// hide_credentials removes the Authorization header on this route.
	r = f.g.get(t, "/q/x", bearer(tok)...)
	if r.status != 200 || r.echo.h("Authorization") != "" {
		t.Fatalf("status %d, Authorization upstream %q", r.status, r.echo.h("Authorization"))
	}
}

func TestSpoofedIdentityHeadersAreStripped(t *testing.T) {
	f := newFixture(t)
	spoof := []string{"X-User-ID", "admin", "X-Consumer", "root", "X-Tier", "platinum", "X-Roles", "admin", "X-Org", "evil", "X-Perms", "admin"}
	// A public route: nothing authenticates, but client copies never reach the upstream.
	r := f.g.get(t, "/public/x", spoof...)
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	for _, h := range []string{"X-User-Id", "X-Consumer", "X-Tier", "X-Roles", "X-Org", "X-Perms"} {
		if v := r.echo.h(h); v != "" {
			t.Errorf("public route: upstream got spoofed %s: %q", h, v)
		}
	}
	// A protected route: the gateway's values replace the client's.
	r = f.g.get(t, "/users/1", append(spoof, bearer(f.rsa.sign(t, jwt.MapClaims{"sub": "alice", "permissions": []string{"users:read"}}))...)...)
	if r.status != 200 || r.echo.h("X-User-Id") != "alice" || r.echo.h("X-Consumer") != "" || r.echo.h("X-Roles") != "" || r.echo.h("X-Org") != "" {
		t.Fatalf("status %d, upstream headers %v", r.status, r.echo.Header)
	}
}

func TestAPIKey(t *testing.T) {
	f := newFixture(t)
	r := f.g.get(t, "/users/1", "X-API-Key", apiKey)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	e := r.echo
	if e.h("X-Consumer") != "partner" || e.h("X-Tier") != "gold" || e.h("X-Team") != "blue" || e.h("X-Auth-Method") != "api_key" || e.h("X-User-Id") != "" {
		t.Fatalf("identity headers: %v", e.Header)
	}
	if e.h("X-Api-Key") != "" {
		t.Fatal("the API key was forwarded upstream (hide_credentials defaults to true)")
	}
	for _, tt := range []struct {
		name string
		path string
		hdr  []string
		code string
	}{
		{"wrong key", "/users/1", []string{"X-API-Key", apiKey + "x"}, "invalid_api_key"},
		{"key in query not allowed", "/users/1?api_key=" + apiKey, nil, "missing_credentials"},
		{"two keys", "/users/1", []string{"X-API-Key", apiKey, "X-API-Key", apiKey}, "invalid_token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := f.g.get(t, tt.path, tt.hdr...)
			wantError(t, r, 401, tt.code)
			if c := strings.Join(r.header.Values("Www-Authenticate"), " | "); !strings.Contains(c, `APIKey realm="gatehouse", header="X-Api-Key"`) {
				t.Errorf("WWW-Authenticate = %q", c)
			}
		})
	}
	// A valid key whose consumer the route does not admit is an authorization failure: 403.
	r = f.g.get(t, "/others/1", "X-API-Key", apiKey)
	wantError(t, r, 403, "forbidden")
	logs := f.g.logs.String()
	if !strings.Contains(logs, "consumer partner is not allowed on this route") {
		t.Error("the refusal's reason is not logged")
	}
	if strings.Contains(logs, apiKey) {
		t.Fatal("an API key was logged")
	}
	if !strings.Contains(logs, `"key_id":"`) || !strings.Contains(logs, `"auth_method":"api_key"`) {
		t.Fatalf("security log lacks the key ID: %s", logs)
	}
}

func TestJWKSRotation(t *testing.T) {
	f := newFixture(t)
	if r := f.g.get(t, "/users/1", bearer(f.rsa.sign(t, readPerm))...); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	// The IdP rotates: a new key (new kid) is published, the old one withdrawn. A token signed
	// with the new key works at once, without a restart: its unknown kid triggers a refetch.
	next := newRSA(t, "rsa-2")
	f.jwks.set(next, f.ec, f.ed)
	time.Sleep(250 * time.Millisecond) // past jwks_min_refetch
	if r := f.g.get(t, "/users/1", bearer(next.sign(t, readPerm))...); r.status != 200 {
		t.Fatalf("token of the rotated-in key: status %d: %s", r.status, r.body)
	}
	// A fresh token of the withdrawn key is refused (it is no longer in the set).
	if r := f.g.get(t, "/users/1", bearer(f.rsa.sign(t, jwt.MapClaims{"permissions": []string{"users:read"}, "jti": "new"}))...); r.status != 401 {
		t.Fatalf("token of the withdrawn key: status %d", r.status)
	}
}

func TestUnknownKIDFloodDoesNotHammerTheIdP(t *testing.T) {
	f := newFixture(t, "MIN_REFETCH", "1m")
	before := f.jwks.fetches.Load()
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 25; j++ {
				bogus := newEd(t, fmt.Sprintf("bogus-%d-%d", i, j))
				r := f.g.get(t, "/users/1", bearer(bogus.sign(t, readPerm))...)
				if r.status != 401 {
					t.Errorf("status %d", r.status)
				}
			}
		}(i)
	}
	wg.Wait()
	if n := f.jwks.fetches.Load() - before; n > 1 {
		t.Fatalf("200 tokens with unknown kids caused %d JWKS fetches; want at most 1 per jwks_min_refetch", n)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the flood took %v: refusals must not wait on the rate limit", d)
	}
	// Real keys still work.
	if r := f.g.get(t, "/users/1", bearer(f.ec.sign(t, readPerm))...); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
}

func TestDiscoveryAndPEMKeys(t *testing.T) {
	rsaKey, ecKey := newRSA(t, ""), newEC(t, "")
	idp := newJWKS(t, rsaKey)
	pub, err := x509.MarshalPKIXPublicKey(ecKey.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(t.TempDir(), "idp.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services: [{ name: echo, targets: [{ url: "http://${ECHO}" }] }]
auth:
  issuers:
    - { name: oidc, issuer: "https://idp.test/", algorithms: [RS256], discovery: "http://${IDP}" }
    - { name: pem, issuer: "https://pem.test/", algorithms: [ES256], public_keys: ["${PEM}"] }
routes:
  - { name: r, match: { path: /** }, service: echo, plugins: { jwt: {} } }
`, map[string]string{"ECHO": hostPort(newEcho(t)), "IDP": hostPort(idp.Server), "PEM": pemFile})
	if r := g.get(t, "/x", bearer(rsaKey.sign(t, nil))...); r.status != 200 {
		t.Fatalf("discovery issuer: status %d: %s", r.status, r.body)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, withDefaults(nil, "https://pem.test/"))
	s, _ := tok.SignedString(ecKey.key)
	if r := g.get(t, "/x", bearer(s)...); r.status != 200 {
		t.Fatalf("PEM issuer: status %d: %s", r.status, r.body)
	}
	// The iss picks the issuer: an RS256 token claiming the PEM issuer is refused.
	tok = jwt.NewWithClaims(jwt.SigningMethodRS256, withDefaults(nil, "https://pem.test/"))
	s, _ = tok.SignedString(rsaKey.key)
	if r := g.get(t, "/x", bearer(s)...); r.status != 401 {
		t.Fatalf("cross-issuer token: status %d", r.status)
	}
}

func TestIssuerSurvivesReload(t *testing.T) {
	f := newFixture(t)
	before := f.jwks.fetches.Load()
	// Same auth config, another route: the issuer (JWKS cache and refresh goroutine) is reused.
	cfg := f.g.load(t, gatewayYAML+`
  - name: extra
    match: { path: /extra }
    service: echo
`)
	if err := f.g.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if n := f.jwks.fetches.Load() - before; n != 0 {
		t.Fatalf("reload with an unchanged issuer fetched the JWKS %d times", n)
	}
	if r := f.g.get(t, "/users/1", bearer(f.rsa.sign(t, readPerm))...); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	// A changed issuer config builds a new issuer (one fetch); the old one is closed once the old
	// runtime drains (goleak in TestMain checks no refresh goroutine is left behind).
	cfg = f.g.load(t, strings.Replace(gatewayYAML, "leeway: 0s", "leeway: 1s", 1))
	if err := f.g.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if n := f.jwks.fetches.Load() - before; n != 1 {
		t.Fatalf("reload with a changed issuer fetched the JWKS %d times, want 1", n)
	}
}

// forwardService is an auth service whose decisions tests change, counting its calls.
type forwardService struct {
	mu    sync.Mutex
	calls int
	last  *http.Request
	body  int64
	allow map[string]string // Authorization -> user ID
	delay time.Duration
	fail  bool
}

func (s *forwardService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls++
	s.last = r.Clone(r.Context())
	s.body = r.ContentLength
	user, ok := s.allow[r.Header.Get("Authorization")]
	delay, fail := s.delay, s.fail
	s.mu.Unlock()
	time.Sleep(delay)
	switch {
	case fail:
		w.WriteHeader(500)
	case ok:
		w.Header().Set("X-User-ID", user)
		w.Header().Set("X-Org", "acme")
		w.Header().Set("X-Internal", "secret")
	case r.Header.Get("Authorization") == "Bearer forbidden":
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(403)
		_, _ = w.Write([]byte("you shall not pass"))
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="sso"`)
		w.WriteHeader(401)
	}
}

func (s *forwardService) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *forwardService) set(f func(*forwardService)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func TestForwardAuth(t *testing.T) {
	svc := &forwardService{allow: map[string]string{"Bearer good": "u-1"}}
	as := newServer(t, svc)
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services: [{ name: echo, targets: [{ url: "http://${ECHO}" }] }]
routes:
  - name: cached
    match: { path: /c/** }
    service: echo
    plugins:
      forward_auth:
        url: "http://${AUTH}/check"
        timeout: 300ms
        response_headers: [X-User-ID, X-Org]
        return_deny_body: true
        cache_ttl: 1s
  - name: uncached
    match: { path: /u/** }
    service: echo
    plugins:
      forward_auth: { url: "http://${AUTH}/check", timeout: 300ms, response_headers: [X-User-ID] }
  - { name: public, match: { path: /p }, service: echo }
`, map[string]string{"ECHO": hostPort(newEcho(t)), "AUTH": hostPort(as)})

	t.Run("allow copies headers, sends request facts, no body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, g.base+"/u/x?y=1", strings.NewReader("secret body"))
		req.Header.Set("Authorization", "Bearer good")
		req.Header.Set("X-User-ID", "spoofed")
		req.Header.Set("X-Not-Sent", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e echoed
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 200 || e.h("X-User-Id") != "u-1" || e.h("X-Internal") != "" {
			t.Fatalf("status %d, upstream %v", resp.StatusCode, e.Header)
		}
		svc.mu.Lock()
		last, body := svc.last, svc.body
		svc.mu.Unlock()
		if last.Method != http.MethodGet || body != 0 || last.Header.Get("X-Forwarded-Method") != "POST" ||
			last.Header.Get("X-Forwarded-Uri") != "/u/x?y=1" || last.Header.Get("X-Forwarded-For") != "127.0.0.1" ||
			last.Header.Get("Authorization") != "Bearer good" || last.Header.Get("X-Not-Sent") != "" || last.Header.Get("X-Request-Id") == "" {
			t.Fatalf("auth request: %s %v (body %d)", last.Method, last.Header, body)
		}
	})
	t.Run("deny 401 and 403", func(t *testing.T) {
		r := g.get(t, "/u/x", "Authorization", "Bearer bad")
		wantError(t, r, 401, "unauthorized")
		if r.header.Get("Www-Authenticate") != `Bearer realm="sso"` {
			t.Errorf("WWW-Authenticate = %q", r.header.Get("Www-Authenticate"))
		}
		r = g.get(t, "/c/x", "Authorization", "Bearer forbidden")
		if r.status != 403 || r.body != "you shall not pass" || r.header.Get("X-Request-Id") == "" {
			t.Fatalf("deny body not relayed: %d %q", r.status, r.body)
		}
	})
	t.Run("cache and TTL", func(t *testing.T) {
		n := svc.count()
		for i := 0; i < 5; i++ {
			if r := g.get(t, "/c/x", "Authorization", "Bearer good"); r.status != 200 || r.echo.h("X-Org") != "acme" {
				t.Fatalf("status %d %v", r.status, r.echo.Header)
			}
		}
		if got := svc.count() - n; got != 1 {
			t.Fatalf("5 requests with one credential made %d auth calls, want 1", got)
		}
		// Revoke: within the TTL the cached decision stands, after it the credential is refused.
		svc.set(func(s *forwardService) { s.allow = map[string]string{} })
		if r := g.get(t, "/c/x", "Authorization", "Bearer good"); r.status != 200 {
			t.Fatalf("within TTL: %d", r.status)
		}
		time.Sleep(1100 * time.Millisecond)
		if r := g.get(t, "/c/x", "Authorization", "Bearer good"); r.status != 401 {
			t.Fatalf("after TTL a revoked credential got %d", r.status)
		}
		if got := svc.count() - n; got != 2 {
			t.Fatalf("auth calls = %d, want 2", got)
		}
		// Uncached route: every request asks.
		n = svc.count()
		g.get(t, "/u/x", "Authorization", "Bearer x")
		g.get(t, "/u/x", "Authorization", "Bearer x")
		if got := svc.count() - n; got != 2 {
			t.Fatalf("uncached: %d calls, want 2", got)
		}
	})
	t.Run("fail closed", func(t *testing.T) {
		svc.set(func(s *forwardService) { s.fail = true })
		wantError(t, g.get(t, "/u/x", "Authorization", "Bearer good"), 503, "auth_unavailable")
		svc.set(func(s *forwardService) { s.fail = false; s.delay = time.Second })
		start := time.Now()
		wantError(t, g.get(t, "/u/x", "Authorization", "Bearer good"), 503, "auth_unavailable")
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Fatalf("timeout not enforced: %v", d)
		}
		svc.set(func(s *forwardService) { s.delay = 0 })
	})
	t.Run("public route strips forward-auth headers", func(t *testing.T) {
		r := g.get(t, "/p", "X-User-ID", "admin", "X-Org", "evil")
		if r.status != 200 || r.echo.h("X-User-Id") != "" || r.echo.h("X-Org") != "" {
			t.Fatalf("status %d %v", r.status, r.echo.Header)
		}
	})
	as.Close()
	wantError(t, g.get(t, "/u/x", "Authorization", "Bearer good"), 503, "auth_unavailable")
}
