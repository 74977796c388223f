package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// The `setup` command runs git with this process's environment, so these
// tests point HOME at a temp directory with t.Setenv and are not parallel
// (top-level parallel tests start only after them).

const exePath = "/usr/local/bin/git-credential-bbtoken"

// isolateGit gives the git that `setup` runs an empty HOME and no system
// config, and clears every GIT_* variable of the outer environment.
func isolateGit(t *testing.T) string {
	t.Helper()
	requireGit(t)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GIT_") {
			t.Setenv(k, "") // restores the old value after the test
			require.NoError(t, os.Unsetenv(k))
		}
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	t.Setenv("LC_ALL", "C")
	return home
}

func readGitconfig(t *testing.T, home string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home, ".gitconfig"))
	if errors.Is(err, os.ErrNotExist) {
		return "<none>"
	}
	require.NoError(t, err)
	return string(b)
}

// globalAll is `git config --global --get-all key` in the isolated HOME.
func globalAll(t *testing.T, key string) []string {
	t.Helper()
	out, err := exec.Command("git", "config", "--global", "--get-all", key).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return nil
	}
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

func TestSetupDefaultHost(t *testing.T) {
	home := isolateGit(t)
	f := newFixture(t)

	r := f.run("", "setup")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Empty(t, r.stderr)
	assert.Equal(t, "ran: git config --global --add credential.https://bitbucket.org.helper ''\n"+
		"ran: git config --global --add credential.https://bitbucket.org.helper "+exePath+"\n"+
		"ran: git config --global credential.https://bitbucket.org.useHttpPath true\n"+
		"https://bitbucket.org: set up: git uses only git-credential-bbtoken (cloud) with useHttpPath=true\n", r.stdout)
	assert.Equal(t, []string{"", exePath}, globalAll(t, "credential.https://bitbucket.org.helper"))
	assert.Equal(t, []string{"true"}, globalAll(t, "credential.https://bitbucket.org.useHttpPath"))
	assert.Equal(t, map[string]store.HostConfig{
		"bitbucket.org": {Flavor: "cloud", HelperValue: exePath, AddedUseHTTP: true},
	}, f.index().Hosts)

	t.Run("idempotent", func(t *testing.T) {
		gitconfig, before := readGitconfig(t, home), f.state()
		r := f.run("", "setup")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Equal(t, "https://bitbucket.org: already set up: git uses only git-credential-bbtoken (cloud) with useHttpPath=true\n", r.stdout)
		assert.Equal(t, gitconfig, readGitconfig(t, home))
		assertUnchanged(t, before, f.state())
	})
	t.Run("remove", func(t *testing.T) {
		r := f.run("", "setup", "--remove")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Empty(t, r.stderr)
		assert.Equal(t, "ran: git config --global --unset-all credential.https://bitbucket.org.helper\n"+
			"ran: git config --global --unset credential.https://bitbucket.org.useHttpPath\n"+
			"https://bitbucket.org: git no longer uses git-credential-bbtoken here\n", r.stdout)
		assert.Empty(t, strings.TrimSpace(readGitconfig(t, home)))
		assert.Empty(t, f.index().Hosts)
	})
	t.Run("remove again", func(t *testing.T) {
		r := f.run("", "setup", "--remove")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Equal(t, "https://bitbucket.org: git no longer uses git-credential-bbtoken here\n", r.stdout)
	})
}

