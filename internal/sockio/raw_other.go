//go:build !unix

package sockio

import "syscall"

const raw = false

func sysRead(uintptr, []byte) (int, syscall.Errno)  { return 0, syscall.EINVAL }
func sysWrite(uintptr, []byte) (int, syscall.Errno) { return 0, syscall.EINVAL }
func sysPeek(uintptr) syscall.Errno                 { return syscall.EINVAL }
