package redact

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
)

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nothing secret here", "nothing secret here"},
		{"cannot parse https://alice:hunter2@bit%bucket.org/ws", "cannot parse https://alice:****@bit%bucket.org/ws"},
		{`"https://alice:h\"unter2@bitbucket.org/ws/.." is neither`, `"https://alice:****@bitbucket.org/ws/.." is neither`},
		{"no such entry: alice:hunter2@bitbucket.org/ws/..", "no such entry: alice:****@bitbucket.org/ws/.."},
		{"(https://alice:p/w@x@bitbucket.org/ws)", "(https://alice:****@bitbucket.org/ws)"},
		{"--host=https://a:b@h", "--host=https://a:****@h"},
		{"https://ATCTT3xFfGF0TokenAsUserName0123456789AbCd@bitbucket.org/x", "https://****@bitbucket.org/x"},
		{"https://eve%3AATATT3xFfGF0ApiTokenAfterName987654321XyZw@bitbucket.org/x", "https://****@bitbucket.org/x"},
		{"https://Zk3vQ9pL2mX7rT4wB8nY6cH1dF5gJ0sA@bitbucket.org/x", "https://****@bitbucket.org/x"},
		{"pasted ATATT3xFfGF0apiTokenCCCCC3333 by mistake", "pasted ****3333 by mistake"},
		{"BBDC-dataCenterTokenDDDD4444", "****4444"},
		// Not secrets: short prefixes in prose, names, e-mail addresses,
		// SSH remotes, hosts that start like a prefix in lower case.
		{"API tokens start ATATT, access tokens ATCTT", "API tokens start ATATT, access tokens ATCTT"},
		{"git@bitbucket.org:ws/repo.git", "git@bitbucket.org:ws/repo.git"},
		{"ssh://git@bitbucket.org:7999/ws/repo.git", "ssh://git@bitbucket.org:7999/ws/repo.git"},
		{"https://alice@bitbucket.org/ws/repo.git", "https://alice@bitbucket.org/ws/repo.git"},
		{"https://x-bitbucket-api-token-auth@bitbucket.org", "https://x-bitbucket-api-token-auth@bitbucket.org"},
		{"alice@example.com", "alice@example.com"},
		{"https://bbdc-production-primary.example.com/scm/P", "https://bbdc-production-primary.example.com/scm/P"},
		{"https://bitbucket.org/ws/p@q", "https://bitbucket.org/ws/p@q"},
		// Credential fields: a helper command in git's config, a trace.
		{`"!f() { echo username=u; echo password=Sup3rS3cretPassw0rd; }; f"`, `"!f() { echo username=u; echo password=****w0rd; }; f"`},
		{"store: username=\"NDM2MjA5NzQ5OTQ4Ok1YmZ4K3hZ4Ttq9n6uOHr0pQ9Qp\" password=****9Qp0", "store: username=\"****Q9Qp\" password=****9Qp0"},
		{"get: username=\"alice\" password=****1111", "get: username=\"alice\" password=****1111"},
		{"credential=abc123 oauth_refresh_token=r3fr3sh", "credential=**** oauth_refresh_token=****"},
		{"mypassword=x", "mypassword=x"},
	}
	for _, tt := range tests {
		if got := Text(tt.in); got != tt.want {
			t.Errorf("Text(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

// TestRedactorForms: a registered value is masked in each form a message
// may print it in, and a short one only where it stands alone.
func TestRedactorForms(t *testing.T) {
	r := New()
	const v = `Sec"ret/Va lue%41xyz`
	r.Add(v)
	for _, form := range []string{
		v,
		strings.ToLower(v),
		strings.ToUpper(v),
		strings.Trim(fmt.Sprintf("%q", v), `"`),
		`Sec\"ret/Va lue%41xyz`, // JSON
		"Sec%22ret%2FVa%20lue%2541xyz",
		"Sec%22ret%2FVa+lue%2541xyz",
		`Sec"ret/Va lueAxyz`, // decoded
	} {
		if got := r.String("[" + form + "]"); strings.Contains(got, form) {
			t.Errorf("form %q shows: %q", form, got)
		}
	}
	r.Add("pass")
	if got := r.String("password=pass passport"); got != "password=**** passport" {
		t.Errorf("short value: got %q", got)
	}
	var nilR *Redactor
	nilR.Add("x")
	if got := nilR.String("https://a:b@h"); got != "https://a:****@h" {
		t.Errorf("nil Redactor: got %q", got)
	}
}

func TestAddArg(t *testing.T) {
	tests := []struct {
		arg    string
		secret string // must be masked once registered, "" for nothing
	}{
		{"https://alice:pass word@host/x", "pass word"},
		{"--api-url=https://u:s3cr3t-pw@proxy", "s3cr3t-pw"},
		{"alice:hunter2@host", "hunter2"},
		{"https://alice:p@ss@host", "p@ss"},
		{"ATCTT3xFfGF0pastedWhereTheURLGoes0123", "ATCTT3xFfGF0pastedWhereTheURLGoes0123"},
		{"https://ATCTT3xFfGF0userNameToken0123456789@host", "ATCTT3xFfGF0userNameToken0123456789"},
		{"https://bitbucket.org/ws/repo", ""},
	}
	for _, tt := range tests {
		r := New()
		r.AddArg(tt.arg)
		if tt.secret == "" {
			if len(r.secrets) != 0 {
				t.Errorf("AddArg(%q) registered %q", tt.arg, r.secrets)
			}
			continue
		}
		if got := r.String("x " + tt.secret + " y"); strings.Contains(got, tt.secret) {
			t.Errorf("AddArg(%q): %q still shows", tt.arg, got)
		}
	}
}

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	r := New()
	r.Add("registered-secret-value")
	w := r.Writer(&buf)
	in := "a registered-secret-value and https://u:pw@h\n"
	n, err := fmt.Fprint(w, in)
	if err != nil || n != len(in) {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(in))
	}
	if got := buf.String(); got != "a ****alue and https://u:****@h\n" {
		t.Errorf("got %q", got)
	}
}

// FuzzText: whatever surrounds it, the password of a URL (one without
// white space, which separates words in a message) never survives Text,
// and neither does a user name that looks like a token.
func FuzzText(f *testing.F) {
	f.Add("cannot parse ", "https", "alice", "hunter2", "bitbucket.org/ws/..", " (see help)")
	f.Add(`"`, "https", "alice", `h"u@n/t?e#r`, "host", `"`)
	f.Add("", "", "bob", "pw", "bb.example.com:7990/scm/P/r.git", "")
	f.Add("x ", "ftp", "ATCTT3xFfGF0TokenAsUserName0123456789AbCd", "", "h/p@q", "")
	f.Fuzz(func(t *testing.T, before, scheme, user, pass, rest, after string) {
		if strings.ContainsAny(user+pass, " \t\n\r:") || strings.ContainsAny(user, "/?#@") || strings.ContainsAny(scheme, " \t\n\r@:/") {
			return // not one word, or not a user name: out of the property
		}
		if strings.ContainsAny(rest, " \t\n\r") {
			return
		}
		url := user
		if pass != "" {
			url += ":" + marker + pass + marker
		}
		url += "@" + rest
		if scheme != "" {
			url = scheme + "://" + url
		}
		// The URL starts a word: after white space, perhaps with one
		// opening quote or bracket, as messages print URLs.
		if before != "" {
			open := ""
			if strings.ContainsAny(before[len(before)-1:], "\"'`([<{") {
				open, before = before[len(before)-1:], before[:len(before)-1]
			}
			before += " " + open
		}
		if after != "" && !strings.HasPrefix(after, " ") {
			after = " " + after
		}
		got := Text(before + url + after)
		if pass != "" && strings.Contains(got, marker) && !strings.Contains(before+rest+after, marker) {
			t.Fatalf("the password shows: %q", got)
		}
		if bitbucket.NameHoldsToken(user) && strings.Contains(got, user) && !strings.Contains(before+rest+after, user) && !strings.Contains(pass, user) {
			t.Fatalf("the token used as a user name shows: %q", got)
		}
	})
}

const marker = "Q7pwQ"
