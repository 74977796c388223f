//go:build !unix

package passstore

import "os/exec"

// No FIFOs to block on, and symbolic links are rare enough to follow.
const (
	nonBlock = 0
	noFollow = 0
)

// detach: elsewhere the process alone is ended at the timeout.
func detach(*exec.Cmd) {}
