package store

import (
	"context"
	"errors"

	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"

	"github.com/bbtoken/git-credential-bbtoken/internal/ssread"
)

// lookup reads a secret the fastest way the session bus allows: ssread's
// pipelined read (at item when want recognises the value there), else
// godbus.
// ok is false when the item is locked: then go-keyring's path, which
// unlocks (and may prompt), must take over.
func lookup(ctx context.Context, service, id, item string, want func(string) bool) (secret string, ok bool, err error) {
	v, _, err := ssread.Read(ctx, service, id, dbus.ObjectPath(item), want)
	switch {
	case err == nil:
		return v, true, nil
	case errors.Is(err, ssread.ErrNotFound):
		return "", true, keyring.ErrNotFound
	case errors.Is(err, ssread.ErrLocked):
		return "", false, nil
	case errors.Is(err, ssread.ErrUnsupported):
		return busLookup(service, id)
	}
	return "", true, err
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
