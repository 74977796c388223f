// Package importer moves Bitbucket credentials out of a git-credential-store
// file (~/.git-credentials) into this helper: tokens go to the keyring
// through helper.Add, app passwords are reported as dead, and on request the
// imported lines are removed from the plaintext file, atomically and without
// touching any other byte.
package importer

import (
	"bytes"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
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

// Display is the entry's URL without its password, and with a user name
// that looks like a token masked.
func (e Entry) Display() string {
	s := e.Protocol + "://"
	if e.HasUsername {
		s += e.Username + "@"
	}
	s += e.Host
	if e.Path != "" {
		s += "/" + e.Path
	}
	return bitbucket.RedactURL(s)
}

// Parse reads one line the way git's credential-store does
// (credential_from_url): proto://[user[:password]@]host[/path], with user,
// password, host and path percent-decoded. It is the credential package's
// own url= expansion, so the two can never disagree. ok is false for lines
// git would skip.
func Parse(text string) (Entry, bool) {
	c, err := credential.Read(strings.NewReader("url=" + text + "\n"))
	if err != nil || c.Protocol == "" || c.Host == "" {
		return Entry{}, false
	}
	return Entry{
		Protocol: c.Protocol, Username: c.Username, HasUsername: c.HasUsername,
		Password: c.Password, Host: c.Host, Path: c.Path,
	}, true
}
