package doctor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bbtoken/git-credential-bbtoken/internal/doctor/doctortest"
	"github.com/bbtoken/git-credential-bbtoken/internal/setup"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func requireGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
}

// gitEnv is an environment that sees only HOME's config.
func gitEnv(home string, extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"LC_ALL=C",
	}, extra...)
}

// TestProbeSeesWhatGitRuns: the probe reports the helpers the real git
// runs, in git's order, which of them is this helper and whether git sent
// it the path, for the shapes of configuration doctor has to explain.
func TestProbeSeesWhatGitRuns(t *testing.T) {
	t.Parallel()
	requireGit(t)
	tests := []struct {
		name      string
		dir       string   // where this helper is installed
		gitconfig string   // OURS stands for this helper's helper value
		local     string   // the repository's .git/config additions
		env       []string // extra environment
		host      string
		want      []string
		wantOurs  int
		wantPath  bool
	}{
		{
			name:      "setup's reset clears earlier helpers",
			gitconfig: "[credential]\n\thelper = store\n[credential \"https://bitbucket.org\"]\n\thelper =\n\thelper = OURS\n\tuseHttpPath = true\n",
			host:      "bitbucket.org",
			want:      []string{"OURS"},
			wantOurs:  0,
			wantPath:  true,
		},
		{
			name:      "no reset: the generic helper runs first",
			gitconfig: "[credential]\n\thelper = store\n[credential \"https://bitbucket.org\"]\n\thelper = OURS\n",
			host:      "bitbucket.org",
			want:      []string{"git credential-store", "OURS"},
			wantOurs:  1,
		},
		{
			name:      "a helper added after the section runs after ours",
			gitconfig: "[credential \"https://bitbucket.org\"]\n\thelper =\n\thelper = OURS\n[credential]\n\thelper = cache --timeout=1\n",
			host:      "bitbucket.org",
			want:      []string{"OURS", "git credential-cache --timeout=1"},
			wantOurs:  0,
		},
		{
			name:      "repository config comes last; its useHttpPath counts",
			gitconfig: "[credential \"https://bitbucket.org\"]\n\thelper =\n\thelper = OURS\n",
			local:     "[credential]\n\thelper = \"!f() { :; }; f\"\n\tuseHttpPath = yes\n",
			host:      "bitbucket.org",
			want:      []string{"OURS", "f() { :; }; f"},
			wantOurs:  0,
			wantPath:  true,
		},
		{
			name:      "a later reset in the repository drops ours",
			gitconfig: "[credential \"https://bitbucket.org\"]\n\thelper =\n\thelper = OURS\n",
			local:     "[credential]\n\thelper =\n\thelper = store\n",
			host:      "bitbucket.org",
			want:      []string{"git credential-store"},
			wantOurs:  -1,
		},
		{
			name:      "wildcard host and host-only sections; a path section does not match",
			gitconfig: "[credential \"https://*.org\"]\n\thelper = !wild\n[credential \"bitbucket.org\"]\n\thelper = OURS\n[credential \"https://bitbucket.org/ws\"]\n\thelper = !pathonly\n[credential \"https://github.com\"]\n\thelper = !other\n",
			host:      "bitbucket.org",
			want:      []string{"wild", "OURS"},
			wantOurs:  1,
		},
		{
			name:      "port must match: no port is the default port",
			gitconfig: "[credential \"https://bb.example.com\"]\n\thelper = !noport\n[credential \"https://bb.example.com:8443\"]\n\thelper = OURS\n\tuseHttpPath = true\n",
			host:      "bb.example.com:8443",
			want:      []string{"OURS"},
			wantOurs:  0,
			wantPath:  true,
		},
		{
			name:      "command-line configuration runs last and can turn the path off",
			gitconfig: "[credential \"https://bitbucket.org\"]\n\thelper =\n\thelper = OURS\n\tuseHttpPath = true\n",
			env:       []string{"GIT_CONFIG_COUNT=2", "GIT_CONFIG_KEY_0=credential.helper", "GIT_CONFIG_VALUE_0=!cmdline", "GIT_CONFIG_KEY_1=credential.useHttpPath", "GIT_CONFIG_VALUE_1=false"},
			host:      "bitbucket.org",
			want:      []string{"OURS", "cmdline"},
			wantOurs:  0,
		},
		{
			name:      "installed at a path the shell would split, quoted as setup quotes it",
			dir:       "Program Files (x86)",
			gitconfig: "[credential]\n\thelper = OURS\n\tuseHttpPath = true\n",
			host:      "bitbucket.org",
			want:      []string{"OURS"},
			wantOurs:  0,
			wantPath:  true,
		},
		{
			name:      "ours listed twice: the first run counts",
			gitconfig: "[credential]\n\thelper = OURS\n\thelper = OURS\n",
			host:      "bitbucket.org",
			want:      []string{"OURS", "OURS"},
			wantOurs:  0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			value, err := setup.HelperValue(doctortest.StandIn(t, tt.dir, ProbeEnv))
			require.NoError(t, err)
			sub := func(s string) string { return strings.ReplaceAll(s, "OURS", value) }
			subRan := func(s string) string { return strings.ReplaceAll(s, "OURS", strings.TrimPrefix(value, "!")) }
			home := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(sub(tt.gitconfig)), 0o600))
			dir := home
			if tt.local != "" {
				dir = filepath.Join(home, "repo")
				out, err := exec.Command("git", "init", "-q", dir).CombinedOutput()
				require.NoError(t, err, "%s", out)
				f, err := os.OpenFile(filepath.Join(dir, ".git", "config"), os.O_APPEND|os.O_WRONLY, 0)
				require.NoError(t, err)
				_, err = f.WriteString(tt.local)
				require.NoError(t, err)
				require.NoError(t, f.Close())
			}
			d := &Doctor{Env: gitEnv(home, tt.env...)}
			probe := d.probe(context.Background(), dir, targetFor(tt.host, probePath))
			require.NoError(t, probe.Err)
			var want []string
			for _, w := range tt.want {
				want = append(want, subRan(w))
			}
			assert.Equal(t, want, probe.Commands, "what git ran")
			assert.Equal(t, tt.wantOurs, probe.Ours, "which of them is this helper")
			assert.Equal(t, tt.wantPath, probe.PathSent, "whether git sent the path")
			assert.False(t, probe.Answered)
		})
	}
}

