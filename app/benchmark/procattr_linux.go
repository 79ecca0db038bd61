package benchmark

import "syscall"

// childProcAttr makes the kernel send the child SIGTERM if the bench dies first, so an
// interrupted bench leaves no server running.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
