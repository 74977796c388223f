//go:build linux || freebsd || openbsd || netbsd || dragonfly

package keyring

import (
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/secretservice"
)

// New returns the OS keyring, each call bounded by timeout.
func New(timeout time.Duration) secrets.Backend { return secretservice.New(timeout) }
