package credential

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const rawSecret = "ATBB-SUPERSECRET-token-wxyz"

// leaks reports whether out shows any part of rawSecret beyond the
// fingerprint, in clear or in hex.
func leaks(out string) bool {
	for _, frag := range []string{"SUPERSECRET", "ATBB", hex.EncodeToString([]byte("SUPERSECRET")),
		strings.ToUpper(hex.EncodeToString([]byte("SUPERSECRET")))} {
		if strings.Contains(out, frag) {
			return true
		}
	}
	return false
}

func TestSecretMask(t *testing.T) {
	tests := []struct {
		s           Secret
		mask, print string
	}{
		{"", "****", ""},
		{"x", "****", ""},
		{"fifteen-bytes!!", "****", ""},
		{"0123456789abcdef", "****cdef", "cdef"},
		{rawSecret, "****wxyz", "wxyz"},
		{"0123456789abcdef\x1b[2J", "****", ""},            // control character
		{"0123456789abcdef gh", "****", ""},                // space
		{"0123456789abcdef\u00e9\u00e9", "****", ""},       // would split nothing, but is not ASCII
		{"0123456789abcdefgh\xf0\x9f\x94\x91", "****", ""}, // one emoji: no half runes
		{"\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91\xf0\x9f\x94\x91", "****", ""}, // 16 bytes, 4 runes
	}
	for _, tc := range tests {
		if got := tc.s.String(); got != tc.mask {
			t.Errorf("Secret(%q).String() = %q, want %q", string(tc.s), got, tc.mask)
		}
		if got := tc.s.Fingerprint(); got != tc.print {
			t.Errorf("Secret(%q).Fingerprint() = %q, want %q", string(tc.s), got, tc.print)
		}
		if got := tc.s.Reveal(); got != string(tc.s) {
			t.Errorf("Reveal() = %q", got)
		}
	}
}

func TestSecretFormat(t *testing.T) {
	s := Secret(rawSecret)
	tests := map[string]string{
		"%s": "****wxyz", "%v": "****wxyz", "%+v": "****wxyz", "%#v": `"****wxyz"`,
		"%q": `"****wxyz"`, "%#q": "`****wxyz`", "%x": "****wxyz", "%X": "****wxyz", "% x": "****wxyz",
		"%d": "****wxyz", "%c": "****wxyz", "%U": "****wxyz", "%b": "****wxyz", "%o": "****wxyz",
		"%e": "****wxyz", "%f": "****wxyz", "%g": "****wxyz", "%t": "****wxyz",
		"%z": "****wxyz", "%10s": "  ****wxyz", "%-10v|": "****wxyz  |", "%.4s": "****",
		"%T": "credential.Secret",
	}
	for verb, want := range tests {
		if got := fmt.Sprintf(verb, s); got != want {
			t.Errorf("Sprintf(%s) = %q, want %q", verb, got, want)
		}
	}
	for _, got := range []string{
		s.GoString(), fmt.Sprint(s), fmt.Sprintln(s), fmt.Sprint([]Secret{s}), fmt.Sprintf("%v", map[Secret]Secret{s: s}),
		fmt.Sprintf("%x", []Secret{s}), fmt.Sprintf("%v", &s), fmt.Errorf("wrap: %v", s).Error(),
	} {
		if leaks(got) {
			t.Errorf("leak: %q", got)
		}
	}
}

func testCredential() Credential {
	return Credential{
		Protocol: "https", Host: "bitbucket.org", Username: "bob", HasUsername: true,
		Password: rawSecret, HasPassword: true, OAuthRefreshToken: rawSecret, Credential: rawSecret,
		AuthType: "Bearer", State: []string{"bbtoken:x"},
	}
}

func TestCredentialPrinting(t *testing.T) {
	c := testCredential()
	type wrapper struct {
		C *Credential
		V Credential
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%e", "%c", "%U", "%20.3s"} {
		for _, arg := range []any{c, &c, []Credential{c}, []*Credential{&c}, map[string]*Credential{"k": &c},
			wrapper{&c, c}, &wrapper{&c, c}, []any{&c}, [1]*Credential{&c}} {
			got := fmt.Sprintf(verb, arg)
			if leaks(got) {
				t.Errorf("Sprintf(%s, %T) leaks: %s", verb, arg, got)
			}
			if !strings.Contains(got, "**") {
				t.Errorf("Sprintf(%s, %T) shows no mask: %s", verb, arg, got)
			}
		}
	}
	for _, got := range []string{fmt.Sprint(c, &c), fmt.Sprintln([]*Credential{&c, nil}), fmt.Sprintf("%p|%T", &c, &c)} {
		if leaks(got) {
			t.Errorf("leak: %s", got)
		}
	}
	var nilCred *Credential
	if got := fmt.Sprintf("%v %s", nilCred, []*Credential{nil}); got != "<nil> [<nil>]" {
		t.Errorf("nil *Credential prints %q", got)
	}
	if got, want := fmt.Sprintf("%v|%+v", &c, c), "&{https bitbucket.org  bob true ****wxyz"; !strings.HasPrefix(got, want) {
		t.Errorf("%%v = %s, want prefix %s", got, want)
	}
	if got := fmt.Sprintf("%+v", c); !strings.Contains(got, "Password:****wxyz") {
		t.Errorf("%%+v = %s", got)
	}
	if got := fmt.Sprintf("%#v", &c); !strings.HasPrefix(got, `&credential.Credential{Protocol:"https"`) ||
		!strings.Contains(got, `Password:"****wxyz"`) {
		t.Errorf("%%#v = %s", got)
	}
}

func TestCredentialSlog(t *testing.T) {
	c := testCredential()
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("got credential",
			"cred", c, "ptr", &c, "password", c.Password, slog.Any("token", c.Credential),
			slog.Group("g", "refresh", c.OAuthRefreshToken))
		if leaks(buf.String()) || !strings.Contains(buf.String(), "****wxyz") {
			t.Errorf("%s handler: %s", name, buf.String())
		}
	}
}

func TestCredentialJSON(t *testing.T) {
	c := testCredential()
	for _, v := range []any{c, &c, c.Password, map[string]Secret{"k": c.Password}, []*Credential{&c}} {
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if leaks(string(out)) || !strings.Contains(string(out), "****wxyz") {
			t.Errorf("json.Marshal(%T) = %s", v, out)
		}
	}
	out, _ := json.Marshal(c)
	if !strings.Contains(string(out), `"Password":"****wxyz"`) {
		t.Errorf("json.Marshal = %s", out)
	}
	text, err := c.Password.MarshalText()
	if err != nil || string(text) != "****wxyz" {
		t.Errorf("MarshalText = %q, %v", text, err)
	}
}
