//go:build !(linux || freebsd || openbsd || netbsd || dragonfly)

package store

import "context"

// List is not available: Keychain and Credential Manager are searched by
// exact name only through go-keyring.
func (k *Keyring) List(context.Context) ([]string, error) { return nil, ErrListUnsupported }
