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
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/keyring"
)

// RequireEnv is the variable that turns a missing keyring into a failure.
const RequireEnv = "BBTOKEN_REQUIRE_KEYRING"

// Timeout is what tests give each keyring call.
const Timeout = 10 * time.Second

// Require returns the OS keyring backend after one write/read/delete round
// trip, or stops the test.
func Require(t testing.TB) secrets.Backend {
	t.Helper()
	k := keyring.New(Timeout)
	err := probe(k)
	if err != nil && Restart(t) {
		err = probe(k)
	}
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s=1 but the Secret Service is not usable: %v", RequireEnv, err)
		}
		t.Skipf("no usable Secret Service (%v): run through scripts/test.sh, which starts gnome-keyring under dbus-run-session", err)
	}
	return k
}

func probe(k secrets.Backend) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := "probe-" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := k.Set(ctx, id, "probe"); err != nil {
		return err
	}
	if _, _, err := k.Get(ctx, id, "", nil); err != nil {
		return err
	}
	return k.Delete(ctx, id)
}

// Restart starts the test keyring daemon again when scripts/test.sh said
// how (BBTOKEN_TEST_KEYRING_HOME and _PASSWORD) and it no longer owns the
// Secret Service name: gnome-keyring 42 can abort when a client is killed
// in the middle of a call, which the crash tests do on purpose, and one
// such abort must not fail every later test. It reports whether it
// restarted the daemon.
func Restart(t testing.TB) bool {
	t.Helper()
	home, pass := os.Getenv("BBTOKEN_TEST_KEYRING_HOME"), os.Getenv("BBTOKEN_TEST_KEYRING_PASSWORD")
	if home == "" || Alive() {
		return false
	}
	// Once more after a moment: a daemon taken for dead while it lives
	// would be replaced, and the replacement would take its control
	// directory away from under it.
	time.Sleep(200 * time.Millisecond)
	if Alive() {
		return false
	}
	cmd := exec.Command("gnome-keyring-daemon", "--unlock", "--components=secrets")
	// Not the first daemon's control directory (GNOME_KEYRING_CONTROL):
	// a new daemon sharing it removes it on its way, and a daemon whose
	// control directory goes away quits.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GNOME_KEYRING_CONTROL=") || strings.HasPrefix(kv, "GNOME_KEYRING_PID=")
	})
	cmd.Env = append(env, "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, ".local", "share"))
	cmd.Stdin = strings.NewReader(pass)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Logf("restarting gnome-keyring-daemon: %v: %s", err, out)
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if Alive() {
			t.Logf("gnome-keyring-daemon had died (it aborts when a client is killed mid-call); restarted it")
			return true
		}
	}
	return false
}

// Alive reports whether something owns the Secret Service name on the
// session bus.
func Alive() bool {
	conn, err := dbus.SessionBus()
	if err != nil {
		return false
	}
	var has bool
	err = conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.secrets").Store(&has)
	return err == nil && has
}
