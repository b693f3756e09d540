package server

import (
	"crypto/tls"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/certs"
)

// emfileListener fails its first Accepts with EMFILE, as a process out of file descriptors does.
type emfileListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// A TLS listener keeps accepting after temporary accept errors (running out of file
// descriptors): it used to stop for good while the plain listeners recovered.
func TestTLSListenerSurvivesTemporaryAcceptErrors(t *testing.T) {
	ca := certs.NewCA(t, "server CA")
	crt, key := ca.Issue(t, "api", []string{"127.0.0.1"}, false)
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &emfileListener{Listener: raw}
	fl.fails.Store(3)
	l := newTLSSplitListener(fl, &tls.Config{Certificates: []tls.Certificate{pair}}, time.Second, 1<<20)
	defer l.Close()
	stop, dialed := make(chan struct{}), make(chan struct{})
	defer func() { close(stop); <-dialed }()
	go func() {
		defer close(dialed)
		d := &net.Dialer{Timeout: 3 * time.Second, Deadline: time.Now().Add(3 * time.Second)}
		c, err := tls.DialWithDialer(d, "tcp", raw.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
		if err == nil {
			defer c.Close()
			_, _ = c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
			<-stop
		}
	}()
	got := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			_ = c.Close()
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Accept after temporary errors: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted after three EMFILE errors: the accept loop stopped")
	}
}
