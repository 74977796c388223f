package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/gitcmd"
)

// runGit runs git in dir with env (nil: this process's environment) and
// returns its stdout. A non-zero exit is a *gitcmd.Error.
func (d *Doctor) runGit(ctx context.Context, dir string, env []string, stdin string, args ...string) (stdout, stderr []byte, err error) {
	res, err := gitcmd.Cmd{Path: d.Git, Dir: dir, Env: env, Stdin: stdin}.Run(ctx, args...)
	return res.Stdout, res.Stderr, err
}

func (d *Doctor) gitPath() string {
	if d.Git != "" {
		return d.Git
	}
	return "git"
}

// configEntry is one credential.* line of git's configuration, in the order
// git reads them (system, global, local, worktree, command line).
type configEntry struct {
	Scope  string // system, global, local, worktree, command; "" when git is too old to say
	Origin string // e.g. "file:/home/alice/.gitconfig"
	Key    string // credential.<url>.<name> or credential.<name>, as git prints it
	Value  string
	Bare   bool // "key" without "= value" (a boolean true)
}

// where names an entry's origin for messages: "global config /home/a/.gitconfig".
func (e configEntry) where() string {
	origin := e.Origin
	if f, ok := strings.CutPrefix(origin, "file:"); ok {
		origin = f
	}
	switch {
	case e.Scope == "command" || strings.HasPrefix(e.Origin, "command line"):
		return "the command line (-c or GIT_CONFIG_PARAMETERS)"
	case e.Scope != "":
		return e.Scope + " config " + origin
	}
	return origin
}

// file is the config file an entry came from, "" when it did not come from
// a file.
func (e configEntry) file() string {
	f, ok := strings.CutPrefix(e.Origin, "file:")
	if !ok {
		return ""
	}
	return f
}

// readCredentialConfig lists every credential.* entry git sees from dir.
func (d *Doctor) readCredentialConfig(ctx context.Context, dir string) ([]configEntry, error) {
	args := []string{"config", "--show-origin", "--show-scope", "-z", "--get-regexp", `^credential\.`}
	out, _, err := d.runGit(ctx, dir, d.Env, "", args...)
	withScope := true
	var exit *gitcmd.Error
	if errors.As(err, &exit) && exit.ExitCode != 1 {
		// git before 2.26 has no --show-scope.
		withScope = false
		out, _, err = d.runGit(ctx, dir, d.Env, "", append(args[:2:2], args[3:]...)...)
	}
	if errors.As(err, &exit) && exit.ExitCode == 1 {
		return nil, nil // nothing set
	}
	if err != nil {
		return nil, fmt.Errorf("reading git's credential configuration: %w", err)
	}
	entries, err := parseConfigZ(out, withScope)
	if err != nil {
		return nil, err
	}
	// git names the repository's config relative to where it ran.
	for i := range entries {
		if f, ok := strings.CutPrefix(entries[i].Origin, "file:"); ok && f != "" && !filepath.IsAbs(f) && dir != "" {
			entries[i].Origin = "file:" + filepath.Join(dir, f)
		}
	}
	return entries, nil
}

// parseConfigZ reads `git config --show-origin [--show-scope] -z` output:
// [scope NUL] origin NUL key (LF value | "") NUL, repeated.
func parseConfigZ(out []byte, withScope bool) ([]configEntry, error) {
	fields := strings.Split(string(out), "\x00")
	if len(fields) > 0 && fields[len(fields)-1] == "" {
		fields = fields[:len(fields)-1]
	}
	per := 2
	if withScope {
		per = 3
	}
	if len(fields)%per != 0 {
		return nil, fmt.Errorf("unexpected output from git config (%d fields)", len(fields))
	}
	var entries []configEntry
	for i := 0; i < len(fields); i += per {
		var e configEntry
		if withScope {
			e.Scope = fields[i]
		}
		e.Origin = fields[i+per-2]
		kv := fields[i+per-1]
		k, v, hasValue := strings.Cut(kv, "\n")
		e.Key, e.Value, e.Bare = k, v, !hasValue
		entries = append(entries, e)
	}
	return entries, nil
}

