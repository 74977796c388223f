//go:build linux

package store_test

import (
	"testing"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/secretservice"
	"github.com/bbtoken/git-credential-bbtoken/internal/testkeyring"
)

// backends are the secret backends of this machine, for the tests here:
// memory, and the Secret Service.
func backends(*testing.T) map[string]func(t *testing.T) secrets.Backend {
	return map[string]func(t *testing.T) secrets.Backend{
		"memory":         func(*testing.T) secrets.Backend { return memory.New() },
		"secret service": secretService("-hinttest"),
	}
}

// secretService is the Secret Service of the test session (see
// testkeyring) under a service name of the test's own, so that nobody's
// real tokens are touched.
func secretService(suffix string) func(t *testing.T) secrets.Backend {
	return func(t *testing.T) secrets.Backend {
		testkeyring.Require(t)
		b := &secretservice.Backend{Service: secrets.Service + suffix, Timeout: testkeyring.Timeout}
		t.Cleanup(func() { _ = b.Close() })
		return b
	}
}

// TestStoreWithKeyring runs the suite against the real Secret Service that
// scripts/test.sh provides (skipped without one, unless
// BBTOKEN_REQUIRE_KEYRING=1).
func TestStoreWithKeyring(t *testing.T) {
	runSuite(t, secretService("-storetest"))
}
