//go:build !linux

package store_test

import (
	"testing"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
)

// backends are the secret backends the tests here run against: the OS
// keyrings of macOS and Windows are not tested unattended.
func backends(*testing.T) map[string]func(t *testing.T) secrets.Backend {
	return map[string]func(t *testing.T) secrets.Backend{
		"memory": func(*testing.T) secrets.Backend { return memory.New() },
	}
}
