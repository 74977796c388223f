package store

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
)

// An entry's check recognises its keyring value without the keyring: a
// salted HMAC-SHA256 of the value, truncated to 128 bits, as
// "v1:SALT:MAC". git's store after every successful fetch then needs no
// keyring call, and get can read the value straight from Entry.Hint and
// know it is the one written. It is kept only for values that are
// Bitbucket tokens (bitbucket.Checkable: a known token format, or long
// random text, of which a MAC tells nothing), never for a password, which
// a dictionary could recover from it: NewCheck decides, whoever asks.
const checkVersion = "v1"

var b64 = base64.RawStdEncoding

// NewCheck returns the check of a keyring value, or "" when the value may
// not have one (it is not a token: see bitbucket.Checkable).
func NewCheck(raw string) (string, error) {
	if !bitbucket.Checkable(raw) {
		return "", nil
	}
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", err
	}
	return checkVersion + ":" + b64.EncodeToString(salt[:]) + ":" + b64.EncodeToString(checkMAC(salt[:], raw)), nil
}

// NewTokenCheck returns the check of a token the server issued at random
// (an OAuth access token), which no dictionary could find: unlike
// NewCheck, it does not ask whether the value has a known token format.
func NewTokenCheck(raw string) (string, error) {
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", err
	}
	return checkVersion + ":" + b64.EncodeToString(salt[:]) + ":" + b64.EncodeToString(checkMAC(salt[:], raw)), nil
}

// CheckMatches reports whether check (from NewCheck or NewTokenCheck)
// recognises raw.
func CheckMatches(check, raw string) bool { return check != "" && checkMatches(check, raw) }

func checkMAC(salt []byte, raw string) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(raw))
	return m.Sum(nil)[:16]
}

// CheckMatches reports whether raw is the keyring value e's check was
// made of. No check, or a malformed or unknown one, matches nothing: the
// keyring decides.
func (e *Entry) CheckMatches(raw string) bool {
	return checkMatches(e.Check, raw)
}

func checkMatches(check, raw string) bool {
	v, rest, ok := strings.Cut(check, ":")
	if !ok || v != checkVersion {
		return false
	}
	s, m, ok := strings.Cut(rest, ":")
	if !ok {
		return false
	}
	salt, err1 := b64.DecodeString(s)
	mac, err2 := b64.DecodeString(m)
	if err1 != nil || err2 != nil || len(salt) != 16 || len(mac) != 16 {
		return false
	}
	return hmac.Equal(mac, checkMAC(salt, raw))
}
