package doctor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

func TestParseConfigZ(t *testing.T) {
	t.Parallel()
	out := "global\x00file:/h/.gitconfig\x00credential.helper\nstore\x00" +
		"global\x00file:/h/.gitconfig\x00credential.https://bitbucket.org.helper\n\x00" +
		"local\x00file:.git/config\x00credential.usehttppath\x00" +
		"command\x00command line:\x00credential.helper\n!f() { echo; }; f\x00"
	got, err := parseConfigZ([]byte(out), true)
	require.NoError(t, err)
	assert.Equal(t, []configEntry{
		{Scope: "global", Origin: "file:/h/.gitconfig", Key: "credential.helper", Value: "store"},
		{Scope: "global", Origin: "file:/h/.gitconfig", Key: "credential.https://bitbucket.org.helper", Value: ""},
		{Scope: "local", Origin: "file:.git/config", Key: "credential.usehttppath", Bare: true},
		{Scope: "command", Origin: "command line:", Key: "credential.helper", Value: "!f() { echo; }; f"},
	}, got)
	assert.Equal(t, "global config /h/.gitconfig", got[0].where())
	assert.Equal(t, "the command line (-c or GIT_CONFIG_PARAMETERS)", got[3].where())

	old, err := parseConfigZ([]byte("file:/h/.gitconfig\x00credential.helper\ncache\x00"), false)
	require.NoError(t, err)
	assert.Equal(t, []configEntry{{Origin: "file:/h/.gitconfig", Key: "credential.helper", Value: "cache"}}, old)

	_, err = parseConfigZ([]byte("global\x00file:/h/.gitconfig\x00"), true)
	assert.Error(t, err)
}

func TestHelperCommandAndOurs(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "git credential-store", helperCommand("store"))
	assert.Equal(t, "git credential-cache --timeout=5", helperCommand("cache --timeout=5"))
	assert.Equal(t, "/usr/bin/git-credential-bbtoken", helperCommand("/usr/bin/git-credential-bbtoken"))
	assert.Equal(t, `C:\bin\x.exe`, helperCommand(`C:\bin\x.exe`))
	assert.Equal(t, "'/a b/git-credential-bbtoken'", helperCommand("!'/a b/git-credential-bbtoken'"))

	for cmd, want := range map[string]bool{
		"/usr/local/bin/git-credential-bbtoken":   true,
		"'/a b/git-credential-bbtoken'":           true,
		"git credential-bbtoken":                  true,
		`C:\Tools\git-credential-bbtoken.exe`:     true,
		"/opt/custom-name":                        true, // a value setup recorded
		"git credential-store":                    false,
		"/usr/bin/git-credential-bbtoken-wrapper": false,
		"f() { echo; }; f":                        false,
	} {
		assert.Equal(t, want, isOurs(cmd, []string{"/opt/custom-name"}), cmd)
	}
	for cmd, want := range map[string]string{
		"git credential-store":                  "git-credential-store",
		"git credential-cache --timeout=5":      "git-credential-cache",
		"'/a b/git-credential-bbtoken'":         "/a b/git-credential-bbtoken",
		"/usr/bin/git-credential-bbtoken extra": "/usr/bin/git-credential-bbtoken",
		"f() { echo; }; f":                      "f()",
	} {
		assert.Equal(t, want, program(cmd), cmd)
	}
}

func TestParseGitVersion(t *testing.T) {
	t.Parallel()
	for out, want := range map[string][3]int{
		"git version 2.39.5\n":                   {2, 39, 5},
		"git version 2.46.0.windows.1\n":         {2, 46, 0},
		"git version 2.39.3 (Apple Git-146)\n":   {2, 39, 3},
		"git version 2.50.0-rc1":                 {2, 50, 0},
		"git version 3.0\n":                      {3, 0, 0},
		"git version 2.45.2.vfs.0.0 (Microsoft)": {2, 45, 2},
		"git version v2.41.0":                    {2, 41, 0},
		"git version 2.x 2.43.1":                 {2, 43, 1},
		"git version 12.3":                       {12, 3, 0},
	} {
		v, ok := parseGitVersion(out)
		require.True(t, ok, out)
		assert.Equal(t, want, [3]int{v.major, v.minor, v.patch}, out)
	}
	for _, out := range []string{"hub version 2.14", "git version ", "git version 2", "git version 2.x", "git version .5"} {
		_, ok := parseGitVersion(out)
		assert.False(t, ok, out)
	}
	v, _ := parseGitVersion("git version 2.46.0")
	assert.True(t, v.atLeast(2, 46, 0))
	assert.False(t, v.atLeast(2, 46, 1))
	assert.True(t, v.atLeast(2, 9, 9))
	assert.False(t, v.atLeast(3, 0, 0))
}