// splitCredentialKey splits credential.<url>.<name> into url and name; url
// is "" for credential.<name>.
func splitCredentialKey(key string) (url, name string, ok bool) {
	rest, ok := strings.CutPrefix(key, "credential.")
	if !ok {
		return "", "", false
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot < 0 {
		return "", rest, true
	}
	return rest[:dot], rest[dot+1:], true
}

// target is the request git matches credential.<url>.* sections against.
type target struct {
	scheme string // lower case
	user   string
	host   string // lower case, without port
	port   string // "" for the scheme's default
	path   string // without leading '/'
}

func (t target) String() string {
	s := t.scheme + "://" + t.host
	if t.port != "" {
		s += ":" + t.port
	}
	if t.path != "" {
		s += "/" + t.path
	}
	return s
}

// hostPort is host[:port] as git sends it in host=.
func (t target) hostPort() string {
	if t.port != "" {
		return t.host + ":" + t.port
	}
	return t.host
}

// parsedURL is a URL split the way git's urlmatch splits it.
type parsedURL struct {
	scheme, user, host, port, path string
	hasUser                        bool
}

// splitURL splits scheme://[user[:pass]@]host[:port][/path]. It never
// keeps the password.
func splitURL(raw string) (parsedURL, bool) {
	var u parsedURL
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || scheme == "" {
		return u, false
	}
	u.scheme = bitbucket.LowerASCII(scheme)
	authority, p, _ := strings.Cut(rest, "/")
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		userinfo := authority[:at]
		authority = authority[at+1:]
		u.user, _, _ = strings.Cut(userinfo, ":")
		u.hasUser = true
	}
	host, port := authority, ""
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.Contains(authority[i:], "]") {
		host, port = authority[:i], authority[i+1:]
	}
	u.host = bitbucket.LowerASCII(host)
	if (u.scheme == "https" && port == "443") || (u.scheme == "http" && port == "80") {
		port = ""
	}
	u.port = port
	u.path = strings.Trim(p, "/")
	return u, u.host != ""
}

// matches reports whether a credential.<sub>.* section applies to t, the
// way git decides it: a full URL matches like http.<url>.* (scheme, user if
// given, host with '*' matching one label, port, and a path prefix on '/'
// boundaries); anything else is read as host[/path] and compared exactly.
func matches(sub string, t target) bool {
	if sub == "" {
		return true
	}
	if !strings.Contains(sub, "://") {
		host, p, _ := strings.Cut(sub, "/")
		if host != "" && host != t.hostPort() {
			return false
		}
		return p == "" || p == t.path
	}
	u, ok := splitURL(sub)
	if !ok {
		return false
	}
	if u.scheme != t.scheme || (u.hasUser && u.user != t.user) || u.port != t.port {
		return false
	}
	if !hostMatches(u.host, t.host) {
		return false
	}
	if u.path == "" {
		return true
	}
	return t.path == u.path || strings.HasPrefix(t.path, u.path+"/")
}

func hostMatches(pattern, host string) bool {
	pl, hl := strings.Split(pattern, "."), strings.Split(host, ".")
	if len(pl) != len(hl) {
		return false
	}
	for i := range pl {
		if pl[i] != "*" && pl[i] != hl[i] {
			return false
		}
	}
	return true
}

// helperEntry is one credential helper in the list git builds for a URL.
type helperEntry struct {
	configEntry
	Command string // what git runs, without the operation
}

// credentialView is what git's configuration means for one URL.
type credentialView struct {
	Helpers []helperEntry // after the last reset, in order
	All     []helperEntry // every matching helper entry, resets included
	// UseHTTPPath is the last matching credential.*useHttpPath; Set is false
	// when none matches (git's default: false).
	UseHTTPPath      bool
	UseHTTPPathSet   bool
	UseHTTPPathEntry configEntry
}

