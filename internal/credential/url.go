package credential

import (
	"fmt"
	"strings"
)

// setURL expands a url= value the way git's credential_from_url does:
//
//	<protocol>://[<user>[:<password>]@]<host>[:<port>][/<path>]
//
// It first drops protocol, host, path, username and password, so nothing
// from earlier lines mixes with the URL. Username, password, host and path
// are percent-decoded; a decoded LF, CR or NUL is an error, since it would
// smuggle a line into whatever we write next (CVE-2020-5260).
func (c *Credential) setURL(raw string) error {
	c.Protocol, c.Host, c.Path = "", "", ""
	c.Username, c.HasUsername = "", false
	c.Password, c.HasPassword = "", false

	proto, rest, ok := strings.Cut(raw, "://")
	if !ok || proto == "" {
		return ErrBadURL
	}
	// Like git, a '?' or '#' ends the host as a '/' does, so that
	// "https://a?@b" names host a, not b.
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	host, path := rest[:end], rest[end:]
	// User info ends at the first '@', as in git's credential_from_url: a
	// second '@' stays in the host, which then matches no real host.
	if at := strings.IndexByte(host, '@'); at >= 0 {
		user, pass, hasPass := strings.Cut(host[:at], ":")
		c.Username, c.HasUsername = unescape(user), true
		if hasPass {
			c.Password, c.HasPassword = Secret(unescape(pass)), true
		}
		host = host[at+1:]
	}
	c.Protocol = proto
	c.Host = unescape(host)
	// As git does, leading slashes are trimmed before decoding and trailing
	// ones after, keeping the first byte: "/a%2F/" is "a", "%2F" is "/".
	if p := strings.TrimLeft(path, "/"); p != "" {
		p = unescape(p)
		for len(p) > 1 && p[len(p)-1] == '/' {
			p = p[:len(p)-1]
		}
		c.Path = p
	}

	for _, f := range []field{
		{"username", c.Username},
		{"password", c.Password.Reveal()},
		{"host", c.Host},
		{"path", c.Path},
	} {
		if err := checkComponent(f.value); err != nil {
			return fmt.Errorf("%s: %w", f.key, err)
		}
	}
	return nil
}

func checkComponent(v string) error {
	switch {
	case strings.IndexByte(v, '\n') >= 0:
		return ErrNewline
	case strings.IndexByte(v, '\r') >= 0:
		return ErrCR
	case strings.IndexByte(v, 0) >= 0:
		return ErrNUL
	}
	return nil
}

// unescape decodes %XX escapes. Like git's url_decode, it leaves a '%' that
// is not followed by two hex digits as it is, and does not turn '+' into a
// space.
func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
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
