package redistest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill redis-server if the test binary
// dies without running its cleanups (a panic, a timeout, go test -c killed),
// so no stray server outlives its test.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
