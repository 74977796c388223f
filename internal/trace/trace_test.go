package trace

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/redact"
)

func TestPrintfRedacts(t *testing.T) {
	const tok = "ATCTT3xSecretValue0123456789abcd"
	tests := []struct {
		name   string
		format string
		args   []any
		want   string // substring of the line
	}{
		{"secret type", "pw=%s", []any{credential.Secret(tok)}, "pw=****abcd"},
		{"secret quoted", "pw=%q", []any{credential.Secret(tok)}, `pw="****abcd"`},
		{"plain string by mistake", "pw=%s", []any{tok}, "pw=****abcd"},
		{"inside other text", "url=https://x:%s@host", []any{tok}, "url=https://x:****@host"},
		{"a URL's password it was not told about", "url=%s", []any{"https://x:hunter2@host/p"}, "url=https://x:****@host/p"},
		{"a token as a URL's user name", "url=%s", []any{"https://ATCTT3xOtherValue0123456789wxyz@host/p"}, "url=https://****@host/p"},
		{"newline cannot forge a line", "a%sb", []any{"\nfake line"}, `a\nfake lineb`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			red := redact.New()
			l := New(&buf, red)
			red.Add(tok)
			l.Printf(tt.format, tt.args...)
			out := buf.String()
			if strings.Contains(out, tok) {
				t.Fatalf("token leaked: %q", out)
			}
			if !strings.Contains(out, tt.want) || strings.Count(out, "\n") != 1 {
				t.Fatalf("line %q: want one line containing %q", out, tt.want)
			}
		})
	}
}

// TestShortSecretKeepsWords: a short registered value is masked where it
// stands alone, never inside a longer word (git's t0303 stores the
// password "pass", which once turned "password=" into "****word=").
func TestShortSecretKeepsWords(t *testing.T) {
	var buf bytes.Buffer
	red := redact.New()
	l := New(&buf, red)
	red.Add("pass")
	l.Printf("store: password=%s passport pass", "pass")
	out := buf.String()
	if !strings.Contains(out, "password=**** passport ****") {
		t.Fatalf("line %q: want password=**** passport ****", out)
	}
}

func TestNilLoggerIsSilent(t *testing.T) {
	var l *Logger
	l.Printf("nothing %d", 1)
	if l.Enabled() || l.Close() != nil {
		t.Fatal("nil logger must be disabled and close cleanly")
	}
}

func TestOpen(t *testing.T) {
	var stderr bytes.Buffer
	for _, v := range []string{"", "0", "false", "off"} {
		if l, err := Open(v, &stderr, nil); l != nil || err != nil {
			t.Errorf("Open(%q) = %v, %v; want off", v, l, err)
		}
	}
	if l, err := Open("1", &stderr, nil); err != nil || l == nil {
		t.Fatalf("Open(1): %v", err)
	}
	if _, err := Open("relative/file", &stderr, nil); err == nil {
		t.Fatal("a relative path must be refused")
	}
	path := filepath.Join(t.TempDir(), "trace")
	l, err := Open(path, &stderr, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Printf("hello")
	l.Close()
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("trace file mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
}

func TestOpenRefusesReadableFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := Open(path, &bytes.Buffer{}, nil); err == nil || l != nil {
		t.Fatalf("Open of a 0644 file = %v, %v; want an error naming chmod 600", l, err)
	} else if !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("error %q does not name the fix", err)
	}
}
