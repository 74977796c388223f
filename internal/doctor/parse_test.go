package doctor

import (
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

func TestSplitCredentialKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ key, url, name string }{
		{"credential.helper", "", "helper"},
		{"credential.https://bitbucket.org.helper", "https://bitbucket.org", "helper"},
		{"credential.https://bb.example.com:8443/ctx.usehttppath", "https://bb.example.com:8443/ctx", "usehttppath"},
		{"credential.bitbucket.org.helper", "bitbucket.org", "helper"},
	} {
		url, name, ok := splitCredentialKey(tt.key)
		assert.True(t, ok)
		assert.Equal(t, tt.url, url, tt.key)
		assert.Equal(t, tt.name, name, tt.key)
	}
	_, _, ok := splitCredentialKey("http.sslverify")
	assert.False(t, ok)
}

func TestMatches(t *testing.T) {
	t.Parallel()
	host := targetFor("bitbucket.org", "")
	repo := targetFor("bitbucket.org", "ws/repo.git")
	port := targetFor("bb.example.com:8443", "ctx/scm/P/r.git")
	for _, tt := range []struct {
		sub  string
		t    target
		want bool
	}{
		{"", host, true},
		{"https://bitbucket.org", host, true},
		{"https://bitbucket.org/", host, true},
		{"HTTPS://BitBucket.ORG", host, true},
		{"https://bitbucket.org:443", host, true},
		{"http://bitbucket.org", host, false},
		{"https://bitbucket.org.evil", host, false},
		{"https://*.org", host, true},
		{"https://*.bitbucket.org", host, false},
		{"https://bitbucket.org/ws", host, false},
		{"https://bitbucket.org/ws", repo, true},
		{"https://bitbucket.org/ws/", repo, true},
		{"https://bitbucket.org/w", repo, false},
		{"https://bitbucket.org/ws/repo.git", repo, true},
		{"https://alice@bitbucket.org", host, false}, // the probe has no username
		{"bitbucket.org", host, true},                // host-only form
		{"bitbucket.org", repo, true},
		{"bitbucket.org/ws/repo.git", repo, true},
		{"bitbucket.org/ws", repo, false}, // host-only form compares paths exactly
		{"https://bb.example.com", port, false},
		{"https://bb.example.com:8443", port, true},
		{"https://bb.example.com:8443/ctx", port, true},
		{"bb.example.com:8443", port, true},
	} {
		assert.Equal(t, tt.want, matches(tt.sub, tt.t), "%q vs %s", tt.sub, tt.t)
	}
}

func TestViewFor(t *testing.T) {
	t.Parallel()
	e := func(scope, key, value string) configEntry {
		return configEntry{Scope: scope, Origin: "file:/x", Key: key, Value: value}
	}
	entries := []configEntry{
		e("system", "credential.helper", "manager"),
		e("global", "credential.helper", "store"),
		e("global", "credential.https://bitbucket.org.helper", ""),
		e("global", "credential.https://bitbucket.org.helper", "/bin/git-credential-bbtoken"),
		e("global", "credential.https://bitbucket.org.usehttppath", "true"),
		e("global", "credential.https://github.com.helper", "gh"),
		e("local", "credential.helper", "cache --timeout=60"),
		e("local", "credential.usehttppath", "off"),
	}
	v := viewFor(entries, targetFor("bitbucket.org", ""))
	var cmds []string
	for _, h := range v.Helpers {
		cmds = append(cmds, h.Command)
	}
	assert.Equal(t, []string{"/bin/git-credential-bbtoken", "git credential-cache --timeout=60"}, cmds)
	assert.Len(t, v.All, 5)
	assert.True(t, v.UseHTTPPathSet)
	assert.False(t, v.UseHTTPPath, "the last matching value wins")
	assert.Equal(t, "local", v.UseHTTPPathEntry.Scope)

	other := viewFor(entries, targetFor("github.com", ""))
	cmds = nil
	for _, h := range other.Helpers {
		cmds = append(cmds, h.Command)
	}
	assert.Equal(t, []string{"git credential-manager", "git credential-store", "git credential-gh", "git credential-cache --timeout=60"}, cmds)

	ours := func(c string) bool { return isOurs(c, nil) }
	_, ok := v.resetAfterOurs(ours)
	assert.False(t, ok)
	cleared := viewFor(append(entries, e("local", "credential.helper", "")), targetFor("bitbucket.org", ""))
	assert.Empty(t, cleared.Helpers)
	reset, ok := cleared.resetAfterOurs(ours)
	assert.True(t, ok)
	assert.Equal(t, "local", reset.Scope)
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
	assert.Equal(t, []string{"a b", "c", `d"e`, "f'g"}, shellWords(`'a b' c "d\"e" f\'g`))
	assert.Equal(t, "git-credential-store", helperProgram("git credential-store"))
}

func TestParseTrace(t *testing.T) {
	t.Parallel()
	trace := `01:07:05.934538 git.c:460               trace: built-in: git credential fill
01:07:05.934782 run-command.c:655       trace: run_command: 'git credential-store get'
01:07:05.935000 git.c:460               trace: built-in: git credential-store get
01:07:05.936000 run-command.c:655       trace: run_command: git-credential-cache--daemon /tmp/sock
01:07:05.936081 run-command.c:655       trace: run_command: 'f() { echo hi >&2; }; f get'
hi
01:07:05.938873 run-command.c:655       trace: run_command: ''\''/a b/git-credential-bbtoken'\'' get'
'/a b/git-credential-bbtoken' get: 1: /a b/git-credential-bbtoken: not found
01:07:05.939000 run-command.c:655       trace: run_command: '/usr/bin/git-credential-bbtoken get'
fatal: could not read Username for 'https://bitbucket.org': terminal prompts disabled
`
	assert.Equal(t, []string{
		"git credential-store",
		"f() { echo hi >&2; }; f",
		"'/a b/git-credential-bbtoken'",
		"/usr/bin/git-credential-bbtoken",
	}, parseTrace([]byte(trace)))
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
