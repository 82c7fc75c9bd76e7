//go:build !linux

package testenv

import "syscall"

// procAttr puts mariadbd in its own process group (see the Linux variant;
// elsewhere there is no parent-death signal, so only cleanups stop it).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
