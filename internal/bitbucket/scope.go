// Package bitbucket knows how Bitbucket Cloud and Data Center lay out their
// URLs: it turns the URLs users paste into token scopes and decides whether a
// request git makes falls inside a scope.
package bitbucket

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Flavor is the kind of Bitbucket a host runs.
type Flavor string

// The two flavours of Bitbucket.
const (
	Cloud      Flavor = "cloud"
	DataCenter Flavor = "datacenter"
)

// CloudHost is the one host that is Cloud without being told.
const CloudHost = "bitbucket.org"

// ParseFlavor accepts the names users type for a flavour.
func ParseFlavor(s string) (Flavor, error) {
	switch asciiLower(s) {
	case "cloud":
		return Cloud, nil
	case "datacenter", "data-center", "dc", "server":
		return DataCenter, nil
	}
	return "", fmt.Errorf("unknown flavor %q: use cloud or datacenter", s)
}

// DefaultFlavor is the flavour of a host nobody configured.
func DefaultFlavor(host string) Flavor {
	if host == CloudHost {
		return Cloud
	}
	return DataCenter
}

// Level says how much of a host a scope covers.
type Level int

// Scope levels, from broadest to narrowest.
const (
	LevelHost       Level = iota // every repository on the host (or under a DC context path)
	LevelGroup                   // a Cloud workspace, a DC project or a DC user's personal space
	LevelRepository              // one repository
)

func (l Level) String() string {
	switch l {
	case LevelHost:
		return "host"
	case LevelGroup:
		return "group"
	default:
		return "repository"
	}
}

// Errors callers branch on.
var (
	ErrNotHTTPS = errors.New("plain http is never served a token: use an https URL")
	ErrSSHURL   = errors.New("SSH URLs cannot use tokens")
	ErrBadURL   = errors.New("not a Bitbucket URL")
	ErrBadHost  = errors.New("invalid host")
)

// Scope is the URL prefix a token is valid for: https, a host[:port] and a
// path prefix that matches on '/' boundaries.
type Scope struct {
	Host string // lower case, default port dropped
	Path string // canonical: no leading or trailing '/', no ".git"; "" for host-wide
}

// String renders the scope as the URL users see in `list`.
func (s Scope) String() string {
	if s.Path == "" {
		return "https://" + s.Host
	}
	return "https://" + s.Host + "/" + s.Path
}

// ScopeHost is the host of a scope as the index records it (Scope.String),
// or "" when it does not parse.
func ScopeHost(scopeURL string) string {
	sc, err := ParseScope(scopeURL)
	if err != nil {
		return ""
	}
	return sc.Host
}

// Segments splits the path; nil for a host-wide scope.
func (s Scope) Segments() []string {
	if s.Path == "" {
		return nil
	}
	return strings.Split(s.Path, "/")
}

// Level reports how broad the scope is for a host of the given flavour.
func (s Scope) Level(f Flavor) Level {
	return levelOf(f, s.Segments())
}

func levelOf(f Flavor, segs []string) Level {
	if f == Cloud {
		switch {
		case len(segs) == 0:
			return LevelHost
		case len(segs) == 1:
			return LevelGroup
		}
		return LevelRepository
	}
	i := indexOf(segs, "scm")
	switch {
	case i < 0 || len(segs) == i+1:
		return LevelHost
	case len(segs) == i+2:
		return LevelGroup
	}
	return LevelRepository
}

// NormalizeHost lower-cases a host[:port], drops https' default port and
// refuses anything that is not plainly a host, so that look-alikes such as a
// host with userinfo never compare equal to a real one.
func NormalizeHost(host string) (string, error) {
	if host == "" {
		return "", fmt.Errorf("%w: empty", ErrBadHost)
	}
	for _, r := range host {
		// A host name holds letters, digits, '-', '.' (and '_', seen on
		// intranets), a ":port", or an IPv6 literal's brackets; any other
		// ASCII is not a host (a base64 token pasted as one, say).
		if r < 0x80 && !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-._:[]", r)) {
			return "", fmt.Errorf("%w: unexpected character %q", ErrBadHost, r)
		}
	}
	// ASCII only: Unicode case mapping folds look-alikes such as U+212A
	// KELVIN SIGN into ASCII letters.
	h := asciiLower(host)
	// One port at most (IPv6 literals keep theirs inside brackets): a host
	// such as "bb.example.com:8443:443" is nothing git would send.
	if rest := h[strings.LastIndexByte(h, ']')+1:]; strings.Count(rest, ":") > 1 {
		return "", fmt.Errorf("%w: more than one port", ErrBadHost)
	}
	h = strings.TrimSuffix(h, ":443")
	if h == "" || strings.HasPrefix(h, ":") {
		return "", fmt.Errorf("%w: no host name", ErrBadHost)
	}
	return h, nil
}

