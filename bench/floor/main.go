// Command floor is the cheapest HTTP/1.1 forwarder Go can be on this benchmark, for
// reference only: one goroutine per client connection with its own upstream connection, the
// request head copied to the upstream as it came and the response head and Content-Length
// body copied back, with bufio and nothing else — no routing, no header edits, no pool, no
// timeouts, no chunked bodies, no error handling beyond closing. bench/run.sh runs it as
// "floor" to show what the Go runtime and the kernel cost per request on the machine at hand,
// which no real gateway (Gatehouse included) can go below. Its sockets are read and written
// through internal/sockio, as Gatehouse's HTTP/1.1 server and client are; -netconn uses the
// net.Conn methods instead, to show what that costs.
//
// -spin adds that much busy work (user CPU time, no system calls) per request, half before
// each head is sent on: run as "floor_spin", it shows what the kernel costs a forwarder that
// spends as much user time per request as a real gateway but makes floor's system calls.
//
//	floor -listen 127.0.0.1:8081 -upstream 127.0.0.1:8080 [-netconn] [-spin 9us]
package main

import (
	"bufio"
	"bytes"
	"flag"
	"io"
	"log"
	"net"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/sockio"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	upstream := flag.String("upstream", "", "host:port of the backend")
	netconn := flag.Bool("netconn", false, "read and write through net.Conn rather than internal/sockio")
	spin := flag.Duration("spin", 0, "busy work (user CPU time) per request, e.g. 9us")
	flag.Parse()
	if *upstream == "" {
		log.Fatal("floor: -upstream is required")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(c, *upstream, *netconn, *spin/2)
	}
}

func serve(c net.Conn, upstream string, netconn bool, spin time.Duration) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	var crw, urw io.ReadWriter = c, u
	if !netconn {
		var cs, us sockio.Conn
		cs.Init(c)
		us.Init(u)
		crw, urw = &cs, &us
	}
	cr, ur := bufio.NewReader(crw), bufio.NewReader(urw)
	cw, uw := bufio.NewWriter(crw), bufio.NewWriter(urw)
	var head []byte
	for {
		var n int64
		if head, n, err = readHead(cr, head); err != nil {
			return
		}
		burn(spin)
		uw.Write(head)
		if _, err := io.CopyN(uw, cr, n); err != nil || uw.Flush() != nil {
			return
		}
		if head, n, err = readHead(ur, head); err != nil {
			return
		}
		burn(spin)
		cw.Write(head)
		if _, err := io.CopyN(cw, ur, n); err != nil || cw.Flush() != nil {
			return
		}
	}
}

// readHead reads a message head into buf and returns its Content-Length (0 if none).
func readHead(br *bufio.Reader, buf []byte) ([]byte, int64, error) {
	buf = buf[:0]
	var n int64
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return buf, 0, err
		}
		buf = append(buf, line...)
		if len(line) <= 2 {
			return buf, n, nil
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			n, _ = strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
}

var sink uint64

// burn keeps the CPU busy for d without a system call (the clock is read through the vDSO).
func burn(d time.Duration) {
	if d <= 0 {
		return
	}
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range uint64(64) {
			sink += i * i
		}
	}
}
