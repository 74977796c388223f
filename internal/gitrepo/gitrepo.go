// Package gitrepo reads the remotes of the git work tree a command runs in,
// with go-git so that no git process is spawned.
package gitrepo

import (
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5"
)

// ErrNoRepository means the directory is not inside a git work tree.
var ErrNoRepository = errors.New("not inside a git work tree")

// ErrNoRemote means the repository has no such remote, or it has no URL.
var ErrNoRemote = errors.New("no such remote")

// RemoteURL returns the first URL of the named remote of the repository
// containing dir.
func RemoteURL(dir, name string) (string, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return "", fmt.Errorf("%w (%s)", ErrNoRepository, dir)
	}
	if err != nil {
		return "", fmt.Errorf("opening the git repository at %s: %w", dir, err)
	}
	remote, err := repo.Remote(name)
	if errors.Is(err, git.ErrRemoteNotFound) {
		return "", fmt.Errorf("%w: the repository has no remote %q", ErrNoRemote, name)
	}
	if err != nil {
		return "", fmt.Errorf("reading remote %q: %w", name, err)
	}
	urls := remote.Config().URLs
	if len(urls) == 0 || urls[0] == "" {
		return "", fmt.Errorf("%w: remote %q has no URL", ErrNoRemote, name)
	}
	return urls[0], nil
}