// ParseScope reads a scope URL as written in the index (the output of
// Scope.String), without any Bitbucket-specific rewriting.
func ParseScope(raw string) (Scope, error) {
	rest, ok := strings.CutPrefix(raw, "https://")
	if !ok {
		return Scope{}, fmt.Errorf("%w: scope %q does not start with https://", ErrBadURL, raw)
	}
	host, path, _ := strings.Cut(rest, "/")
	h, err := NormalizeHost(host)
	if err != nil {
		return Scope{}, err
	}
	segs, ok := CleanPath(path)
	if !ok {
		return Scope{}, fmt.Errorf("%w: scope %q has an unsafe path", ErrBadURL, raw)
	}
	return Scope{Host: h, Path: strings.Join(segs, "/")}, nil
}

// CleanPath splits a path (already percent-decoded) into segments, dropping
// leading and trailing slashes. ok is false for paths that could be read two
// ways by a server: dot segments (see isDotSegment), empty segments,
// leftover '%' escapes, backslashes, '?' or '#' (a query or fragment once
// written into a URL), control characters. Those must never be matched
// against a path scope. It keeps ".git": only the repository segment may
// drop it (RequestPath).
func CleanPath(p string) (segs []string, ok bool) {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil, true
	}
	parts := strings.Split(p, "/")
	for _, s := range parts {
		if s == "" || isDotSegment(s) || strings.ContainsAny(s, "%\\?#") {
			return nil, false
		}
		for _, r := range s {
			if r < ' ' || r == 0x7f {
				return nil, false
			}
		}
	}
	return parts, true
}

// isDotSegment reports whether a server may read the segment as "." or
// "..", or as nothing at all: Tomcat (which Data Center runs on) drops a
// segment's ";parameters" before resolving dot segments, so "..;" and
// "..;x" climb a level, and ";x" is an empty segment.
func isDotSegment(s string) bool {
	name, _, _ := strings.Cut(s, ";")
	return name == "" || name == "." || name == ".."
}

// RequestPath is CleanPath for a path git sends, with the ".git" of the
// repository segment dropped (ws/repo.git/info/lfs is ws/repo/info/lfs).
// Only that segment: a context path "bitbucket.git" or a workspace "ws.git"
// is a different path, never the one a scope without ".git" names.
func RequestPath(f Flavor, p string) (segs []string, ok bool) {
	segs, ok = CleanPath(p)
	if !ok {
		return nil, false
	}
	return trimRepoGit(f, segs)
}

// trimRepoGit drops ".git" from the repository segment, if the path has
// one; ok is false when nothing usable would be left of it.
func trimRepoGit(f Flavor, segs []string) ([]string, bool) {
	i := repoIndex(f, segs)
	if i < 0 || i >= len(segs) || !strings.HasSuffix(segs[i], ".git") {
		return segs, true
	}
	name := strings.TrimSuffix(segs[i], ".git")
	if isDotSegment(name) {
		return nil, false
	}
	out := slices.Clone(segs)
	out[i] = name
	return out, true
}

// repoIndex is the position of the repository segment: Cloud ws/REPO, Data
// Center [ctx/]scm/KEY/REPO; -1 when the layout has none.
func repoIndex(f Flavor, segs []string) int {
	if f == Cloud {
		return 1
	}
	if i := indexOf(segs, "scm"); i >= 0 {
		return i + 2
	}
	return -1
}

// Covers reports whether a request for reqSegs (from CleanPath) on a host of
// flavour f falls inside the scope. The host must already be normalised.
func (s Scope) Covers(f Flavor, host string, reqSegs []string) bool {
	if host != s.Host {
		return false
	}
	return hasPrefix(f, reqSegs, s.Segments())
}

// SamePath reports whether two segment lists name the same path on a host
// of flavour f.
func SamePath(f Flavor, a, b []string) bool {
	return len(a) == len(b) && hasPrefix(f, a, b)
}

func hasPrefix(f Flavor, segs, prefix []string) bool {
	if len(prefix) > len(segs) {
		return false
	}
	for i, p := range prefix {
		if !segmentEqual(f, prefix, i, p, segs[i]) {
			return false
		}
	}
	return true
}

// segmentEqual compares one segment: Cloud slugs are case-insensitive, and so
// are Data Center project keys (the segment after "scm"); the rest of a Data
// Center path is compared exactly. Slugs and keys are ASCII, so only ASCII
// letters fold (strings.EqualFold would also match e.g. U+017F to 's').
func segmentEqual(f Flavor, prefix []string, i int, a, b string) bool {
	if f == Cloud {
		return asciiLower(a) == asciiLower(b)
	}
	if i > 0 && prefix[i-1] == "scm" && !strings.HasPrefix(a, "~") {
		return asciiLower(a) == asciiLower(b)
	}
	return a == b
}

