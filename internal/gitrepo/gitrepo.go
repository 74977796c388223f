// Package gitrepo reads the remotes of the git work tree a command runs in
// by asking git (`git rev-parse`, `git config`), so that add and doctor see
// the configuration git itself uses: worktrees, separate git dirs,
// includes. Only add and doctor use it; get, which git runs on every
// fetch, never does (and the binary links no config parser of its own, so
// git's calls do not pay for one at start-up).
package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bbtoken/git-credential-bbtoken/internal/gitcmd"
)

// ErrNoRepository means the directory is not inside a git work tree.
var ErrNoRepository = errors.New("not inside a git work tree")

// ErrNoRemote means the repository has no such remote, or it has no URL.
var ErrNoRemote = errors.New("no such remote")

// Remote is one remote's fetch URLs and explicit push URLs (pushurl), as
// configured (before url.*.insteadOf rewriting).
type Remote struct {
	Name     string
	URLs     []string
	PushURLs []string
}

// RemoteURL returns the first URL of the named remote of the repository
// containing dir.
func RemoteURL(dir, name string) (string, error) {
	remotes, err := Remotes(dir)
	if err != nil {
		return "", err
	}
	for _, r := range remotes {
		if r.Name != name {
			continue
		}
		if len(r.URLs) == 0 || r.URLs[0] == "" {
			return "", fmt.Errorf("%w: remote %q has no URL", ErrNoRemote, name)
		}
		return r.URLs[0], nil
	}
	return "", fmt.Errorf("%w: the repository has no remote %q", ErrNoRemote, name)
}

// Remotes returns every remote of the repository containing dir, in the
// order git's configuration lists them.
func Remotes(dir string) ([]Remote, error) {
	if _, err := git(dir, "rev-parse", "--git-dir"); err != nil {
		var gerr *gitcmd.Error
		switch {
		case !errors.As(err, &gerr):
			return nil, err
		case strings.Contains(gerr.Stderr, "not a git repository"): // C locale: see gitcmd
			return nil, fmt.Errorf("%w (%s)", ErrNoRepository, dir)
		}
		// git refuses it (e.g. "detected dubious ownership"): say why.
		return nil, fmt.Errorf("git does not read the repository at %s: %w", dir, err)
	}
	out, err := git(dir, "config", "-z", "--get-regexp", `^remote\.`)
	var gerr *gitcmd.Error
	if errors.As(err, &gerr) && gerr.ExitCode == 1 {
		return nil, nil // no remote.* keys at all
	}
	if err != nil {
		return nil, err
	}
	return parseRemotes(out), nil
}

// parseRemotes reads `git config -z --get-regexp` output: "KEY\nVALUE\0"
// records, keys being remote.NAME.VAR (NAME may hold dots; VAR is
// lower-cased by git).
func parseRemotes(out []byte) []Remote {
	var remotes []Remote
	index := map[string]int{}
	for rec := range bytes.SplitSeq(out, []byte{0}) {
		key, value, _ := strings.Cut(string(rec), "\n")
		rest, ok := strings.CutPrefix(key, "remote.")
		dot := strings.LastIndexByte(rest, '.')
		if !ok || dot <= 0 {
			continue
		}
		name, variable := rest[:dot], rest[dot+1:]
		if variable != "url" && variable != "pushurl" {
			continue
		}
		i, seen := index[name]
		if !seen {
			i = len(remotes)
			index[name] = i
			remotes = append(remotes, Remote{Name: name})
		}
		if variable == "url" {
			remotes[i].URLs = append(remotes[i].URLs, value)
		} else {
			remotes[i].PushURLs = append(remotes[i].PushURLs, value)
		}
	}
	return remotes
}

// git runs git in dir and returns its stdout; a failure is a
// *gitcmd.Error carrying git's first line of complaint.
func git(dir string, args ...string) ([]byte, error) {
	res, err := gitcmd.Cmd{Dir: dir}.Run(context.Background(), args...)
	return res.Stdout, err
}
