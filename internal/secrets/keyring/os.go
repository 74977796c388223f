//go:build darwin || windows

package keyring

import (
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/oskeyring"
)

// New returns the OS keyring, each call bounded by timeout.
func New(timeout time.Duration) secrets.Backend { return oskeyring.New(timeout) }