// asciiLower and asciiUpper map only ASCII letters.
func asciiLower(s string) string { return asciiMap(s, 'A', 'Z', 'a'-'A') }
func asciiUpper(s string) string { return asciiMap(s, 'a', 'z', 'A'-'a') }

func asciiMap(s string, lo, hi byte, delta int) string {
	b := []byte(s)
	for i, c := range b {
		if lo <= c && c <= hi {
			b[i] = byte(int(c) + delta)
		}
	}
	return string(b)
}

// RepositoryPath is the part of a request path that names the repository
// (git-lfs and smart-HTTP append more), so that per-repository decisions do
// not depend on which endpoint git happened to call.
func RepositoryPath(f Flavor, segs []string) []string {
	if f == Cloud {
		if len(segs) > 2 {
			return segs[:2]
		}
		return segs
	}
	if i := indexOf(segs, "scm"); i >= 0 && len(segs) > i+3 {
		return segs[:i+3]
	}
	return segs
}

// CanonicalPath renders segments in the form stored in the index: Cloud in
// lower case, Data Center project keys in upper case.
func CanonicalPath(f Flavor, segs []string) string {
	out := make([]string, len(segs))
	for i, s := range segs {
		switch {
		case f == Cloud:
			s = asciiLower(s)
		case i > 0 && segs[i-1] == "scm" && !strings.HasPrefix(s, "~"):
			s = asciiUpper(s)
		}
		out[i] = s
	}
	return strings.Join(out, "/")
}

// ParseUserURL turns what a user pastes (a clone URL, a browser URL or a
// prefix) into a scope. flavorOf tells the flavour of a normalised host.
func ParseUserURL(raw string, flavorOf func(host string) Flavor) (Scope, Flavor, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Scope{}, "", fmt.Errorf("%w: empty URL", ErrBadURL)
	}
	if isSSH(raw) {
		return Scope{}, "", fmt.Errorf("%w: %s is an SSH remote; use its https clone URL", ErrSSHURL, RedactURL(raw))
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Scope{}, "", fmt.Errorf("%w: cannot parse %s", ErrBadURL, RedactURL(raw))
	}
	switch asciiLower(u.Scheme) {
	case "https":
	case "http":
		return Scope{}, "", ErrNotHTTPS
	default:
		return Scope{}, "", fmt.Errorf("%w: scheme %q is not https", ErrBadURL, u.Scheme)
	}
	host, err := NormalizeHost(u.Host)
	if err != nil {
		return Scope{}, "", err
	}
	// Messages name the URL redacted, never u.Path: a password holding an
	// unescaped '/' after a port-like start ("123/...") parses as a path.
	segs, ok := CleanPath(u.Path)
	if !ok {
		return Scope{}, "", fmt.Errorf("%w: the path of %s has empty, '.' or '..' segments or escapes", ErrBadURL, RedactURL(raw))
	}
	f := flavorOf(host)
	if f == Cloud {
		segs = cloudScope(segs)
	} else {
		segs = dataCenterScope(segs)
	}
	if segs, ok = trimRepoGit(f, segs); !ok {
		return Scope{}, "", fmt.Errorf("%w: the path of %s names no repository", ErrBadURL, RedactURL(raw))
	}
	// A repository that still ends in ".git" (repo.git.git, REPO.GIT) is
	// ambiguous: which name does the user mean, and which URL will git
	// send? Refuse rather than store a scope git's requests may miss.
	if i := repoIndex(f, segs); i >= 0 && i < len(segs) && len(segs[i]) >= 4 && EqualFoldASCII(segs[i][len(segs[i])-4:], ".git") {
		return Scope{}, "", fmt.Errorf("%w: the repository in %s still ends in .git once its .git suffix is dropped: which repository is meant?", ErrBadURL, RedactURL(raw))
	}
	// The index keeps the scope as a URL, which ParseScope cleans again: a
	// segment that still ends in ".git" ("repo.git.git", or Cloud's
	// "REPO.GIT" once lower-cased) would read back as another scope, and
	// which repository such a URL names is ambiguous.
	path := CanonicalPath(f, segs)
	if again, ok := CleanPath(path); !ok || strings.Join(again, "/") != path {
		return Scope{}, "", fmt.Errorf("%w: the path of %s would not read back as the same scope", ErrBadURL, RedactURL(raw))
	}
	sc := Scope{Host: host, Path: path}
	// A scope is shown as a URL that users paste back (remove): one that
	// ends in white space would lose it to the TrimSpace above.
	if s := sc.String(); strings.TrimSpace(s) != s {
		return Scope{}, "", fmt.Errorf("%w: the path of %s ends in white space", ErrBadURL, RedactURL(raw))
	}
	return sc, f, nil
}

