package edge

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// addrIn returns the address of the /64 prefix p with host byte i, so a test can play one
// client rotating through its own prefix.
func addrIn(p string, i int) netip.Addr {
	a := netip.MustParseAddr(p).As16()
	a[15] = byte(i)
	return netip.AddrFrom16(a)
}

func TestClientKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"ipv4", "203.0.113.7", "203.0.113.7"},
		{"ipv4-mapped", "::ffff:203.0.113.7", "203.0.113.7"},
		{"ipv6 host bits dropped", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"},
		{"ipv6 zone dropped", "fe80::1%eth0", "fe80::"},
		{"loopback v6", "::1", "::"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := clientKey(netip.MustParseAddr(tc.in)); got != netip.MustParseAddr(tc.want) {
				t.Errorf("clientKey(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
	if got := clientKey(netip.Addr{}); got.IsValid() {
		t.Errorf("clientKey(zero) = %s, want the zero Addr", got)
	}
}

// max_conns_per_ip must count one /64 (the smallest allocation an ISP hands out) as one client:
// otherwise a client rotating through its prefix opens as many connections as it likes.
func TestLimitListenerPerIPv6Slash64(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := LimitListener(ln, 0, 2, nil).(*limitListener)
	defer l.Close()
	admitted := 0
	for i := 1; i <= 10; i++ {
		if l.admit(addrIn("2001:db8:1:2::", i)) {
			admitted++
		}
	}
	if admitted != 2 {
		t.Fatalf("%d connections admitted from one /64 with max_conns_per_ip=2, want 2", admitted)
	}
	if !l.admit(addrIn("2001:db8:1:3::", 1)) {
		t.Fatal("a neighbouring /64 was refused: it is another client")
	}
	// Releasing one connection by any address of the prefix frees a slot for the prefix.
	l.release(addrIn("2001:db8:1:2::", 1))
	if !l.admit(addrIn("2001:db8:1:2::", 99)) {
		t.Fatal("the /64 was refused after one of its connections closed")
	}
	l.release(addrIn("2001:db8:1:2::", 2))
	l.release(addrIn("2001:db8:1:2::", 99))
	l.release(addrIn("2001:db8:1:3::", 1))
	if len(l.byIP) != 0 || l.open.Load() != 0 {
		t.Fatalf("after releasing everything: byIP %v, open %d", l.byIP, l.open.Load())
	}
}

// The bot rate_limit budget is per /64 too, so rotating addresses does not reset it.
func TestBotLimiterPerIPv6Slash64(t *testing.T) {
	t.Parallel()
	l := newIPLimiter(2, time.Minute, 0, 1000)
	now := time.Unix(1_700_000_000, 0)
	l.now = func() time.Time { return now }
	allowed := 0
	for i := 1; i <= 10; i++ {
		if ok, _ := l.allow(addrIn("2001:db8:1:2::", i)); ok {
			allowed++
		}
	}
	if allowed != 1 {
		t.Fatalf("%d requests allowed from one /64 (limit 2/min, burst 0), want 1", allowed)
	}
	if ok, _ := l.allow(addrIn("2001:db8:1:3::", 1)); !ok {
		t.Fatal("a neighbouring /64 was limited: it is another client")
	}
	if ok, _ := l.allow(netip.MustParseAddr("::ffff:198.51.100.4")); !ok {
		t.Fatal("first request of an IPv4 client limited")
	}
	if ok, _ := l.allow(netip.MustParseAddr("198.51.100.4")); ok {
		t.Fatal("an IPv4-mapped address and its IPv4 address got separate budgets")
	}
}