func TestSetupSeveralHosts(t *testing.T) {
	home := isolateGit(t)
	f := newFixture(t)
	r := f.run("", "setup", "--host", "https://bitbucket.org/ws/repo", "--host", "git.example.com:8443", "--host", "HTTPS://Code.Example.COM:443/")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Empty(t, r.stderr)
	assert.Contains(t, r.stdout, "https://bitbucket.org: set up: git uses only git-credential-bbtoken (cloud) with useHttpPath=true\n")
	assert.Contains(t, r.stdout, "https://git.example.com:8443: set up: git uses only git-credential-bbtoken (datacenter) with useHttpPath=true\n")
	assert.Contains(t, r.stdout, "https://code.example.com: set up: git uses only git-credential-bbtoken (datacenter) with useHttpPath=true\n")
	for _, url := range []string{"https://bitbucket.org", "https://git.example.com:8443", "https://code.example.com"} {
		assert.Equal(t, []string{"", exePath}, globalAll(t, "credential."+url+".helper"), url)
		assert.Equal(t, []string{"true"}, globalAll(t, "credential."+url+".useHttpPath"), url)
	}
	hosts := f.index().Hosts
	assert.Len(t, hosts, 3)
	assert.Equal(t, "cloud", hosts["bitbucket.org"].Flavor)
	assert.Equal(t, "datacenter", hosts["git.example.com:8443"].Flavor)
	assert.Equal(t, "datacenter", hosts["code.example.com"].Flavor)

	gitconfig := readGitconfig(t, home)
	r = f.run("", "setup", "--host", "git.example.com:8443", "--host", "https://bitbucket.org")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "ran:")
	assert.Equal(t, gitconfig, readGitconfig(t, home))

	r = f.run("", "setup", "--remove", "--host", "https://git.example.com:8443", "--host", "code.example.com", "--host", "bitbucket.org")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Empty(t, strings.TrimSpace(readGitconfig(t, home)))
	assert.Empty(t, f.index().Hosts)
}

// TestSetupFlavor checks that --flavor is recorded and decides how add and
// get read the host's URLs.
func TestSetupFlavor(t *testing.T) {
	isolateGit(t)

	// Unknown hosts are Data Center: a Cloud-style URL is a host-wide prefix.
	plain := newFixture(t)
	r := plain.run(repoTok+"\n", "add", "https://code.example.com/ws/repo")
	assert.Equal(t, ExitError, r.code)
	assert.Contains(t, r.stderr, "cannot tell the token's kind")

	f := newFixture(t)
	r = f.run("", "setup", "--host", "https://code.example.com", "--flavor", "cloud")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "https://code.example.com: set up: git uses only git-credential-bbtoken (cloud)")
	assert.Equal(t, "cloud", f.index().Hosts["code.example.com"].Flavor)

	id := f.add(repoTok, "https://code.example.com/WS/Repo.git")
	e := f.entry(id)
	assert.Equal(t, store.KindRepository, e.Kind)
	assert.Equal(t, "https://code.example.com/ws/repo", e.URL, "Cloud slugs are lower-cased")
	assert.Equal(t, "x-token-auth", e.Username)
	r = f.run("protocol=https\nhost=code.example.com\npath=ws/REPO.git/info/lfs\n", "get")
	assert.Equal(t, result{ExitOK, "username=x-token-auth\npassword=" + repoTok + "\n", ""}, r)

	// Without --flavor, a later setup keeps what was recorded.
	r = f.run("", "setup", "--host", "https://code.example.com")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "(cloud)")
	assert.Equal(t, "cloud", f.index().Hosts["code.example.com"].Flavor)

	// --flavor changes it.
	r = f.run("", "setup", "--host", "https://code.example.com", "--flavor", "datacenter")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "(datacenter)")
	assert.Equal(t, "datacenter", f.index().Hosts["code.example.com"].Flavor)
}