// cloudScope keeps workspace and repository from a Cloud URL; browser URLs
// such as ws/repo/src/main or ws/workspace/projects/KEY add more.
func cloudScope(segs []string) []string {
	if len(segs) >= 2 && EqualFoldASCII(segs[1], "workspace") {
		return segs[:1]
	}
	if len(segs) > 2 {
		return segs[:2]
	}
	return segs
}

// dataCenterScope rewrites browser URLs (/projects/KEY/repos/slug/...,
// /users/u/repos/slug) to the /scm/ form git uses, keeping a context path.
func dataCenterScope(segs []string) []string {
	for i, s := range segs {
		rest := segs[i+1:]
		ctx := append([]string(nil), segs[:i]...)
		switch s {
		case "scm":
			if len(rest) > 2 {
				rest = rest[:2]
			}
			return append(append(ctx, "scm"), rest...)
		case "projects", "users":
			if len(rest) == 0 {
				continue
			}
			group := rest[0]
			if s == "users" {
				group = "~" + group
			}
			out := append(ctx, "scm", group)
			if len(rest) >= 3 && rest[1] == "repos" {
				out = append(out, rest[2])
			}
			return out
		}
	}
	return segs // a context path, or nothing: the whole instance
}

func isSSH(raw string) bool {
	if lower := asciiLower(raw); strings.HasPrefix(lower, "ssh://") || strings.HasPrefix(lower, "git@") {
		return true
	}
	// scp-like [user@]host:path has a ':' before any '/' and no "://", as
	// git reads it; "host:7990/path" (digits only) is a host and port.
	if !strings.Contains(raw, "://") && !strings.HasPrefix(raw, "[") {
		colon := strings.IndexByte(raw, ':')
		slash := strings.IndexByte(raw, '/')
		at := strings.IndexByte(raw, '@')
		if colon < 0 || (slash >= 0 && slash < colon) || (at >= 0 && colon < at) {
			return false
		}
		port := raw[colon+1:]
		if slash >= 0 {
			port = raw[colon+1 : slash]
		}
		return port == "" || strings.Trim(port, "0123456789") != ""
	}
	return false
}

// RedactURL keeps the secrets a URL may carry out of messages: the
// password of its userinfo, and a user name that looks like a token
// (https://ATCTT…@bitbucket.org, or https://eve%3AATATT…@ once decoded).
// Both become "****". A URL without a scheme (alice:pw@host/path) is read
// the same way. A pasted password may hold an unescaped '/', '?', '#' or
// '@' (Data Center tokens are base64), so the userinfo is taken to end at
// the last '@': in the rare URL with an '@' in its path this masks too
// much, never too little.
func RedactURL(raw string) string {
	prefix, rest := "", raw
	if scheme, r, ok := strings.Cut(raw, "://"); ok {
		prefix, rest = scheme+"://", r
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return raw
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if strings.ContainsAny(user, "/?#") {
		// That '@' is in the path: git's reading, then. The authority
		// ends at the first '/', '?' or '#', its userinfo at the first
		// '@' in it.
		authority := rest
		if end := strings.IndexAny(rest, "/?#"); end >= 0 {
			authority = rest[:end]
		}
		if at = strings.IndexByte(authority, '@'); at < 0 {
			return raw
		}
		user, _, hasPass = strings.Cut(rest[:at], ":")
	}
	masked := NameHoldsToken(user)
	if !hasPass && !masked {
		return raw
	}
	if masked {
		user = "****"
	}
	if hasPass {
		return prefix + user + ":****@" + rest[at+1:]
	}
	return prefix + user + "@" + rest[at+1:]
}

// NameHoldsToken reports whether a user name, as written or
// percent-decoded (where it may hide a "name:token" pair), may hold a
// token (LooksLikeToken): for masking it, never for refusing it, since
// some people's names look random too.
func NameHoldsToken(user string) bool { return nameHas(user, LooksLikeToken) }

// NameHasToken reports whether a user name holds a token of a known
// format (a Bitbucket prefix and 16 characters or more): such a name is
// refused where it would be kept (add --username, a credential git
// stores), since the index is a plain file.
func NameHasToken(user string) bool {
	return nameHas(user, func(s string) bool { return HasTokenPrefix(s) && len(s) >= MinMaskedToken })
}

func nameHas(user string, token func(string) bool) bool {
	if token(user) {
		return true
	}
	decoded, err := url.PathUnescape(user)
	if err != nil {
		decoded = user
	}
	// A ':' separates name and token; an '@' may too, where the userinfo
	// was taken to end at a later '@' (see RedactURL).
	for _, part := range strings.FieldsFunc(decoded, func(r rune) bool { return r == ':' || r == '@' }) {
		if token(part) {
			return true
		}
	}
	return false
}

func indexOf(segs []string, s string) int {
	for i, v := range segs {
		if v == s {
			return i
		}
	}
	return -1
}
