//go:build linux

package secretservice_test

import (
	"context"
	"os"
	"strings"
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

// TestProviderIsNamed: the program serving the Secret Service is named
// (for fixes in its own words), and each provider gets its own fix.
func TestProviderIsNamed(t *testing.T) {
	requireService(t)
	want := map[string]string{"": "gnome-keyring-daemon", "keepassxc": "keepassxc", "kwallet": "kwalletd5"}[os.Getenv("BBTOKEN_TEST_PROVIDER")]
	got := secretservice.Provider()
	if got != want {
		t.Fatalf("provider %q, want %q (BBTOKEN_TEST_PROVIDER=%q)", got, want, os.Getenv("BBTOKEN_TEST_PROVIDER"))
	}
	fixes := map[string]string{
		"gnome-keyring-daemon": "gnome-keyring-daemon --unlock",
		"keepassxc":            "unlock the database in KeePassXC",
		"kwalletd5":            "open the wallet in KWallet",
	}
	for program, words := range fixes {
		fix := secretservice.LockedFix(program)
		if !strings.Contains(fix, words) || !strings.HasPrefix(fix, "fix: ") || strings.Contains(fix, "\n") {
			t.Errorf("LockedFix(%q) = %q, want one line with %q", program, fix, words)
		}
	}
}
