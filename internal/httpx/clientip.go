package httpx

import (
	"net/netip"
	"strings"
)

// Trusted is the set of proxy networks whose forwarding headers are believed.
type Trusted struct {
	prefixes []netip.Prefix
}

// NewTrusted builds a Trusted from parsed prefixes.
func NewTrusted(prefixes []netip.Prefix) *Trusted {
	return &Trusted{prefixes: prefixes}
}

// Contains reports whether addr belongs to a trusted proxy.
func (t *Trusted) Contains(addr netip.Addr) bool {
	if t == nil || !addr.IsValid() {
		return false
	}
	addr = addr.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// Empty reports whether no proxy is trusted.
func (t *Trusted) Empty() bool { return t == nil || len(t.prefixes) == 0 }

// PeerAddr parses the address part of a net/http RemoteAddr ("ip:port").
func PeerAddr(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(remoteAddr); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

// AddrString formats a like a.String(), but returns the address part of remoteAddr (an
// "ip:port" RemoteAddr) without allocating when that text is a's IPv4 form — for the peer
// address, which the gateway writes into forwarding headers and access logs on every request.
func AddrString(a netip.Addr, remoteAddr string) string {
	if a.Is4() && remoteAddr != "" && remoteAddr[0] != '[' {
		if i := strings.LastIndexByte(remoteAddr, ':'); i > 0 {
			// ParseAddr accepts only the canonical dotted-decimal form (no leading zeros), so
			// equal addresses mean equal text.
			if p, err := netip.ParseAddr(remoteAddr[:i]); err == nil && p == a {
				return remoteAddr[:i]
			}
		}
	}
	return a.String()
}

// ClientIP resolves the client address. Only when the peer is a trusted proxy is
// X-Forwarded-For consulted, walking it from the right and skipping trusted hops, so a client
// cannot choose its own address by sending the header. xff holds the header's values in order.
func ClientIP(peer netip.Addr, xff []string, t *Trusted) (ip netip.Addr, peerTrusted bool) {
	if !t.Contains(peer) {
		return peer, false
	}
	ip = peer
	for i := len(xff) - 1; i >= 0; i-- {
		v := xff[i]
		for v != "" {
			j := strings.LastIndexByte(v, ',')
			part := strings.TrimSpace(v[j+1:])
			if j < 0 {
				v = ""
			} else {
				v = v[:j]
			}
			a, err := netip.ParseAddr(part)
			if err != nil {
				// A garbled hop: stop at the last address we could verify.
				return ip, true
			}
			a = a.Unmap()
			ip = a
			if !t.Contains(a) {
				return ip, true
			}
		}
	}
	return ip, true
}
