package cache_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/middleware/auth"
	"github.com/gatehouse/gatehouse/internal/runtime"
	"github.com/gatehouse/gatehouse/internal/upstream"
	"github.com/golang-jwt/jwt/v5"
)

// These tests run the compiled route chain (edge, auth, rate limits, cache, proxy) so the cache
// sees requests exactly as the auth middleware leaves them: API keys and hidden tokens removed,
// the caller recorded only in the request's Info.

const sharingSecret = "0123456789abcdef0123456789abcdef"

const sharingYAML = `
version: 1
listeners: [{ name: public, address: "127.0.0.1:0" }]
auth:
  issuers: [{ name: main, hmac_secret: "${SECRET}", algorithms: [HS256] }]
  consumers:
    - { name: partner-a, keys: ["${HASH_A}"] }
    - { name: partner-b, keys: ["${HASH_B}"] }
services: [{ name: me, targets: [{ url: "http://${ORIGIN}" }] }]
routes:
  - name: ca
    match: { path: /ca/** }
    service: me
    plugins:
      jwt: { issuers: [main], hide_credentials: true }
      api_key: {}
      cache: { ttl: 60s }
  - name: cf
    match: { path: /cf/** }
    service: me
    plugins:
      forward_auth: { url: "http://${AUTHZ}/check", request_headers: [Cookie] }
      cache: { ttl: 60s }
  - name: cu
    match: { path: /cu/** }
    service: me
    plugins:
      jwt: { issuers: [main], hide_credentials: true }
      api_key: {}
      cache: { ttl: 60s, key: { user: true } }
`

// sharingGateway is the compiled Runtime of sharingYAML over HTTP, in front of an origin that
// answers with the caller it was told about (and whether a credential reached it).
type sharingGateway struct {
	base   string
	keyA   string
	keyB   string
	tokens map[string]string // JWTs by subject ("" for a token without sub)
}

func newSharingGateway(t *testing.T) *sharingGateway {
	t.Helper()
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/public") {
			w.Header().Set("Cache-Control", "public, max-age=60")
		}
		cred := ""
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-Api-Key") != "" {
			cred = " +credential"
		}
		_, _ = io.WriteString(w, "data of "+r.Header.Get("X-Consumer")+r.Header.Get("X-User-Id")+cred)
	}))
	t.Cleanup(o.Close)
	// The forward-auth service takes the session cookie for the user's name.
	az := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie("session")
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("X-User-Id", ck.Value)
	}))
	t.Cleanup(az.Close)

	g := &sharingGateway{keyA: "gh_key-of-partner-a-0123456789abcdef", keyB: "gh_key-of-partner-b-0123456789abcdef",
		tokens: map[string]string{}}
	for _, sub := range []string{"user-a", "user-b", ""} {
		claims := jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}
		if sub != "" {
			claims["sub"] = sub
		}
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(sharingSecret))
		if err != nil {
			t.Fatal(err)
		}
		g.tokens[sub] = tok
	}
	env := map[string]string{"SECRET": sharingSecret, "HASH_A": auth.HashKey(g.keyA), "HASH_B": auth.HashKey(g.keyB),
		"ORIGIN": strings.TrimPrefix(o.URL, "http://"), "AUTHZ": strings.TrimPrefix(az.URL, "http://")}
	cfg, err := config.Load("test.yaml", []byte(sharingYAML), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	rt, err := runtime.Compile(cfg, runtime.Deps{Registry: upstream.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	front := httptest.NewServer(rt)
	t.Cleanup(func() {
		front.Close()
		rt.Close()
	})
	g.base = front.URL
	return g
}

// get sends GET path with header pairs and returns the X-Cache verdict and the body.
func (g *sharingGateway) get(t *testing.T, path string, hdr ...string) (string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return resp.Header.Get("X-Cache"), string(b)
}

// party is one authenticated caller: the request header pairs it sends and the body the origin
// answers it with.
type party struct {
	hdr  []string
	body string
}

// sharingCase is two callers authenticated the same way, on a route's path.
type sharingCase struct {
	name string
	path string // without the route's prefix
	a, b party
}

func (g *sharingGateway) cases() []sharingCase {
	bearer := func(sub string) []string { return []string{"Authorization", "Bearer " + g.tokens[sub]} }
	cookie := func(sub string) []string { return []string{"Cookie", "access_token=" + g.tokens[sub]} }
	return []sharingCase{
		{"api key", "/ca", party{[]string{"X-API-Key", g.keyA}, "data of partner-a"},
			party{[]string{"X-API-Key", g.keyB}, "data of partner-b"}},
		{"jwt cookie", "/ca", party{cookie("user-a"), "data of user-a"}, party{cookie("user-b"), "data of user-b"}},
		{"hidden bearer", "/ca", party{bearer("user-a"), "data of user-a"}, party{bearer("user-b"), "data of user-b"}},
		{"forward auth cookie", "/cf", party{[]string{"Cookie", "session=user-a"}, "data of user-a"},
			party{[]string{"Cookie", "session=user-b"}, "data of user-b"}},
	}
}

// TestAuthenticatedResponsesNotShared: a response to a request the gateway authenticated is a
// response to a request with Authorization (RFC 9111 3.5), however the credential came and
// even when it was hidden from the cache: unless the origin marks it public (or key.user is
// set), it is neither stored for nor served to another caller.
func TestAuthenticatedResponsesNotShared(t *testing.T) {
	g := newSharingGateway(t)
	for _, tc := range g.cases() {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path + "/me?case=" + strings.ReplaceAll(tc.name, " ", "-")
			for _, p := range []party{tc.a, tc.b, tc.a, tc.b} {
				if xc, body := g.get(t, path, p.hdr...); xc != "MISS" || body != p.body {
					t.Fatalf("%v: %s %q; want MISS %q", p.hdr[0], xc, body, p.body)
				}
			}
		})
	}
}

