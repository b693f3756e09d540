package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestDuplicateTokenCookieIsRepeatedCredential: two access_token cookies are a repeated
// credential, refused as two Authorization headers are. The gateway used to authenticate the
// first and forward both: an upstream whose cookie parser keeps the last saw another identity.
func TestDuplicateTokenCookieIsRepeatedCredential(t *testing.T) {
	g := echoGateway(t, `
auth:
  issuers: [{ name: t, issuer: test, audiences: [api], algorithms: [HS256], hmac_secret: "`+aggSecret+`" }]
routes:
  - name: app
    match: { path: /app/** }
    service: b
    plugins: { jwt: { issuers: [t] } }
`)
	alice := aggToken(t, aggSecret, map[string]any{"iss": "test", "aud": "api", "sub": "alice"})
	bob := aggToken(t, aggSecret, map[string]any{"iss": "test", "aud": "api", "sub": "bob"})

	// Control: repeated Authorization headers are refused.
	req, _ := http.NewRequest(http.MethodGet, g.base+"/app/x", nil)
	req.Header.Add("Authorization", "Bearer "+alice)
	req.Header.Add("Authorization", "Bearer "+bob)
	if resp, body := g.do(t, req); resp.StatusCode != 401 {
		t.Fatalf("two Authorization headers: %d %s, want 401", resp.StatusCode, body)
	}

	resp, body := g.get(t, "/app/x", "Cookie", "access_token="+alice+"; access_token="+bob)
	if resp.StatusCode != 401 {
		e := decodeEcho(t, body)
		t.Fatalf("two access_token cookies (alice, bob): %d, want 401 as for repeated headers; upstream saw X-User-Id %q with Cookie %d bytes holding both tokens",
			resp.StatusCode, e.Header["X-User-Id"], len(e.Header["Cookie"][0]))
	}
}

// TestUserRateLimitKeyedByIssuer: a limit keyed by user counted the subject alone, so a
// caller of another issuer who picked the victim's sub spent the victim's budget.
func TestUserRateLimitKeyedByIssuer(t *testing.T) {
	const partnerSecret = "partner-issuer-secret-of-32-bytes-at-least!!"
	g := echoGateway(t, `
auth:
  issuers:
    - { name: main, issuer: main, audiences: [api], algorithms: [HS256], hmac_secret: "`+aggSecret+`" }
    - { name: partner, issuer: partner, audiences: [api], algorithms: [HS256], hmac_secret: "`+partnerSecret+`" }
routes:
  - name: app
    match: { path: /app/** }
    service: b
    plugins:
      jwt: { issuers: [main, partner] }
      rate_limit: [{ name: per-user, key: user, limit: 2, per: 1h }]
`)
	victim := aggToken(t, aggSecret, map[string]any{"iss": "main", "aud": "api", "sub": "42"})
	attacker := aggToken(t, partnerSecret, map[string]any{"iss": "partner", "aud": "api", "sub": "42"})
	for i := 0; i < 3; i++ {
		g.get(t, "/app/x", "Authorization", "Bearer "+attacker)
	}
	if resp, body := g.get(t, "/app/x", "Authorization", "Bearer "+victim); resp.StatusCode != 200 {
		t.Fatalf("main's user 42, never seen before: %d %s; want 200 (partner's user 42 spent its budget)", resp.StatusCode, body)
	}
}

// TestForwardAuthCredentialResponseHeader: a forward_auth service that hands the upstream an
// internal token in Authorization (Traefik's authResponseHeaders, oauth2-proxy) put
// Authorization on the strip list of every route, so every jwt route lost the client's token
// before reading it (valid tokens got 401 everywhere) and the auth service never saw it either.
// Now the client's Authorization reaches the jwt route and the auth service, and on the
// forward_auth route the upstream gets the auth service's token, or none.
func TestForwardAuthCredentialResponseHeader(t *testing.T) {
	var grant atomic.Value // the Authorization the auth service hands on ("" for none)
	grant.Store("")
	var seen atomic.Value // the Authorization the auth service received
	seen.Store("")
	authz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Header.Get("Authorization"))
		if v := grant.Load().(string); v != "" {
			w.Header().Set("Authorization", v)
		}
	}))
	t.Cleanup(authz.Close)
	g := echoGateway(t, `
auth:
  issuers: [{ name: t, issuer: test, audiences: [api], algorithms: [HS256], hmac_secret: "`+aggSecret+`" }]
routes:
  - name: api
    match: { path: /api/** }
    service: b
    plugins: { jwt: { issuers: [t] } }
  - name: legacy
    match: { path: /legacy/** }
    service: b
    plugins: { forward_auth: { url: "http://`+hostPort(authz)+`/check", response_headers: [Authorization, X-User-ID] } }
`)
	tok := aggToken(t, aggSecret, map[string]any{"iss": "test", "aud": "api", "sub": "alice"})
	if resp, body := g.get(t, "/api/x", "Authorization", "Bearer "+tok); resp.StatusCode != 200 {
		t.Fatalf("valid bearer token on the jwt route: %d %s; want 200", resp.StatusCode, body)
	}

	grant.Store("Bearer internal")
	resp, body := g.get(t, "/legacy/x", "Authorization", "Bearer client")
	if resp.StatusCode != 200 || seen.Load() != "Bearer client" {
		t.Fatalf("forward_auth route: %d, the auth service saw Authorization %q; want 200 and the client's", resp.StatusCode, seen.Load())
	}
	if got := decodeEcho(t, body).Header["Authorization"]; len(got) != 1 || got[0] != "Bearer internal" {
		t.Errorf("upstream of the forward_auth route got Authorization %q, want the auth service's", got)
	}
	grant.Store("")
	_, body = g.get(t, "/legacy/x", "Authorization", "Bearer client")
	if got := decodeEcho(t, body).Header["Authorization"]; len(got) != 0 {
		t.Errorf("the auth service handed on no Authorization, yet the upstream got %q", got)
	}
}

// TestAggregateForwardAuthCredentialResponseHeader: on a forward_auth aggregate route, the
// calls carry the auth service's credential header (an internal token) as they carry its other
// response headers, although such a header is not among the ones stripped on arrival.
func TestAggregateForwardAuthCredentialResponseHeader(t *testing.T) {
	authz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Authorization", "Bearer internal")
		w.Header().Set("X-User-ID", "alice")
	}))
	t.Cleanup(authz.Close)
	g := echoGateway(t, `
routes:
  - name: page
    match: { path: /page }
    plugins: { forward_auth: { url: "http://`+hostPort(authz)+`/check", response_headers: [Authorization, X-User-ID] } }
    aggregate:
      calls:
        - { name: me, service: b, path: /me, required: true }
`)
	resp, body := g.get(t, "/page", "Cookie", "session=abc")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	var out struct {
		Me echoed `json:"me"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if got := out.Me.Header["X-User-Id"]; len(got) != 1 || got[0] != "alice" {
		t.Errorf("call got X-User-Id %q, want the auth service's", got)
	}
	if got := out.Me.Header["Authorization"]; len(got) != 1 || got[0] != "Bearer internal" {
		t.Errorf("call got Authorization %q, want the auth service's %q", got, "Bearer internal")
	}
}
