package fakesecrets

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/zalando/go-keyring"
)

// TestFakeWithGoKeyring drives the fake with go-keyring, the client the
// helper uses. go-keyring keeps one session-bus connection per process, so
// every subtest shares one bus; each starts its own service on it.
func TestFakeWithGoKeyring(t *testing.T) {
	if _, err := exec.LookPath("dbus-daemon"); err != nil && os.Getenv("BBTOKEN_REQUIRE_KEYRING") != "1" {
		t.Skip("dbus-daemon is not installed (Debian package dbus)")
	}
	bus := StartBus(t, BusOptions{})
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus.Address)
	const svc = "fakesecrets-test"

	fresh := func(t *testing.T) *Service {
		s, err := start(bus.Address)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}

	t.Run("round trip", func(t *testing.T) {
		s := fresh(t)
		if err := keyring.Set(svc, "a", "secret-a"); err != nil {
			t.Fatal(err)
		}
		if err := keyring.Set(svc, "a", "secret-a2"); err != nil {
			t.Fatal(err)
		}
		if got, err := keyring.Get(svc, "a"); err != nil || got != "secret-a2" {
			t.Fatalf("Get = %q, %v", got, err)
		}
		if n := len(s.Items()); n != 1 {
			t.Errorf("%d items after replacing one, want 1: %v", n, s.Items())
		}
		if err := keyring.Delete(svc, "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := keyring.Get(svc, "a"); !errors.Is(err, keyring.ErrNotFound) {
			t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
		}
	})

	t.Run("locked, prompt answered", func(t *testing.T) {
		s := fresh(t)
		if err := keyring.Set(svc, "b", "secret-b"); err != nil {
			t.Fatal(err)
		}
		s.SetFault(Fault{Locked: true, Prompt: PromptUnlock})
		if got, err := keyring.Get(svc, "b"); err != nil || got != "secret-b" {
			t.Fatalf("Get = %q, %v", got, err)
		}
		if !strings.Contains(strings.Join(s.Calls(), " "), MethodPrompt) {
			t.Errorf("no prompt was shown: %v", s.Calls())
		}
	})

	t.Run("locked, prompt dismissed", func(t *testing.T) {
		s := fresh(t)
		if err := keyring.Set(svc, "c", "secret-c"); err != nil {
			t.Fatal(err)
		}
		s.SetFault(Fault{Locked: true, Prompt: PromptDismiss})
		if _, err := keyring.Get(svc, "c"); err == nil {
			t.Fatal("Get from a locked collection whose prompt was dismissed succeeded")
		}
	})

	t.Run("dies in GetSecret", func(t *testing.T) {
		s := fresh(t)
		if err := keyring.Set(svc, "d", "secret-d"); err != nil {
			t.Fatal(err)
		}
		s.SetFault(Fault{DieOn: MethodGetSecret})
		_, err := keyring.Get(svc, "d")
		if err == nil || !strings.Contains(err.Error(), "disconnected") {
			t.Fatalf("Get = %v, want the bus's NoReply (recipient disconnected)", err)
		}
		if s.Died() != MethodGetSecret {
			t.Errorf("Died() = %q", s.Died())
		}
		if _, err := keyring.Get(svc, "d"); err == nil || !strings.Contains(err.Error(), ServiceName) {
			t.Fatalf("Get after the service died = %v, want no owner for %s", err, ServiceName)
		}
	})
}
