package credential

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

type readCase struct {
	name string
	in   string
	want *Credential
	err  error  // sentinel, matched with errors.Is
	line int    // expected ParseError.Line when err != nil
	key  string // expected ParseError.Key when err != nil
}

// readCases also seed FuzzReadWrite.
var readCases = []readCase{
	{name: "empty input", in: "", want: &Credential{}},
	{name: "only blank line", in: "\n", want: &Credential{}},
	{
		name: "basic get query",
		in:   "protocol=https\nhost=bitbucket.org\npath=team/repo.git\nusername=bob\npassword=hunter2\n",
		want: &Credential{Protocol: "https", Host: "bitbucket.org", Path: "team/repo.git",
			Username: "bob", HasUsername: true, Password: "hunter2", HasPassword: true},
	},
	{
		name: "blank line ends input, junk after it is not parsed",
		in:   "protocol=https\nhost=good\n\nhost=evil\nno equals sign\r\x00\n",
		want: &Credential{Protocol: "https", Host: "good"},
	},
	{
		name: "EOF without trailing newline",
		in:   "protocol=https\nhost=bitbucket.org",
		want: &Credential{Protocol: "https", Host: "bitbucket.org"},
	},
	{name: "host with port", in: "host=example.com:8443\n", want: &Credential{Host: "example.com:8443"}},
	{name: "value containing =", in: "password=a=b==\n", want: &Credential{Password: "a=b==", HasPassword: true}},
	{name: "empty username", in: "username=\n", want: &Credential{HasUsername: true}},
	{name: "empty password", in: "password=\n", want: &Credential{HasPassword: true}},
	{name: "empty protocol", in: "protocol=\nhost=\n", want: &Credential{}},
	{
		name: "unknown and wrongly cased keys are ignored",
		in:   "foo=bar\nHost=evil\nhost=good\nfoo[]=x\nPASSWORD=x\nurl[]=https://evil\npassword_expiry_utc[]=x\nquit[]=maybe\n",
		want: &Credential{Host: "good"},
	},
	{
		name: "duplicate keys: last wins",
		in:   "host=a\nusername=u1\nhost=b\nusername=u2\nquit=1\nquit=0\npassword_expiry_utc=5\npassword_expiry_utc=7\n",
		want: &Credential{Host: "b", Username: "u2", HasUsername: true, PasswordExpiryUTC: 7},
	},
	{
		name: "capability[] after other keys",
		in:   "protocol=https\ncapability[]=authtype\nhost=a\ncapability[]=state\n",
		want: &Credential{Protocol: "https", Host: "a", Capabilities: []string{"authtype", "state"}},
	},
	{
		name: "list order is kept per list",
		in:   "state[]=b\ncapability[]=state\nstate[]=a\nwwwauth[]=2\ncapability[]=authtype\nwwwauth[]=1\nstate[]=\nstate[]=b\n",
		want: &Credential{State: []string{"b", "a", "", "b"}, Capabilities: []string{"state", "authtype"},
			WWWAuth: []string{"2", "1"}},
	},
	{
		name: "wwwauth[] containing host= does not set Host",
		in:   "protocol=https\nhost=good.example\nwwwauth[]=Bearer realm=\"x\", host=victim.example\nwwwauth[]=host=victim.example\n",
		want: &Credential{Protocol: "https", Host: "good.example",
			WWWAuth: []string{`Bearer realm="x", host=victim.example`, "host=victim.example"}},
	},
	{
		name: "2.41+ attributes",
		in:   "password_expiry_utc=1700000000\noauth_refresh_token=refresh-me\nauthtype=Bearer\ncredential=tok\n",
		want: &Credential{PasswordExpiryUTC: 1700000000, OAuthRefreshToken: "refresh-me", AuthType: "Bearer",
			Credential: "tok"},
	},
	{name: "booleans true", in: "ephemeral=1\ncontinue=true\nquit=YES\n", want: &Credential{Ephemeral: true, Continue: true, Quit: true}},
	{name: "booleans on", in: "ephemeral=on\ncontinue=True\nquit=yes\n", want: &Credential{Ephemeral: true, Continue: true, Quit: true}},
	{name: "booleans false", in: "ephemeral=0\ncontinue=false\nquit=\n", want: &Credential{}},
	{name: "booleans no/off", in: "ephemeral=no\ncontinue=OFF\nquit=0\n", want: &Credential{}},
	{name: "boolean 2", in: "quit=2\n", err: ErrBadValue, line: 1, key: "quit"},
	{name: "boolean word", in: "host=a\nephemeral=maybe\n", err: ErrBadValue, line: 2, key: "ephemeral"},
	{name: "boolean with space", in: "continue= 1\n", err: ErrBadValue, line: 1, key: "continue"},
	{name: "expiry zero", in: "password_expiry_utc=0\n", err: ErrBadValue, line: 1, key: "password_expiry_utc"},
	{name: "expiry negative", in: "password_expiry_utc=-1\n", err: ErrBadValue, line: 1, key: "password_expiry_utc"},
	{name: "expiry plus sign", in: "password_expiry_utc=+5\n", err: ErrBadValue, line: 1, key: "password_expiry_utc"},
	{name: "expiry empty", in: "password_expiry_utc=\n", err: ErrBadValue, line: 1, key: "password_expiry_utc"},
	{name: "expiry not a number", in: "password_expiry_utc=soon\n", err: ErrBadValue, line: 1, key: "password_expiry_utc"},
	{name: "expiry overflow", in: "password_expiry_utc=99999999999999999999\n", err: ErrBadValue, line: 1, key: "password_expiry_utc"},
	{name: "expiry leading zeros", in: "password_expiry_utc=0042\n", want: &Credential{PasswordExpiryUTC: 42}},

	// Framing and hostile bytes.
	{name: "CRLF line ending", in: "protocol=https\r\nhost=a\r\n", err: ErrCR, line: 1, key: "protocol"},
	{name: "CR inside value", in: "host=good\rhost=evil\n", err: ErrCR, line: 1, key: "host"},
	{name: "CR at end of last line", in: "host=a\npassword=hunter2\r", err: ErrCR, line: 2, key: "password"},
	{name: "CR in key", in: "ho\rst=a\n", err: ErrCR, line: 1},
	{name: "CR in unknown key's value", in: "host=a\nx-foo=b\rc\n", err: ErrCR, line: 2, key: "x-foo"},
	{name: "bare CR line", in: "host=a\n\r\n", err: ErrCR, line: 2},
	{name: "NUL in value", in: "host=a\x00b\n", err: ErrNUL, line: 1, key: "host"},
	{name: "NUL in key", in: "host\x00=a\n", err: ErrNUL, line: 1},
	{name: "NUL alone", in: "host=a\n\x00\n", err: ErrNUL, line: 2},
	{name: "NUL and CR: NUL wins", in: "host=\r\x00\n", err: ErrNUL, line: 1, key: "host"},
	{name: "no equals sign", in: "protocol=https\nhunter2\n", err: ErrMalformedLine, line: 2},
	{name: "empty key", in: "=value\n", err: ErrMalformedLine, line: 1},
	{name: "just =", in: "host=a\n=\n", err: ErrMalformedLine, line: 2},
	{name: "space only", in: " \n", err: ErrMalformedLine, line: 1},
	{name: "binary garbage with = in unknown key", in: "\xff\xfe\x80=\x01\x02\xfe\x1b[2J\n", want: &Credential{}},
	{name: "binary garbage value in known key", in: "host=\xff\xfe\x01\n", want: &Credential{Host: "\xff\xfe\x01"}},
	{name: "binary garbage without =", in: "\xff\xfe\x80\x01\n", err: ErrMalformedLine, line: 1},
	{name: "binary garbage: PNG header", in: "\x89PNG\r\n\x1a\n\x00\x00", err: ErrCR, line: 1},
	{name: "binary garbage with NUL", in: "\x7fELF\x02\x01\x01\x00=\xff\n", err: ErrNUL, line: 1},

	// url=
	{
		name: "url",
		in:   "url=https://bitbucket.org/team/repo.git\n",
		want: &Credential{Protocol: "https", Host: "bitbucket.org", Path: "team/repo.git"},
	},
	{
		name: "url clears earlier protocol, host, path, username, password",
		in:   "protocol=http\nhost=old\npath=old\nusername=old\npassword=old\nurl=https://new.example\n",
		want: &Credential{Protocol: "https", Host: "new.example"},
	},
	{
		name: "url keeps other fields",
		in:   "capability[]=authtype\nwwwauth[]=Basic\nstate[]=x\nauthtype=Bearer\nquit=1\npassword_expiry_utc=9\nurl=https://h\n",
		want: &Credential{Protocol: "https", Host: "h", Capabilities: []string{"authtype"}, WWWAuth: []string{"Basic"},
			State: []string{"x"}, AuthType: "Bearer", Quit: true, PasswordExpiryUTC: 9},
	},
	{
		name: "keys after url override it",
		in:   "url=https://a.example/p\nhost=b.example\nusername=u\n",
		want: &Credential{Protocol: "https", Host: "b.example", Path: "p", Username: "u", HasUsername: true},
	},
	{
		name: "url with user:pass and port",
		in:   "url=https://bob:s%40cret@bitbucket.org:8443/x/y/\n",
		want: &Credential{Protocol: "https", Host: "bitbucket.org:8443", Path: "x/y",
			Username: "bob", HasUsername: true, Password: "s@cret", HasPassword: true},
	},
	{
		name: "url with port, no path",
		in:   "url=http://localhost:7990\n",
		want: &Credential{Protocol: "http", Host: "localhost:7990"},
	},
	{
		name: "url with user only",
		in:   "url=https://bob%20smith@h/\n",
		want: &Credential{Protocol: "https", Host: "h", Username: "bob smith", HasUsername: true},
	},
	{
		name: "url with empty user",
		in:   "url=https://@h\n",
		want: &Credential{Protocol: "https", Host: "h", HasUsername: true},
	},
	{
		name: "url with empty user and password",
		in:   "url=https://:@h\n",
		want: &Credential{Protocol: "https", Host: "h", HasUsername: true, HasPassword: true},
	},
	{
		// As git's credential_from_url (strchr): the rest stays in the
		// host, which then names no real host.
		name: "url user info ends at the first @",
		in:   "url=https://u:p@ss:w@h/x@y\n",
		want: &Credential{Protocol: "https", Host: "ss:w@h", Path: "x@y", Username: "u", HasUsername: true,
			Password: "p", HasPassword: true},
	},
	{
		name: "url ? ends the host",
		in:   "url=https://good.example?x@evil.example/p\n",
		want: &Credential{Protocol: "https", Host: "good.example", Path: "?x@evil.example/p"},
	},
	{
		name: "url # ends the host",
		in:   "url=https://good.example#@evil.example\n",
		want: &Credential{Protocol: "https", Host: "good.example", Path: "#@evil.example"},
	},
	{
		name: "url %2F decoded in path, trailing slashes trimmed after decoding",
		in:   "url=https://h//a%2Fb/%2F/\n",
		want: &Credential{Protocol: "https", Host: "h", Path: "a/b"},
	},
	{
		name: "url leading %2F kept",
		in:   "url=https://h/%2Fa\n",
		want: &Credential{Protocol: "https", Host: "h", Path: "/a"},
	},
	{
		name: "url path of one encoded slash",
		in:   "url=https://h/%2f\n",
		want: &Credential{Protocol: "https", Host: "h", Path: "/"},
	},
	{
		name: "url path of slashes only is empty",
		in:   "url=https://h///\n",
		want: &Credential{Protocol: "https", Host: "h"},
	},
	{
		name: "url host percent-decoded",
		in:   "url=https://%62itbucket.org/\n",
		want: &Credential{Protocol: "https", Host: "bitbucket.org"},
	},
	{
		name: "url bad escapes and + kept",
		in:   "url=https://h/a%zz+b%4\n",
		want: &Credential{Protocol: "https", Host: "h", Path: "a%zz+b%4"},
	},
	{
		name: "url empty host",
		in:   "url=file:///srv/repo\n",
		want: &Credential{Protocol: "file", Path: "srv/repo"},
	},
	{name: "url scheme only", in: "url=https://\n", want: &Credential{Protocol: "https"}},
	{name: "url protocol not decoded", in: "url=a%41://h\n", want: &Credential{Protocol: "a%41", Host: "h"}},
	{name: "url without scheme", in: "url=bitbucket.org/x\n", err: ErrBadURL, line: 1, key: "url"},
	{name: "url with empty scheme", in: "host=a\nurl=://h\n", err: ErrBadURL, line: 2, key: "url"},
	{name: "url empty", in: "url=\n", err: ErrBadURL, line: 1, key: "url"},
	{name: "url %0a in host", in: "url=https://evil.example%0ahost=good.example\n", err: ErrNewline, line: 1, key: "url"},
	{name: "url %0a in path", in: "url=https://h/x%0Ahost=good.example\n", err: ErrNewline, line: 1, key: "url"},
	{name: "url %0a in username", in: "url=https://u%0ahost=good@h\n", err: ErrNewline, line: 1, key: "url"},
	{name: "url %0a in password", in: "url=https://u:p%0a@h\n", err: ErrNewline, line: 1, key: "url"},
	{name: "url %0a after ?", in: "url=https://one.example?%0ahost=two.example/\n", err: ErrNewline, line: 1, key: "url"},
	{name: "url %0d in host", in: "url=https://h%0d\n", err: ErrCR, line: 1, key: "url"},
	{name: "url %00 in password", in: "url=https://u:p%00@h\n", err: ErrNUL, line: 1, key: "url"},
	{name: "bad url after good keys", in: "host=a\nusername=b\nurl=nope\n", err: ErrBadURL, line: 3, key: "url"},

	// Limits that fit a seed corpus; bigger ones are in TestReadLimits.
	{
		name: "line of exactly MaxLineLength",
		in:   "wwwauth[]=" + strings.Repeat("x", MaxLineLength-len("wwwauth[]=")) + "\n",
		want: &Credential{WWWAuth: []string{strings.Repeat("x", MaxLineLength-len("wwwauth[]="))}},
	},
	{
		name: "line of MaxLineLength+1",
		in:   "host=a\nwwwauth[]=" + strings.Repeat("x", MaxLineLength+1-len("wwwauth[]=")) + "\n",
		err:  ErrLineTooLong, line: 2,
	},
	{
		name: "last line of MaxLineLength+1 without LF",
		in:   "wwwauth[]=" + strings.Repeat("x", MaxLineLength+1-len("wwwauth[]=")),
		err:  ErrLineTooLong, line: 1,
	},
	{
		// "protocol=" + 65528 bytes would not fit in a line when written back.
		name: "url whose protocol line would be too long",
		in:   "url=" + strings.Repeat("a", MaxLineLength-len("url=://")) + "://\n",
		err:  ErrLineTooLong, key: "protocol",
	},
	{
		name: "url whose protocol line just fits",
		in:   "url=" + strings.Repeat("a", MaxLineLength-len("protocol=")) + "://\n",
		want: &Credential{Protocol: strings.Repeat("a", MaxLineLength-len("protocol="))},
	},
}

