package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/bbtoken/git-credential-bbtoken/internal/ssread"
)

// Secrets is where token values live. Implementations return errors that
// wrap ErrSecretNotFound, ErrKeyringUnavailable, ErrKeyringTimeout or
// ErrSecretTooBig so callers can branch with errors.Is.
type Secrets interface {
	Get(ctx context.Context, id string) (string, error)
	Set(ctx context.Context, id, secret string) error
	Delete(ctx context.Context, id string) error
}

// ItemReader is a Secrets backend that reads faster given where the item
// was (Entry.Item) and how to recognise its value (Entry.Holds); a wrong
// or stale item must still find the right secret or none.
type ItemReader interface {
	GetItem(ctx context.Context, id, item string, want func(string) bool) (string, error)
}

// Locator is a Secrets backend that can say where it keeps a secret, for
// Entry.Item.
type Locator interface {
	Locate(ctx context.Context, id string) (string, error)
}

// Errors of the Secrets contract.
var (
	ErrSecretNotFound     = errors.New("secret not found in the keyring")
	ErrKeyringUnavailable = errors.New("keyring unavailable")
	ErrKeyringTimeout     = errors.New("keyring did not answer")
	ErrKeyringLocked      = errors.New("keyring is locked")
	ErrSecretTooBig       = errors.New("secret too large for this keyring")
)

// Service is the keyring service name every entry is filed under.
const Service = "git-credential-bbtoken"

// Keyring stores secrets in the OS keyring through go-keyring, bounding each
// call: a locked collection can open an unlock prompt that nobody answers,
// and git must never hang on us.
type Keyring struct {
	Service string
	Timeout time.Duration
}

// NewKeyring returns the OS keyring with the given per-call timeout.
func NewKeyring(timeout time.Duration) *Keyring {
	return &Keyring{Service: Service, Timeout: timeout}
}

// Get implements Secrets.
func (k *Keyring) Get(ctx context.Context, id string) (string, error) {
	return k.GetItem(ctx, id, "", nil)
}

// GetItem implements ItemReader.
func (k *Keyring) GetItem(ctx context.Context, id, item string, want func(string) bool) (string, error) {
	if v, done, err := k.direct(ctx, id, item, want); done {
		return v, err
	}
	// The value travels through a channel, not a shared variable: after a
	// timeout the abandoned call may still finish and write it.
	value := make(chan string, 1)
	err := k.call(ctx, "read", func(context.Context) error {
		v, ok, err := lookup(k.Service, id)
		if !ok {
			v, err = keyring.Get(k.Service, id)
		}
		select {
		case <-value: // a retry replaces the first attempt's value
		default:
		}
		value <- v
		return err
	})
	if err != nil {
		return "", err
	}
	return <-value, nil
}

// Set implements Secrets.
func (k *Keyring) Set(ctx context.Context, id, secret string) error {
	return k.call(ctx, "write", func(context.Context) error { return keyring.Set(k.Service, id, secret) })
}

// Delete implements Secrets.
func (k *Keyring) Delete(ctx context.Context, id string) error {
	return k.call(ctx, "delete", func(context.Context) error { return keyring.Delete(k.Service, id) })
}

func (k *Keyring) call(ctx context.Context, op string, fn func(context.Context) error) error {
	if err := checkSessionBus(); err != nil {
		return busError(op, err)
	}
	timeout := k.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	// The goroutine is abandoned on timeout: go-keyring has no cancellation,
	// and the process is about to exit anyway.
	go func() {
		introduce()
		done <- retryTransient(func() error { return fn(ctx) })
	}()
	select {
	case err := <-done:
		return classify(op, err)
	case <-ctx.Done():
		return timeoutError(op, timeout)
	}
}

func (k *Keyring) timeout() time.Duration {
	if k.Timeout <= 0 {
		return 5 * time.Second
	}
	return k.Timeout
}

func busError(op string, err error) error {
	return fmt.Errorf("%w during %s: %v; %s", ErrKeyringUnavailable, op, err, unavailableFix())
}

func timeoutError(op string, timeout time.Duration) error {
	return fmt.Errorf("%w within %s during %s; %s", ErrKeyringTimeout, timeout, op, lockedFix())
}

// A transient error is retried: gnome-keyring sometimes answers a
// brand-new connection's first call with "not implemented" (it has not
// registered the client yet, more often under load); again after a moment
// succeeds. Every call here is idempotent.
const (
	transientTries = 3
	transientPause = 25 * time.Millisecond // times the attempt number
)

// retryTransient runs fn until it returns something other than a
// transient error, at most transientTries times.
func retryTransient(fn func() error) error {
	err := fn()
	for attempt := 1; transient(err) && attempt < transientTries; attempt++ {
		time.Sleep(time.Duration(attempt) * transientPause)
		err = fn()
	}
	return err
}

func classify(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyring.ErrNotFound):
		return ErrSecretNotFound
	case errors.Is(err, keyring.ErrSetDataTooBig):
		return fmt.Errorf("%w (the Windows Credential Manager keeps at most 2560 bytes)", ErrSecretTooBig)
	}
	if isLocked(err) {
		return fmt.Errorf("%w during %s: %v; %s", ErrKeyringLocked, op, err, lockedFix())
	}
	return fmt.Errorf("%w during %s: %v; %s", ErrKeyringUnavailable, op, err, unavailableFix())
}

// transient: see ssread.Transient, the one place that knows the answer.
func transient(err error) bool { return ssread.Transient(err) }

// isLocked recognises go-keyring's report of an unlock prompt that was
// dismissed or could not be shown (headless gnome-keyring): it has no
// sentinel for it, only this message.
func isLocked(err error) bool {
	return strings.Contains(err.Error(), "failed to unlock")
}

func unavailableFix() string {
	switch runtime.GOOS {
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly":
		return "fix: run inside a desktop session, or start a Secret Service (e.g. `dbus-run-session -- sh -c 'echo PASSWORD | gnome-keyring-daemon --unlock --components=secrets; ...'`; see the README, Headless Linux)"
	case "darwin":
		return "fix: unlock the login keychain (`security unlock-keychain`)"
	case "windows":
		return "fix: make sure the Credential Manager service is running"
	}
	return "fix: this platform has no supported keyring"
}

func lockedFix() string {
	if runtime.GOOS == "linux" {
		return "fix: unlock the keyring (it may be waiting for an unlock prompt), e.g. open Passwords and Keys or run `gnome-keyring-daemon --unlock`, or raise GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT"
	}
	return "fix: unlock the keyring, or raise GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT"
}

// Memory is an in-process Secrets backend for unit tests.
type Memory struct {
	mu sync.Mutex
	m  map[string]string
	// Fail, when set, is returned by every call (to test keyring faults).
	Fail error
}

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory { return &Memory{m: map[string]string{}} }

// Get implements Secrets.
func (m *Memory) Get(_ context.Context, id string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return "", m.Fail
	}
	v, ok := m.m[id]
	if !ok {
		return "", ErrSecretNotFound
	}
	return v, nil
}

// Set implements Secrets.
func (m *Memory) Set(_ context.Context, id, secret string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	m.m[id] = secret
	return nil
}

// Delete implements Secrets.
func (m *Memory) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	if _, ok := m.m[id]; !ok {
		return ErrSecretNotFound
	}
	delete(m.m, id)
	return nil
}

// List implements Lister.
func (m *Memory) List(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return nil, m.Fail
	}
	ids := make([]string, 0, len(m.m))
	for id := range m.m {
		ids = append(ids, id)
	}
	return ids, nil
}

// Len is the number of secrets held, for tests.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.m)
}
