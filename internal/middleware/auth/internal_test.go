package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/golang-jwt/jwt/v5"
)

const testSecret = "0123456789abcdef0123456789abcdef"

func hmacIssuer(t testing.TB, maxEntries int, ttl time.Duration) *issuer {
	t.Helper()
	m := &issuerMaterial{
		cfg: config.Issuer{Name: "t", Issuer: "t", Algorithms: []string{"HS256"}, PermissionsClaim: "permissions",
			Leeway: config.Dur(0)},
		cache:  config.TokenCache{MaxEntries: &maxEntries, TTL: config.Dur(ttl)},
		secret: []byte(testSecret),
	}
	is, err := newIssuer(m, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func hs(t testing.TB, exp time.Time) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "t", "sub": "u", "exp": exp.Unix(), "iat": time.Now().Add(-time.Minute).Unix()}).
		SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTokenCacheNeverPastExp: a cached token stops verifying at its exp even though the cache
// TTL is longer.
func TestTokenCacheNeverPastExp(t *testing.T) {
	is := hmacIssuer(t, 100, time.Hour)
	now := time.Now()
	is.now = func() time.Time { return now }
	tok := hs(t, now.Add(10*time.Second))
	key := cacheKey(sha256.Sum256([]byte(tok)))
	if _, err := is.verify(context.Background(), tok, key); err != nil {
		t.Fatal(err)
	}
	if is.cache.len() != 1 {
		t.Fatalf("cache len %d, want 1", is.cache.len())
	}
	if _, err := is.verify(context.Background(), tok, key); err != nil {
		t.Fatal(err)
	}
	now = now.Add(11 * time.Second)
	_, err := is.verify(context.Background(), tok, key)
	te, ok := err.(*tokenError)
	if !ok || !te.expired {
		t.Fatalf("after exp: err = %v, want expired", err)
	}
}

// TestTokenCacheTTL: with a short TTL the signature is checked again after it.
func TestTokenCacheTTL(t *testing.T) {
	is := hmacIssuer(t, 100, time.Second)
	now := time.Now()
	is.now = func() time.Time { return now }
	tok := hs(t, now.Add(time.Hour))
	key := cacheKey(sha256.Sum256([]byte(tok)))
	if _, err := is.verify(context.Background(), tok, key); err != nil {
		t.Fatal(err)
	}
	if _, ok := is.cache.get(key, now.Add(500*time.Millisecond)); !ok {
		t.Fatal("not cached within TTL")
	}
	if _, ok := is.cache.get(key, now.Add(2*time.Second)); ok {
		t.Fatal("cached past TTL")
	}
}

func TestTTLCacheIsBounded(t *testing.T) {
	c := newTTLCache[int](64)
	now := time.Now()
	for i := 0; i < 10000; i++ {
		c.put(cacheKey(sha256.Sum256([]byte{byte(i), byte(i >> 8)})), i, now.Add(time.Hour), now)
	}
	if n := c.len(); n > 64 {
		t.Fatalf("cache holds %d entries, bound is 64", n)
	}
	if newTTLCache[int](0) != nil {
		t.Fatal("max 0 must disable the cache")
	}
	var off *ttlCache[int]
	off.put(cacheKey{}, 1, now.Add(time.Hour), now)
	if _, ok := off.get(cacheKey{}, now); ok {
		t.Fatal("disabled cache returned a value")
	}
}

