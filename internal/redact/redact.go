// Package redact keeps secrets out of everything the helper writes for
// people: error lines, notices, reports and traces. The command line sends
// all of them through one Redactor (git's stdout in get is the only text
// that does not pass: it must carry the token), so a secret is masked
// wherever a message was formed, whichever call site forgot about it.
//
// A Redactor masks two sorts of secret: values it was told about (a token
// read from stdin or the keyring, a password found in an argument), in the
// forms messages print them (quoted, JSON-escaped, percent-encoded, case
// folded as hosts are), and text that looks like one wherever it appears
// (a URL's password, a token used as a URL's user name, a word with a
// Bitbucket token's prefix).
package redact

import (
	"encoding/json"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
)

// A registered value is replaced wherever it occurs when it has at least
// anywhereLen bytes; a shorter one only where it stands as a word of its
// own ("pass" in "password=pass" is the second, not the first), and one
// under minLen not at all: URL passwords of any length are masked by
// their position instead, and Secret values by their type.
const (
	minLen      = 3
	anywhereLen = 8
)

// Redactor masks secrets in text. The zero value is ready; it is safe for
// concurrent use.
type Redactor struct {
	mu      sync.Mutex
	secrets []string // longest first, so a value's longer forms go first
}

// New returns an empty Redactor.
func New() *Redactor { return &Redactor{} }

// Add registers secret values, each with the forms a message may show it
// in.
func (r *Redactor) Add(values ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		for _, form := range forms(v) {
			if len(form) >= minLen && !slices.Contains(r.secrets, form) {
				r.secrets = append(r.secrets, form)
			}
		}
	}
	slices.SortStableFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
}

// AddArg registers what a command-line argument may carry: a URL's
// password and a token used as its user name, or the argument itself when
// it looks like a token (pasted where a URL or an id belongs).
func (r *Redactor) AddArg(arg string) {
	if _, value, ok := strings.Cut(arg, "="); ok && strings.HasPrefix(arg, "-") {
		arg = value // --flag=value
	}
	if bitbucket.LooksLikeToken(arg) {
		r.Add(arg)
		return
	}
	rest := arg
	if _, after, ok := strings.Cut(arg, "://"); ok {
		rest = after
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return
	}
	user, pass, hasPass := strings.Cut(rest[:at], ":")
	if hasPass {
		r.Add(pass)
	}
	if user != "" && bitbucket.RedactURL("https://"+user+"@h") != "https://"+user+"@h" {
		r.Add(user)
	}
}

// forms lists how a message may render v.
func forms(v string) []string {
	out := []string{v, asciiCase(v, 'A', 'Z', 'a'-'A'), asciiCase(v, 'a', 'z', 'A'-'a')}
	if q := strconv.Quote(v); len(q) >= 2 {
		out = append(out, q[1:len(q)-1])
	}
	if j, err := json.Marshal(v); err == nil && len(j) >= 2 {
		out = append(out, string(j[1:len(j)-1]))
	}
	out = append(out, url.PathEscape(v), url.QueryEscape(v))
	if d, err := url.PathUnescape(v); err == nil {
		out = append(out, d)
	}
	return out
}

func asciiCase(s string, lo, hi byte, delta int) string {
	b := []byte(s)
	for i, c := range b {
		if lo <= c && c <= hi {
			b[i] = byte(int(c) + delta)
		}
	}
	return string(b)
}

// String masks every secret in s: registered values, then whatever looks
// like one (see Text).
func (r *Redactor) String(s string) string {
	if r != nil {
		r.mu.Lock()
		for _, v := range r.secrets {
			if strings.Contains(s, v) {
				s = replace(s, v, credential.Secret(v).String())
			}
		}
		r.mu.Unlock()
	}
	return Text(s)
}

// replace replaces v in s: everywhere when v is long, else only where it
// is not part of a longer word.
func replace(s, v, mask string) string {
	if len(v) >= anywhereLen {
		return strings.ReplaceAll(s, v, mask)
	}
	var b strings.Builder
	for {
		i := strings.Index(s, v)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(v)
		alone := (i == 0 || !isWordByte(s[i-1])) && (end == len(s) || !isWordByte(s[end]))
		b.WriteString(s[:i])
		if alone {
			b.WriteString(mask)
		} else {
			b.WriteString(v)
		}
		s = s[end:]
	}
}

