//go:build unix

package regfile

import (
	"errors"
	"os"
	"syscall"
)

// nonBlock makes open(2) of a named pipe return at once.
const nonBlock = syscall.O_NONBLOCK

func noFollow(follow Follow) int {
	if follow {
		return 0
	}
	return syscall.O_NOFOLLOW
}

// isLoop recognises O_NOFOLLOW's refusal of a link (a link created after
// the check).
func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }

// isNoReader recognises a write-only open of a named pipe without a
// reader.
func isNoReader(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && errors.Is(pe.Err, syscall.ENXIO)
}
