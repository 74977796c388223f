// Package importer moves Bitbucket credentials out of a git-credential-store
// file (~/.git-credentials) into this helper: tokens go to the keyring
// through helper.Add, app passwords are reported as dead, and on request the
// imported lines are removed from the plaintext file, atomically and without
// touching any other byte.
package importer

import (
	"bytes"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
)

// Line is one line of a credential-store file.
type Line struct {
	N    int    // 1-based line number
	Raw  []byte // as in the file, line terminator included
	Text string // without the "\n" (and a "\r" before it)
}

// Split cuts a file into lines, keeping every byte: concatenating the Raw
// fields gives the file back.
func Split(data []byte) []Line {
	var lines []Line
	for n := 1; len(data) > 0; n++ {
		end := bytes.IndexByte(data, '\n')
		var raw []byte
		if end < 0 {
			raw, data = data, nil
		} else {
			raw, data = data[:end+1], data[end+1:]
		}
		text := strings.TrimSuffix(strings.TrimSuffix(string(raw), "\n"), "\r")
		lines = append(lines, Line{N: n, Raw: raw, Text: text})
	}
	return lines
}

// Entry is one credential of a credential-store file.
type Entry struct {
	Protocol    string
	Username    string
	HasUsername bool
	Password    credential.Secret
	Host        string // host[:port], decoded
	Path        string // decoded, without leading or trailing '/'
}

// Display is the entry's URL without its password.
func (e Entry) Display() string {
	s := e.Protocol + "://"
	if e.HasUsername {
		s += e.Username + "@"
	}
	s += e.Host
	if e.Path != "" {
		s += "/" + e.Path
	}
	return s
}

// Parse reads one line the way git's credential-store does
// (credential_from_url): proto://[user[:password]@]host[/path], with
// user, password, host and path percent-decoded. ok is false for lines git
// would skip.
func Parse(text string) (Entry, bool) {
	var e Entry
	protoEnd := strings.Index(text, "://")
	if protoEnd <= 0 {
		return e, false
	}
	e.Protocol = text[:protoEnd]
	cp := text[protoEnd+3:]
	at := strings.IndexByte(cp, '@')
	colon := strings.IndexByte(cp, ':')
	slash := strings.IndexByte(cp, '/')
	if slash < 0 {
		slash = len(cp)
	}
	host := cp
	switch {
	case at < 0 || slash <= at:
		// proto://host[/path]
	case colon < 0 || at <= colon:
		e.Username, e.HasUsername = decode(cp[:at]), true
		host = cp[at+1:]
		slash -= at + 1
	default:
		e.Username, e.HasUsername = decode(cp[:colon]), true
		e.Password = credential.Secret(decode(cp[colon+1 : at]))
		host = cp[at+1:]
		slash -= at + 1
	}
	e.Host = decode(host[:slash])
	e.Path = strings.Trim(decode(strings.TrimLeft(host[slash:], "/")), "/")
	for _, v := range []string{e.Protocol, e.Username, e.Password.Reveal(), e.Host, e.Path} {
		if strings.ContainsAny(v, "\n\x00") {
			return Entry{}, false
		}
	}
	if e.Host == "" {
		return Entry{}, false
	}
	return e, true
}

// decode undoes percent-encoding like git's url_decode: "%XX" becomes the
// byte, anything else (including '+' and a malformed escape) stays.
func decode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