// Writer returns a writer that masks what it passes on to w. Each Write is
// masked on its own: callers write whole lines or documents (fmt.Fprintf,
// json.Encoder, tabwriter cells), so a secret is never split across two.
func (r *Redactor) Writer(w io.Writer) io.Writer { return &writer{r: r, w: w} }

type writer struct {
	r *Redactor
	w io.Writer
}

func (w *writer) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.w, w.r.String(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Text masks what looks like a secret anywhere in s, without being told
// about it: the password of a URL (with or without a scheme), a token used
// as a URL's user name, and a word of 16 characters or more that starts
// with a Bitbucket token prefix.
func Text(s string) string {
	if strings.IndexByte(s, '@') >= 0 {
		s = maskURLs(s)
	}
	if strings.IndexByte(s, '=') >= 0 {
		s = maskFields(s)
	}
	return maskPrefixed(s)
}

// secretKeys are the credential protocol's confidential keys: a value
// after "password=" is a secret wherever a message shows one (a helper
// command in git's config that echoes a password, say).
var secretKeys = []string{"password=", "credential=", "oauth_refresh_token="}

// maskFields masks the value of each secret key=value in s, and of each
// username=value whose value holds a token. A value ends at white space or
// at shell or quoting punctuation; a quoted one at its closing quote. A
// value already masked is left as it is.
func maskFields(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if i > 0 && isWordByte(s[i-1]) {
			continue
		}
		key := ""
		for _, k := range append(secretKeys, "username=") {
			if strings.HasPrefix(s[i:], k) {
				key = k
				break
			}
		}
		if key == "" {
			continue
		}
		start := i + len(key)
		end, inner := valueEnd(s, start)
		value := s[inner.start:inner.end]
		if value == "" || strings.HasPrefix(value, "****") || key == "username=" && !bitbucket.NameHoldsToken(value) {
			i = end - 1
			continue
		}
		b.WriteString(s[last:inner.start])
		b.WriteString(credential.Secret(value).String())
		last, i = inner.end, end-1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

type span struct{ start, end int }

// valueEnd finds the end of a value starting at i, and the value itself
// (inside quotes when it is quoted).
func valueEnd(s string, i int) (end int, inner span) {
	if i < len(s) && s[i] == '"' {
		j := i + 1
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		j = min(j, len(s))
		return min(j+1, len(s)), span{i + 1, j}
	}
	j := i
	for j < len(s) && !strings.ContainsRune(" \t\n\r;\"'`&|(){}<>,", rune(s[j])) {
		j++
	}
	return j, span{i, j}
}

// maskURLs masks the userinfo secrets of every whitespace-separated run
// that holds an '@'. Runs are cut at white space only: a password may hold
// quotes or brackets, and what surrounds a URL in a sentence is kept by
// RedactURL anyway (it rewrites only between "://" and the last '@').
func maskURLs(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexAny(s, " \t\n\r")
		run, sep := s, ""
		if i >= 0 {
			run, sep, s = s[:i], s[i:i+1], s[i+1:]
		} else {
			s = ""
		}
		if strings.IndexByte(run, '@') >= 0 {
			run = maskRun(run)
		}
		b.WriteString(run)
		b.WriteString(sep)
	}
	return b.String()
}

// maskRun applies RedactURL to a run, keeping the punctuation that opens
// it (quotes, brackets, '#', ...) out of the URL it reads: none of it can
// start a scheme or a user name.
func maskRun(run string) string {
	lead := 0
	for lead < len(run) && isLeadPunct(run[lead]) {
		lead++
	}
	return run[:lead] + bitbucket.RedactURL(run[lead:])
}

// isLeadPunct: ASCII punctuation but what user names hold ('-', '.', '_',
// '~', '%', '+') and what URLs are made of (':', '/', '@').
func isLeadPunct(c byte) bool {
	return c > ' ' && c < 0x7f && !isWordByte(c) && !strings.ContainsRune("-._~%+:/@", rune(c))
}

// maskPrefixed masks words that start with a token prefix.
func maskPrefixed(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if i > 0 && isWordByte(s[i-1]) || !bitbucket.HasTokenPrefix(s[i:]) {
			continue
		}
		end := i
		for end < len(s) && isTokenByte(s[end]) {
			end++
		}
		if end-i < bitbucket.MinMaskedToken {
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(credential.Secret(s[i:end]).String())
		last, i = end, end-1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isTokenByte(c byte) bool {
	return isWordByte(c) || c == '+' || c == '/' || c == '=' || c == '_' || c == '-'
}
