//go:build unix

package gitcmd

import (
	"os/exec"
	"syscall"
)

// Detach runs a command (git, gpg) in a session of its own: without a controlling
// terminal, so that no helper it starts can prompt on it, and as the
// leader of a process group that a timeout ends whole (git, the shells it
// starts, and what they start).
func Detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
