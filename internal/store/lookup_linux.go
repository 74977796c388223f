package store

import (
	"context"
	"errors"
	"os"

	"github.com/godbus/dbus/v5"

	"github.com/bbtoken/git-credential-bbtoken/internal/ssread"
)

// direct is get's read: ssread's pipelined read (at item when want
// recognises the value there). done is false when the item is locked or
// the bus is one ssread cannot reach: the general path (godbus, then
// go-keyring's unlocking read) takes over.
func (k *Keyring) direct(ctx context.Context, id, item string, want func(string) bool) (secret string, done bool, err error) {
	if checkSessionBus() != nil {
		return "", false, nil // the general path says what is missing
	}
	err = k.lean(ctx, "read", func(ctx context.Context) error {
		var err error
		secret, _, err = ssread.Read(ctx, k.Service, id, dbus.ObjectPath(item), want)
		return err
	})
	if errors.Is(err, ssread.ErrLocked) || errors.Is(err, ssread.ErrUnsupported) {
		return "", false, nil
	}
	return secret, true, err
}

// Locate implements Locator: the Secret Service object path of the item,
// or "" when ssread cannot reach this bus (get then searches, through
// godbus).
func (k *Keyring) Locate(ctx context.Context, id string) (string, error) {
	if err := checkSessionBus(); err != nil {
		return "", busError("locate", err)
	}
	var item dbus.ObjectPath
	err := k.lean(ctx, "locate", func(ctx context.Context) error {
		var err error
		item, err = ssread.Find(ctx, k.Service, id)
		return err
	})
	if errors.Is(err, ssread.ErrUnsupported) {
		return "", nil
	}
	return string(item), err
}

// lean runs one of ssread's calls on the calling goroutine, bounded by its
// socket deadline rather than by an abandoned goroutine (which would cost
// a thread hand-off at every git call), and says what went wrong the way
// call does. ssread's ErrLocked and ErrUnsupported are left for the
// caller to act on.
func (k *Keyring) lean(ctx context.Context, op string, fn func(context.Context) error) error {
	timeout := k.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := retryTransient(func() error { return fn(ctx) })
	switch {
	case err == nil, errors.Is(err, ssread.ErrLocked), errors.Is(err, ssread.ErrUnsupported):
		return err
	case errors.Is(err, ssread.ErrNotFound):
		return ErrSecretNotFound
	case errors.Is(err, os.ErrDeadlineExceeded), ctx.Err() != nil:
		return timeoutError(op, timeout)
	}
	return classify(op, err)
}