// TestAuthenticatedSharingRules: what authenticated callers may still share. Responses the
// origin marks public are shared; under key.user each caller (JWT issuer and subject, API-key
// consumer) is served only its own entries, and a token naming no subject, which cannot be
// told apart from another, gets nothing stored.
func TestAuthenticatedSharingRules(t *testing.T) {
	g := newSharingGateway(t)
	for _, tc := range g.cases() {
		t.Run("public/"+tc.name, func(t *testing.T) {
			path := tc.path + "/public?case=" + strings.ReplaceAll(tc.name, " ", "-")
			if xc, body := g.get(t, path, tc.a.hdr...); xc != "MISS" || body != tc.a.body {
				t.Fatalf("first: %s %q; want MISS %q", xc, body, tc.a.body)
			}
			if xc, body := g.get(t, path, tc.b.hdr...); xc != "HIT" || body != tc.a.body {
				t.Fatalf("other caller: %s %q; want HIT %q", xc, body, tc.a.body)
			}
		})
		if tc.path != "/ca" {
			continue // the key.user route takes jwt and api_key
		}
		t.Run("key.user/"+tc.name, func(t *testing.T) {
			path := "/cu/me?case=" + strings.ReplaceAll(tc.name, " ", "-")
			for _, step := range []struct {
				p      party
				xcache string
			}{{tc.a, "MISS"}, {tc.a, "HIT"}, {tc.b, "MISS"}, {tc.b, "HIT"}, {tc.a, "HIT"}} {
				if xc, body := g.get(t, path, step.p.hdr...); xc != step.xcache || body != step.p.body {
					t.Fatalf("%v: %s %q; want %s %q", step.p.hdr[0], xc, body, step.xcache, step.p.body)
				}
			}
		})
	}
	t.Run("key.user/token without sub", func(t *testing.T) {
		for range 2 {
			if xc, body := g.get(t, "/cu/me?case=no-sub", "Cookie", "access_token="+g.tokens[""]); xc != "MISS" {
				t.Fatalf("%s %q; want MISS", xc, body)
			}
		}
	})
}
