//go:build linux || freebsd || openbsd || netbsd || dragonfly

package store

import (
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/godbus/dbus/v5"
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

// introduce makes gnome-keyring register this process's shared bus
// connection (the one go-keyring and godbus use) before anything else is
// sent on it. gnome-keyring 42 registers a new client asynchronously and
// aborts on an OpenSession that overtakes the registration, and
// OpenSession is go-keyring's first call; a property read of the service
// fails gracefully instead, and once it is answered the client exists.
// Once per process; an error is left for the real call to report.
var introduce = sync.OnceFunc(func() {
	conn, err := dbus.SessionBus()
	if err != nil {
		return
	}
	var collections dbus.Variant
	_ = conn.Object(ssName, ssPath).
		Call("org.freedesktop.DBus.Properties.Get", 0, ssService, "Collections").Store(&collections)
})
