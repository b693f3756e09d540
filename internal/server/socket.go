package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/server/h1"
)

// socket is one bound TCP socket that successive generations of a listener accept from. A
// reload that changes a listener's settings but not its address hands the socket over to the
// new generation instead of binding a second one: closing a socket resets the connections the
// kernel queued on it, and two sockets sharing a port (SO_REUSEPORT) would also let another
// process bind it unnoticed. One goroutine accepts; each generation takes connections from it
// through a view, so the old generation can stop without closing the socket.
type socket struct {
	raw     net.Listener
	conns   chan accepted
	dead    chan struct{} // closed when Accept failed for good or the socket closed; err says why
	err     error
	closing chan struct{} // closed when the last view closed

	mu   sync.Mutex
	refs int // open views
}

type accepted struct {
	c   net.Conn
	err error
}

// socketKey names the socket a listener address binds, so that a reload recognizes one socket
// under two spellings: ":8080", "0.0.0.0:8080" and "[::]:8080" all bind Go's dual-stack
// wildcard socket, "localhost:8080" binds 127.0.0.1:8080. Without it a respelled address was
// bound anew next to the socket still serving it, and the reload failed with "address already
// in use". An address that does not resolve is its own key (binding it reports the error), and
// so is one with port 0, which names no particular socket.
func socketKey(address string) string {
	a, err := net.ResolveTCPAddr("tcp", address)
	if err != nil || a.Port == 0 {
		return address
	}
	port := strconv.Itoa(a.Port)
	if a.IP == nil || a.IP.IsUnspecified() {
		return "*:" + port
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		a.IP = ip4
	}
	return net.JoinHostPort(a.IP.String(), port)
}

// listenSocket binds address and starts accepting.
func listenSocket(address string) (*socket, error) {
	var lc net.ListenConfig
	raw, err := lc.Listen(context.Background(), "tcp", address)
	if err != nil {
		return nil, err
	}
	s := &socket{raw: raw, conns: make(chan accepted), dead: make(chan struct{}), closing: make(chan struct{})}
	go s.acceptLoop()
	return s, nil
}

// acceptLoop hands each accepted connection (or temporary error, which the servers back off
// on) to whichever view takes it; until one does, connections wait in the kernel's queue.
func (s *socket) acceptLoop() {
	for {
		c, err := s.raw.Accept()
		if err != nil && !h1.TemporaryAcceptError(err) {
			s.err = err
			if errors.Is(err, net.ErrClosed) {
				s.err = net.ErrClosed
			}
			close(s.dead)
			return
		}
		select {
		case s.conns <- accepted{c, err}:
		case <-s.closing:
			if c != nil {
				_ = c.Close()
			}
		}
	}
}

// view returns a new generation's listener on the socket; the socket closes when its last view
// does.
func (s *socket) view() *socketView {
	s.mu.Lock()
	s.refs++
	s.mu.Unlock()
	return &socketView{s: s, done: make(chan struct{})}
}

func (s *socket) release() {
	s.mu.Lock()
	s.refs--
	last := s.refs == 0
	s.mu.Unlock()
	if last {
		close(s.closing)
		_ = s.raw.Close() // ends acceptLoop
	}
}

// socketView is one generation's net.Listener on a socket.
type socketView struct {
	s    *socket
	done chan struct{}
	once sync.Once
}

func (v *socketView) Accept() (net.Conn, error) {
	select {
	case <-v.done:
		return nil, net.ErrClosed
	default:
	}
	select {
	case a := <-v.s.conns:
		select {
		case <-v.done:
			// Closed while it took one: the connection goes to the next generation (or is
			// closed with the socket), not to a server that is stopping.
			if a.c != nil {
				go v.s.giveBack(a)
			}
			return nil, net.ErrClosed
		default:
		}
		return a.c, a.err
	case <-v.done:
		return nil, net.ErrClosed
	case <-v.s.dead:
		return nil, v.s.err
	}
}

func (s *socket) giveBack(a accepted) {
	select {
	case s.conns <- a:
	case <-s.closing:
		_ = a.c.Close()
	}
}

// Close stops this view; the socket stays open for the other views.
func (v *socketView) Close() error {
	v.once.Do(func() {
		close(v.done)
		v.s.release()
	})
	return nil
}

func (v *socketView) Addr() net.Addr { return v.s.raw.Addr() }

// stdServer is net/http's server (TLS and h2c listeners) with a Shutdown that first stops
// accepting and lets the connections it already accepted send their first request: net/http
// drops a request it reads after Shutdown began, which would lose the requests of clients that
// connected just before a reload replaced the listener.
type stdServer struct {
	*http.Server
	ln     atomic.Pointer[net.Listener]
	served chan struct{} // closed when Serve returned
	fresh  sync.Map      // connections that have not begun a request yet
	// accepted counts the connections Accept returned, registered those net/http has seen as
	// new: between the two, a connection is on its way to being fresh.
	accepted, registered atomic.Int64
}

// countingListener counts what Accept returns.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func newStdServer(hs *http.Server) *stdServer {
	s := &stdServer{Server: hs, served: make(chan struct{})}
	hs.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.fresh.Store(c, struct{}{})
			s.registered.Add(1)
		} else {
			s.fresh.Delete(c)
		}
	}
	return s
}

func (s *stdServer) Serve(ln net.Listener) error {
	s.ln.Store(&ln)
	defer close(s.served)
	return s.Server.Serve(countingListener{ln, &s.accepted})
}

func (s *stdServer) Shutdown(ctx context.Context) error {
	deadline := time.Now().Add(h1.NewConnGrace)
	if ln := s.ln.Load(); ln != nil {
		if d, ok := (*ln).(interface{ Drain(context.Context) }); ok {
			// TLS: the listener hands over the connections whose handshakes it runs; Serve,
			// still running, takes them (and counts them as fresh) before it is stopped.
			dctx, cancel := context.WithDeadline(ctx, deadline)
			d.Drain(dctx)
			cancel()
			// The last connection Drain handed over may still be on its way out of Accept,
			// not yet counted: give it a moment to be.
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
			}
		} else {
			_ = (*ln).Close()
			// Once Serve has returned, every connection it accepted has been counted as fresh.
			select {
			case <-s.served:
			case <-ctx.Done():
			case <-time.After(time.Until(deadline)):
			}
		}
	}
	for s.waiting() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	return s.Server.Shutdown(ctx)
}

// waiting reports whether an accepted connection has not begun its first request yet.
func (s *stdServer) waiting() bool {
	if s.registered.Load() < s.accepted.Load() {
		return true
	}
	found := false
	s.fresh.Range(func(_, _ any) bool { found = true; return false })
	return found
}
