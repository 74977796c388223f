//go:build linux

package secretservice_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/secretservice"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/secretstest"
)

// TestSuiteReal runs the behaviour suite against the Secret Service of the
// session bus (gnome-keyring under scripts/test.sh; KeePassXC and KWallet
// when it runs the suite again under them), with a service name of its
// own so that nobody's real tokens are touched.
func TestSuiteReal(t *testing.T) {
	requireService(t)
	secretstest.Run(t, func(*testing.T) secrets.Backend {
		return &secretservice.Backend{Service: secrets.Service + "-suite", Timeout: 10 * time.Second}
	})
}

func requireService(t *testing.T) {
	t.Helper()
	b := &secretservice.Backend{Service: secrets.Service + "-probe", Timeout: 10 * time.Second}
	defer b.Close()
	_, _, err := b.Get(context.Background(), "probe", "", nil)
	if err == nil || err == secrets.ErrNotFound {
		return
	}
	if os.Getenv("BBTOKEN_REQUIRE_KEYRING") == "1" {
		t.Fatalf("BBTOKEN_REQUIRE_KEYRING=1 but the Secret Service is not usable: %v", err)
	}
	t.Skipf("no usable Secret Service (%v): run through scripts/test.sh", err)
}
