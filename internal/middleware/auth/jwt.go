package auth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/golang-jwt/jwt/v5"
)

// verified is what a valid token proved. It is shared by every request presenting the same
// token while cached: read only.
type verified struct {
	subject     string
	issuer      string // the issuer's config name
	permissions []string
	claims      map[string]any
	exp         time.Time
}

// issuer verifies the tokens of one auth.issuers entry. It is a shared resource: its JWK Set
// (with the background refresh) and its cache of verified tokens survive reloads that leave the
// issuer's config unchanged.
type issuer struct {
	name      string
	iss       string
	hmac      []byte
	static    []vkey
	jwks      *jwksSource
	parser    *jwt.Parser
	permClaim []string
	cache     *ttlCache[*verified]
	cacheTTL  time.Duration
	now       func() time.Time
}

// Close stops the JWK Set refresh.
func (is *issuer) Close() error {
	if is.jwks != nil {
		return is.jwks.Close()
	}
	return nil
}

// issuerMaterial is an issuer's config with the contents of its key files, read once per compile
// so that a changed file gives a new resource key (and so a new issuer) on reload.
type issuerMaterial struct {
	cfg    config.Issuer
	cache  config.TokenCache
	secret []byte
	pems   [][]byte
}

func loadIssuerMaterial(cfg config.Issuer, tc config.TokenCache) (*issuerMaterial, error) {
	m := &issuerMaterial{cfg: cfg, cache: tc, secret: []byte(cfg.HMACSecret)}
	if cfg.HMACSecretFile != "" {
		b, err := os.ReadFile(cfg.HMACSecretFile)
		if err != nil {
			return nil, fmt.Errorf("issuer %s: hmac_secret_file: %w", cfg.Name, err)
		}
		m.secret = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	for _, alg := range cfg.Algorithms {
		if min := map[string]int{"HS256": 32, "HS384": 48, "HS512": 64}[alg]; len(m.secret) > 0 && len(m.secret) < min {
			return nil, fmt.Errorf("issuer %s: the HMAC secret is %d bytes; %s needs at least %d", cfg.Name, len(m.secret), alg, min)
		}
	}
	for _, f := range cfg.PublicKeys {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("issuer %s: public_keys: %w", cfg.Name, err)
		}
		m.pems = append(m.pems, b)
	}
	return m, nil
}

// key identifies the issuer resource by a digest of everything that shapes it (the secret and
// key files included, so the key itself reveals none of them).
func (m *issuerMaterial) key() string {
	h := sha256.New()
	cfg := m.cfg
	cfg.HMACSecret = ""
	b, _ := json.Marshal(struct {
		Cfg   config.Issuer
		Cache config.TokenCache
	}{cfg, m.cache})
	h.Write(b)
	h.Write([]byte{0})
	h.Write(m.secret)
	for _, p := range m.pems {
		h.Write([]byte{0})
		h.Write(p)
	}
	return "auth/issuer|" + m.cfg.Name + "|" + hex.EncodeToString(h.Sum(nil))
}

func newIssuer(m *issuerMaterial, logger *slog.Logger) (*issuer, error) {
	cfg := m.cfg
	is := &issuer{
		name: cfg.Name, iss: cfg.Issuer,
		permClaim: strings.Split(cfg.PermissionsClaim, "."), now: time.Now,
	}
	opts := []jwt.ParserOption{
		jwt.WithTimeFunc(func() time.Time { return is.now() }),
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithLeeway(cfg.Leeway.Duration),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if len(cfg.Audiences) > 0 {
		opts = append(opts, jwt.WithAudience(cfg.Audiences...))
	}
	is.parser = jwt.NewParser(opts...)
	if len(m.secret) > 0 {
		is.hmac = m.secret
	}
	for i, p := range m.pems {
		keys, err := parsePEMKeys(p)
		if err != nil {
			return nil, fmt.Errorf("issuer %s: public_keys[%d]: %w", cfg.Name, i, err)
		}
		is.static = append(is.static, keys...)
	}
	if m.cache.MaxEntries != nil && m.cache.TTL.Duration > 0 {
		is.cache = newTTLCache[*verified](*m.cache.MaxEntries)
		is.cacheTTL = m.cache.TTL.Duration
	}
	if cfg.JWKSURL != "" || cfg.Discovery != "" {
		is.jwks = newJWKSSource(jwksOptions{
			name: cfg.Name, jwksURL: cfg.JWKSURL, discovery: cfg.Discovery,
			timeout: cfg.FetchTimeout.Duration, refresh: cfg.JWKSRefresh.Duration,
			minRefetch: cfg.JWKSMinRefetch.Duration, logger: logger,
		})
	}
	return is, nil
}

func parsePEMKeys(data []byte) ([]vkey, error) {
	var out []vkey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var k crypto.PublicKey
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				k = c.PublicKey
			}
		default:
			return nil, fmt.Errorf("PEM block %q is not a public key or certificate", b.Type)
		}
		if err != nil {
			return nil, err
		}
		if !usableKey(k) {
			return nil, fmt.Errorf("unsupported key (want RSA of at least 2048 bits, ECDSA or Ed25519)")
		}
		out = append(out, vkey{key: k})
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM public key found")
	}
	return out, nil
}

// tokenError is why a token was refused.
type tokenError struct {
	expired bool
	reason  string // for the security log, never the token
	kid     string
	subject string // unverified, for the log only
}

func (e *tokenError) Error() string { return e.reason }

// errCritical refuses a token whose header lists, in "crit", extensions its recipient must
// understand: we understand none (RFC 7515 section 4.1.11).
var errCritical = errors.New(`the token header has "crit" extensions, which are not supported`)

