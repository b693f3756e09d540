package sockio

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// describe renders an error with the facts callers test for.
func describe(n int, err error) string {
	if err == nil {
		return fmt.Sprintf("n=%d err=nil", n)
	}
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	var oe *net.OpError
	op, inner := "", ""
	if errors.As(err, &oe) {
		op = oe.Op
		inner = fmt.Sprintf("%T(%v) net=%s src=%T addr=%T", oe.Err, oe.Err, oe.Net, oe.Source, oe.Addr)
	}
	return fmt.Sprintf("n>0=%v %T op=%q inner=%s timeout=%v closed=%v deadline=%v eof=%v reset=%v epipe=%v",
		n > 0, err, op, inner, timeout, errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded),
		err == io.EOF, errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE))
}

// TestErrorParity: each scenario run once with net.Conn and once with sockio; the
// results must be identical.
func TestErrorParity(t *testing.T) {
	type rw interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
	}
	scenarios := map[string]func(t *testing.T, a, b *net.TCPConn, c rw) string{
		"read deadline": func(t *testing.T, a, b *net.TCPConn, c rw) string {
			_ = a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			return describe(c.Read(make([]byte, 8)))
		},
		"write deadline": func(t *testing.T, a, b *net.TCPConn, c rw) string {
			_ = a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			return describe(c.Write(make([]byte, 32<<20)))
		},
		"read after close": func(t *testing.T, a, b *net.TCPConn, c rw) string {
			_ = a.Close()
			return describe(c.Read(make([]byte, 8)))
		},
		"write after close": func(t *testing.T, a, b *net.TCPConn, c rw) string {
			_ = a.Close()
			return describe(c.Write([]byte("x")))
		},
		"read eof": func(t *testing.T, a, b *net.TCPConn, c rw) string {
			_ = b.Close()
			return describe(c.Read(make([]byte, 8)))
		},
		"read reset": func(t *testing.T, a, b *net.TCPConn, c rw) string {
			_ = b.SetLinger(0)
			_ = b.Close()
			time.Sleep(20 * time.Millisecond)
			return describe(c.Read(make([]byte, 8)))
		},
		"write after peer reset": func(t *testing.T, a, b *net.TCPConn, c rw) string {
			_ = b.SetLinger(0)
			_ = b.Close()
			time.Sleep(20 * time.Millisecond)
			return describe(writeUntilError(c))
		},
		"write after peer close (EPIPE)": func(t *testing.T, a, b *net.TCPConn, c rw) string {
			_ = b.Close()
			time.Sleep(20 * time.Millisecond)
			return describe(writeUntilError(c))
		},
		"read unblocked by close": func(t *testing.T, a, b *net.TCPConn, c rw) string {
			go func() { time.Sleep(20 * time.Millisecond); _ = a.Close() }()
			return describe(c.Read(make([]byte, 8)))
		},
		"read unblocked by past deadline": func(t *testing.T, a, b *net.TCPConn, c rw) string {
			go func() { time.Sleep(20 * time.Millisecond); _ = a.SetReadDeadline(time.Unix(1, 0)) }()
			return describe(c.Read(make([]byte, 8)))
		},
	}
	for name, f := range scenarios {
		t.Run(name, func(t *testing.T) {
			a1, b1 := tcpPair(t)
			want := f(t, a1, b1, a1)
			a2, b2 := tcpPair(t)
			got := f(t, a2, b2, wrap(a2))
			if got != want {
				t.Errorf("\nnet.Conn: %s\nsockio:   %s", want, got)
			}
		})
	}
}

// writeUntilError writes a byte at a time, up to five, until a write fails.
func writeUntilError(c interface{ Write([]byte) (int, error) }) (n int, err error) {
	for i := 0; i < 5 && err == nil; i++ {
		n, err = c.Write([]byte("x"))
		time.Sleep(10 * time.Millisecond)
	}
	return n, err
}

// TestBlockingModeSocket: a socket whose file description was put in blocking mode (here by
// (*os.File).Fd on a dup from TCPConn.File, as os.StartProcess's ExtraFiles also does) must
// not make a raw read block while holding its P, outside entersyscall: a stop-the-world
// (runtime.GC) could not complete, and the whole process would stop, until the read returned.
// MSG_DONTWAIT keeps the raw read non-blocking; the poller waits instead. A child process
// sends the byte that ends the read after 2 s: a stuck GC would take about 1.9 s, while a
// loaded machine has been seen to take 0.3–0.6 s for a healthy one. With net.Conn the blocking
// read sits in an ordinary system call and GC completes at once.
func TestBlockingModeSocket(t *testing.T) {
	for _, mode := range []string{"net.Conn", "sockio"} {
		t.Run(mode, func(t *testing.T) {
			a, b := tcpPair(t)
			fa, err := a.File()
			if err != nil {
				t.Fatal(err)
			}
			defer fa.Close()
			_ = fa.Fd() // clears O_NONBLOCK on the file description a shares

			fb, err := b.File()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("sh", "-c", "sleep 2; printf x >&3")
			cmd.ExtraFiles = []*os.File{fb}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			_ = fb.Close()
			defer cmd.Wait()

			var r interface{ Read([]byte) (int, error) } = a
			if mode == "sockio" {
				r = wrap(a)
			}
			done := make(chan error, 1)
			go func() {
				_, err := r.Read(make([]byte, 1))
				done <- err
			}()
			time.Sleep(100 * time.Millisecond) // the read is in read(2) now
			begin := time.Now()
			runtime.GC()
			took := time.Since(begin)
			t.Logf("runtime.GC took %v while a %s read was blocked", took, mode)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if took > time.Second {
				t.Errorf("runtime.GC took %v: the world could not be stopped while the read blocked", took)
			}
		})
	}
}
