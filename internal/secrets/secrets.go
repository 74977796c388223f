// Package secrets is the contract between the token index (internal/store)
// and the places secret values live: one package per backend under this
// one (secretservice: the freedesktop Secret Service of Linux and the BSDs;
// oskeyring: macOS's Keychain and Windows' Credential Manager; memory: a
// map, for tests; keyring picks the OS's). A new place for secrets is a
// package that implements Backend and keeps its errors.
//
// The index decides which secrets exist (an id per entry); a backend only
// keeps values under ids, and may return a hint with each value it writes
// (the Secret Service's object path of the item, say), which the index
// keeps in the entry without knowing what it means and hands back to Get.
package secrets

import (
	"context"
	"errors"
)

// Backend keeps secret values under ids. Every call is bounded by the
// backend's own timeout (a locked keyring may wait on a prompt nobody
// answers; git must never hang on the helper), and every error wraps one
// of the errors below, with a one-line explanation and its fix.
type Backend interface {
	// Get returns the value stored under id, and the hint of where it
	// was found. hint is what Set (or an earlier Get) returned for it (""
	// when unknown; it may be stale), and want, when not nil, recognises
	// the value that was written (the index keeps a salted MAC of it): a
	// backend may then read at hint directly and trust the value only if
	// want accepts it, instead of searching.
	Get(ctx context.Context, id, hint string, want func(string) bool) (value, found string, err error)
	// Set stores value under id, an id nothing is stored under yet (the
	// index never replaces a value in place: a new value gets a new id),
	// and returns a hint for Get, or "".
	Set(ctx context.Context, id, value string) (hint string, err error)
	// Delete removes the value stored under id. ErrNotFound when there is
	// none.
	Delete(ctx context.Context, id string) error
	// List returns the id of every value this backend keeps for the
	// helper (repair compares them with the index), or ErrListUnsupported.
	List(ctx context.Context) ([]string, error)
}

// Closer is a Backend that holds a connection to release once a command is
// done.
type Closer interface {
	Close() error
}

// Errors of the Backend contract.
var (
	// ErrNotFound: nothing is stored under the id (it vanished, or was
	// never written).
	ErrNotFound = errors.New("secret not found in the keyring")
	// ErrUnavailable: the backend cannot be reached (no Secret Service, no
	// session bus, a service that died mid-call).
	ErrUnavailable = errors.New("keyring unavailable")
	// ErrTimeout: the backend did not answer in time (often a locked
	// keyring waiting on an unlock prompt). The call may still complete
	// after the caller gave up.
	ErrTimeout = errors.New("keyring did not answer")
	// ErrLocked: the value is locked and could not be unlocked (the unlock
	// prompt was dismissed or cannot be shown).
	ErrLocked = errors.New("keyring is locked")
	// ErrTooBig: the backend cannot hold a value that long.
	ErrTooBig = errors.New("secret too large for this keyring")
	// ErrListUnsupported: the backend cannot enumerate what it keeps.
	ErrListUnsupported = errors.New("this keyring cannot list its items")
)

// Service is the name every secret of the helper is filed under (the
// Secret Service's "service" attribute, the Keychain's service).
const Service = "git-credential-bbtoken"
