//go:build unix

package passstore

import "syscall"

// Opening entries must not block on a FIFO someone put in their place,
// nor follow a symbolic link that Names would not list.
const (
	nonBlock = syscall.O_NONBLOCK
	noFollow = syscall.O_NOFOLLOW
)
