// Package credential reads and writes git's credential helper wire format:
// "key=value" lines separated by LF, ending at a blank line or EOF.
//
// It follows git's credential.c, with the hardening git applies since the
// newline (CVE-2020-5260) and carriage return (CVE-2024-52006) injection
// bugs: input is split on LF only, and CR or NUL anywhere is an error. It
// knows nothing about what a helper does with a credential; checking that
// protocol and host are present is the caller's policy.
package credential

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Credential is one credential description. Field names follow git's keys.
type Credential struct {
	Protocol          string
	Host              string // may include ":port"
	Path              string
	Username          string
	HasUsername       bool // a username= line was present (an empty username is distinct from none)
	Password          Secret
	HasPassword       bool
	PasswordExpiryUTC int64 // unix seconds; 0 = absent
	OAuthRefreshToken Secret
	AuthType          string
	Credential        Secret
	Ephemeral         bool
	Continue          bool
	Quit              bool
	State             []string // state[] values in order
	Capabilities      []string // capability[] values in order
	WWWAuth           []string // wwwauth[] values in order (git -> helper only)
}

// HasCapability reports whether git announced capability[]=name.
func (c *Credential) HasCapability(name string) bool {
	return slices.Contains(c.Capabilities, name)
}

// Format prints a *Credential as fmt prints a pointer to a struct at top
// level, "&{...}", with its secrets masked. It exists because fmt prints a
// nested pointer with a verb it does not fit (such as %s on a
// []*Credential) as "%!s(*credential.Credential=&{...})", and on that path
// it calls no methods, so Secret fields would show raw.
func (c *Credential) Format(f fmt.State, verb rune) {
	if c == nil {
		io.WriteString(f, "<nil>")
		return
	}
	// A Credential value has no Format method: fmt prints its fields, each
	// Secret through Secret.Format.
	fmt.Fprintf(f, "&"+fmt.FormatString(f, verb), *c)
}

const (
	MaxLineLength = 65535   // bytes of one line, excluding its LF
	MaxInputSize  = 1 << 20 // bytes in total
)

// Errors wrapped by *ParseError (from Read) and by Write's error. Their text
// never includes a value: values can be passwords.
var (
	ErrCR            = errors.New("value contains a carriage return")
	ErrNUL           = errors.New("value contains a NUL byte")
	ErrNewline       = errors.New("value contains a newline")
	ErrLineTooLong   = errors.New("line too long")
	ErrInputTooLarge = errors.New("input too large")
	ErrMalformedLine = errors.New("malformed line (want key=value)")
	ErrBadURL        = errors.New("invalid url")
	ErrBadValue      = errors.New("invalid value")
	ErrUnsafeValue   = errors.New("value contains LF, CR or NUL")
)

// ParseError reports where Read rejected its input. Line is 1-based, or 0
// when the error concerns the description as a whole. Key is "" when the line
// has no usable key.
type ParseError struct {
	Line int
	Key  string
	Err  error
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("credential input")
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, " (key %q)", e.Key)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *ParseError) Unwrap() error { return e.Err }

// Read parses one credential description: lines "key=value" separated by LF
// only, ending at a blank line or EOF (a last line without LF is accepted).
//
// Unknown keys are ignored; for a repeated key the last one wins, except for
// the list keys capability[], state[] and wwwauth[], which accumulate. A
// url= line replaces protocol, host, path, username and password with what
// it spells out.
//
// If r is a *bufio.Reader, Read consumes nothing after the blank line, so the
// caller can go on reading from it; any other reader may be read ahead.
func Read(r io.Reader) (*Credential, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	lr := lineReader{r: br}
	c := &Credential{}
	for n := 1; ; n++ {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, ErrLineTooLong) || errors.Is(err, ErrInputTooLarge) {
				return nil, &ParseError{Line: n, Err: err}
			}
			return nil, fmt.Errorf("credential: reading input: %w", err)
		}
		if len(line) == 0 {
			break
		}
		rawKey, value, found := bytes.Cut(line, []byte("="))
		key := "" // the key as errors may name it
		if found {
			key = errorKey(rawKey)
		}
		switch {
		case bytes.IndexByte(line, 0) >= 0:
			return nil, &ParseError{Line: n, Key: key, Err: ErrNUL}
		case bytes.IndexByte(line, '\r') >= 0:
			return nil, &ParseError{Line: n, Key: key, Err: ErrCR}
		case !found || len(rawKey) == 0:
			// The line may be a stray password: name no key.
			return nil, &ParseError{Line: n, Err: ErrMalformedLine}
		}
		if err := c.set(rawKey, string(value)); err != nil {
			return nil, &ParseError{Line: n, Key: key, Err: err}
		}
	}
	if err := c.checkEncodable(); err != nil {
		return nil, err
	}
	return c, nil
}

// errorKey returns the key as it may appear in an error: keys are not
// confidential, but an odd one is left out rather than echoed.
func errorKey(k []byte) string {
	if len(k) > 64 {
		return ""
	}
	for _, b := range k {
		if b <= ' ' || b > '~' {
			return ""
		}
	}
	return string(k)
}

// lineReader reads LF-terminated lines with bounded memory: it never holds
// more than one line plus one bufio buffer, whatever the input.
type lineReader struct {
	r     *bufio.Reader
	buf   []byte
	total int
}

