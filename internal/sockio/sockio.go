// Package sockio reads and writes a connection's socket through syscall.RawConn, so that on
// Linux a read or write is a raw system call that keeps its processor (P).
//
// net.Conn's Read and Write tell the scheduler about every system call (entersyscall and
// exitsyscall). The sysmon thread checks the processors, every 20 µs for as long as it keeps
// finding work, and hands one it finds in the same system call twice to another thread. On a
// loopback proxy a socket write delivers the data and wakes the receiver inside the sender's
// call, and the sender is often preempted there: on the proxy benchmark those hand-offs kept
// sysmon on its 20 µs tick (5.8% of the gateway's CPU) and the gateway at twice the context
// switches per request of a bare forwarder. A non-blocking socket's read and write never block,
// so they do not need the bookkeeping; waiting for readiness, deadlines and Close still go
// through the runtime's poller exactly as net.Conn's do (RawConn.Read and RawConn.Write take
// the same locks and the same deadline checks).
//
// The raw calls are recv and send with MSG_DONTWAIT, non-blocking even on a socket that was put
// in blocking mode (a raw call that blocked would hold its P and stall every stop-the-world).
// Race, memory- and address-sanitizer builds, linux/386 and other Unix systems make the
// ordinary syscall.Read and syscall.Write calls instead, in the same callbacks (the detectors
// learn of the memory they touch from them); other systems, and connections that are not
// sockets, use the net.Conn itself.
package sockio

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// maxRW bounds one system call's length, as internal/poll does (some kernels refuse 2 GiB or
// more).
const maxRW = 1 << 30

// Conn does one connection's reads and writes. A read may run concurrently with a write, but
// reads (and writes) must not overlap each other: the buffered reader and writer that use it
// serialize them. A Conn must not be copied after Init.
type Conn struct {
	nc      net.Conn
	rc      syscall.RawConn // nil: use nc
	rd, wr  op
	readFn  func(uintptr) bool
	writeFn func(uintptr) bool
	peekFn  func(uintptr) bool
	// writeWait, when set, is called before a write waits for room (see OnWriteWait).
	writeWait func()
}

// op is the state of the read or the write in progress, filled in by the RawConn callback.
type op struct {
	p     []byte
	n     int
	errno syscall.Errno
}

// Init makes c read and write nc. When nc offers no raw access (a TLS connection, a wrapper
// that changes what Read and Write do), c passes its calls through to nc.
//
// A connection that implements syscall.Conn promises that its SyscallConn reaches the socket
// its Read and Write use, and that they do nothing more; net's TCP and Unix connections do.
func (c *Conn) Init(nc net.Conn) {
	*c = Conn{nc: nc}
	if !raw {
		return
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.rc = rc
	c.readFn = c.doRead
	c.writeFn = c.doWrite
	c.peekFn = c.doPeek
}

// OnWriteWait makes c call f, on the writing goroutine, each time a Write is about to wait for
// room in the socket's send buffer, before it waits: f may set the write deadline that the
// wait then obeys. A caller can so leave a write that does not wait (most writes of a small
// request onto an idle connection) without a deadline change. It reports false, and calls
// nothing, when c passes its calls through to the net.Conn: the caller must then set the
// deadline before writing. OnWriteWait must be called before c is used.
func (c *Conn) OnWriteWait(f func()) bool {
	if c.rc == nil {
		return false
	}
	c.writeWait = f
	return true
}

// Read reads like net.Conn.Read: io.EOF at the end of the stream, and other errors as
// *net.OpError.
func (c *Conn) Read(p []byte) (int, error) {
	if c.rc == nil {
		return c.nc.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > maxRW {
		p = p[:maxRW]
	}
	c.rd = op{p: p}
	err := c.rc.Read(c.readFn)
	n, errno := c.rd.n, c.rd.errno
	c.rd.p = nil
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *Conn) doRead(fd uintptr) bool {
	for {
		n, errno := sysRead(fd, c.rd.p)
		switch errno {
		case 0:
			if n > len(c.rd.p) {
				errno = syscall.EIO // the kernel claims more than it was given room for
				break
			}
			c.rd.n = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait for the poller
		}
		c.rd.errno = errno
		return true
	}
}

// Quiet reports whether the connection is open with nothing to read, by a peek that does not
// wait: an idle keep-alive connection that the peer closed (EOF), that holds bytes nobody asked
// for, or that failed reports false. Where the socket cannot be peeked it reports true. It
// must not run concurrently with Read.
func (c *Conn) Quiet() bool {
	if c.rc == nil {
		return true
	}
	c.rd = op{}
	if err := c.rc.Read(c.peekFn); err != nil {
		return false
	}
	return c.rd.errno == syscall.EAGAIN
}

func (c *Conn) doPeek(fd uintptr) bool {
	for {
		c.rd.errno = sysPeek(fd)
		if c.rd.errno != syscall.EINTR {
			return true // never wait for readiness
		}
	}
}

// Write writes all of p like net.Conn.Write, waiting for the socket to drain as needed; it
// returns how much was written and, short of all of it, an error (*net.OpError).
func (c *Conn) Write(p []byte) (int, error) {
	if c.rc == nil {
		return c.nc.Write(p)
	}
	c.wr = op{p: p}
	err := c.rc.Write(c.writeFn)
	n, errno := c.wr.n, c.wr.errno
	c.wr.p = nil
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	if err == nil && n < len(p) {
		err = io.ErrUnexpectedEOF // the kernel took nothing and reported nothing
	}
	if err != nil {
		return n, c.opError("write", err)
	}
	return n, nil
}

func (c *Conn) doWrite(fd uintptr) bool {
	for c.wr.n < len(c.wr.p) {
		chunk := c.wr.p[c.wr.n:]
		if len(chunk) > maxRW {
			chunk = chunk[:maxRW]
		}
		n, errno := sysWrite(fd, chunk)
		switch errno {
		case 0:
			if n == 0 {
				return true
			}
			if n > len(chunk) {
				c.wr.errno = syscall.EIO // the kernel claims more than it was given
				return true
			}
			c.wr.n += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			if c.writeWait != nil {
				c.writeWait()
			}
			return false // wait for room
		default:
			c.wr.errno = errno
			return true
		}
	}
	return true
}

// opError wraps err as net.Conn would: RawConn's own errors (a deadline, a closed connection)
// come as a *net.OpError of op "raw-read" or "raw-write", whose cause is kept.
func (c *Conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	la := c.nc.LocalAddr()
	netw := ""
	if la != nil {
		netw = la.Network()
	}
	return &net.OpError{Op: op, Net: netw, Source: la, Addr: c.nc.RemoteAddr(), Err: err}
}
