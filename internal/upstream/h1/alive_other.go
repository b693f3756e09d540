//go:build !unix

package h1

import "net"

// connAlive cannot peek without blocking on this platform; a stale connection is detected when
// the exchange fails instead.
func connAlive(net.Conn) bool { return true }