// viewFor applies git's rules to the entries: helper values accumulate in
// config order over every matching section, an empty value clears the list;
// for useHttpPath the last matching value wins.
func viewFor(entries []configEntry, t target) credentialView {
	var v credentialView
	for _, e := range entries {
		sub, name, ok := splitCredentialKey(e.Key)
		if !ok || !matches(sub, t) {
			continue
		}
		switch bitbucket.LowerASCII(name) {
		case "helper":
			if e.Bare {
				continue // git rejects a helper without a value
			}
			if e.Value == "" {
				v.Helpers = nil
				v.All = append(v.All, helperEntry{configEntry: e})
				continue
			}
			h := helperEntry{configEntry: e, Command: helperCommand(e.Value)}
			v.Helpers = append(v.Helpers, h)
			v.All = append(v.All, h)
		case "usehttppath":
			b, ok := parseBool(e)
			if ok {
				v.UseHTTPPath, v.UseHTTPPathSet, v.UseHTTPPathEntry = b, true, e
			}
		}
	}
	return v
}

// resetAfterOurs returns the reset (empty helper value) that cleared the
// last occurrence of this helper from the list, if one did.
func (v credentialView) resetAfterOurs(ours func(string) bool) (configEntry, bool) {
	last := -1
	for i, h := range v.All {
		if h.Value != "" && ours(h.Command) {
			last = i
		}
	}
	if last < 0 {
		return configEntry{}, false
	}
	for i := len(v.All) - 1; i > last; i-- {
		if v.All[i].Value == "" {
			return v.All[i].configEntry, true
		}
	}
	return configEntry{}, false
}

func parseBool(e configEntry) (bool, bool) {
	if e.Bare {
		return true, true
	}
	switch bitbucket.LowerASCII(strings.TrimSpace(e.Value)) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0", "":
		return false, true
	}
	return false, false
}

// helperCommand is the shell command git runs for a credential.helper value
// (followed by " get", " store" or " erase").
func helperCommand(v string) string {
	switch {
	case strings.HasPrefix(v, "!"):
		return v[1:]
	case isAbsPath(v):
		return v
	}
	return "git credential-" + v
}

func isAbsPath(v string) bool {
	if strings.HasPrefix(v, "/") || strings.HasPrefix(v, `\`) {
		return true
	}
	return len(v) > 2 && v[1] == ':' && (v[2] == '/' || v[2] == '\\') &&
		(('a' <= v[0] && v[0] <= 'z') || ('A' <= v[0] && v[0] <= 'Z'))
}

// shellWords splits a POSIX shell command into words, understanding single
// and double quotes and backslashes (enough for what git and setup write).
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				cur.WriteString(s[i+1:])
				i = len(s)
			} else {
				cur.WriteString(s[i+1 : i+1+j])
				i += j + 1
			}
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// helperProgram is the program a helper command starts: its first word,
// or the "git credential-NAME" it names.
func helperProgram(cmd string) string {
	w := shellWords(cmd)
	if len(w) == 0 {
		return ""
	}
	if w[0] == "git" && len(w) > 1 && strings.HasPrefix(w[1], "credential-") {
		return "git-" + w[1]
	}
	return w[0]
}

// ProgramName is the name of this helper's executable.
const ProgramName = "git-credential-bbtoken"

// isOurs reports whether a helper command runs this helper: one of the
// values setup wrote, or any program named git-credential-bbtoken.
func isOurs(cmd string, known []string) bool {
	for _, k := range known {
		if k != "" && cmd == helperCommand(k) {
			return true
		}
	}
	progs := []string{helperProgram(cmd)}
	if f := strings.Fields(cmd); len(f) > 0 {
		progs = append(progs, f[0]) // a Windows path whose backslashes the shell split would eat
	}
	for _, p := range progs {
		base := path.Base(strings.ReplaceAll(p, `\`, "/"))
		if strings.TrimSuffix(bitbucket.LowerASCII(base), ".exe") == ProgramName {
			return true
		}
	}
	return false
}

// missingProgram returns the program of a helper command when it is an
// absolute path that does not exist.
func missingProgram(cmd string) string {
	p := helperProgram(cmd)
	if !isAbsPath(p) {
		return ""
	}
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return p
	}
	return ""
}
