package setup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const cloud = "https://bitbucket.org"

// sandbox is a HOME with its own global git config; git sees no system or
// user config outside it.
type sandbox struct {
	t    *testing.T
	home string
	env  []string
	out  bytes.Buffer
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	home := t.TempDir()
	return &sandbox{t: t, home: home, env: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	}}
}

func (s *sandbox) git(dryRun bool) *Git {
	s.out.Reset()
	return &Git{Env: s.env, DryRun: dryRun, Out: &s.out}
}

func (s *sandbox) gitconfig() string {
	b, err := os.ReadFile(filepath.Join(s.home, ".gitconfig"))
	if errors.Is(err, os.ErrNotExist) {
		return "<none>"
	}
	require.NoError(s.t, err)
	return string(b)
}

func (s *sandbox) writeGitconfig(content string) {
	require.NoError(s.t, os.WriteFile(filepath.Join(s.home, ".gitconfig"), []byte(content), 0o644))
}

// run runs the real git in the sandbox.
func (s *sandbox) run(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env, cmd.Dir = s.env, s.home
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = errors.Join(err, errors.New(errb.String()))
	}
	return out.String(), err
}

func (s *sandbox) getAll(key string) []string {
	out, err := s.run("", "config", "--global", "--get-all", key)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return nil
	}
	require.NoError(s.t, err)
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

func TestHelperValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		exe, want, err string
	}{
		{"/usr/local/bin/git-credential-bbtoken", "/usr/local/bin/git-credential-bbtoken", ""},
		{"/opt/x_y-z.1/bin/helper", "/opt/x_y-z.1/bin/helper", ""},
		{"/Applications/My Tools/helper", "!'/Applications/My Tools/helper'", ""},
		{"/home/a$b/helper", "!'/home/a$b/helper'", ""},
		{"/home/a;rm -rf ~/helper", "!'/home/a;rm -rf ~/helper'", ""},
		{"C:\\Program Files\\bbtoken\\helper.exe", "!'C:\\Program Files\\bbtoken\\helper.exe'", ""},
		{"/home/o'brien/helper", "", "contains a quote or newline"},
		{"/tmp/a\nb", "", "contains a quote or newline"},
	}
	for _, tt := range tests {
		got, err := HelperValue(tt.exe)
		if tt.err != "" {
			assert.ErrorContains(t, err, tt.err, tt.exe)
			continue
		}
		require.NoError(t, err, tt.exe)
		assert.Equal(t, tt.want, got, tt.exe)
	}
}

func TestInstallFresh(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	const helper = "/usr/local/bin/git-credential-bbtoken"
	res, err := s.git(false).Install(context.Background(), cloud, helper)
	require.NoError(t, err)
	assert.Equal(t, Result{AddedHelper: true, AddedUseHTTP: true}, res)
	assert.Equal(t, "ran: git config --global --add credential.https://bitbucket.org.helper ''\n"+
		"ran: git config --global --add credential.https://bitbucket.org.helper /usr/local/bin/git-credential-bbtoken\n"+
		"ran: git config --global credential.https://bitbucket.org.useHttpPath true\n", s.out.String())
	assert.Equal(t, []string{"", helper}, s.getAll("credential.https://bitbucket.org.helper"))
	assert.Equal(t, []string{"true"}, s.getAll("credential.https://bitbucket.org.useHttpPath"))

	helpers, err := s.git(false).Helpers(context.Background(), cloud)
	require.NoError(t, err)
	assert.Equal(t, []string{"", helper}, helpers)

	t.Run("idempotent", func(t *testing.T) {
		before := s.gitconfig()
		res, err := s.git(false).Install(context.Background(), cloud, helper)
		require.NoError(t, err)
		assert.Equal(t, Result{}, res)
		assert.Empty(t, s.out.String(), "nothing to run")
		assert.Equal(t, before, s.gitconfig())
	})
}

