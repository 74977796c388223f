//go:build linux || freebsd || openbsd || netbsd || dragonfly

package store

import (
	"errors"
	"os"
	"path/filepath"
)

// errNoSessionBus is returned before go-keyring runs when there is no D-Bus
// session bus: godbus would otherwise autolaunch a dbus-daemon (and with it
// a keyring daemon) that outlives the helper.
var errNoSessionBus = errors.New("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset and $XDG_RUNTIME_DIR/bus does not exist)")

func checkSessionBus() error {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return nil
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "bus")); err == nil {
			return nil
		}
	}
	return errNoSessionBus
}
