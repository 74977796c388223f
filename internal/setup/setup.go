// Package setup edits the user's global git config so that git asks this
// helper, and only this helper, for each Bitbucket host.
package setup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/gitcmd"
)

// Git runs `git config --global` commands.
type Git struct {
	Path string   // git binary; "" = "git" from PATH
	Env  []string // nil = inherit
	// DryRun prints the commands that would change something and runs
	// only the read-only ones.
	DryRun bool
	Out    io.Writer
}

// ErrGit wraps failures of the git binary.
var ErrGit = errors.New("git config failed")

func (g *Git) run(ctx context.Context, change bool, args ...string) (string, int, error) {
	full := append([]string{"config", "--global"}, args...)
	if change && g.DryRun {
		fmt.Fprintf(g.Out, "would run: git %s\n", shellJoin(full))
		return "", 0, nil
	}
	res, err := gitcmd.Cmd{Path: g.Path, Env: g.Env, Timeout: 30 * time.Second}.Run(ctx, full...)
	var exit *gitcmd.Error
	if errors.As(err, &exit) && !change && exit.ExitCode == 1 {
		return "", 1, nil // key not set
	}
	if err != nil {
		return "", 0, fmt.Errorf("%w: git %s: %v", ErrGit, shellJoin(full), err)
	}
	if change {
		fmt.Fprintf(g.Out, "ran: git %s\n", shellJoin(full))
	}
	return string(res.Stdout), 0, nil
}

// Helpers returns the helper list configured for a URL in the global file.
func (g *Git) Helpers(ctx context.Context, url string) ([]string, error) {
	out, code, err := g.run(ctx, false, "--get-all", key(url, "helper"))
	if err != nil || code == 1 {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n"), nil
}

// Result says what Install or Uninstall changed for one URL.
type Result struct {
	AddedHelper  bool
	AddedUseHTTP bool
	PrevUseHTTP  string
}

// Install makes helper the only helper for url (an empty value resets the
// list that earlier config built) and turns on useHttpPath, so that git
// sends the repository path our scopes need. It is idempotent.
func (g *Git) Install(ctx context.Context, url, helper string) (Result, error) {
	var res Result
	helpers, err := g.Helpers(ctx, url)
	if err != nil {
		return res, err
	}
	n := len(helpers)
	if n < 2 || helpers[n-2] != "" || helpers[n-1] != helper {
		if slices.Contains(helpers, helper) {
			// Ours, but not last after a reset: rewrite the list.
			if err := g.rewrite(ctx, url, removePair(helpers, helper)); err != nil {
				return res, err
			}
		}
		for _, v := range []string{"", helper} {
			if _, _, err := g.run(ctx, true, "--add", key(url, "helper"), v); err != nil {
				return res, err
			}
		}
		res.AddedHelper = true
	}
	cur, _, err := g.run(ctx, false, "--get", key(url, "useHttpPath"))
	if err != nil {
		return res, err
	}
	cur = strings.TrimSpace(cur)
	if cur != "true" {
		if _, _, err := g.run(ctx, true, key(url, "useHttpPath"), "true"); err != nil {
			return res, err
		}
		res.AddedUseHTTP, res.PrevUseHTTP = true, cur
	}
	return res, nil
}

// Uninstall removes the reset and helper entries Install added, and restores
// useHttpPath when Install had changed it.
func (g *Git) Uninstall(ctx context.Context, url, helper string, addedUseHTTP bool, prevUseHTTP string) error {
	helpers, err := g.Helpers(ctx, url)
	if err != nil {
		return err
	}
	if slices.Contains(helpers, helper) {
		if err := g.rewrite(ctx, url, removePair(helpers, helper)); err != nil {
			return err
		}
	}
	if addedUseHTTP {
		if prevUseHTTP == "" {
			if _, _, err := g.run(ctx, true, "--unset", key(url, "useHttpPath")); err != nil {
				return err
			}
		} else if _, _, err := g.run(ctx, true, key(url, "useHttpPath"), prevUseHTTP); err != nil {
			return err
		}
	}
	if g.DryRun {
		return nil
	}
	// Leave no empty [credential "url"] section behind. Recent git drops a
	// section that --unset left empty by itself, and then --remove-section
	// fails ("no such section"); older git keeps the empty header. Either
	// way an empty header is harmless, so this is best effort.
	out, code, err := g.run(ctx, false, "--get-regexp", "^"+regexpQuote("credential."+url+"."))
	if err == nil && code == 1 && out == "" {
		_, _, _ = g.run(ctx, true, "--remove-section", "credential."+url)
	}
	return err
}

// rewrite replaces the helper list for url with values, in order.
func (g *Git) rewrite(ctx context.Context, url string, values []string) error {
	if _, _, err := g.run(ctx, true, "--unset-all", key(url, "helper")); err != nil {
		return err
	}
	for _, v := range values {
		if _, _, err := g.run(ctx, true, "--add", key(url, "helper"), v); err != nil {
			return err
		}
	}
	return nil
}

// removePair drops each occurrence of helper together with the reset ("")
// right before it, which is what Install adds.
func removePair(values []string, helper string) []string {
	var out []string
	for _, v := range values {
		if v == helper {
			if len(out) > 0 && out[len(out)-1] == "" {
				out = out[:len(out)-1]
			}
			continue
		}
		out = append(out, v)
	}
	return out
}

func key(url, name string) string { return "credential." + url + "." + name }

// HelperValue is the credential.helper value that runs exe. git runs an
// absolute path through the shell as it is, so a path with spaces or shell
// characters must be quoted; but git takes a value that does not start with
// '/' as the name of a helper ("git credential-<value>"), so the quoted form
// is a '!' shell snippet.
func HelperValue(exe string) (string, error) {
	if strings.ContainsAny(exe, "'\n\r") {
		return "", fmt.Errorf("the helper's path %q contains a quote or newline: install it somewhere else", exe)
	}
	if strings.ContainsAny(exe, " \t\"$`\\!*?[]{}();&|<>~#") {
		return "!'" + exe + "'", nil
	}
	return exe, nil
}

func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$`\\!*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
