//go:build !(linux || freebsd || openbsd || netbsd || dragonfly)

package store

// lookup has no lean path here: go-keyring's Get is already one call into
// the platform's API.
func lookup(service, id string) (string, bool, error) { return "", false, nil }