func TestInstallKeepsOtherConfig(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	const helper = "/usr/local/bin/git-credential-bbtoken"
	s.writeGitconfig("[credential \"https://bitbucket.org\"]\n\thelper = cache\n\tuseHttpPath = false\n\tusername = alice\n")
	res, err := s.git(false).Install(context.Background(), cloud, helper)
	require.NoError(t, err)
	assert.Equal(t, Result{AddedHelper: true, AddedUseHTTP: true, PrevUseHTTP: "false"}, res)
	assert.Equal(t, []string{"cache", "", helper}, s.getAll("credential.https://bitbucket.org.helper"))
	assert.Equal(t, []string{"true"}, s.getAll("credential.https://bitbucket.org.useHttpPath"))
	assert.Equal(t, []string{"alice"}, s.getAll("credential.https://bitbucket.org.username"))

	t.Run("ours no longer last", func(t *testing.T) {
		_, err := s.run("", "config", "--global", "--add", "credential.https://bitbucket.org.helper", "store")
		require.NoError(t, err)
		res, err := s.git(false).Install(context.Background(), cloud, helper)
		require.NoError(t, err)
		assert.True(t, res.AddedHelper)
		assert.False(t, res.AddedUseHTTP)
		assert.Equal(t, []string{"cache", "store", "", helper}, s.getAll("credential.https://bitbucket.org.helper"))
	})
	t.Run("uninstall restores", func(t *testing.T) {
		require.NoError(t, s.git(false).Uninstall(context.Background(), cloud, helper, true, "false"))
		assert.Equal(t, []string{"cache", "store"}, s.getAll("credential.https://bitbucket.org.helper"))
		assert.Equal(t, []string{"false"}, s.getAll("credential.https://bitbucket.org.useHttpPath"))
		assert.Equal(t, []string{"alice"}, s.getAll("credential.https://bitbucket.org.username"))
	})
}

func TestUninstallRestoresBytes(t *testing.T) {
	t.Parallel()
	const helper = "/usr/local/bin/git-credential-bbtoken"
	tests := []struct{ name, prior, want string }{
		{"user and credential sections", "[user]\n\tname = Alice Example\n\temail = alice@example.com\n[credential]\n\thelper = store\n", ""},
		{"comments and odd spacing", "# my config\n[core]\n    editor = vim   # comment\n[credential]\n\thelper = store\n\n[alias]\n\tst = status\n", ""},
		// git itself ends the last line when it appends a section.
		{"no final newline", "[user]\n\tname = X", "[user]\n\tname = X\n"},
		{"empty file", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.writeGitconfig(tt.prior)
			res, err := s.git(false).Install(context.Background(), cloud, helper)
			require.NoError(t, err)
			require.NotEqual(t, tt.prior, s.gitconfig())
			require.NoError(t, s.git(false).Uninstall(context.Background(), cloud, helper, res.AddedUseHTTP, res.PrevUseHTTP))
			want := tt.prior
			if tt.want != "" {
				want = tt.want
			}
			assert.Equal(t, want, s.gitconfig())
			assert.NotContains(t, s.gitconfig(), "bitbucket")
		})
	}
	t.Run("no prior file", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		res, err := s.git(false).Install(context.Background(), cloud, helper)
		require.NoError(t, err)
		require.NoError(t, s.git(false).Uninstall(context.Background(), cloud, helper, res.AddedUseHTTP, res.PrevUseHTTP))
		assert.NotContains(t, s.gitconfig(), "credential", "no empty section is left behind")
		assert.Empty(t, strings.TrimSpace(s.gitconfig()))
	})
	t.Run("nothing installed", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		s.writeGitconfig("[user]\n\tname = X\n")
		require.NoError(t, s.git(false).Uninstall(context.Background(), cloud, helper, false, ""))
		assert.Equal(t, "[user]\n\tname = X\n", s.gitconfig())
	})
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	const helper = "/opt/my tools/git-credential-bbtoken"
	value, err := HelperValue(helper)
	require.NoError(t, err)
	s := newSandbox(t)
	res, err := s.git(true).Install(context.Background(), cloud, value)
	require.NoError(t, err)
	assert.Equal(t, Result{AddedHelper: true, AddedUseHTTP: true}, res)
	assert.Equal(t, "would run: git config --global --add credential.https://bitbucket.org.helper ''\n"+
		`would run: git config --global --add credential.https://bitbucket.org.helper '!'\''/opt/my tools/git-credential-bbtoken'\'''`+"\n"+
		"would run: git config --global credential.https://bitbucket.org.useHttpPath true\n", s.out.String())
	assert.Equal(t, "<none>", s.gitconfig(), "a dry run writes nothing")

	// The printed commands are valid shell: running them installs.
	for _, line := range strings.Split(strings.TrimSuffix(s.out.String(), "\n"), "\n") {
		cmd := exec.Command("sh", "-c", strings.TrimPrefix(line, "would run: "))
		cmd.Env = s.env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
	}
	assert.Equal(t, []string{"", value}, s.getAll("credential.https://bitbucket.org.helper"))

	before := s.gitconfig()
	require.NoError(t, s.git(true).Uninstall(context.Background(), cloud, value, true, ""))
	assert.Contains(t, s.out.String(), "would run: git config --global --unset-all credential.https://bitbucket.org.helper\n")
	assert.Contains(t, s.out.String(), "would run: git config --global --unset credential.https://bitbucket.org.useHttpPath\n")
	assert.Equal(t, before, s.gitconfig())
}

