package sockio

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func wrap(nc net.Conn) *Conn {
	c := new(Conn)
	c.Init(nc)
	return c
}

// TestLargeTransfer: 8 MiB each way at once through one Conn per end (more than the socket
// buffers hold, so writes wait for room and reads for data), bytes intact.
func TestLargeTransfer(t *testing.T) {
	a, b := tcpPair(t)
	ca, cb := wrap(a), wrap(b)
	if runtime.GOOS == "linux" && (ca.rc == nil || cb.rc == nil) {
		t.Fatal("a TCP connection is not read raw on Linux")
	}
	out1, out2 := make([]byte, 8<<20), make([]byte, 8<<20)
	_, _ = rand.Read(out1)
	_, _ = rand.Read(out2)
	var wg sync.WaitGroup
	var got1, got2 []byte
	var err1, err2 error
	wg.Add(4)
	go func() {
		defer wg.Done()
		if n, err := ca.Write(out1); err != nil || n != len(out1) {
			t.Errorf("write a: %d %v", n, err)
		}
		_ = a.CloseWrite()
	}()
	go func() {
		defer wg.Done()
		if n, err := cb.Write(out2); err != nil || n != len(out2) {
			t.Errorf("write b: %d %v", n, err)
		}
		_ = b.CloseWrite()
	}()
	go func() { defer wg.Done(); got1, err1 = io.ReadAll(cb) }()
	go func() { defer wg.Done(); got2, err2 = io.ReadAll(ca) }()
	wg.Wait()
	if err1 != nil || err2 != nil {
		t.Fatalf("read errors: %v %v", err1, err2)
	}
	if !bytes.Equal(got1, out1) || !bytes.Equal(got2, out2) {
		t.Fatalf("data differs: %d/%d and %d/%d bytes", len(got1), len(out1), len(got2), len(out2))
	}
}

// TestEOFAndEmpty: the peer's close reads as io.EOF; empty reads and writes are no-ops.
func TestEOFAndEmpty(t *testing.T) {
	a, b := tcpPair(t)
	ca := wrap(a)
	if n, err := ca.Read(nil); n != 0 || err != nil {
		t.Errorf("empty read = %d %v", n, err)
	}
	if n, err := ca.Write(nil); n != 0 || err != nil {
		t.Errorf("empty write = %d %v", n, err)
	}
	if _, err := b.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	buf := make([]byte, 10)
	n, err := io.ReadFull(ca, buf[:2])
	if n != 2 || err != nil || string(buf[:2]) != "hi" {
		t.Fatalf("read = %d %v %q", n, err, buf[:n])
	}
	if n, err := ca.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("after close: %d %v, want io.EOF", n, err)
	}
}

// TestDeadlines: read and write deadlines fail like net.Conn's (a *net.OpError that is a
// timeout and os.ErrDeadlineExceeded), and a later deadline lets the connection go on.
func TestDeadlines(t *testing.T) {
	a, b := tcpPair(t)
	ca := wrap(a)
	_ = a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	_, err := ca.Read(make([]byte, 10))
	checkOpError(t, err, "read")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past the deadline: %v, want a timeout", err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 5*time.Second {
		t.Errorf("read returned after %v", d)
	}
	// A deadline already past fails at once.
	if _, err := ca.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("second read: %v", err)
	}
	_ = a.SetReadDeadline(time.Time{})
	go func() { _, _ = b.Write([]byte("x")) }()
	if n, err := ca.Read(make([]byte, 10)); n != 1 || err != nil {
		t.Errorf("read after clearing the deadline: %d %v", n, err)
	}

	// The peer never reads: the write fills the buffers and times out, having written some.
	// The 64 MiB buffer is made before the deadline is set: making it can take longer than
	// the deadline under the race detector on a loaded machine, and a write that starts past
	// its deadline writes nothing.
	big := make([]byte, 64<<20)
	_ = a.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	n, err := ca.Write(big)
	checkOpError(t, err, "write")
	if !errors.Is(err, os.ErrDeadlineExceeded) || n <= 0 || n >= 64<<20 {
		t.Errorf("write past the deadline: %d %v", n, err)
	}
}

// TestCloseUnblocksRead: closing the connection ends a waiting Read with net.ErrClosed.
func TestCloseUnblocksRead(t *testing.T) {
	a, _ := tcpPair(t)
	ca := wrap(a)
	done := make(chan error, 1)
	go func() {
		_, err := ca.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	_ = a.Close()
	select {
	case err := <-done:
		checkOpError(t, err, "read")
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("read on a closed conn: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return after Close")
	}
	if _, err := ca.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write on a closed conn: %v, want net.ErrClosed", err)
	}
}

