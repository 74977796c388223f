package store

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"

	"github.com/bbtoken/git-credential-bbtoken/internal/ssread"
)

// direct is get's read: ssread's pipelined read (at item when want
// recognises the value there), on the calling goroutine, bounded by the
// socket's deadline rather than by an abandoned goroutine (which would
// cost a thread hand-off at every git call). done is false when the item
// is locked or the bus is one ssread cannot reach: the general path
// (godbus, then go-keyring's unlocking read) takes over.
func (k *Keyring) direct(ctx context.Context, id, item string, want func(string) bool) (secret string, done bool, err error) {
	if checkSessionBus() != nil {
		return "", false, nil // the general path says what is missing
	}
	timeout := k.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		v, _, err := ssread.Read(ctx, k.Service, id, dbus.ObjectPath(item), want)
		switch {
		case err == nil:
			return v, true, nil
		case errors.Is(err, ssread.ErrNotFound):
			return "", true, ErrSecretNotFound
		case errors.Is(err, ssread.ErrLocked), errors.Is(err, ssread.ErrUnsupported):
			return "", false, nil
		case transient(err) && attempt+1 < transientTries:
			time.Sleep(time.Duration(attempt+1) * transientPause)
			continue
		case errors.Is(err, os.ErrDeadlineExceeded), ctx.Err() != nil:
			return "", true, timeoutError("read", timeout)
		}
		return "", true, classify("read", err)
	}
}

// lookup is the general path's read: godbus's three calls (go-keyring's
// unlocking read takes over when ok is false).
func lookup(_ context.Context, service, id, _ string, _ func(string) bool) (secret string, ok bool, err error) {
	return busLookup(service, id)
}

// Locate implements Locator: the Secret Service object path of the item.
func (k *Keyring) Locate(ctx context.Context, id string) (string, error) {
	result := make(chan string, 1)
	err := k.call(ctx, "locate", func(ctx context.Context) error {
		p, err := ssread.Find(ctx, k.Service, id)
		select {
		case <-result: // a retry replaces the first attempt's answer
		default:
		}
		result <- string(p)
		if errors.Is(err, ssread.ErrNotFound) {
			return keyring.ErrNotFound
		}
		return err
	})
	if err != nil {
		return "", err
	}
	return <-result, nil
}
