package httpx

import (
	"net/http"

	"github.com/google/uuid"
)

// MaxRequestIDLen bounds a client-supplied request ID.
const MaxRequestIDLen = 128

// RequestID returns the client's X-Request-ID (or X-Correlation-ID) when it is a safe token,
// otherwise a new UUIDv7.
func RequestID(h http.Header) string {
	for _, name := range [...]string{"X-Request-Id", "X-Correlation-Id"} {
		if v := h[name]; len(v) == 1 && ValidRequestID(v[0]) {
			return v[0]
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	return id.String()
}

// ValidRequestID accepts 1–128 characters from [A-Za-z0-9._:/+=@-], which keeps IDs safe to log
// and to echo in headers.
func ValidRequestID(s string) bool {
	if len(s) == 0 || len(s) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '/' || c == '+' || c == '=' || c == '@':
		default:
			return false
		}
	}
	return true
}
