package testenv

import "syscall"

// procAttr puts mariadbd in its own process group, so that a terminal's
// Ctrl-C aimed at go test does not shut the database down under a test
// still running, and has the kernel SIGKILL it when the test binary dies
// without running cleanups (a -timeout panic, a kill): no server is left
// holding a port and a deleted datadir.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
