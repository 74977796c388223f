package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNewcomerInstall is the definition of done: a newcomer runs
// install.sh, adds a token and clones (and pushes), nothing else.
func TestNewcomerInstall(t *testing.T) {
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}, noSetup: true})
	tok := f.accessToken(t, "repo-token", "ws/repo")

	// Reuse the developer's Go caches so the build is incremental.
	var goEnv []string
	for _, v := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS", "GOTOOLCHAIN"} {
		out, err := exec.Command("go", "env", v).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", v, err)
		}
		goEnv = append(goEnv, v+"="+strings.TrimSpace(string(out)))
	}
	prefix := filepath.Join(f.home, "prefix")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	r := f.run(t, root, "", append(goEnv, "PREFIX="+prefix), "bash", "install.sh", "--host", f.srv.URL, "--flavor", "cloud")
	wantCode(t, r, 0)
	bin := filepath.Join(prefix, "bin", "git-credential-bbtoken")
	st, err := os.Stat(bin)
	if err != nil || st.Mode().Perm()&0o111 == 0 {
		t.Fatalf("installed binary %s: %v %v", bin, st, err)
	}
	for _, want := range []string{"installed " + bin, "set up", "git-credential-bbtoken add"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("install.sh output lacks %q:\n%s", want, r.stdout)
		}
	}
	// Safe to rerun: the second run leaves git's config as it was.
	before, err := os.ReadFile(f.gitconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.run(t, root, "", append(goEnv, "PREFIX="+prefix), "bash", "install.sh", "--host", f.srv.URL, "--flavor", "cloud"), 0)
	after, _ := os.ReadFile(f.gitconfigPath())
	if string(before) != string(after) {
		t.Fatalf("rerunning install.sh changed ~/.gitconfig:\n%s\n---\n%s", before, after)
	}

	r = f.run(t, "", tok+"\n", nil, bin, "add", f.url("ws/repo.git"))
	wantCode(t, r, 0)
	m := f.mark()
	dir, res := f.clone(t, f.url("ws/repo.git"))
	wantCode(t, res, 0)
	wantServed(t, f.since(m), "ws/repo", "repo-token", userAccess)
	if err := os.WriteFile(filepath.Join(dir, "new.txt"), []byte("hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.git(t, dir, "add", "new.txt"), 0)
	wantCode(t, f.git(t, dir, "commit", "-qm", "newcomer"), 0)
	wantCode(t, f.git(t, dir, "push", "-q", "origin", "HEAD"), 0)
}
