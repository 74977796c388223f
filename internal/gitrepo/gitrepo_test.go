package gitrepo

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir(),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func TestRemoteURL(t *testing.T) {
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	git(t, root, "init", "-q", "-b", "main", repo)
	git(t, repo, "remote", "add", "origin", "https://bitbucket.org/ws/repo.git")
	git(t, repo, "remote", "add", "mirror", "https://bb.example.com/scm/PROJ/repo.git")
	git(t, repo, "commit", "-q", "--allow-empty", "-m", "init")
	if err := os.MkdirAll(filepath.Join(repo, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	wt := filepath.Join(root, "wt")
	git(t, repo, "worktree", "add", "-q", wt)
	// A ".git" file pointing at a separate git dir (as submodules have).
	sep := filepath.Join(root, "sep")
	git(t, root, "init", "-q", "--separate-git-dir", filepath.Join(root, "sep.git"), sep)
	git(t, sep, "remote", "add", "origin", "https://bitbucket.org/ws/sep.git")
	none := t.TempDir()

	tests := []struct {
		name, dir, remote, want string
		err                     error
	}{
		{"top", repo, "origin", "https://bitbucket.org/ws/repo.git", nil},
		{"subdirectory", filepath.Join(repo, "a", "b"), "origin", "https://bitbucket.org/ws/repo.git", nil},
		{"other remote", repo, "mirror", "https://bb.example.com/scm/PROJ/repo.git", nil},
		{"worktree shares the config", wt, "origin", "https://bitbucket.org/ws/repo.git", nil},
		{"gitdir pointer", sep, "origin", "https://bitbucket.org/ws/sep.git", nil},
		{"no such remote", repo, "upstream", "", ErrNoRemote},
		{"not a repository", none, "origin", "", ErrNoRepository},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RemoteURL(tt.dir, tt.remote)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("RemoteURL = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}
