// Package wire holds the HTTP/1.1 message-syntax rules (RFC 9110, RFC 9112) that Gatehouse's own
// HTTP/1.x server (internal/server/h1) and upstream client (internal/upstream/h1) share: field
// names and values, Content-Length, comma-separated tokens, canonical header keys, and the
// chunked transfer coding with its trailer section. Both sides apply the same strictness.
package wire

import (
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// ValidFieldName reports whether s is a non-empty RFC 9110 token.
func ValidFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// ValidFieldValue rejects control characters other than HTAB (CR, LF and NUL included).
func ValidFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// TrimOWS removes optional whitespace (SP, HTAB) around a field value.
func TrimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// ParseContentLength accepts 1 to 18 decimal digits only (no sign, no spaces, no lists).
func ParseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// EqualFold compares two strings case-insensitively in ASCII only: strings.EqualFold's
// Unicode folding would read "\u212aeep-alive" (a Kelvin sign) as "keep-alive" and
// "chun\u212aed" as "chunked", letting a field be read one way here and another way by the
// next hop.
func EqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// HasToken reports whether a comma-separated header holds token (case-insensitive).
func HasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			if EqualFold(TrimOWS(part), token) {
				return true
			}
		}
	}
	return false
}

// IsUpgrade reports whether h asks to switch protocols: an Upgrade field with a value and
// the "upgrade" option in Connection.
func IsUpgrade(h http.Header) bool {
	if v := h["Upgrade"]; len(v) == 0 || v[0] == "" {
		return false
	}
	return HasToken(h["Connection"], "upgrade")
}

// CanonicalKey returns the canonical form of a header name without allocating for names
// already canonical or common.
func CanonicalKey(name string) string {
	if isCanonical(name) {
		return name
	}
	var buf [64]byte
	if len(name) <= len(buf) {
		b := buf[:len(name)]
		upper := true
		for i := 0; i < len(name); i++ {
			c := name[i]
			if upper && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			} else if !upper && 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
			upper = c == '-'
		}
		if k, ok := commonHeaders[string(b)]; ok {
			return k
		}
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// FieldKey checks that name is a valid field name (a token) and returns its canonical key:
// ValidFieldName and CanonicalKey in one pass over a name already canonical (most are).
func FieldKey(name string) (key string, ok bool) {
	if name == "" {
		return "", false
	}
	upper, canonical := true, true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !httpguts.IsTokenRune(rune(c)) {
			return "", false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	if canonical {
		return name, true
	}
	return CanonicalKey(name), true
}

func isCanonical(s string) bool {
	upper := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

var commonHeaders = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Authorization", "Cache-Control", "Connection", "Content-Encoding", "Content-Length",
		"Content-Type", "Cookie", "Date", "Etag", "Expect", "Forwarded", "From", "Host",
		"If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
		"Keep-Alive", "Origin", "Pragma", "Proxy-Authorization", "Range", "Referer", "Te",
		"Trailer", "Transfer-Encoding", "Upgrade", "User-Agent", "Via", "X-Forwarded-For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Request-Id", "X-Api-Key", "X-Real-Ip",
		"Accept-Version", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Protocol",
		"Sec-Websocket-Extensions", "Grpc-Timeout", "Traceparent", "Tracestate",
		"Server", "Set-Cookie", "Last-Modified", "Expires", "Vary", "Location", "Age",
		"Content-Range", "Www-Authenticate", "Retry-After", "Grpc-Status", "Grpc-Message",
	} {
		m[k] = k
	}
	return m
}()
