package httpx

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/gatehouse/gatehouse/internal/wire"
)

// DropConnectionOptions deletes the fields a request's Connection header nominates as
// hop-by-hop (RFC 9110 §7.6.1) and leaves in Connection only the options the gateway acts on
// itself: close, keep-alive and upgrade. Run before any policy, it keeps a client from
// nominating a field the gateway sets later (an identity header, a forward-auth result, the
// bot or country tag) and so having the proxy's hop-by-hop removal delete the gateway's own
// value on the way upstream.
func DropConnectionOptions(h http.Header) {
	vv, ok := h["Connection"]
	if !ok {
		return
	}
	var keep []string
	dropped := false
	for _, v := range vv {
		for v != "" {
			var f string
			f, v, _ = strings.Cut(v, ",")
			switch f = textproto.TrimString(f); {
			case f == "":
			case wire.EqualFold(f, "close"), wire.EqualFold(f, "keep-alive"), wire.EqualFold(f, "upgrade"):
				keep = append(keep, f)
			default:
				dropped = true
				delete(h, textproto.CanonicalMIMEHeaderKey(f))
			}
		}
	}
	if !dropped {
		return
	}
	if len(keep) == 0 {
		delete(h, "Connection")
		return
	}
	h["Connection"] = []string{strings.Join(keep, ", ")}
}

// DropUnderscoreFields deletes the request header fields whose names contain "_".
func DropUnderscoreFields(h http.Header) {
	for k := range h {
		if strings.IndexByte(k, '_') >= 0 {
			delete(h, k)
		}
	}
}