// TestHelperRunsThroughGit checks that git really runs the configured
// value, also from a path with a space.
func TestHelperRunsThroughGit(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"bin", "my tools", "odd$dir (x)"} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			exe := filepath.Join(s.home, dir, "git-credential-fake")
			require.NoError(t, os.MkdirAll(filepath.Dir(exe), 0o755))
			script := "#!/bin/sh\ntest \"$1\" = get || exit 0\ncat >/dev/null\necho username=fake-user\necho password=fake-pass\n"
			require.NoError(t, os.WriteFile(exe, []byte(script), 0o755))
			value, err := HelperValue(exe)
			require.NoError(t, err)
			_, err = s.git(false).Install(context.Background(), cloud, value)
			require.NoError(t, err)

			out, err := s.run("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n\n", "credential", "fill")
			require.NoError(t, err)
			assert.Equal(t, "protocol=https\nhost=bitbucket.org\npath=ws/repo.git\nusername=fake-user\npassword=fake-pass\n", out,
				"git sends the path (useHttpPath) and takes the helper's answer")
		})
	}
}

func TestResetHidesEarlierHelpers(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	require.NoError(t, os.WriteFile(filepath.Join(s.home, ".git-credentials"), []byte("https://bob:stored-pw@bitbucket.org\nhttps://carol:other-pw@example.org\n"), 0o600))
	s.writeGitconfig("[credential]\n\thelper = store\n")
	out, err := s.run("protocol=https\nhost=bitbucket.org\n\n", "credential", "fill")
	require.NoError(t, err)
	require.Contains(t, out, "password=stored-pw", "the store helper answers before setup")

	exe := filepath.Join(s.home, "silent")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\ncat >/dev/null\n"), 0o755))
	_, err = s.git(false).Install(context.Background(), cloud, exe)
	require.NoError(t, err)
	out, err = s.run("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n\n", "credential", "fill")
	assert.Error(t, err, "with the reset, only our (silent) helper is asked and git cannot prompt")
	assert.NotContains(t, out, "stored-pw")

	out, err = s.run("protocol=https\nhost=example.org\n\n", "credential", "fill")
	require.NoError(t, err)
	assert.Contains(t, out, "password=other-pw", "other hosts keep the store helper")
}

func TestGitFailure(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	g := s.git(false)
	g.Path = filepath.Join(s.home, "no-such-git")
	_, err := g.Install(context.Background(), cloud, "/x")
	require.ErrorIs(t, err, ErrGit)

	// An unreadable global config is a failure, not "not set".
	require.NoError(t, os.WriteFile(filepath.Join(s.home, ".gitconfig"), []byte("[broken\n"), 0o644))
	_, err = s.git(false).Install(context.Background(), cloud, "/x")
	require.ErrorIs(t, err, ErrGit)
	assert.NotContains(t, err.Error(), "\n")
}
