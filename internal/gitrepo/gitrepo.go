// Package gitrepo reads the remotes of the git work tree a command runs in,
// with go-git's config parser, so that no git process is spawned. It
// imports only go-git's config package: the whole of go-git (transports,
// SSH, OpenPGP) would add a millisecond of start-up to every git call,
// which this binary serves.
package gitrepo

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/config"
)

// ErrNoRepository means the directory is not inside a git work tree.
var ErrNoRepository = errors.New("not inside a git work tree")

// ErrNoRemote means the repository has no such remote, or it has no URL.
var ErrNoRemote = errors.New("no such remote")

// RemoteURL returns the first URL of the named remote of the repository
// containing dir.
func RemoteURL(dir, name string) (string, error) {
	cfg, err := Config(dir)
	if err != nil {
		return "", err
	}
	remote, ok := cfg.Remotes[name]
	if !ok {
		return "", fmt.Errorf("%w: the repository has no remote %q", ErrNoRemote, name)
	}
	if len(remote.URLs) == 0 || remote.URLs[0] == "" {
		return "", fmt.Errorf("%w: remote %q has no URL", ErrNoRemote, name)
	}
	return remote.URLs[0], nil
}

// Remotes returns every remote of the repository containing dir.
func Remotes(dir string) (map[string]*config.RemoteConfig, error) {
	cfg, err := Config(dir)
	if err != nil {
		return nil, err
	}
	return cfg.Remotes, nil
}

// Config parses the repository's own config file (not the user's).
func Config(dir string) (*config.Config, error) {
	common, err := commonDir(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(common, "config"))
	if err != nil {
		return nil, fmt.Errorf("reading the repository config: %w", err)
	}
	defer f.Close()
	cfg, err := config.ReadConfig(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", filepath.Join(common, "config"), err)
	}
	return cfg, nil
}

// commonDir finds the git directory holding the config, walking up from
// dir as git does: a ".git" directory, or a ".git" file pointing elsewhere
// ("gitdir: ..." for worktrees and submodules, whose shared config lives in
// the "commondir" the pointed-to directory names).
func commonDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("%w (%s)", ErrNoRepository, dir)
	}
	for d := abs; ; d = filepath.Dir(d) {
		dotgit := filepath.Join(d, ".git")
		st, err := os.Stat(dotgit)
		switch {
		case err == nil && st.IsDir():
			return dotgit, nil
		case err == nil:
			return followGitFile(dotgit)
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("reading %s: %w", dotgit, err)
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w (%s)", ErrNoRepository, dir)
		}
	}
}

func followGitFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	target, ok := strings.CutPrefix(strings.TrimSpace(string(data)), "gitdir:")
	if !ok {
		return "", fmt.Errorf("%w: %s is not a gitdir pointer", ErrNoRepository, path)
	}
	target = strings.TrimSpace(target)
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(path), target)
	}
	if c, err := os.ReadFile(filepath.Join(target, "commondir")); err == nil {
		common := strings.TrimSpace(string(c))
		if !filepath.IsAbs(common) {
			common = filepath.Join(target, common)
		}
		return filepath.Clean(common), nil
	}
	return filepath.Clean(target), nil
}
