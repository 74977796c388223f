//go:build darwin || windows

package oskeyring

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/zalando/go-keyring"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
)

// Backend is the OS keyring as a secrets.Backend. It has no hints, and
// cannot list (go-keyring cannot enumerate).
type Backend struct {
	Service string
	Timeout time.Duration // each call's bound (5s when 0)
}

// New returns the OS keyring with the helper's service name.
func New(timeout time.Duration) *Backend {
	return &Backend{Service: secrets.Service, Timeout: timeout}
}

var _ secrets.Backend = (*Backend)(nil)

// Get implements secrets.Backend.
func (b *Backend) Get(ctx context.Context, id, _ string, _ func(string) bool) (string, string, error) {
	// The value goes through a channel, not a shared variable: after a
	// timeout the abandoned call may still finish and write it.
	value := make(chan string, 1)
	err := b.call(ctx, "read", func() error {
		v, err := keyring.Get(b.Service, id)
		value <- v
		return err
	})
	if err != nil {
		return "", "", err
	}
	return <-value, "", nil
}

// Set implements secrets.Backend.
func (b *Backend) Set(ctx context.Context, id, value string) (string, error) {
	return "", b.call(ctx, "write", func() error { return keyring.Set(b.Service, id, value) })
}

// Delete implements secrets.Backend.
func (b *Backend) Delete(ctx context.Context, id string) error {
	return b.call(ctx, "delete", func() error { return keyring.Delete(b.Service, id) })
}

// List implements secrets.Backend: go-keyring cannot enumerate.
func (b *Backend) List(context.Context) ([]string, error) {
	return nil, secrets.ErrListUnsupported
}

// call runs fn bounded by the timeout. go-keyring cannot be cancelled (the
// Keychain may show an unlock dialog): on timeout the goroutine is left
// behind, and the process is about to exit anyway.
func (b *Backend) call(ctx context.Context, what string, fn func() error) error {
	timeout := b.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return classify(what, err)
	case <-ctx.Done():
		return fmt.Errorf("%w within %s during %s; %s", secrets.ErrTimeout, timeout, what, fix)
	}
}

func classify(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyring.ErrNotFound):
		return secrets.ErrNotFound
	case errors.Is(err, keyring.ErrSetDataTooBig):
		return fmt.Errorf("%w (the Windows Credential Manager keeps at most 2560 bytes)", secrets.ErrTooBig)
	}
	return fmt.Errorf("%w during %s: %v; %s", secrets.ErrUnavailable, what, err, fix)
}

var fix = func() string {
	if runtime.GOOS == "darwin" {
		return "fix: unlock the login keychain (`security unlock-keychain`), or raise GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT"
	}
	return "fix: make sure the Credential Manager service is running"
}()