// TestReset: a peer that resets the connection gives ECONNRESET wrapped as net.Conn would.
func TestReset(t *testing.T) {
	a, b := tcpPair(t)
	ca := wrap(a)
	_ = b.SetLinger(0)
	_ = b.Close()
	time.Sleep(20 * time.Millisecond)
	_, err := ca.Read(make([]byte, 10))
	checkOpError(t, err, "read")
	var se *os.SyscallError
	if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &se) {
		t.Errorf("read after a reset: %v, want ECONNRESET in an os.SyscallError", err)
	}
}

// TestFallback: a connection with no socket (net.Pipe) and a wrapper that hides it are used
// through their own Read and Write.
func TestFallback(t *testing.T) {
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	c := wrap(p1)
	if c.rc != nil {
		t.Fatal("net.Pipe reported raw")
	}
	go func() { _, _ = p2.Write([]byte("pipe")) }()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pipe" {
		t.Fatalf("read = %q %v", buf, err)
	}
	a, _ := tcpPair(t)
	if wrap(struct{ net.Conn }{a}).rc != nil {
		t.Error("a wrapper without SyscallConn reported raw")
	}
}

// TestUnixSocket: Unix stream sockets are read raw too.
func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Skip("no unix sockets:", err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = c.Write([]byte("unix"))
			_ = c.Close()
		}
	}()
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := wrap(nc)
	if runtime.GOOS == "linux" && c.rc == nil {
		t.Error("a unix socket is not read raw")
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "unix" {
		t.Errorf("read = %q %v", got, err)
	}
}

// TestNoAllocations: a read and a write on a ready socket allocate nothing.
func TestNoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	a, b := tcpPair(t)
	ca, cb := wrap(a), wrap(b)
	msg, buf := []byte("ping"), make([]byte, 16)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := ca.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(cb, buf[:len(msg)]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("allocations per write and read: %v, want 0", allocs)
	}
}

func checkOpError(t *testing.T, err error, op string) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != op || oe.Net != "tcp" || oe.Addr == nil || oe.Source == nil {
		t.Errorf("error %v (%T) is not a *net.OpError for %q with addresses", err, err, op)
	}
}

func BenchmarkPingPong(b *testing.B) {
	for _, mode := range []string{"net", "sockio"} {
		b.Run(mode, func(b *testing.B) {
			ln, _ := net.Listen("tcp", "127.0.0.1:0")
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			}()
			nc, _ := net.Dial("tcp", ln.Addr().String())
			defer nc.Close()
			var rw io.ReadWriter = nc
			if mode == "sockio" {
				rw = wrap(nc)
			}
			msg, buf := []byte("ping"), make([]byte, 4)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = rw.Write(msg)
				_, _ = io.ReadFull(rw, buf)
			}
		})
	}
}

// TestQuiet: an open connection with nothing to read is quiet; unread bytes (which stay
// readable), the peer's close and a closed connection are not. A pipe cannot be peeked.
func TestQuiet(t *testing.T) {
	a, b := tcpPair(t)
	ca := wrap(a)
	if !ca.Quiet() {
		t.Fatal("an idle connection is not quiet")
	}
	if _, err := b.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return !ca.Quiet() }, "unsolicited bytes")
	buf := make([]byte, 1)
	if n, err := ca.Read(buf); n != 1 || err != nil || buf[0] != 'x' {
		t.Fatalf("the peeked byte was consumed: %d %v %q", n, err, buf)
	}
	if !ca.Quiet() {
		t.Error("not quiet after reading the byte")
	}
	_ = b.Close()
	waitFor(t, func() bool { return !ca.Quiet() }, "the peer's close")
	_ = a.Close()
	if ca.Quiet() {
		t.Error("a closed connection is quiet")
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if !wrap(p1).Quiet() {
		t.Error("a pipe (no peek) is not reported quiet")
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not seen: %s", what)
		}
	}
}

// TestOnWriteWait: the hook runs before a write waits for room, and a deadline it sets is the
// one that wait obeys; a write that needs no wait does not call it. A Conn that passes its
// calls through to the net.Conn refuses the hook.
func TestOnWriteWait(t *testing.T) {
	a, _ := tcpPair(t) // the peer never reads
	c := wrap(a)
	waits := 0
	if !c.OnWriteWait(func() {
		waits++
		if waits == 1 {
			_ = a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		}
	}) {
		t.Fatal("a TCP connection refused the hook")
	}
	if _, err := c.Write([]byte("small")); err != nil {
		t.Fatal(err)
	}
	if waits != 0 {
		t.Fatalf("a write with room called the hook %d times", waits)
	}
	start := time.Now()
	n, err := c.Write(make([]byte, 64<<20)) // more than both sockets' buffers hold
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write = %d, %v; want the deadline the hook set", n, err)
	}
	if waits == 0 {
		t.Fatal("a write that waited did not call the hook")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the write took %v; the hook's deadline was 100ms", d)
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if wrap(p1).OnWriteWait(func() {}) {
		t.Fatal("net.Pipe accepted the hook: it cannot call it")
	}
}