// TestProbeNeverPrompts: with an askpass program configured (and
// prompting allowed in the caller's environment), the probe finishes
// without running it. (That helpers cannot reach a terminal:
// TestProbeHelpersHaveNoTerminal.)
func TestProbeNeverPrompts(t *testing.T) {
	t.Parallel()
	requireGit(t)
	home := t.TempDir()
	marker := filepath.Join(home, "askpass-ran")
	askpass := filepath.Join(home, "askpass.sh")
	require.NoError(t, os.WriteFile(askpass, []byte("#!/bin/sh\ntouch '"+marker+"'\necho secret\n"), 0o700))
	gitconfig := "[core]\n\taskPass = " + askpass + "\n[credential]\n\thelper = \"!f() { :; }; f\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(gitconfig), 0o600))
	d := &Doctor{Env: gitEnv(home, "GIT_ASKPASS="+askpass, "SSH_ASKPASS="+askpass, "GIT_TERMINAL_PROMPT=1")}
	probe := d.probe(context.Background(), home, targetFor("bitbucket.org", probePath))
	require.NoError(t, probe.Err)
	assert.Equal(t, []string{"f() { :; }; f"}, probe.Commands)
	assert.False(t, probe.Answered)
	_, err := os.Stat(marker)
	assert.True(t, os.IsNotExist(err), "an askpass program ran")
}

// TestProbeSeesAnAnswer: a helper that answers stops git; the credential is
// not kept.
func TestProbeSeesAnAnswer(t *testing.T) {
	t.Parallel()
	requireGit(t)
	home := t.TempDir()
	gitconfig := "[credential]\n\thelper = \"!f() { echo username=u; echo password=p4ss-w0rd-AAAA; }; f\"\n\thelper = !never\n"
	require.NoError(t, os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(gitconfig), 0o600))
	d := &Doctor{Env: gitEnv(home)}
	probe := d.probe(context.Background(), home, targetFor("bitbucket.org", probePath))
	require.NoError(t, probe.Err)
	assert.True(t, probe.Answered)
	require.Len(t, probe.Commands, 1)
	assert.True(t, strings.HasPrefix(probe.Commands[0], "f() { echo username=u;"))
}

// TestAppliesAsGitDoes: which [credential "URL"] sections apply to a
// request is git's answer, for the forms its matching knows.
func TestAppliesAsGitDoes(t *testing.T) {
	t.Parallel()
	requireGit(t)
	d := &Doctor{Env: gitEnv(t.TempDir())}
	tg := targetFor("bitbucket.org", probePath)
	tests := []struct {
		key  string
		want bool
	}{
		{"credential.helper", true},
		{"credential.https://bitbucket.org.helper", true},
		{"credential.https://BitBucket.org/.helper", true},
		{"credential.bitbucket.org.helper", true},
		{"credential.https://*.org.helper", true},
		{"credential.https://bitbucket.org/" + probePath + ".helper", true},
		{"credential.https://github.com.helper", false},
		{"credential.http://bitbucket.org.helper", false},
		{"credential.https://bitbucket.org:8443.helper", false},
		{"credential.https://bitbucket.org/ws.helper", false},
		{"credential.https://alice@bitbucket.org.helper", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, d.applies(context.Background(), configEntry{Key: tt.key}, tg))
		})
	}
}
