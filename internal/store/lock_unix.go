//go:build !windows

package store

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/regfile"
)

// lock takes an exclusive flock on path. It waits in a blocking flock (the
// kernel wakes waiters as the holder lets go, so a long waiter is not
// overtaken by newcomers as with polling), bounded by timeout so a stuck
// holder turns into an error instead of a hang.
func lock(path string, timeout time.Duration) (func(), error) {
	f, err := regfile.OpenLock(path)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	fd := int(f.Fd())
	release := func() {
		_ = syscall.Flock(fd, syscall.LOCK_UN)
		f.Close()
	}
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return release, nil
	} else if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}

	var (
		mu        sync.Mutex
		abandoned bool
	)
	got := make(chan error, 1)
	go func() {
		var err error
		for {
			if err = syscall.Flock(fd, syscall.LOCK_EX); !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if abandoned { // too late: the caller gave up
			if err == nil {
				release()
			} else {
				f.Close()
			}
			return
		}
		got <- err
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		return release, nil
	case <-timer.C:
		mu.Lock()
		defer mu.Unlock()
		select {
		case err := <-got: // acquired just as time ran out
			if err == nil {
				return release, nil
			}
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		default:
			abandoned = true
			return nil, fmt.Errorf("%w (%s, waited %s)", ErrLocked, path, timeout)
		}
	}
}

// syncDir makes a rename durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
