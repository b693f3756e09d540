package auth_test

import (
	"net/http"
	"testing"
)

// hide_credentials on a cookie token must remove that cookie only; the upstream's other
// cookies must arrive as the client sent them, including ones net/http's parser rejects
// (JSON values) or would unquote.
func TestHideCredentialsCookieKeepsOtherCookies(t *testing.T) {
	echo := newEcho(t)
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services:
  - name: echo
    targets: [{ url: "http://${ECHO}" }]
auth:
  issuers:
    - name: local
      issuer: local
      audiences: [api]
      algorithms: [HS256]
      hmac_secret: ${SECRET}
routes:
  - name: app
    match: { path: /app/** }
    service: echo
    plugins:
      jwt: { issuers: [local], hide_credentials: true }
`, map[string]string{"ECHO": hostPort(echo), "SECRET": hmacSecret})
	tok := signHS(t, []byte(hmacSecret), nil)
	for _, tc := range []struct {
		name, cookie, want string
	}{
		{"invalid and quoted values kept", `prefs={"theme":"dark"}; access_token=` + tok + `; sid="abc"`, `prefs={"theme":"dark"}; sid="abc"`},
		{"token alone removes the header", `access_token=` + tok, ``},
		{"similar names kept", `access_token_x=1;access_token=` + tok + `;  xaccess_token=2`, `access_token_x=1; xaccess_token=2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := g.get(t, "/app/x", "Cookie", tc.cookie)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if got := r.echo.h("Cookie"); got != tc.want {
				t.Fatalf("upstream Cookie = %q, want %q", got, tc.want)
			}
		})
	}
}

// A forward-auth 401 must carry WWW-Authenticate (RFC 9110 section 15.5.2): the service's own
// challenge when it sent one, else the gateway's default. A 403 gets none.
func TestForwardAuth401WithoutServiceChallenge(t *testing.T) {
	echo := newEcho(t)
	authz := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "challenge":
			w.Header().Set("WWW-Authenticate", `Basic realm="sso"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "forbidden":
			w.WriteHeader(http.StatusForbidden)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	g := startGateway(t, `
version: 1
listeners: [{ name: public, address: "${LISTEN}" }]
services:
  - name: echo
    targets: [{ url: "http://${ECHO}" }]
routes:
  - name: legacy
    match: { path: /legacy/** }
    service: echo
    plugins:
      forward_auth: { url: "http://${AUTHZ}/check" }
  - name: relayed
    match: { path: /relayed/** }
    service: echo
    plugins:
      forward_auth: { url: "http://${AUTHZ}/check", return_deny_body: true }
`, map[string]string{"ECHO": hostPort(echo), "AUTHZ": hostPort(authz)})
	for _, tc := range []struct {
		name, path, authz string
		status            int
		want              []string
	}{
		{"401 without challenge", "/legacy/x", "", 401, []string{`Bearer realm="gatehouse"`}},
		{"401 without challenge, deny body relayed", "/relayed/x", "", 401, []string{`Bearer realm="gatehouse"`}},
		{"401 with the service's challenge", "/legacy/x", "challenge", 401, []string{`Basic realm="sso"`}},
		{"403", "/legacy/x", "forbidden", 403, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.authz != "" {
				hdr = []string{"Authorization", tc.authz}
			}
			r := g.get(t, tc.path, hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d", r.status, tc.status)
			}
			got := r.header.Values("Www-Authenticate")
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Fatalf("WWW-Authenticate = %q, want %q", got, tc.want)
			}
		})
	}
}
