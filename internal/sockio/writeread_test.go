package sockio

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// answerEach reads len(want) bytes at a time from nc, checks them against want and answers
// each with reply, until nc closes. It reports the first mismatch on bad.
func answerEach(nc net.Conn, want, reply []byte, bad chan<- string) {
	buf := make([]byte, len(want))
	for {
		if _, err := io.ReadFull(nc, buf); err != nil {
			return
		}
		if !bytes.Equal(buf, want) {
			bad <- string(buf)
			return
		}
		if _, err := nc.Write(reply); err != nil {
			return
		}
	}
}

// TestWriteRead: many request/answer rounds through WriteRead, each bounded by a deadline so
// that a lost readiness report would show as a timeout rather than hang; the answer is read
// whole and nothing else is lost or added.
func TestWriteRead(t *testing.T) {
	a, b := tcpPair(t)
	ca := wrap(a)
	bad := make(chan string, 1)
	go answerEach(b, []byte("ping"), []byte("pong!"), bad)
	buf := make([]byte, 64)
	for i := range 2000 {
		_ = a.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := ca.WriteRead([]byte("ping"), buf)
		for err == nil && n < 5 {
			var m int
			m, err = ca.Read(buf[n:])
			n += m
		}
		if err != nil || string(buf[:n]) != "pong!" {
			t.Fatalf("round %d: %q %v", i, buf[:n], err)
		}
	}
	select {
	case got := <-bad:
		t.Fatalf("the peer got %q", got)
	default:
	}
}

// TestWriteReadLarge: a write larger than the socket buffers is finished by Write (which
// waits for room) and the answer is then read; every byte arrives.
func TestWriteReadLarge(t *testing.T) {
	a, b := tcpPair(t)
	ca := wrap(a)
	out := make([]byte, 16<<20)
	_, _ = rand.Read(out)
	got := make(chan []byte, 1)
	go func() {
		in := make([]byte, len(out))
		_, err := io.ReadFull(b, in)
		if err == nil {
			_, err = b.Write([]byte("done"))
		}
		if err != nil {
			in = nil
		}
		got <- in
	}()
	_ = a.SetDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 16)
	n, err := ca.WriteRead(out, buf)
	if err == nil && n < 4 {
		var m int
		m, err = io.ReadAtLeast(ca, buf[n:], 4-n)
		n += m
	}
	if err != nil || string(buf[:n]) != "done" {
		t.Fatalf("WriteRead = %q %v", buf[:n], err)
	}
	if in := <-got; !bytes.Equal(in, out) {
		t.Fatal("the peer did not receive the bytes written")
	}
}

// TestWriteReadStrayBytes: bytes that arrived before the call, and that the runtime's poller
// had already reported, are read with the answer: the call does not wait for readiness that
// was reported before it reset it.
func TestWriteReadStrayBytes(t *testing.T) {
	a, b := tcpPair(t)
	ca := wrap(a)
	if _, err := b.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	// Let the poller see the byte: a read of another connection parks and polls meanwhile.
	time.Sleep(50 * time.Millisecond)
	go func() {
		buf := make([]byte, 4)
		if _, err := io.ReadFull(b, buf); err == nil {
			_, _ = b.Write([]byte("pong"))
		}
	}()
	_ = a.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, err := ca.WriteRead([]byte("ping"), buf)
	for err == nil && n < 5 {
		var m int
		m, err = ca.Read(buf[n:])
		n += m
	}
	if err != nil || string(buf[:n]) != "xpong" {
		t.Fatalf("WriteRead = %q %v, want \"xpong\"", buf[:n], err)
	}
}

// TestWriteReadErrors: a write to a reset connection fails as a write (nothing is read); a
// peer that never answers ends in the read deadline, as a read; the peer's close is io.EOF;
// a closed connection fails as a write; a connection without a socket writes, then reads.
func TestWriteReadErrors(t *testing.T) {
	t.Run("reset", func(t *testing.T) {
		a, b := tcpPair(t)
		ca := wrap(a)
		_ = b.SetLinger(0)
		_ = b.Close()
		time.Sleep(20 * time.Millisecond)
		_, err := ca.WriteRead([]byte("ping"), make([]byte, 8))
		checkOpError(t, err, "write")
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Errorf("WriteRead after a reset: %v, want ECONNRESET or EPIPE", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		a, b := tcpPair(t)
		ca := wrap(a)
		_ = a.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		start := time.Now()
		_, err := ca.WriteRead([]byte("ping"), make([]byte, 8))
		checkOpError(t, err, "read")
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("WriteRead without an answer: %v, want a timeout", err)
		}
		if d := time.Since(start); d < 40*time.Millisecond || d > 5*time.Second {
			t.Errorf("returned after %v", d)
		}
		buf := make([]byte, 4)
		_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "ping" {
			t.Errorf("the peer read %q %v", buf, err)
		}
		// A deadline already past sends nothing and fails as a write.
		_, err = ca.WriteRead([]byte("late"), make([]byte, 8))
		checkOpError(t, err, "write")
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("WriteRead past the deadline: %v", err)
		}
		_ = b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, _ := b.Read(buf); n != 0 {
			t.Errorf("the peer got %q after a deadline that had passed", buf[:n])
		}
	})
	t.Run("eof", func(t *testing.T) {
		a, b := tcpPair(t)
		ca := wrap(a)
		go func() {
			buf := make([]byte, 4)
			_, _ = io.ReadFull(b, buf)
			_ = b.CloseWrite()
		}()
		_ = a.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := ca.WriteRead([]byte("ping"), make([]byte, 8)); n != 0 || err != io.EOF {
			t.Errorf("WriteRead at the peer's close: %d %v, want io.EOF", n, err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		a, _ := tcpPair(t)
		ca := wrap(a)
		_ = a.Close()
		_, err := ca.WriteRead([]byte("ping"), make([]byte, 8))
		checkOpError(t, err, "write")
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("WriteRead on a closed conn: %v, want net.ErrClosed", err)
		}
	})
	t.Run("pipe", func(t *testing.T) {
		p1, p2 := net.Pipe()
		defer p1.Close()
		defer p2.Close()
		c := wrap(p1)
		go answerEach(p2, []byte("ping"), []byte("pong"), make(chan string, 1))
		buf := make([]byte, 4)
		n, err := c.WriteRead([]byte("ping"), buf)
		if err != nil || string(buf[:n]) != "pong" {
			t.Errorf("WriteRead over a pipe = %q %v", buf[:n], err)
		}
	})
}

// TestWriteReadNoAllocations: a round through WriteRead allocates nothing.
func TestWriteReadNoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	a, b := tcpPair(t)
	ca := wrap(a)
	go answerEach(b, []byte("ping"), []byte("pong"), make(chan string, 1))
	msg, buf := []byte("ping"), make([]byte, 4)
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := ca.WriteRead(msg, buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("allocations per WriteRead: %v, want 0", allocs)
	}
}