// next returns the next line without its LF, valid until the following call,
// or io.EOF when no bytes are left.
func (lr *lineReader) next() ([]byte, error) {
	lr.buf = lr.buf[:0]
	for {
		frag, err := lr.r.ReadSlice('\n')
		lr.total += len(frag)
		if lr.total > MaxInputSize {
			return nil, ErrInputTooLarge
		}
		lr.buf = append(lr.buf, frag...)
		switch err {
		case nil:
			line := lr.buf[:len(lr.buf)-1]
			if len(line) > MaxLineLength {
				return nil, ErrLineTooLong
			}
			return line, nil
		case bufio.ErrBufferFull:
			// Fail as soon as the line is too long, before reading the rest.
			if len(lr.buf) > MaxLineLength {
				return nil, ErrLineTooLong
			}
		case io.EOF:
			if len(lr.buf) == 0 {
				return nil, io.EOF
			}
			if len(lr.buf) > MaxLineLength {
				return nil, ErrLineTooLong
			}
			return lr.buf, nil
		default:
			return nil, err
		}
	}
}

// set applies one key=value line. Keys are case-sensitive, as in git.
func (c *Credential) set(key []byte, value string) error {
	var err error
	switch string(key) { // the compiler does not allocate for this
	case "protocol":
		c.Protocol = value
	case "host":
		c.Host = value
	case "path":
		c.Path = value
	case "username":
		c.Username, c.HasUsername = value, true
	case "password":
		c.Password, c.HasPassword = Secret(value), true
	case "password_expiry_utc":
		c.PasswordExpiryUTC, err = parseExpiry(value)
	case "oauth_refresh_token":
		c.OAuthRefreshToken = Secret(value)
	case "authtype":
		c.AuthType = value
	case "credential":
		c.Credential = Secret(value)
	case "ephemeral":
		c.Ephemeral, err = parseBool(value)
	case "continue":
		c.Continue, err = parseBool(value)
	case "quit":
		c.Quit, err = parseBool(value)
	case "url":
		err = c.setURL(value)
	case "capability[]":
		c.Capabilities = append(c.Capabilities, value)
	case "state[]":
		c.State = append(c.State, value)
	case "wwwauth[]":
		c.WWWAuth = append(c.WWWAuth, value)
	}
	return err
}

// parseExpiry accepts decimal digits only (no sign, no space) for a positive
// number of seconds.
func parseExpiry(v string) (int64, error) {
	if v == "" || strings.Trim(v, "0123456789") != "" {
		return 0, ErrBadValue
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, ErrBadValue
	}
	return n, nil
}

// parseBool accepts the words git's config booleans accept, ignoring case.
// Unlike git it refuses other numbers than 0 and 1.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "", "0", "false", "no", "off":
		return false, nil
	}
	return false, ErrBadValue
}

type field struct{ key, value string }

// fields lists the lines Write emits for c, in canonical order.
func (c *Credential) fields() []field {
	var fs []field
	add := func(k, v string) { fs = append(fs, field{k, v}) }
	for _, v := range c.Capabilities {
		add("capability[]", v)
	}
	if c.Protocol != "" {
		add("protocol", c.Protocol)
	}
	if c.Host != "" {
		add("host", c.Host)
	}
	if c.Path != "" {
		add("path", c.Path)
	}
	if c.HasUsername || c.Username != "" {
		add("username", c.Username)
	}
	if c.HasPassword || c.Password != "" {
		add("password", c.Password.Reveal())
	}
	if c.PasswordExpiryUTC > 0 { // negative is no time git could mean
		add("password_expiry_utc", strconv.FormatInt(c.PasswordExpiryUTC, 10))
	}
	if c.OAuthRefreshToken != "" {
		add("oauth_refresh_token", c.OAuthRefreshToken.Reveal())
	}
	if c.AuthType != "" {
		add("authtype", c.AuthType)
	}
	if c.Credential != "" {
		add("credential", c.Credential.Reveal())
	}
	if c.Ephemeral {
		add("ephemeral", "1")
	}
	if c.Continue {
		add("continue", "1")
	}
	if c.Quit {
		add("quit", "1")
	}
	for _, v := range c.State {
		add("state[]", v)
	}
	for _, v := range c.WWWAuth {
		add("wwwauth[]", v)
	}
	return fs
}

// checkEncodable rejects a description whose canonical form would break the
// input limits, so that whatever Read accepts, Write emits and Read reads
// back. Only url= can grow the text: "protocol=" is longer than "url=...://",
// and one url= line expands into up to five lines.
func (c *Credential) checkEncodable() error {
	total := 0
	for _, f := range c.fields() {
		n := len(f.key) + 1 + len(f.value)
		if n > MaxLineLength {
			return &ParseError{Key: f.key, Err: ErrLineTooLong}
		}
		total += n + 1
	}
	if total > MaxInputSize {
		return &ParseError{Err: ErrInputTooLarge}
	}
	return nil
}

// Write writes every set field of c in a fixed canonical order, with a single
// call to w.Write (none if there is nothing to write). It never writes url=,
// nor a blank line. If a value would contain LF, CR or NUL it returns an error
// wrapping ErrUnsafeValue and writes nothing: such a value would let whoever
// chose it inject lines into git's input.
func Write(w io.Writer, c *Credential) error {
	fs := c.fields()
	var b bytes.Buffer
	for _, f := range fs {
		if strings.ContainsAny(f.value, "\n\r\x00") {
			return fmt.Errorf("credential: key %q: %w", f.key, ErrUnsafeValue)
		}
		b.WriteString(f.key)
		b.WriteByte('=')
		b.WriteString(f.value)
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return nil
	}
	_, err := w.Write(b.Bytes())
	return err
}
