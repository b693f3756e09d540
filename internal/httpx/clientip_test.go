package httpx

import (
	"net/netip"
	"testing"
)

func TestAddrString(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.7:4711", "192.0.2.7"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"}, // unmapped, as PeerAddr returns it
		{"10.0.0.1", "10.0.0.1"},               // no port
	} {
		a := PeerAddr(tc.remote)
		if got := AddrString(a, tc.remote); got != tc.want || got != a.String() {
			t.Errorf("AddrString(%s) = %q, want %q (= a.String() %q)", tc.remote, got, tc.want, a.String())
		}
	}
	// An address that is not the one in remoteAddr is formatted, not taken from it.
	if got := AddrString(netip.MustParseAddr("198.51.100.1"), "192.0.2.7:1"); got != "198.51.100.1" {
		t.Errorf("AddrString of another address = %q", got)
	}
	if got := AddrString(netip.Addr{}, "192.0.2.7:1"); got != (netip.Addr{}).String() {
		t.Errorf("AddrString of the zero Addr = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = AddrString(netip.MustParseAddr("192.0.2.7"), "192.0.2.7:4711") }); n != 0 {
		t.Errorf("AddrString of the peer's IPv4 address allocates %v times", n)
	}
}
