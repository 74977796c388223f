package credential

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Secret holds a confidential value (a password, token or refresh token).
//
// Printing or serialising a Secret — fmt verbs, String, GoString, slog, JSON
// and text marshalling — yields a mask, so a Secret can sit in a struct that
// gets logged without leaking. Only Reveal returns the value.
//
// Two holes come with the string kind and cannot be closed by methods: fmt
// handles %p before looking for any (so never print a Secret with %p), and
// encoding/json writes string-kind map keys as they are (so never use a Secret
// as a map key).
type Secret string

// maskMinLen is the length from which the mask shows the last four bytes:
// below it, four bytes would give away too large a share of the value.
const maskMinLen = 16

// Reveal returns the raw value. Use it only to hand the value to git or to
// the keyring.
func (s Secret) Reveal() string { return string(s) }

// String returns the mask: "****" followed by the Fingerprint, if any.
func (s Secret) String() string { return "****" + s.Fingerprint() }

// Fingerprint returns the last four bytes of a value of at least 16 bytes, so
// that a user can tell tokens apart, and "" otherwise. It is also "" when those
// bytes are not printable ASCII: tokens are ASCII, and a mask must never carry
// half a rune or a terminal control sequence.
func (s Secret) Fingerprint() string {
	if len(s) < maskMinLen {
		return ""
	}
	tail := string(s[len(s)-4:])
	for i := 0; i < len(tail); i++ {
		if tail[i] <= ' ' || tail[i] > '~' {
			return ""
		}
	}
	return tail
}

// Format prints the mask for every verb (but %p, see Secret). %q and %#v
// quote it, like a string; every other verb prints it as %s would, honouring
// width and flags.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb != 'q' && verb != 'v' {
		verb = 's'
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// GoString returns the mask, quoted.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// LogValue makes slog log the mask.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON encodes the mask as a JSON string.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText returns the mask, for encoders that use encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
