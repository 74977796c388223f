//go:build unix

package store

import (
	"fmt"
	"os"
	"syscall"
)

// checkOwner refuses an index (or its directory) that another user owns:
// whoever can write the index can point a token's id at another host.
func checkOwner(st os.FileInfo, path string) error {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Getuid(); int(sys.Uid) != uid {
		return fmt.Errorf("%w: %s belongs to user %d, not to you (%d); fix: remove it or chown it to yourself", ErrIndexUnsafe, path, sys.Uid, uid)
	}
	return nil
}
