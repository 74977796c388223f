//go:build unix

package passstore

import (
	"os/exec"
	"syscall"
)

// Opening entries must not block on a FIFO someone put in their place,
// nor follow a symbolic link that Names would not list.
const (
	nonBlock = syscall.O_NONBLOCK
	noFollow = syscall.O_NOFOLLOW
)

// detach runs gpg or git in a session of its own: without a controlling
// terminal, so that nothing it starts can prompt on it, and as the leader
// of a process group that a timeout ends whole. (gpg-agent, which gpg may
// start, detaches itself and lives on, as it should.)
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
