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
