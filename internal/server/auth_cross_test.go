package server

import (
	"net/http"
	"testing"
)

// TestDuplicateTokenCookieIsRepeatedCredential: two access_token cookies are a repeated credential like two Authorization headers or two
// access_token query parameters (refused 401), but the gateway authenticates the first and
// forwards both: an upstream whose cookie parser keeps the last value sees another identity.
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

// TestUserRateLimitKeyedByIssuer: a rate limit keyed by user counted the subject alone: a caller of another issuer who picks
// the victim's sub spends the victim's budget (the cache's key.user keys issuer and subject).
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