// errMalformedClaim marks a registered claim of the wrong type or out of range.
var errMalformedClaim = errors.New("malformed claim")

// maxNumericDate bounds exp, nbf and iat, in seconds either side of 1970: the largest integer
// that JSON carries exactly (RFC 7493 section 2.2), and far inside what a time.Time compares
// correctly. A larger date is nonsense, not a time in the past or the far future.
const maxNumericDate = 1<<53 - 1

// tokenClaims are a token's claims: jwt.MapClaims, made strict where the library is lenient.
// The library turns exp: 1e30 into a time before 1970 (the token would be reported as expired,
// and nbf: 1e30 or iat: 1e30 would pass) and accepts a sub that is not a string.
type tokenClaims map[string]any

var (
	_ jwt.Claims          = tokenClaims{}
	_ jwt.ClaimsValidator = tokenClaims{}
)

// GetExpirationTime implements jwt.Claims.
func (c tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	if err := c.checkDate("exp"); err != nil {
		return nil, err
	}
	return jwt.MapClaims(c).GetExpirationTime()
}

// GetNotBefore implements jwt.Claims.
func (c tokenClaims) GetNotBefore() (*jwt.NumericDate, error) {
	if err := c.checkDate("nbf"); err != nil {
		return nil, err
	}
	return jwt.MapClaims(c).GetNotBefore()
}

// GetIssuedAt implements jwt.Claims.
func (c tokenClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	if err := c.checkDate("iat"); err != nil {
		return nil, err
	}
	return jwt.MapClaims(c).GetIssuedAt()
}

// GetAudience implements jwt.Claims.
func (c tokenClaims) GetAudience() (jwt.ClaimStrings, error) { return jwt.MapClaims(c).GetAudience() }

// GetIssuer implements jwt.Claims.
func (c tokenClaims) GetIssuer() (string, error) { return jwt.MapClaims(c).GetIssuer() }

// GetSubject implements jwt.Claims.
func (c tokenClaims) GetSubject() (string, error) { return jwt.MapClaims(c).GetSubject() }

// Validate implements jwt.ClaimsValidator: sub, when present, is a string (RFC 7519 section
// 4.1.2). The library checks it only when told which subject to expect.
func (c tokenClaims) Validate() error {
	if v, ok := c["sub"]; ok {
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%w: sub is not a string", errMalformedClaim)
		}
	}
	return nil
}

func (c tokenClaims) checkDate(name string) error {
	// A JSON number decodes to a float64, always finite: NaN and infinities are not JSON.
	if f, ok := c[name].(float64); ok && math.Abs(f) > maxNumericDate {
		return fmt.Errorf("%w: %s is out of range", errMalformedClaim, name)
	}
	return nil
}

// verify checks token (header, signature, exp, nbf, iat, iss, aud, sub) and returns what it
// proves.
func (is *issuer) verify(ctx context.Context, token string, hash cacheKey) (*verified, error) {
	now := is.now()
	if v, ok := is.cache.get(hash, now); ok {
		return v, nil
	}
	claims := tokenClaims{}
	var kid string
	_, err := is.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if _, ok := t.Header["crit"]; ok {
			return nil, errCritical
		}
		return is.keysFor(ctx, t.Method.Alg(), kid)
	})
	if err != nil {
		te := &tokenError{kid: kid, reason: err.Error()}
		if s, ok := claims["sub"].(string); ok {
			te.subject = s
		}
		// Only an authentic token is "expired": a forged one fails on its signature first, and
		// a malformed one, or one for another audience or issuer, is invalid even if it has
		// expired too (a client told "expired" would fetch a new token that fails again).
		te.expired = errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, errMalformedClaim) &&
			!errors.Is(err, jwt.ErrInvalidType) && !errors.Is(err, jwt.ErrTokenInvalidAudience) &&
			!errors.Is(err, jwt.ErrTokenInvalidIssuer) && !errors.Is(err, jwt.ErrTokenRequiredClaimMissing)
		return nil, te
	}
	v := &verified{issuer: is.name, claims: claims}
	v.subject, _ = claims["sub"].(string)
	v.permissions = permissionsOf(claims, is.permClaim)
	if exp, _ := claims.GetExpirationTime(); exp != nil {
		v.exp = exp.Time
	}
	if is.cache != nil {
		until := now.Add(is.cacheTTL)
		if v.exp.Before(until) {
			until = v.exp
		}
		is.cache.put(hash, v, until, now)
	}
	return v, nil
}

func (is *issuer) keysFor(ctx context.Context, alg, kid string) (any, error) {
	if strings.HasPrefix(alg, "HS") {
		if is.hmac == nil {
			return nil, errNoKey
		}
		return is.hmac, nil
	}
	var keys []vkey
	if is.jwks != nil {
		keys = is.jwks.lookup(ctx, kid, alg)
	}
	if len(keys) == 0 {
		keys = filterKeys(is.static, alg)
	}
	if len(keys) == 0 {
		if kid != "" {
			return nil, fmt.Errorf("unknown key ID %q", truncate(kid, 64))
		}
		return nil, errNoKey
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k.key
	}
	return set, nil
}

// permissionsOf reads the permissions claim: an array of strings or a space-separated string,
// at a dotted path.
func permissionsOf(claims map[string]any, path []string) []string {
	var v any = claims
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// peekIssuer returns the unverified "iss" of a token, used only to choose which configured
// issuer verifies it.
func peekIssuer(token string) string {
	parts := strings.SplitN(token, ".", 4)
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(b, &c) != nil {
		return ""
	}
	return c.Iss
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
