//go:build !unix

package gitcmd

import "os/exec"

// detach: elsewhere git alone is ended at the timeout.
func detach(*exec.Cmd) {}
