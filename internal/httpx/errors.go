package httpx

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/translate/grpc/wire"
)

// Stable error codes returned to clients in the "error" field.
const (
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeInvalidPath        = "invalid_path"
	CodeBadRequest         = "bad_request"
	CodeBodyTooLarge       = "request_entity_too_large"
	CodeRequestTimeout     = "request_timeout"
	CodeHeadersTooLarge    = "request_header_fields_too_large"
	CodeBadGateway         = "bad_gateway"
	CodeServiceUnavailable = "service_unavailable"
	CodeGatewayTimeout     = "gateway_timeout"
	CodeInternal           = "internal_error"
)

// WriteError sends the gateway's JSON error body: {"error": code, "message": msg,
// "request_id": id} (to a gRPC client: the matching gRPC status in a Trailers-Only response). msg must be a fixed, client-safe text: never an internal error or address.
func WriteError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if wire.IsGRPCRequest(r) {
		// gRPC clients read the status from trailers; a JSON body would be a protocol error.
		if info := InfoFrom(r.Context()); info != nil {
			info.ErrorCode = code
			w.Header().Set("X-Request-Id", info.RequestID)
		}
		wire.WriteError(w, wire.CodeFromHTTP(status), msg)
		return
	}
	id := ""
	if info := InfoFrom(r.Context()); info != nil {
		id = info.RequestID
		info.ErrorCode = code
	}
	h := w.Header()
	if id != "" {
		h.Set("X-Request-Id", id)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	var b strings.Builder
	b.Grow(64 + len(msg) + len(id))
	b.WriteString(`{"error":`)
	b.WriteString(strconv.Quote(code))
	b.WriteString(`,"message":`)
	b.WriteString(strconv.Quote(msg))
	b.WriteString(`,"request_id":`)
	b.WriteString(strconv.Quote(id))
	b.WriteString("}\n")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(b.String()))
	}
}
