package edge

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
)

// LimitListener wraps ln so that at most maxConns connections are open in total and at most
// perIP from one client (0: unlimited), a client being an IPv4 address or an IPv6 /64 (see
// clientKey). Excess connections are closed right after accept, before any byte is read, so a
// client hoarding connections cannot hold more than its share.
func LimitListener(ln net.Listener, maxConns, perIP int, logger *slog.Logger) net.Listener {
	if maxConns <= 0 && perIP <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, max: int64(maxConns), perIP: perIP, byIP: map[netip.Addr]int{}, logger: logger}
}

type limitListener struct {
	net.Listener
	max    int64
	perIP  int
	open   atomic.Int64
	mu     sync.Mutex
	byIP   map[netip.Addr]int // open connections per clientKey
	logger *slog.Logger
	warned atomic.Int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := peerIP(c)
		if l.admit(ip) {
			return &limitConn{Conn: c, l: l, ip: ip}, nil
		}
		_ = c.Close()
		// One line per thousand refusals keeps a flood from flooding the log too.
		if n := l.warned.Add(1); n%1000 == 1 && l.logger != nil {
			l.logger.Warn("security event", "event", "connection_refused", "reason", "connection limit reached", "client_ip", ip.String(), "refused_total", n)
		}
	}
}

func (l *limitListener) admit(ip netip.Addr) bool {
	if l.max > 0 && l.open.Load() >= l.max {
		return false
	}
	if l.perIP > 0 {
		k := clientKey(ip)
		l.mu.Lock()
		if l.byIP[k] >= l.perIP {
			l.mu.Unlock()
			return false
		}
		l.byIP[k]++
		l.mu.Unlock()
	}
	l.open.Add(1)
	return true
}

func (l *limitListener) release(ip netip.Addr) {
	l.open.Add(-1)
	if l.perIP > 0 {
		k := clientKey(ip)
		l.mu.Lock()
		if l.byIP[k] <= 1 {
			delete(l.byIP, k)
		} else {
			l.byIP[k]--
		}
		l.mu.Unlock()
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	ip   netip.Addr
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// CloseWrite half-closes the connection when the wrapped one can (TCP), so a server can
// finish a response and still let the client's remaining bytes drain (a lingering close).
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// SyscallConn reaches the socket, so raw reads and writes (internal/sockio) work through the
// limit: the wrapper changes only Close.
func (c *limitConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

func peerIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}

// clientKey is the address per-client limits count against: an IPv4 address as is, an IPv6
// address by its /64 prefix, an IPv4-mapped IPv6 address as the IPv4 address it maps. A /64 is
// the smallest block an ISP assigns to one subscriber and SLAAC lets a host pick any address
// in it, so counting IPv6 addresses one by one would hand a single client 2^64 budgets.
func clientKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if ip.Is6() {
		// Prefix(64) cannot fail for an IPv6 address; the zone is dropped with the host bits.
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}