func TestRemoveQueryParam(t *testing.T) {
	for _, tt := range []struct{ raw, name, want string }{
		{"a=1&access_token=x&b=2", "access_token", "a=1&b=2"},
		{"access_token=x", "access_token", ""},
		{"access%5Ftoken=x&c=%20", "access_token", "c=%20"},
		{"z=2&a=1", "q", "z=2&a=1"},
	} {
		if got := removeQueryParam(tt.raw, tt.name); got != tt.want {
			t.Errorf("removeQueryParam(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestPermissionsOf(t *testing.T) {
	claims := map[string]any{
		"scope":        "a b  c",
		"permissions":  []any{"x", 1, "y"},
		"realm_access": map[string]any{"roles": []any{"admin"}},
	}
	for path, want := range map[string]string{"scope": "[a b c]", "permissions": "[x y]", "realm_access.roles": "[admin]", "nope": "[]", "scope.x": "[]"} {
		if got := fmtList(permissionsOf(claims, splitDots(path))); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
}

func TestSafeHeaderValue(t *testing.T) {
	for v, want := range map[string]bool{"alice": true, "a\tb": true, "a\r\nX-Admin: 1": false, "a\x00": false, string(make([]byte, 2000)): false} {
		if safeHeaderValue(v) != want {
			t.Errorf("safeHeaderValue(%q) != %v", v, want)
		}
	}
}

func TestPEMKeys(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	enc := func(k crypto.PublicKey) []byte {
		b, _ := x509.MarshalPKIXPublicKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: b})
	}
	if _, err := parsePEMKeys(enc(small.Public())); err == nil {
		t.Error("a 1024-bit RSA key was accepted")
	}
	keys, err := parsePEMKeys(enc(ec.Public()))
	if err != nil || len(keys) != 1 || !compatible("ES384", keys[0].key) || compatible("ES256", keys[0].key) || compatible("RS256", keys[0].key) {
		t.Fatalf("keys %v err %v", keys, err)
	}
	if _, err := parsePEMKeys([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); err == nil {
		t.Error("a private key block was accepted")
	}
	dir := t.TempDir()
	if _, err := loadIssuerMaterial(config.Issuer{Name: "x", PublicKeys: []string{filepath.Join(dir, "missing.pem")}}, config.TokenCache{}); err == nil {
		t.Error("a missing key file was accepted")
	}
	f := filepath.Join(dir, "secret")
	_ = os.WriteFile(f, []byte("short\n"), 0o600)
	if _, err := loadIssuerMaterial(config.Issuer{Name: "x", Algorithms: []string{"HS256"}, HMACSecretFile: f}, config.TokenCache{}); err == nil {
		t.Error("a short secret file was accepted")
	}
}

// FuzzVerify: no token crashes the verifier or verifies without the secret.
func FuzzVerify(f *testing.F) {
	is := hmacIssuer(f, 0, 0)
	f.Add(hs(f, time.Now().Add(time.Hour))[:40])
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		if _, err := is.verify(context.Background(), tok, cacheKey(sha256.Sum256([]byte(tok)))); err == nil {
			t.Fatalf("forged token verified: %q", tok)
		}
		_ = peekIssuer(tok)
	})
}

// BenchmarkVerify shows what the verified-token cache saves a client that reuses its token.
func BenchmarkVerify(b *testing.B) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, alg := range []struct {
		name   string
		method jwt.SigningMethod
		priv   crypto.Signer
	}{
		{"RS256", jwt.SigningMethodRS256, rsaKey},
		{"ES256", jwt.SigningMethodES256, ecKey},
		{"EdDSA", jwt.SigningMethodEdDSA, edKey},
	} {
		for _, cached := range []bool{false, true} {
			name := alg.name + "/nocache"
			entries := 0
			if cached {
				name, entries = alg.name+"/cache", 10000
			}
			b.Run(name, func(b *testing.B) {
				is := &issuer{name: "b", now: time.Now, permClaim: []string{"permissions"},
					static: []vkey{{key: alg.priv.Public()}}}
				is.parser = jwt.NewParser(jwt.WithValidMethods([]string{alg.name}), jwt.WithExpirationRequired())
				if entries > 0 {
					is.cache, is.cacheTTL = newTTLCache[*verified](entries), time.Minute
				}
				tok, err := jwt.NewWithClaims(alg.method, jwt.MapClaims{"sub": "u", "exp": time.Now().Add(time.Hour).Unix(),
					"permissions": []string{"users:read"}}).SignedString(alg.priv)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					// The middleware hashes every token once per request; include it.
					if _, err := is.verify(ctx, tok, cacheKey(sha256.Sum256([]byte(tok)))); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func fmtList(l []string) string {
	s := "["
	for i, v := range l {
		if i > 0 {
			s += " "
		}
		s += v
	}
	return s + "]"
}
