//go:build darwin || windows

package keyring

import (
	"runtime"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/oskeyring"
)

// New returns the OS keyring, each call bounded by timeout. Windows'
// Credential Manager keeps at most 2560 bytes a secret: longer ones (an
// OAuth login's refresh token) are split over several items.
func New(timeout time.Duration) secrets.Backend {
	if runtime.GOOS == "windows" {
		return secrets.Split(oskeyring.New(timeout), 2000)
	}
	return oskeyring.New(timeout)
}
