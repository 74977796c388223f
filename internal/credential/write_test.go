package credential

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		c    *Credential
		want string
	}{
		{name: "empty", c: &Credential{}, want: ""},
		{
			name: "get answer",
			c:    &Credential{Protocol: "https", Host: "bitbucket.org", Username: "bob", Password: "hunter2"},
			want: "protocol=https\nhost=bitbucket.org\nusername=bob\npassword=hunter2\n",
		},
		{
			name: "every field, canonical order",
			c: &Credential{
				WWWAuth: []string{"Basic realm=x", "Bearer"}, State: []string{"bbtoken:a", "other:b"},
				Quit: true, Continue: true, Ephemeral: true, Credential: "tok", AuthType: "Bearer",
				OAuthRefreshToken: "refresh", PasswordExpiryUTC: 1700000000, Password: "pw", Username: "u",
				Path: "team/repo.git", Host: "h:8443", Protocol: "https", Capabilities: []string{"authtype", "state"},
			},
			want: "capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=h:8443\npath=team/repo.git\n" +
				"username=u\npassword=pw\npassword_expiry_utc=1700000000\noauth_refresh_token=refresh\n" +
				"authtype=Bearer\ncredential=tok\nephemeral=1\ncontinue=1\nquit=1\n" +
				"state[]=bbtoken:a\nstate[]=other:b\nwwwauth[]=Basic realm=x\nwwwauth[]=Bearer\n",
		},
		{name: "empty username", c: &Credential{Host: "h", HasUsername: true}, want: "host=h\nusername=\n"},
		{name: "empty password", c: &Credential{HasPassword: true}, want: "password=\n"},
		{name: "username without HasUsername", c: &Credential{Username: "u"}, want: "username=u\n"},
		{name: "password without HasPassword", c: &Credential{Password: "p"}, want: "password=p\n"},
		{name: "empty list values", c: &Credential{State: []string{""}, Capabilities: []string{""}}, want: "capability[]=\nstate[]=\n"},
		{name: "negative expiry is absent", c: &Credential{PasswordExpiryUTC: -5}, want: ""},
		{name: "value with = and spaces", c: &Credential{Password: " a=b "}, want: "password= a=b \n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &countingWriter{}
			if err := Write(w, tc.c); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if got := w.buf.String(); got != tc.want {
				t.Errorf("Write:\n got %q\nwant %q", got, tc.want)
			}
			if want := min(1, len(tc.want)); w.calls != want {
				t.Errorf("%d Write calls, want %d", w.calls, want)
			}
		})
	}
}

func TestWriteUnsafeValue(t *testing.T) {
	const secret = "hunter2SECRET"
	fields := map[string]func(c *Credential, v string){
		"protocol":            func(c *Credential, v string) { c.Protocol = v },
		"host":                func(c *Credential, v string) { c.Host = v },
		"path":                func(c *Credential, v string) { c.Path = v },
		"username":            func(c *Credential, v string) { c.Username = v },
		"password":            func(c *Credential, v string) { c.Password = Secret(v) },
		"oauth_refresh_token": func(c *Credential, v string) { c.OAuthRefreshToken = Secret(v) },
		"authtype":            func(c *Credential, v string) { c.AuthType = v },
		"credential":          func(c *Credential, v string) { c.Credential = Secret(v) },
		"capability[]":        func(c *Credential, v string) { c.Capabilities = []string{"ok", v} },
		"state[]":             func(c *Credential, v string) { c.State = []string{v} },
		"wwwauth[]":           func(c *Credential, v string) { c.WWWAuth = []string{v} },
	}
	for key, set := range fields {
		for _, bad := range []string{"\n", "\r", "\x00"} {
			for _, v := range []string{secret + bad, bad + secret, secret + bad + "host=evil"} {
				c := &Credential{Protocol: "https", Host: "h", Username: "u", Password: "p"}
				set(c, v)
				var buf bytes.Buffer
				err := Write(&buf, c)
				if !errors.Is(err, ErrUnsafeValue) {
					t.Fatalf("%s=%q: Write error %v, want ErrUnsafeValue", key, v, err)
				}
				if buf.Len() != 0 {
					t.Errorf("%s=%q: wrote %q", key, v, buf.String())
				}
				msg := err.Error()
				if !strings.Contains(msg, `"`+key+`"`) || strings.Contains(msg, secret) {
					t.Errorf("%s=%q: error %q should name the key and not the value", key, v, msg)
				}
			}
		}
	}
}

func TestWritePassesWriterError(t *testing.T) {
	boom := errors.New("boom")
	if err := Write(errWriter{boom}, &Credential{Host: "h"}); !errors.Is(err, boom) {
		t.Fatalf("Write: %v, want the writer's error", err)
	}
}

// Whatever Read accepts, Write emits, and reading it back gives the same
// credential.
func TestReadWriteRoundTrip(t *testing.T) {
	for _, tc := range readCases {
		if tc.err != nil {
			continue
		}
		t.Run(tc.name, func(t *testing.T) { checkRoundTrip(t, []byte(tc.in)) })
	}
}

type countingWriter struct {
	buf   bytes.Buffer
	calls int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.calls++
	return w.buf.Write(p)
}

type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }
