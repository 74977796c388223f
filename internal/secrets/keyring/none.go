//go:build !(linux || freebsd || openbsd || netbsd || dragonfly || darwin || windows)

package keyring

import (
	"context"
	"fmt"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
)

// New returns a keyring that says this platform has none.
func New(time.Duration) secrets.Backend { return none{} }

type none struct{}

var errNone = fmt.Errorf("%w: this platform has no supported keyring", secrets.ErrUnavailable)

func (none) Get(context.Context, string, string, func(string) bool) (string, string, error) {
	return "", "", errNone
}
func (none) Set(context.Context, string, string) (string, error) { return "", errNone }
func (none) Delete(context.Context, string) error                { return errNone }
func (none) List(context.Context) ([]string, error)              { return nil, errNone }
