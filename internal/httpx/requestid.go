package httpx

import (
	"math/rand/v2"
	"net/http"
	"time"
)

// MaxRequestIDLen bounds a client-supplied request ID.
const MaxRequestIDLen = 128

// RequestID returns the client's X-Request-ID (or X-Correlation-ID) when it is a safe token,
// otherwise a new UUIDv7.
func RequestID(h http.Header) string { return RequestIDAt(h, time.Now()) }

// RequestIDAt is RequestID for a request that arrived at now: a new ID carries now's time.
func RequestIDAt(h http.Header, now time.Time) string {
	for _, name := range [...]string{"X-Request-Id", "X-Correlation-Id"} {
		if v := h[name]; len(v) == 1 && ValidRequestID(v[0]) {
			return v[0]
		}
	}
	return NewUUIDv7(now)
}

// NewUUIDv7 returns a UUIDv7 (RFC 9562 §5.7) for now, in its 36-character text form: the Unix
// time in milliseconds, then the fraction of the millisecond in 12 bits (§6.2, method 3: IDs of
// one process sort by time to about 250 ns), then 62 random bits.
//
// It is written here rather than taken from github.com/google/uuid because it runs on every
// request: the library's NewV7 takes two process-wide locks (its clock sequence and its
// random pool), which both processors of a busy gateway then contend for. The random bits come
// from math/rand/v2's global source, the runtime's per-thread ChaCha8 generator seeded from the
// OS: unpredictable without a lock or a system call. A request ID is a correlation handle, not
// a secret: clients may choose their own.
func NewUUIDv7(now time.Time) string {
	ns := now.UnixNano()
	ms := uint64(ns / 1e6)
	frac := uint64(ns%1e6) * 4096 / 1e6 // 12 bits
	r := rand.Uint64()
	var u [16]byte
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6], u[7] = 0x70|byte(frac>>8)&0x0f, byte(frac)
	u[8] = 0x80 | byte(r>>56)&0x3f // variant 10
	for i := 9; i < 16; i++ {
		u[i] = byte(r >> (8 * (15 - i)))
	}
	const hex = "0123456789abcdef"
	var s [36]byte
	j := 0
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hex[b>>4], hex[b&0x0f]
		j += 2
	}
	return string(s[:])
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