func TestRead(t *testing.T) {
	for _, tc := range readCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(strings.NewReader(tc.in))
			if tc.err != nil {
				var pe *ParseError
				if !errors.Is(err, tc.err) || !errors.As(err, &pe) {
					t.Fatalf("Read: got (%+v, %v), want a *ParseError wrapping %v", got, err, tc.err)
				}
				if got != nil {
					t.Errorf("Read returned %+v with an error", got)
				}
				if pe.Line != tc.line || pe.Key != tc.key {
					t.Errorf("ParseError at line %d key %q, want line %d key %q", pe.Line, pe.Key, tc.line, tc.key)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Read:\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// Reading through a tiny bufio buffer exercises lines split over many reads.
func TestReadSmallBuffer(t *testing.T) {
	for _, tc := range readCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(bufio.NewReaderSize(strings.NewReader(tc.in), 16))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Read: got error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Read:\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestReadLeavesRestOfBufioReader(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("host=a\n\nhost=evil\r\x00junk"))
	c, err := Read(br)
	if err != nil || !reflect.DeepEqual(c, &Credential{Host: "a"}) {
		t.Fatalf("Read = %+v, %v", c, err)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "host=evil\r\x00junk" {
		t.Errorf("left in reader: %q", rest)
	}
}

func TestParseErrorMessage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"protocol=https\npath=x\nhost=a\rb\n", `credential input line 3 (key "host"): value contains a carriage return`},
		{"url=https://u:p%0a@h\n", `credential input line 1 (key "url"): password: value contains a newline`},
		{"hunter2\n", `credential input line 1: malformed line (want key=value)`},
	} {
		if _, err := Read(strings.NewReader(tc.in)); err == nil || err.Error() != tc.want {
			t.Errorf("Read(%q) error = %v, want %s", tc.in, err, tc.want)
		}
	}
	if got, want := (&ParseError{Err: ErrInputTooLarge}).Error(), "credential input: input too large"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// Error messages name keys and lines, never values: a value may be a password.
func TestReadErrorsNeverContainValues(t *testing.T) {
	const secret = "hunter2SECRET"
	inputs := []string{
		"password=" + secret + "\r\n",
		"password=" + secret + "\x00\n",
		secret + "\n",
		secret + "\r\n",
		"=" + secret + "\n",
		"quit=" + secret + "\n",
		"password_expiry_utc=" + secret + "\n",
		"url=" + secret + "\n",
		"url=https://u:" + secret + "%0a@h\n",
		"url=https://u:" + secret + "@h%0d\n",
		"url=https://u:" + secret + "@h/%00\n",
		"password=" + secret + strings.Repeat("x", MaxLineLength),
		"x-" + secret + "=a\rb\n", // an unknown key may be named, but it is not a value
		"\x01" + secret + "=\r\n",
	}
	for _, in := range inputs {
		_, err := Read(strings.NewReader(in))
		if err == nil {
			t.Fatalf("Read(%q) succeeded", in)
		}
		if strings.Contains(strings.ReplaceAll(err.Error(), "x-"+secret, ""), secret) {
			t.Errorf("Read(%q) error leaks the value: %v", in, err)
		}
	}
}

func TestReadLimits(t *testing.T) {
	line := func(n int) string { // one wwwauth[] line of n bytes plus LF
		return "wwwauth[]=" + strings.Repeat("x", n-len("wwwauth[]=")) + "\n"
	}

	t.Run("exactly MaxInputSize", func(t *testing.T) {
		in := strings.Repeat(line(MaxLineLength), MaxInputSize/(MaxLineLength+1))
		if len(in) != MaxInputSize {
			t.Fatalf("test input is %d bytes", len(in))
		}
		c, err := Read(strings.NewReader(in))
		if err != nil || len(c.WWWAuth) != 16 {
			t.Fatalf("Read: %v", err)
		}
	})

	t.Run("MaxInputSize plus one", func(t *testing.T) {
		in := strings.Repeat(line(MaxLineLength), MaxInputSize/(MaxLineLength+1)) + "x"
		if _, err := Read(strings.NewReader(in)); !errors.Is(err, ErrInputTooLarge) {
			t.Fatalf("Read: %v, want ErrInputTooLarge", err)
		}
	})

	t.Run("more than 1 MiB of valid lines", func(t *testing.T) {
		r := &countingReader{r: strings.NewReader(strings.Repeat(line(60000), 40))}
		_, err := Read(r)
		var pe *ParseError
		if !errors.Is(err, ErrInputTooLarge) || !errors.As(err, &pe) {
			t.Fatalf("Read: %v, want ErrInputTooLarge", err)
		}
		if want := MaxInputSize/60001 + 1; pe.Line != want {
			t.Errorf("line %d, want %d", pe.Line, want)
		}
		if r.n > MaxInputSize+2*4096 {
			t.Errorf("read %d bytes", r.n)
		}
	})

	t.Run("10 MiB without newline", func(t *testing.T) {
		for _, prefix := range []string{"", "host="} {
			r := &countingReader{r: io.MultiReader(strings.NewReader(prefix), bytes.NewReader(bytes.Repeat([]byte("a"), 10<<20)))}
			start := time.Now()
			if _, err := Read(r); !errors.Is(err, ErrLineTooLong) {
				t.Fatalf("Read: %v, want ErrLineTooLong", err)
			}
			if r.n > MaxLineLength+2*4096 {
				t.Errorf("read %d bytes", r.n)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		}
	})

	t.Run("url expansion beyond MaxInputSize", func(t *testing.T) {
		// 15 full lines, then a url= line that fills the last 64 KiB
		// exactly but expands into five lines that do not fit.
		in := strings.Repeat(line(MaxLineLength), 15)
		url := "a://u:p@h/" + strings.Repeat("p", MaxLineLength-len("url=a://u:p@h/"))
		in += "url=" + url + "\n"
		if len(in) != MaxInputSize {
			t.Fatalf("test input is %d bytes", len(in))
		}
		_, err := Read(strings.NewReader(in))
		var pe *ParseError
		if !errors.Is(err, ErrInputTooLarge) || !errors.As(err, &pe) || pe.Line != 0 {
			t.Fatalf("Read: %v, want ErrInputTooLarge for the whole input", err)
		}
	})
}

func TestReadPassesReaderError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Read(io.MultiReader(strings.NewReader("host=a\n"), errReader{boom}))
	var pe *ParseError
	if !errors.Is(err, boom) || errors.As(err, &pe) {
		t.Fatalf("Read: %v, want the reader's error", err)
	}
}

func TestHasCapability(t *testing.T) {
	c := &Credential{Capabilities: []string{"state", "authtype"}}
	if !c.HasCapability("authtype") || !c.HasCapability("state") {
		t.Error("announced capability not found")
	}
	if c.HasCapability("AuthType") || (&Credential{}).HasCapability("authtype") {
		t.Error("capability found that was not announced")
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
