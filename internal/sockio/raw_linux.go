//go:build linux && !race && !msan && !asan && !386

package sockio

import (
	"syscall"
	"unsafe"
)

const raw = true

// sysRead and sysWrite are recv(2) and send(2) without the scheduler's system call
// bookkeeping. MSG_DONTWAIT makes each call non-blocking whatever the socket's mode: O_NONBLOCK
// belongs to the open file description, which a duplicate shares (TCPConn.File followed by
// Fd puts the original socket in blocking mode), and a raw call that blocked would hold its P
// and stall every stop-the-world. MSG_NOSIGNAL is what Go's ignored SIGPIPE amounts to: a
// write to a closed peer returns EPIPE.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)),
		syscall.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)),
		syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// sysPeek peeks at one byte without waiting: EAGAIN when there is nothing to read, 0 when
// there is data or the peer closed.
func sysPeek(fd uintptr) syscall.Errno {
	var b [1]byte
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno
}
