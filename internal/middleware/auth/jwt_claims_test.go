package auth_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signWithHeader signs claims (with the defaults of s.sign) under extra header parameters.
func (s *signer) signWithHeader(t *testing.T, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.method, withDefaults(claims, "https://idp.test/"))
	tok.Header["kid"] = s.kid
	for k, v := range header {
		tok.Header[k] = v
	}
	out, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestJWTMalformedHeaderAndClaims checks that authentic tokens that are malformed are refused
// as invalid: a crit header (RFC 7515 section 4.1.11), a numeric date no time can hold (not
// "expired", as the library's overflow to a date before 1970 made it), a sub that is not a
// string (RFC 7519 section 4.1.2).
func TestJWTMalformedHeaderAndClaims(t *testing.T) {
	f := newFixture(t)
	past := time.Now().Add(-time.Hour).Unix()
	rsaHeader := func(h map[string]any, c jwt.MapClaims) []string {
		return bearer(f.rsa.signWithHeader(t, h, c))
	}
	claims := func(c jwt.MapClaims) []string {
		c["permissions"] = []string{"users:read"}
		return bearer(f.rsa.sign(t, c))
	}
	tests := []struct {
		name   string
		hdr    []string
		reason string // in the security log
	}{
		{"crit with an unknown extension", rsaHeader(map[string]any{"crit": []string{"exp-ext"}, "exp-ext": true}, readPerm), `\"crit\"`},
		{"crit b64", rsaHeader(map[string]any{"crit": []string{"b64"}, "b64": false}, readPerm), `\"crit\"`},
		{"crit empty", rsaHeader(map[string]any{"crit": []string{}}, readPerm), `\"crit\"`},
		{"crit not a list", rsaHeader(map[string]any{"crit": "x"}, readPerm), `\"crit\"`},
		{"crit on an HMAC token", bearer(func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, withDefaults(readPerm, "local"))
			tok.Header["crit"] = []string{"x"}
			s, err := tok.SignedString([]byte(hmacSecret))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}()), `\"crit\"`},
		{"crit on an expired token", rsaHeader(map[string]any{"crit": []string{"x"}}, jwt.MapClaims{"exp": past, "iat": past - 60}), `\"crit\"`},
		{"exp 1e30", claims(jwt.MapClaims{"exp": 1e30}), "exp is out of range"},
		{"exp -1e30", claims(jwt.MapClaims{"exp": -1e30}), "exp is out of range"},
		{"exp past int64", claims(jwt.MapClaims{"exp": 1e19}), "exp is out of range"},
		{"exp overflowing a time", claims(jwt.MapClaims{"exp": 9.2e18}), "exp is out of range"},
		{"nbf out of range on an expired token", claims(jwt.MapClaims{"exp": past, "iat": past - 60, "nbf": 1e30}), "nbf is out of range"},
		{"nbf 1e30", claims(jwt.MapClaims{"nbf": 1e30}), "nbf is out of range"},
		{"nbf -1e30", claims(jwt.MapClaims{"nbf": -1e30}), "nbf is out of range"},
		{"iat 1e30", claims(jwt.MapClaims{"iat": 1e30}), "iat is out of range"},
		{"iat -1e30", claims(jwt.MapClaims{"iat": -1e30}), "iat is out of range"},
		{"sub object", claims(jwt.MapClaims{"sub": map[string]any{"id": "alice"}}), "sub is not a string"},
		{"sub array", claims(jwt.MapClaims{"sub": []string{"alice"}}), "sub is not a string"},
		{"sub number", claims(jwt.MapClaims{"sub": 42}), "sub is not a string"},
		{"sub bool", claims(jwt.MapClaims{"sub": true}), "sub is not a string"},
		{"sub null", bearer(f.rsa.sign(t, jwt.MapClaims{"permissions": []string{"users:read"}, "sub": json.RawMessage("null")})), "sub is not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.g.get(t, "/users/1", tt.hdr...)
			wantError(t, r, 401, "invalid_token")
			challenge := strings.Join(r.header.Values("Www-Authenticate"), " | ")
			if !strings.Contains(challenge, `Bearer realm="gatehouse", error="invalid_token", error_description="the access token is invalid"`) {
				t.Errorf("WWW-Authenticate = %q", challenge)
			}
			line := logLine(t, f.g.logs.String(), r.err.RequestID)
			if !strings.Contains(line, `"reason":"`) || !strings.Contains(line, tt.reason) {
				t.Errorf("security log line lacks the reason %s: %s", tt.reason, line)
			}
		})
	}

	// The strict checks refuse nothing well formed.
	for _, tt := range []struct {
		name string
		c    jwt.MapClaims
	}{
		{"no sub", jwt.MapClaims{"sub": nil}},
		{"empty sub", jwt.MapClaims{"sub": ""}},
		{"exp in a far future", jwt.MapClaims{"exp": float64(1 << 40)}},
		{"exp at the largest exact JSON integer", jwt.MapClaims{"exp": float64(1<<53 - 1)}},
		{"fractional dates", jwt.MapClaims{"exp": float64(time.Now().Add(time.Hour).Unix()) + 0.5, "iat": float64(past) + 0.25, "nbf": float64(past) + 0.75}},
		{"nbf before 1970", jwt.MapClaims{"nbf": -1e9}},
	} {
		t.Run("allowed "+tt.name, func(t *testing.T) {
			tt.c["permissions"] = []string{"users:read"}
			if r := f.g.get(t, "/users/1", bearer(f.rsa.sign(t, tt.c))...); r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
		})
	}
	t.Run("expired is still token_expired", func(t *testing.T) {
		r := f.g.get(t, "/users/1", claims(jwt.MapClaims{"exp": past, "iat": past - 60})...)
		wantError(t, r, 401, "token_expired")
	})
}

// logLine returns the security log line of the request with ID id.
func logLine(t *testing.T, logs, id string) string {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"request_id":"`+id+`"`) && strings.Contains(l, `"msg":"auth failure"`) {
			return l
		}
	}
	t.Fatalf("no security log line for request %s", id)
	return ""
}
