package chaos

import "syscall"

// sysProcAttr puts a node in a process group of its own, so that a Ctrl-C
// in the terminal reaches only the chaos process, which then kills the
// nodes; and has Linux kill the node if the chaos process dies without
// doing so (no orphans).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
