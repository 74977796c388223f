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
// git reads them (system, global, local, worktree, command line). doctor
// reads them only to say where a helper git runs came from, and so what to
// edit: which helpers git runs, in what order, and whether it sends the
// path, git itself shows (see probe).
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

// fixableBySetup: setup writes to the global file, whose reset clears what
// system and (earlier) global config added.
func (e configEntry) fixableBySetup() bool {
	return e.Scope == "" || e.Scope == "system" || e.Scope == "global"
}

// name is the entry's variable, lower case: "helper", "usehttppath".
func (e configEntry) name() string {
	return bitbucket.LowerASCII(e.Key[strings.LastIndexByte(e.Key, '.')+1:])
}

// section is the URL of the entry's [credential "URL"] section, "" for
// [credential] itself (git prints the section and variable names in lower
// case, the URL as written).
func (e configEntry) section() (string, bool) {
	rest, ok := strings.CutPrefix(e.Key, "credential.")
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return "", true
	}
	return rest[:i], true
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

// helperEntry finds the configuration entry that made git run cmd (the
// last one whose value gives that command), for messages and fixes.
func helperEntry(entries []configEntry, cmd string) (configEntry, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.name() == "helper" && e.Value != "" && helperCommand(e.Value) == cmd {
			return e, true
		}
	}
	return configEntry{}, false
}

// helperCommand is the shell command git runs for a credential.helper value
// (followed by " get", " store" or " erase"): git's rule, in credential.c.
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

// program is the program a helper command starts: "git-credential-NAME"
// for git's own form, else the first word (quoted, as setup quotes a path
// with spaces, or not). Only the first word matters, and only to name it.
func program(cmd string) string {
	cmd = strings.TrimSpace(cmd)
	var first string
	if q := cmd[:min(1, len(cmd))]; q == "'" || q == `"` {
		end := strings.Index(cmd[1:], q)
		if end < 0 {
			return ""
		}
		first = cmd[1 : 1+end]
	} else {
		first, _, _ = strings.Cut(cmd, " ")
	}
	if first == "git" {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(cmd[3:]), "credential-"); ok {
			name, _, _ := strings.Cut(rest, " ")
			return "git-credential-" + name
		}
	}
	return first
}

// ProgramName is the name of this helper's executable.
const ProgramName = "git-credential-bbtoken"

// isOurs reports whether a helper command runs this helper: one of the
// values setup wrote, or any program named git-credential-bbtoken. (Where
// git ran it, doctor knows for sure: see probe.)
func isOurs(cmd string, known []string) bool {
	for _, k := range known {
		if k != "" && cmd == helperCommand(k) {
			return true
		}
	}
	base := path.Base(strings.ReplaceAll(program(cmd), `\`, "/"))
	return strings.TrimSuffix(bitbucket.LowerASCII(base), ".exe") == ProgramName
}

// missingProgram returns the program of a helper command when it is an
// absolute path that does not exist.
func missingProgram(cmd string) string {
	p := program(cmd)
	if !isAbsPath(p) {
		return ""
	}
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return p
	}
	return ""
}
