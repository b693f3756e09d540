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

// untrustedForwarding are forwarding headers the gateway does not set but upstream frameworks
// believe: the client's address (nginx realip, request-ip and the like), its port, scheme and
// path prefix (Spring, ASP.NET, Django, Rack), the URL to route by (Symfony and IIS
// X-Original-URL). Only a trusted proxy may send them. X-Real-IP is not listed: the proxy
// always sets it.
var untrustedForwarding = [...]string{
	"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Server", "X-Forwarded-Ssl",
	"X-Forwarded-Scheme", "X-Original-Url", "X-Rewrite-Url", "X-Client-Ip", "True-Client-Ip",
}

// IsUntrustedForwarding reports whether k (canonical) is one of the forwarding headers only a
// trusted proxy may send (DropUntrustedForwarding).
func IsUntrustedForwarding(k string) bool {
	if len(k) < 11 || k[0] != 'X' && k[0] != 'T' {
		return false // the common header names, cheaply
	}
	for _, u := range untrustedForwarding {
		if k == u {
			return true
		}
	}
	return false
}

// DropUntrustedForwarding deletes the forwarding headers only a trusted proxy may send.
func DropUntrustedForwarding(h http.Header) {
	for _, k := range untrustedForwarding {
		delete(h, k)
	}
}

// gatewayFields are the request fields the gateway itself sets for the upstream (or accepts
// from a trusted proxy only): the forwarding fields, the request ID and the trace context.
var gatewayFields = [...]string{
	"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "X-Real-Ip",
	"X-Request-Id", "X-Correlation-Id", "Traceparent", "Tracestate", "Baggage",
}

// DropGatewayTrailers deletes from a request's declared trailers the fields the gateway manages
// in the header (gatewayFields and the untrusted forwarding fields): sent as trailers they
// would reach the upstream beside the gateway's values, and an upstream that merges trailers
// into the header would believe them.
func DropGatewayTrailers(tr http.Header) {
	for _, k := range gatewayFields {
		delete(tr, k)
	}
	DropUntrustedForwarding(tr)
}

// ForwardedOrigin is the scheme and host the gateway tells the upstream in X-Forwarded-Proto
// and X-Forwarded-Host: a trusted proxy's values when the peer is one and sent them, else the
// connection's scheme and the request's Host. The response cache keys on the same.
func ForwardedOrigin(r *http.Request, trusted bool) (proto, host string) {
	proto, host = "http", r.Host
	if r.TLS != nil {
		proto = "https"
	}
	if trusted {
		if v := r.Header["X-Forwarded-Proto"]; len(v) > 0 && v[0] != "" {
			proto = v[0]
		}
		if v := r.Header["X-Forwarded-Host"]; len(v) > 0 && v[0] != "" {
			host = v[0]
		}
	}
	return proto, host
}
