package gitrepo

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/config"
)

func runGit(t *testing.T, dir string, args ...string) {
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
	runGit(t, root, "init", "-q", "-b", "main", repo)
	runGit(t, repo, "remote", "add", "origin", "https://bitbucket.org/ws/repo.git")
	runGit(t, repo, "remote", "add", "mirror", "https://bb.example.com/scm/PROJ/repo.git")
	runGit(t, repo, "commit", "-q", "--allow-empty", "-m", "init")
	if err := os.MkdirAll(filepath.Join(repo, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	wt := filepath.Join(root, "wt")
	runGit(t, repo, "worktree", "add", "-q", wt)
	// A ".git" file pointing at a separate git dir (as submodules have).
	sep := filepath.Join(root, "sep")
	runGit(t, root, "init", "-q", "--separate-git-dir", filepath.Join(root, "sep.git"), sep)
	runGit(t, sep, "remote", "add", "origin", "https://bitbucket.org/ws/sep.git")
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

// TestRemotes reads every remote with its URLs and push URLs, and agrees
// with go-git's own parser of the same config file (an independent
// reading of git's format).
func TestRemotes(t *testing.T) {
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	runGit(t, root, "init", "-q", "-b", "main", repo)
	runGit(t, repo, "remote", "add", "origin", "https://bitbucket.org/ws/repo.git")
	runGit(t, repo, "config", "--add", "remote.origin.pushurl", "https://bitbucket.org/ws/push.git")
	runGit(t, repo, "config", "--add", "remote.origin.url", "https://bitbucket.org/ws/second.git")
	runGit(t, repo, "remote", "add", "dotted.name", "https://bb.example.com/scm/P/r.git")
	runGit(t, repo, "remote", "add", "Upper", "ssh://git@bitbucket.org/ws/repo.git")

	got, err := Remotes(repo)
	if err != nil {
		t.Fatal(err)
	}
	want := []Remote{
		{Name: "origin", URLs: []string{"https://bitbucket.org/ws/repo.git", "https://bitbucket.org/ws/second.git"}, PushURLs: []string{"https://bitbucket.org/ws/push.git"}},
		{Name: "dotted.name", URLs: []string{"https://bb.example.com/scm/P/r.git"}},
		{Name: "Upper", URLs: []string{"ssh://git@bitbucket.org/ws/repo.git"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Remotes =\n%+v\nwant\n%+v", got, want)
	}

	f, err := os.Open(filepath.Join(repo, ".git", "config"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := config.ReadConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Remotes) != len(got) {
		t.Fatalf("go-git reads %d remotes, we read %d", len(cfg.Remotes), len(got))
	}
	for _, r := range got {
		if _, ok := cfg.Remotes[r.Name]; !ok {
			t.Errorf("go-git does not see remote %q", r.Name)
		}
		// go-git's RemoteConfig.URLs mixes in the push URLs: compare
		// the raw options.
		sub := cfg.Raw.Section("remote").Subsection(r.Name)
		if urls := sub.Options.GetAll("url"); !reflect.DeepEqual(urls, r.URLs) {
			t.Errorf("remote %q: go-git reads %v, we read %v", r.Name, urls, r.URLs)
		}
		push := sub.Options.GetAll("pushurl")
		if len(push) == 0 {
			push = nil
		}
		if !reflect.DeepEqual(push, r.PushURLs) {
			t.Errorf("remote %q push URLs: go-git reads %v, we read %v", r.Name, push, r.PushURLs)
		}
	}

	// No remotes at all.
	empty := filepath.Join(root, "empty")
	runGit(t, root, "init", "-q", empty)
	if got, err := Remotes(empty); err != nil || len(got) != 0 {
		t.Errorf("Remotes(empty) = %v, %v", got, err)
	}
}

func TestParseRemotesIgnoresOtherKeys(t *testing.T) {
	out := []byte("remote.a.url\nu1\x00remote.a.fetch\n+refs/*\x00remote.pushdefault\na\x00remote..url\nx\x00remote.b.pushurl\np\x00")
	got := parseRemotes(out)
	want := []Remote{{Name: "a", URLs: []string{"u1"}}, {Name: "b", PushURLs: []string{"p"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseRemotes = %+v, want %+v", got, want)
	}
}

// TestNotARepositoryInAnyLanguage: outside a work tree, git's complaint is
// recognised whatever language the user runs git in (LANGUAGE=de makes
// Debian's git answer in German), since git runs in the C locale here.
// The control run shows that this git does translate, so the test can
// fail.
func TestNotARepositoryInAnyLanguage(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LC_ALL", "")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("LANGUAGE", "de")
	t.Setenv("GIT_CEILING_DIRECTORIES", filepath.Dir(dir))
	control := exec.Command("git", "-C", dir, "rev-parse", "--git-dir")
	out, _ := control.CombinedOutput()
	if !strings.Contains(string(out), "Git-Repository") {
		t.Fatalf("this machine's git does not answer in German (%q): the test proves nothing here; install git's translations (Debian's git has them)", out)
	}
	_, err := Remotes(dir)
	if !errors.Is(err, ErrNoRepository) {
		t.Fatalf("Remotes outside a repository with LANGUAGE=de: %v; want ErrNoRepository", err)
	}
}
