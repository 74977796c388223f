package ssread

import (
	"errors"

	"github.com/godbus/dbus/v5"
)

// Vanished recognises the errors a Secret Service gives for an item that
// no longer exists (deleted by a parallel write between a search and a
// read). It serves every D-Bus client of this module, on every platform
// that has one.
func Vanished(err error) bool {
	var de dbus.Error
	if !errors.As(err, &de) {
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