func TestSetupDryRun(t *testing.T) {
	home := isolateGit(t)
	f := newFixture(t)
	r := f.run("", "setup", "--dry-run")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Empty(t, r.stderr)
	assert.Equal(t, "would run: git config --global --add credential.https://bitbucket.org.helper ''\n"+
		"would run: git config --global --add credential.https://bitbucket.org.helper "+exePath+"\n"+
		"would run: git config --global credential.https://bitbucket.org.useHttpPath true\n"+
		"https://bitbucket.org: would use git-credential-bbtoken (cloud)\n", r.stdout)
	assert.Equal(t, "<none>", readGitconfig(t, home))
	assert.Nil(t, f.state().index, "a dry run writes no index")

	r = f.run("", "setup")
	require.Equal(t, ExitOK, r.code, r.stderr)
	gitconfig, before := readGitconfig(t, home), f.state()

	r = f.run("", "setup", "--dry-run")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Equal(t, "https://bitbucket.org: would use git-credential-bbtoken (cloud)\n", r.stdout, "nothing left to do")

	r = f.run("", "setup", "--remove", "--dry-run")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Equal(t, "would run: git config --global --unset-all credential.https://bitbucket.org.helper\n"+
		"would run: git config --global --unset credential.https://bitbucket.org.useHttpPath\n"+
		"https://bitbucket.org: would stop using git-credential-bbtoken\n", r.stdout)
	assert.Equal(t, gitconfig, readGitconfig(t, home))
	assertUnchanged(t, before, f.state())
}

func TestSetupRemoveRestoresGitconfig(t *testing.T) {
	tests := []struct{ name, prior string }{
		{"user name and store helper", "[user]\n\tname = Alice Example\n[credential]\n\thelper = store\n"},
		{"our URL section with other keys", "[credential \"https://bitbucket.org\"]\n\tusername = alice\n\tuseHttpPath = false\n[user]\n\tname = A\n"},
		{"an earlier helper for the URL", "[credential \"https://bitbucket.org\"]\n\thelper = cache --timeout=60\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := isolateGit(t)
			require.NoError(t, os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(tt.prior), 0o644))
			f := newFixture(t)
			r := f.run("", "setup")
			require.Equal(t, ExitOK, r.code, r.stderr)
			helpers := globalAll(t, "credential.https://bitbucket.org.helper")
			require.GreaterOrEqual(t, len(helpers), 2)
			assert.Equal(t, []string{"", exePath}, helpers[len(helpers)-2:])
			assert.Equal(t, []string{"true"}, globalAll(t, "credential.https://bitbucket.org.useHttpPath"))

			r = f.run("", "setup") // a second run must not confuse --remove
			require.Equal(t, ExitOK, r.code, r.stderr)

			r = f.run("", "setup", "--remove")
			require.Equal(t, ExitOK, r.code, r.stderr)
			assert.Equal(t, tt.prior, readGitconfig(t, home))
		})
	}
}

func TestSetupHelperPathWithSpace(t *testing.T) {
	home := isolateGit(t)
	f := newFixture(t)
	const exe = "/opt/My Tools/git-credential-bbtoken"
	r := f.runWith(func(e *Env) { e.Executable = exe }, "", "setup")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, `ran: git config --global --add credential.https://bitbucket.org.helper '!'\''/opt/My Tools/git-credential-bbtoken'\'''`+"\n")
	assert.Equal(t, []string{"", "!'" + exe + "'"}, globalAll(t, "credential.https://bitbucket.org.helper"))

	r = f.runWith(func(e *Env) { e.Executable = exe }, "", "setup", "--remove")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Empty(t, strings.TrimSpace(readGitconfig(t, home)))
}

func TestSetupErrors(t *testing.T) {
	home := isolateGit(t)
	tests := []struct {
		name string
		mod  func(*Env)
		want string
	}{
		{"quote in the helper path", func(e *Env) { e.Executable = "/home/o'brien/bin/git-credential-bbtoken" }, "contains a quote or newline"},
		{"git missing", func(e *Env) { e.Git = filepath.Join(home, "no-such-git") }, "git config failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := seeded(t)
			before := f.state()
			r := f.runWith(tt.mod, "", "setup")
			assert.Equal(t, ExitError, r.code)
			assert.Empty(t, r.stdout)
			assertOneLine(t, r.stderr)
			assert.Contains(t, r.stderr, tt.want)
			assertUnchanged(t, before, f.state())
			assert.Equal(t, "<none>", readGitconfig(t, home))
		})
	}
}
