//go:build !linux

package chaos

import "syscall"

// sysProcAttr puts a node in a process group of its own, so that a Ctrl-C
// in the terminal reaches only the chaos process, which then kills the
// nodes.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
