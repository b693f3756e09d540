package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"github.com/gatehouse/gatehouse/internal/testutil/syncbuf"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// signer is a private key with its kid and algorithm.
type signer struct {
	kid    string
	alg    string
	method jwt.SigningMethod
	key    crypto.Signer
}

func newRSA(t testing.TB, kid string) *signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{kid: kid, alg: "RS256", method: jwt.SigningMethodRS256, key: k}
}

func newEC(t testing.TB, kid string) *signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{kid: kid, alg: "ES256", method: jwt.SigningMethodES256, key: k}
}

func newEd(t testing.TB, kid string) *signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{kid: kid, alg: "EdDSA", method: jwt.SigningMethodEdDSA, key: k}
}

// sign makes a token with claims (exp, iat, iss, aud filled in unless given; nil removes one).
func (s *signer) sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.method, withDefaults(claims, "https://idp.test/"))
	if s.kid != "" {
		tok.Header["kid"] = s.kid
	}
	out, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func withDefaults(claims jwt.MapClaims, iss string) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "user-1", "iss": iss, "aud": "api",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func signHS(t testing.TB, secret []byte, claims jwt.MapClaims) string {
	t.Helper()
	out, err := jwt.NewWithClaims(jwt.SigningMethodHS256, withDefaults(claims, "local")).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// jwksServer serves a JWK Set that tests can rotate, and counts its requests.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []*signer
	fetches atomic.Int64
}

func newJWKS(t *testing.T, keys ...*signer) *jwksServer {
	t.Helper()
	j := &jwksServer{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		keys := append([]*signer(nil), j.keys...)
		j.mu.Unlock()
		set := jwkset.JWKSMarshal{}
		for _, k := range keys {
			jwk, err := jwkset.NewJWKFromKey(k.key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
				KID: k.kid, ALG: jwkset.ALG(k.alg), USE: jwkset.UseSig}})
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			set.Keys = append(set.Keys, jwk.Marshal())
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": "https://idp.test/", "jwks_uri": j.URL + "/jwks.json"})
	})
	j.Server = httptest.NewServer(mux)
	t.Cleanup(j.Close)
	return j
}

func (j *jwksServer) set(keys ...*signer) {
	j.mu.Lock()
	j.keys = keys
	j.mu.Unlock()
}

func hostPort(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

// echo is a backend answering with the request it received.
type echoed struct {
	Method string              `json:"method"`
	Path   string              `json:"path"`
	Query  string              `json:"query"`
	Header map[string][]string `json:"header"`
}

func newEcho(t *testing.T) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoed{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header})
	}))
	t.Cleanup(s.Close)
	return s
}

type syncBuffer = syncbuf.Buffer

// gateway is a real Gatehouse server (the whole stack: listener, runtime, chain, proxy).
type gateway struct {
	srv  *server.Server
	base string
	logs *syncBuffer
	env  map[string]string
}

func startGateway(t *testing.T, yaml string, env map[string]string) *gateway {
	t.Helper()
	g := &gateway{logs: &syncBuffer{}, env: map[string]string{"LISTEN": "127.0.0.1:0"}}
	for k, v := range env {
		g.env[k] = v
	}
	cfg := g.load(t, yaml)
	logger := slog.New(slog.NewJSONHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(cfg, server.Options{Logger: logger, AccessLogWriter: io.Discard, LookupEnv: g.lookup})
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	g.srv = srv
	g.base = "http://" + srv.Addrs()["public"]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		http.DefaultClient.CloseIdleConnections()
	})
	return g
}

func (g *gateway) lookup(name string) (string, bool) {
	v, ok := g.env[name]
	return v, ok
}

func (g *gateway) load(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Load("test.yaml", []byte(yaml), g.lookup)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

type result struct {
	status int
	header http.Header
	body   string
	echo   echoed
	err    apiError
}

type apiError struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// do sends a request; hdr are name, value pairs.
func (g *gateway) do(t testing.TB, method, path string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, g.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	res := result{status: resp.StatusCode, header: resp.Header, body: string(b)}
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &res.echo); err != nil {
			t.Fatalf("backend answer is not echo JSON: %s", b)
		}
	} else if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(b, &res.err)
	}
	return res
}

func (g *gateway) get(t testing.TB, path string, hdr ...string) result {
	t.Helper()
	return g.do(t, http.MethodGet, path, hdr...)
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// wantError checks a refusal: status, stable code, request ID in body and header.
func wantError(t *testing.T, r result, status int, code string) {
	t.Helper()
	if r.status != status || r.err.Error != code {
		t.Fatalf("got %d %q, want %d %q; body %s", r.status, r.err.Error, status, code, r.body)
	}
	if r.err.RequestID == "" || r.err.RequestID != r.header.Get("X-Request-Id") {
		t.Fatalf("request_id %q vs header %q", r.err.RequestID, r.header.Get("X-Request-Id"))
	}
}

func (e echoed) h(name string) string {
	if v := e.Header[name]; len(v) > 0 {
		return strings.Join(v, ",")
	}
	return ""
}

func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}
