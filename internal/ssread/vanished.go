package ssread

import (
	"errors"
	"strings"

	"github.com/godbus/dbus/v5"
)

// notImplemented is in gnome-keyring's answer to a brand-new connection
// whose registration it has not finished ("Method SearchItems is not
// implemented on interface org.freedesktop.Secret.Service"): the method
// exists, and the same call a moment later succeeds.
const notImplemented = "is not implemented on interface org.freedesktop.Secret"

// Transient recognises an answer that a retry clears (see notImplemented).
// Its error name, UnknownMethod, is also what a vanished object gets:
// Transient is asked first, so that a stored token is never taken for a
// deleted one because the service was not ready.
func Transient(err error) bool {
	return err != nil && strings.Contains(err.Error(), notImplemented)
}

// Vanished recognises the errors a Secret Service gives for an item that
// no longer exists (deleted by a parallel write between a search and a
// read), and never a Transient one. It serves every D-Bus client of this
// module, on every platform that has one.
func Vanished(err error) bool {
	var de dbus.Error
	if !errors.As(err, &de) || Transient(err) {
		return false
	}
	switch de.Name {
	case "org.freedesktop.DBus.Error.UnknownObject",
		"org.freedesktop.DBus.Error.UnknownInterface",
		"org.freedesktop.DBus.Error.UnknownMethod",
		"org.freedesktop.Secret.Error.NoSuchObject":
		return true
	}
	return false
}
