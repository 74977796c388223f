package doctor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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

// TestStaticViewAgreesWithGit checks the configuration analysis against
// what the real git runs (GIT_TRACE), for the shapes of configuration
// doctor has to understand.
func TestStaticViewAgreesWithGit(t *testing.T) {
	t.Parallel()
	requireGit(t)
	ours := "/opt/bb/git-credential-bbtoken"
	tests := []struct {
		name      string
		gitconfig string
		local     string   // the repository's .git/config additions
		env       []string // extra environment
		host      string
		want      []string
	}{
		{
			name:      "setup's reset clears earlier helpers",
			gitconfig: "[credential]\n\thelper = store\n[credential \"https://bitbucket.org\"]\n\thelper =\n\thelper = " + ours + "\n",
			host:      "bitbucket.org",
			want:      []string{ours},
		},
		{
			name:      "no reset: the generic helper runs first",
			gitconfig: "[credential]\n\thelper = store\n[credential \"https://bitbucket.org\"]\n\thelper = " + ours + "\n",
			host:      "bitbucket.org",
			want:      []string{"git credential-store", ours},
		},
		{
			name:      "a helper added after the section runs after ours",
			gitconfig: "[credential \"https://bitbucket.org\"]\n\thelper =\n\thelper = " + ours + "\n[credential]\n\thelper = cache --timeout=1\n",
			host:      "bitbucket.org",
			want:      []string{ours, "git credential-cache --timeout=1"},
		},
		{
			name:      "repository config comes last",
			gitconfig: "[credential \"https://bitbucket.org\"]\n\thelper =\n\thelper = " + ours + "\n",
			local:     "[credential]\n\thelper = \"!f() { :; }; f\"\n",
			host:      "bitbucket.org",
			want:      []string{ours, "f() { :; }; f"},
		},
		{
			name:      "a later reset in the repository drops ours",
			gitconfig: "[credential \"https://bitbucket.org\"]\n\thelper =\n\thelper = " + ours + "\n",
			local:     "[credential]\n\thelper =\n\thelper = store\n",
			host:      "bitbucket.org",
			want:      []string{"git credential-store"},
		},
		{
			name:      "wildcard host and host-only sections",
			gitconfig: "[credential \"https://*.org\"]\n\thelper = !wild\n[credential \"bitbucket.org\"]\n\thelper = !bare\n[credential \"https://bitbucket.org/ws\"]\n\thelper = !pathonly\n[credential \"https://github.com\"]\n\thelper = !other\n",
			host:      "bitbucket.org",
			want:      []string{"wild", "bare"},
		},
		{
			name:      "port must match",
			gitconfig: "[credential \"https://bb.example.com\"]\n\thelper = !noport\n[credential \"https://bb.example.com:8443\"]\n\thelper = !port\n",
			host:      "bb.example.com:8443",
			want:      []string{"port"},
		},
		{
			name:      "command-line configuration",
			gitconfig: "[credential \"https://bitbucket.org\"]\n\thelper =\n\thelper = " + ours + "\n",
			env:       []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=credential.helper", "GIT_CONFIG_VALUE_0=!cmdline"},
			host:      "bitbucket.org",
			want:      []string{ours, "cmdline"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(tt.gitconfig), 0o600))
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
			ctx := context.Background()
			entries, err := d.readCredentialConfig(ctx, dir)
			require.NoError(t, err)
			tg := targetFor(tt.host, "")
			var static []string
			for _, h := range viewFor(entries, tg).Helpers {
				static = append(static, h.Command)
			}
			probe := d.probeHelpers(ctx, dir, tg)
			require.NoError(t, probe.Err)
			assert.False(t, probe.Answered)
			assert.Equal(t, tt.want, probe.Commands, "what git ran")
			assert.Equal(t, tt.want, static, "what the configuration says")
		})
	}
}

// TestProbeNeverPrompts: with a helper that would read a terminal and an
// askpass program configured, the probe still finishes without either.
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
	probe := d.probeHelpers(context.Background(), home, targetFor("bitbucket.org", ""))
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
	probe := d.probeHelpers(context.Background(), home, targetFor("bitbucket.org", ""))
	require.NoError(t, probe.Err)
	assert.True(t, probe.Answered)
	require.Len(t, probe.Commands, 1)
	assert.True(t, strings.HasPrefix(probe.Commands[0], "f() { echo username=u;"))
}
