//go:build linux || freebsd || openbsd || netbsd || dragonfly

package store

import (
	"github.com/godbus/dbus/v5"
	"github.com/zalando/go-keyring"

	"github.com/bbtoken/git-credential-bbtoken/internal/ssread"
)

// Secret Service names (freedesktop.org Secret Service API 0.2).
const (
	ssName    = "org.freedesktop.secrets"
	ssPath    = "/org/freedesktop/secrets"
	ssService = "org.freedesktop.Secret.Service"
)

// ssSecret is the Secret struct of the Secret Service API: (oayays).
type ssSecret struct {
	Session     dbus.ObjectPath
	Parameters  []byte
	Value       []byte
	ContentType string
}

// lookup reads a secret through godbus in three calls (SearchItems,
// OpenSession "plain", GetSecrets) where go-keyring's Get makes seven. It
// finds the items go-keyring writes (attributes service and username). ok
// is false when the item is locked: then go-keyring's path, which unlocks
// (and may prompt), must take over. On Linux it serves what ssread's
// direct read hands over (a bus ssread cannot reach, a locked item).
func lookup(service, id string) (secret string, ok bool, err error) {
	conn, err := dbus.SessionBus()
	if err != nil {
		return "", true, err
	}
	svc := conn.Object(ssName, ssPath)
	var unlocked, locked []dbus.ObjectPath
	err = svc.Call(ssService+".SearchItems", 0, map[string]string{"service": service, "username": id}).Store(&unlocked, &locked)
	if err != nil {
		return "", true, err
	}
	if len(unlocked) == 0 {
		if len(locked) > 0 {
			return "", false, nil
		}
		return "", true, keyring.ErrNotFound
	}
	var ignored dbus.Variant
	var session dbus.ObjectPath
	if err := svc.Call(ssService+".OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&ignored, &session); err != nil {
		return "", true, err
	}
	// Close the session ourselves rather than leave it to the daemon's
	// clean-up of a vanished client: gnome-keyring 42 has aborted (a glib
	// assertion) on clients that left within a millisecond or two of
	// opening one. No reply is awaited: the bus delivers the Close before
	// it reports our disconnect, which is all the ordering needed.
	defer conn.Object(ssName, session).Go("org.freedesktop.Secret.Session.Close", dbus.FlagNoReplyExpected, nil)
	var secrets map[dbus.ObjectPath]ssSecret
	if err := svc.Call(ssService+".GetSecrets", 0, unlocked[:1], session).Store(&secrets); err != nil {
		if ssread.Vanished(err) {
			// Deleted between the search and the read (a parallel
			// replacement): gone is not-found, not an unusable keyring.
			return "", true, keyring.ErrNotFound
		}
		return "", true, err
	}
	s, found := secrets[unlocked[0]]
	if !found {
		return "", false, nil // raced with a lock: take the unlocking path
	}
	return string(s.Value), true, nil
}
