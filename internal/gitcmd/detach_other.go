//go:build !unix

package gitcmd

import "os/exec"

// Detach: elsewhere the command alone is ended at the timeout.
func Detach(*exec.Cmd) {}