func TestSplitRemoteURL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		raw, clean, redacted string
		pass                 bool
	}{
		{"https://bitbucket.org/ws/repo.git", "https://bitbucket.org/ws/repo.git", "https://bitbucket.org/ws/repo.git", false},
		{"https://alice@bitbucket.org/ws/repo.git", "https://bitbucket.org/ws/repo.git", "https://alice@bitbucket.org/ws/repo.git", false},
		{"https://x-token-auth:s3cr3t@bitbucket.org/ws/repo.git", "https://bitbucket.org/ws/repo.git", "https://x-token-auth:****@bitbucket.org/ws/repo.git", true},
		{"https://u:pa/ss@word@bb.example.com/scm/P/r.git", "https://bb.example.com/scm/P/r.git", "https://u:****@bb.example.com/scm/P/r.git", true},
		{"https://bitbucket.org/ws/re@po.git", "https://bitbucket.org/ws/re@po.git", "https://bitbucket.org/ws/re@po.git", false},
	} {
		r, ok := splitRemoteURL(tt.raw)
		require.True(t, ok, tt.raw)
		assert.Equal(t, tt.clean, r.clean(), tt.raw)
		assert.Equal(t, tt.redacted, r.redacted(), tt.raw)
		assert.Equal(t, tt.pass, r.hasPass, tt.raw)
	}
	for raw, want := range map[string][2]string{
		"git@bitbucket.org:ws/repo.git":                  {"bitbucket.org", "ws/repo.git"},
		"ssh://git@bb.example.com:7999/proj/repo.git":    {"bb.example.com", "proj/repo.git"},
		"ssh://Bitbucket.org/ws/repo.git":                {"bitbucket.org", "ws/repo.git"},
		"bitbucket.org:/ws/repo.git":                     {"bitbucket.org", "ws/repo.git"},
		"ssh://git@[::1]:7999/proj/repo.git":             {"[::1]", "proj/repo.git"},
		"git@altssh.bitbucket.org:443/ws/repo.git":       {"altssh.bitbucket.org", "443/ws/repo.git"},
		"ssh://git@altssh.bitbucket.org:443/ws/repo.git": {"altssh.bitbucket.org", "ws/repo.git"},
	} {
		h, p := sshParts(raw)
		assert.Equal(t, want, [2]string{h, p}, raw)
	}
}

func TestSplitFix(t *testing.T) {
	t.Parallel()
	m, f := splitFix("keyring unavailable during write: no bus; fix: start one")
	assert.Equal(t, "keyring unavailable during write: no bus", m)
	assert.Equal(t, "start one", f)
	m, f = splitFix("token index is writable: mode 0666; fix: chmod 600 x")
	assert.Equal(t, "token index is writable: mode 0666", m)
	assert.Equal(t, "chmod 600 x", f)
	m, f = splitFix("plain")
	assert.Equal(t, "plain", m)
	assert.Empty(t, f)
}

func TestHTTPSForSSHRemote(t *testing.T) {
	t.Parallel()
	ix := &store.Index{Version: 1, Hosts: map[string]store.HostConfig{
		"bb.example.com": {Flavor: "datacenter", BaseURL: "https://bb.example.com/bitbucket"},
		"plain.example":  {Flavor: "datacenter"},
	}}
	assert.Equal(t, "https://bitbucket.org/ws/repo.git", httpsFor(ix, "bitbucket.org", "ws/repo.git"))
	assert.Equal(t, "https://bb.example.com/bitbucket/scm/proj/repo.git", httpsFor(ix, "bb.example.com", "proj/repo.git"))
	assert.Equal(t, "https://plain.example/scm/proj/repo.git", httpsFor(ix, "plain.example", "/proj/repo.git"))
}

// TestRecordIsReadBack: what Record writes is what the probe reads.
func TestRecordIsReadBack(t *testing.T) {
	dir, err := os.MkdirTemp(t.TempDir(), probeDirPrefix)
	require.NoError(t, err)
	file := filepath.Join(dir, probeFile)
	require.True(t, IsProbe(file))
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	require.NoError(t, Record(file, true))
	require.NoError(t, Record(file, false))
	got := readRecords(file)
	require.Len(t, got, 2)
	assert.Equal(t, probeRecord{PID: os.Getpid(), PPID: os.Getppid(), Path: true}, got[0])
	assert.False(t, got[1].Path)
	for _, stray := range []string{"probe", filepath.Join(dir, "other"), filepath.Join(t.TempDir(), probeFile)} {
		assert.False(t, IsProbe(stray), stray)
	}
}
