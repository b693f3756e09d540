// Package wire holds the small pieces of the gRPC protocol (HTTP/2 framing of messages,
// grpc-timeout, status codes and their HTTP mapping, Trailers-Only errors) shared by the
// transcoder and the plain proxy, which must answer gRPC clients with gRPC-shaped errors.
package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Code is a gRPC status code (google.rpc.Code).
type Code uint32

// The gRPC status codes.
const (
	OK Code = iota
	Canceled
	Unknown
	InvalidArgument
	DeadlineExceeded
	NotFound
	AlreadyExists
	PermissionDenied
	ResourceExhausted
	FailedPrecondition
	Aborted
	OutOfRange
	Unimplemented
	Internal
	Unavailable
	DataLoss
	Unauthenticated
)

var codeNames = [...]string{"ok", "canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found",
	"already_exists", "permission_denied", "resource_exhausted", "failed_precondition", "aborted",
	"out_of_range", "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated"}

// String returns the code's name in snake case ("not_found"), the stable error code clients get.
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "unknown"
}

// HTTPStatus maps a gRPC code to an HTTP status, per google.rpc.Code's documented mapping.
func (c Code) HTTPStatus() int {
	switch c {
	case OK:
		return http.StatusOK
	case Canceled:
		return 499
	case InvalidArgument, FailedPrecondition, OutOfRange:
		return http.StatusBadRequest
	case DeadlineExceeded:
		return http.StatusGatewayTimeout
	case NotFound:
		return http.StatusNotFound
	case AlreadyExists, Aborted:
		return http.StatusConflict
	case PermissionDenied:
		return http.StatusForbidden
	case Unauthenticated:
		return http.StatusUnauthorized
	case ResourceExhausted:
		return http.StatusTooManyRequests
	case Unimplemented:
		return http.StatusNotImplemented
	case Unavailable:
		return http.StatusServiceUnavailable
	default: // Unknown, Internal, DataLoss and codes from the future
		return http.StatusInternalServerError
	}
}

// CodeFromHTTP maps the HTTP status of a response that is not a gRPC response (a proxy or a
// misconfigured server answered) or of a gateway error to a gRPC code, as the gRPC HTTP/2
// protocol specifies for clients, extended with the gateway's own statuses.
func CodeFromHTTP(status int) Code {
	switch status {
	case http.StatusBadRequest:
		return Internal
	case http.StatusUnauthorized:
		return Unauthenticated
	case http.StatusForbidden:
		return PermissionDenied
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return Unimplemented
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return DeadlineExceeded
	case http.StatusRequestEntityTooLarge, http.StatusRequestHeaderFieldsTooLarge:
		return ResourceExhausted
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable:
		return Unavailable
	case 499:
		return Canceled
	}
	return Unknown
}

// IsGRPCRequest reports whether r is a gRPC call (Content-Type application/grpc, with or
// without a +codec suffix); gRPC-Web is not included.
func IsGRPCRequest(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return ct == "application/grpc" || strings.HasPrefix(ct, "application/grpc+") || strings.HasPrefix(ct, "application/grpc;")
}

// WriteError answers a gRPC call with a Trailers-Only response: HTTP 200 with the status in
// grpc-status and grpc-message, which every gRPC client reads as a call error. It must be called
// before anything else was written.
func WriteError(w http.ResponseWriter, code Code, msg string) {
	h := w.Header()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Trailer"} {
		delete(h, k)
	}
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(int(code)))
	if msg != "" {
		h.Set("Grpc-Message", EncodeMessage(msg))
	}
	w.WriteHeader(http.StatusOK)
}

// EncodeMessage percent-encodes a grpc-message value as the protocol requires.
func EncodeMessage(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// DecodeMessage decodes a grpc-message value; malformed escapes are kept as they are.
func DecodeMessage(v string) string {
	if !strings.Contains(v, "%") {
		return v
	}
	if s, err := url.PathUnescape(v); err == nil {
		return s
	}
	return v
}

// ParseTimeout parses a grpc-timeout header value ("100m", "5S"): at most 8 digits and a unit
// of H, M, S, m (milli), u (micro) or n (nano).
func ParseTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > int64(time.Duration(1<<63-1)/unit) {
		return time.Duration(1<<63 - 1), true
	}
	return time.Duration(n) * unit, true
}

// FormatTimeout formats d as a grpc-timeout value, in the finest unit that fits 8 digits.
func FormatTimeout(d time.Duration) string {
	if d <= 0 {
		return "1n"
	}
	for _, u := range []struct {
		d time.Duration
		s string
	}{{time.Nanosecond, "n"}, {time.Microsecond, "u"}, {time.Millisecond, "m"}, {time.Second, "S"}, {time.Minute, "M"}} {
		// Round up so the server's deadline is never earlier than ours.
		if n := (d + u.d - 1) / u.d; n < 1e8 {
			return strconv.FormatInt(int64(n), 10) + u.s
		}
	}
	return strconv.FormatInt(int64(min((d+time.Hour-1)/time.Hour, 99999999)), 10) + "H"
}

// AppendFrame appends one length-prefixed, uncompressed gRPC message to dst.
func AppendFrame(dst, msg []byte) []byte {
	var hdr [5]byte
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(msg)))
	return append(append(dst, hdr[:]...), msg...)
}

// ErrFrameTooLarge is returned for a message larger than the reader's limit.
var ErrFrameTooLarge = errors.New("grpc message exceeds the size limit")

// ReadFrame reads one gRPC message. It returns io.EOF at a clean end of stream; encoding is the
// response's grpc-encoding, used for compressed messages.
func ReadFrame(r io.Reader, limit int, encoding string) ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("grpc frame: truncated header")
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if int64(n) > int64(limit) {
		return nil, ErrFrameTooLarge
	}
	// Grow with what actually arrives: a peer that only sends frame headers claiming 16 MiB
	// must not make the gateway allocate 16 MiB each.
	var bb bytes.Buffer
	bb.Grow(int(min(n, 64<<10)))
	if got, err := io.CopyN(&bb, r, int64(n)); err != nil || got != int64(n) {
		return nil, fmt.Errorf("grpc frame: truncated message: %w", io.ErrUnexpectedEOF)
	}
	buf := bb.Bytes()
	switch hdr[0] {
	case 0:
		return buf, nil
	case 1:
		if encoding != "gzip" {
			return nil, fmt.Errorf("grpc frame: unsupported message encoding %q", encoding)
		}
		zr, err := gzip.NewReader(bytes.NewReader(buf))
		if err != nil {
			return nil, fmt.Errorf("grpc frame: %w", err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
		if err != nil {
			return nil, fmt.Errorf("grpc frame: %w", err)
		}
		if len(out) > limit {
			return nil, ErrFrameTooLarge
		}
		return out, nil
	default:
		return nil, fmt.Errorf("grpc frame: invalid flags %#x", hdr[0])
	}
}
