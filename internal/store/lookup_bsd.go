//go:build freebsd || openbsd || netbsd || dragonfly

package store

import "context"

// lookup is godbus's three-call read here: ssread's authentication is
// Linux's (the BSDs pass credentials differently).
func lookup(_ context.Context, service, id, _ string, _ func(string) bool) (string, bool, error) {
	return busLookup(service, id)
}

// direct has nothing to offer here: the general path reads.
func (k *Keyring) direct(context.Context, string, string, func(string) bool) (string, bool, error) {
	return "", false, nil
}
