// Package testkeyring gives tests the real Secret Service that
// scripts/test.sh starts (gnome-keyring under dbus-run-session, unlocked
// from stdin). Tests call Require: without a reachable Secret Service they
// fail when BBTOKEN_REQUIRE_KEYRING=1 (as in CI) and skip otherwise, with a
// message saying how to run them.
package testkeyring

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// RequireEnv is the variable that turns a missing keyring into a failure.
const RequireEnv = "BBTOKEN_REQUIRE_KEYRING"

// Require returns the OS keyring backend after one write/read/delete round
// trip, or stops the test.
func Require(t testing.TB) *store.Keyring {
	t.Helper()
	k := store.NewKeyring(10 * time.Second)
	if err := probe(k); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s=1 but the Secret Service is not usable: %v", RequireEnv, err)
		}
		t.Skipf("no usable Secret Service (%v): run through scripts/test.sh, which starts gnome-keyring under dbus-run-session", err)
	}
	return k
}

func probe(k *store.Keyring) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := "probe-" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if err := k.Set(ctx, id, "probe"); err != nil {
		return err
	}
	if _, err := k.Get(ctx, id); err != nil {
		return err
	}
	return k.Delete(ctx, id)
}
