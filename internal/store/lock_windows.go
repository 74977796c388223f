//go:build windows

package store

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/windows"

	"github.com/bbtoken/git-credential-bbtoken/internal/regfile"
)

// lock takes an exclusive LockFileEx on path, polling so that a stuck
// holder turns into an error instead of a hang.
func lock(path string, timeout time.Duration) (func(), error) {
	f, err := regfile.OpenLock(path)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	h := windows.Handle(f.Fd())
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		ol := new(windows.Overlapped)
		err := windows.LockFileEx(h, windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
		if err == nil {
			return func() {
				_ = windows.UnlockFileEx(h, 0, 1, 0, new(windows.Overlapped))
				f.Close()
			}, nil
		}
		if !errors.Is(err, windows.ERROR_LOCK_VIOLATION) && !errors.Is(err, windows.ERROR_IO_PENDING) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w (%s, waited %s)", ErrLocked, path, timeout)
		}
		time.Sleep(delay)
		delay = min(delay*2, 20*time.Millisecond)
	}
}

func syncDir(string) {}
