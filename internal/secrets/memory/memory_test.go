package memory_test

import (
	"testing"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/secretstest"
)

// TestSuite: one map shared by every "process", as one keyring is.
func TestSuite(t *testing.T) {
	shared := memory.New()
	secretstest.Run(t, func(*testing.T) secrets.Backend { return shared })
}
