package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// originalGitconfig is a global config a user already had: a name and git's
// plain-text "store" helper for every host.
const originalGitconfig = "[user]\n\tname = Alice Example\n\temail = alice@example.invalid\n[credential]\n\thelper = store\n"

// TestSetupIsIdempotentAndRemovable: setup twice changes the config once;
// the store helper from the original config is not run for the set-up host;
// setup --remove restores the original file byte for byte.
func TestSetupIsIdempotentAndRemovable(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}, gitconfig: originalGitconfig, noSetup: true})
	hostURL := f.srv.URL
	helperKey := "credential." + hostURL + ".helper"

	r := f.helper(t, "", "setup", "--host", hostURL, "--flavor", "cloud")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "set up") {
		t.Errorf("first setup does not say it set up: %s", r)
	}
	first := readFile(t, f.gitconfigPath())
	if !strings.HasPrefix(first, originalGitconfig) {
		t.Errorf("setup changed the existing lines:\n%s", first)
	}
	got := f.git(t, "", "config", "--global", "--get-all", helperKey)
	wantCode(t, got, 0)
	if want := "\n" + helperBin + "\n"; got.stdout != want {
		t.Errorf("%s = %q, want a reset then the helper's absolute path: %q", helperKey, got.stdout, want)
	}
	got = f.git(t, "", "config", "--global", "--get", "credential."+hostURL+".useHttpPath")
	if strings.TrimSpace(got.stdout) != "true" {
		t.Errorf("useHttpPath for the host: %s", got)
	}
	// Other hosts keep the user's helper.
	got = f.git(t, "", "config", "--get-urlmatch", "credential.helper", "https://other.example/x/y.git")
	if strings.TrimSpace(got.stdout) != "store" {
		t.Errorf("credential.helper for another host: %s", got)
	}

	r = f.helper(t, "", "setup", "--host", hostURL, "--flavor", "cloud")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "already set up") || strings.Contains(r.stdout, "ran: git") {
		t.Errorf("second setup should change nothing: %s", r)
	}
	if second := readFile(t, f.gitconfigPath()); second != first {
		t.Errorf("second setup changed ~/.gitconfig:\nfirst:\n%s\nsecond:\n%s", first, second)
	}

	// Only our helper runs for the host: git's store helper, reset by
	// setup, never writes the token to ~/.git-credentials.
	f.add(t, f.url("ws/repo.git"), f.accessToken(t, "repo", "ws/repo"), "--kind", "repository")
	m := f.mark()
	_, r = f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/repo", "repo", userAccess)
	if _, err := os.Stat(filepath.Join(f.home, ".git-credentials")); !os.IsNotExist(err) {
		t.Errorf("git's store helper ran for the set-up host (~/.git-credentials: %v)", err)
	}

	r = f.helper(t, "", "setup", "--host", hostURL, "--remove")
	wantCode(t, r, 0)
	if after := readFile(t, f.gitconfigPath()); after != originalGitconfig {
		t.Errorf("setup --remove did not restore ~/.gitconfig:\nwant:\n%s\ngot:\n%s", originalGitconfig, after)
	}

	// Removing again is a no-op.
	r = f.helper(t, "", "setup", "--host", hostURL, "--remove")
	if r.code != 0 {
		t.Errorf("second setup --remove: %s", r)
	}
	if after := readFile(t, f.gitconfigPath()); after != originalGitconfig {
		t.Errorf("second setup --remove changed ~/.gitconfig:\n%s", after)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSetupWithSpaceInHelperPath: setup records the helper's own absolute
// path; git runs that value through the shell, so a path with a space (as
// under macOS's "Application Support") must still work.
func TestSetupWithSpaceInHelperPath(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}, gitconfig: originalGitconfig, noSetup: true})
	bin := filepath.Join(t.TempDir(), "Application Support", "git-credential-bbtoken")
	if err := os.MkdirAll(filepath.Dir(bin), 0o700); err != nil {
		t.Fatal(err)
	}
	// A hard link, not a copy: a copy is a file open for writing, which a
	// parallel test's fork can inherit until its exec, making ours fail
	// with "text file busy" (golang/go#22315).
	if err := os.Link(helperBin, bin); err != nil {
		t.Fatalf("linking the helper into a path with a space: %v", err)
	}

	wantCode(t, f.run(t, "", "", nil, bin, "setup", "--host", f.srv.URL, "--flavor", "cloud"), 0)
	f.add(t, f.url("ws/repo.git"), f.accessToken(t, "repo", "ws/repo"), "--kind", "repository")
	m := f.mark()
	_, r := f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/repo", "repo", userAccess)

	wantCode(t, f.run(t, "", "", nil, bin, "setup", "--host", f.srv.URL, "--remove"), 0)
	if after := readFile(t, f.gitconfigPath()); after != originalGitconfig {
		t.Errorf("setup --remove did not restore ~/.gitconfig:\nwant:\n%s\ngot:\n%s", originalGitconfig, after)
	}
}
