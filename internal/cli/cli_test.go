package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"help"}, usage},
		{[]string{"-h"}, usage},
		{[]string{"--help"}, usage},
		{[]string{"version"}, "git-credential-bbtoken dev\n"},
		{[]string{"--version"}, "git-credential-bbtoken dev\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			r := f.run("", tt.args...)
			assert.Equal(t, ExitOK, r.code)
			assert.Equal(t, tt.want, r.stdout)
			assert.Empty(t, r.stderr)
		})
	}
	t.Run("no arguments", func(t *testing.T) {
		t.Parallel()
		r := newFixture(t).run("")
		assert.Equal(t, ExitUsage, r.code)
		assert.Empty(t, r.stdout)
		assert.Equal(t, usage, r.stderr)
	})
}

func TestAddPrintsID(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.run(repoTok+"\n", "add", "https://bitbucket.org/ws/repo.git")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Regexp(t, `^[0-9a-f]{8}\n$`, r.stdout)
	id := strings.TrimSpace(r.stdout)
	assert.Equal(t, "added repository token ****1111 for https://bitbucket.org/ws/repo (as x-token-auth)\n", r.stderr)

	e := f.entry(id)
	assert.Equal(t, "https://bitbucket.org/ws/repo", e.URL)
	assert.Equal(t, store.KindRepository, e.Kind)
	assert.Equal(t, "x-token-auth", e.Username)
	assert.Equal(t, map[string]string{id: repoTok}, f.secrets.Snapshot())
}

func TestAddTokenInput(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, stdin string }{
		{"first line only", repoTok + "\nsecond line\n"},
		{"surrounding whitespace", " \t" + repoTok + " \r\n"},
		{"no final newline", repoTok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			r := f.run(tt.stdin, "add", "https://bitbucket.org/ws/repo")
			require.Equal(t, ExitOK, r.code, r.stderr)
			assert.Equal(t, map[string]string{strings.TrimSpace(r.stdout): repoTok}, f.secrets.Snapshot())
		})
	}
}

func TestAddFlagsAndPositionalMix(t *testing.T) {
	t.Parallel()
	const url = "https://bitbucket.org/ws"
	tests := [][]string{
		{url, "--kind", "workspace"},
		{"--kind", "workspace", url},
		{"--kind=workspace", url, "--label", "team"},
		{"--label", "team", url, "--kind=workspace"},
		{"--kind", "workspace", "--", url},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			e := f.entry(f.add(wsTok, args...))
			assert.Equal(t, url, e.URL)
			assert.Equal(t, store.KindWorkspace, e.Kind)
			if slices.Contains(args, "team") {
				assert.Equal(t, "team", e.Label)
			}
		})
	}
}

func TestAddReplacesSameScopeAndKind(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	first := f.add(wsTok, "https://bitbucket.org/ws", "--kind", "workspace")
	other := f.add(apiTok, "https://bitbucket.org/ws", "--kind", "api")
	second := f.add(repoTok, "https://bitbucket.org/WS/", "--kind", "workspace")
	assert.NotEqual(t, first, second)

	ix := f.index()
	require.Len(t, ix.Entries, 2)
	_, ok := ix.Find(first)
	assert.False(t, ok, "the first workspace token is replaced")
	assert.Equal(t, map[string]string{other: apiTok, second: repoTok}, f.secrets.Snapshot())
}

// seedList adds four tokens whose states at listNow are active, expired,
// rejected and active.
func seedList(t *testing.T) (f *fixture, ids map[string]string, listNow time.Time) {
	f = newFixture(t)
	ids = map[string]string{
		"ID_API__": f.add(apiTok, "https://bitbucket.org", "--kind", "api", "--username", "alice"),
		"ID_WS___": f.add(wsTok, "https://bitbucket.org/ws", "--kind", "workspace", "--expires", "2026-10-01"),
		"ID_REPO_": f.add(repoTok, "https://bitbucket.org/ws/repo.git", "--label", "ci bot", "--expires", "2027-01-31"),
		"ID_DC___": f.add(dcTok, "https://git.example.com/scm/prj/repo.git"),
	}
	// A 401 for the repository token's own scope marks it rejected.
	r := f.run("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\nusername=x-token-auth\npassword="+repoTok+"\n", "erase")
	require.Equal(t, ExitOK, r.code, r.stderr)
	require.Equal(t, store.StateRejected, f.entry(ids["ID_REPO_"]).State)
	return f, ids, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
}

func TestListText(t *testing.T) {
	t.Parallel()
	f, ids, listNow := seedList(t)
	f.now = listNow
	before := f.state()
	r := f.run("", "list")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Empty(t, r.stderr)
	want := `ID        KIND        STATE     EXPIRES     USERNAME      STORE    URL                                   LABEL
ID_API__  api         active    -           alice         keyring  https://bitbucket.org                 -
ID_WS___  workspace   expired   2026-10-01  x-token-auth  keyring  https://bitbucket.org/ws              -
ID_REPO_  repository  rejected  2027-01-31  x-token-auth  keyring  https://bitbucket.org/ws/repo         ci bot
ID_DC___  repository  active    -           -             keyring  https://git.example.com/scm/PRJ/repo  -
`
	for k, v := range ids {
		want = strings.ReplaceAll(want, k, v)
	}
	assert.Equal(t, want, r.stdout)
	assertUnchanged(t, before, f.state())
	for _, tok := range []string{apiTok, wsTok, repoTok, dcTok} {
		assert.NotContains(t, r.stdout, tok)
		assert.NotContains(t, r.stdout, tok[len(tok)-4:], "list shows no part of a secret")
	}
}

func TestListJSON(t *testing.T) {
	t.Parallel()
	f, ids, listNow := seedList(t)
	f.now = listNow
	r := f.run("", "list", "--json")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Empty(t, r.stderr)

	var got []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), r.stdout)
	row := func(id, url, kind, user, label, expires, state string) map[string]any {
		return map[string]any{"id": id, "url": url, "kind": kind, "username": user, "label": label, "expires": expires, "state": state, "store": "keyring"}
	}
	want := []map[string]any{
		row(ids["ID_API__"], "https://bitbucket.org", "api", "alice", "", "", "active"),
		row(ids["ID_WS___"], "https://bitbucket.org/ws", "workspace", "x-token-auth", "", "2026-10-01", "expired"),
		row(ids["ID_REPO_"], "https://bitbucket.org/ws/repo", "repository", "x-token-auth", "ci bot", "2027-01-31", "rejected"),
		row(ids["ID_DC___"], "https://git.example.com/scm/PRJ/repo", "repository", "", "", "", "active"),
	}
	assert.Equal(t, want, got)
	for _, tok := range []string{apiTok, wsTok, repoTok, dcTok} {
		assert.NotContains(t, r.stdout, tok)
	}

	t.Run("states move with the clock", func(t *testing.T) {
		f.now = time.Date(2026, 9, 30, 23, 59, 59, 0, time.UTC)
		r := f.run("", "list", "--json")
		require.Equal(t, ExitOK, r.code)
		var rows []listed
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows))
		require.Len(t, rows, 4)
		assert.Equal(t, "active", rows[1].State, "the day before expiry")
	})
}

func TestListEmpty(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.run("", "list")
	assert.Equal(t, result{ExitOK, "no tokens stored; add one with: git-credential-bbtoken add https://bitbucket.org/WORKSPACE/REPO\n", ""}, r)
	r = f.run("", "list", "--json")
	assert.Equal(t, result{ExitOK, "[]\n", ""}, r)
	assert.Nil(t, f.state().index, "list writes no index")
}

func TestRemove(t *testing.T) {
	t.Parallel()
	t.Run("by id", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		id := f.add(repoTok, "https://bitbucket.org/ws/repo")
		keep := f.add(wsTok, "https://bitbucket.org/ws", "--kind", "workspace")
		r := f.run("", "remove", id)
		assert.Equal(t, result{ExitOK, "removed " + id + " (repository https://bitbucket.org/ws/repo)\n", ""}, r)
		assert.Equal(t, map[string]string{keep: wsTok}, f.secrets.Snapshot())
		assert.Len(t, f.index().Entries, 1)
	})
	t.Run("by URL removes every kind at that scope", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		a := f.add(wsTok, "https://bitbucket.org/ws", "--kind", "workspace")
		b := f.add(apiTok, "https://bitbucket.org/ws", "--kind", "api")
		keep := f.add(repoTok, "https://bitbucket.org/ws/repo")
		r := f.run("", "remove", "https://bitbucket.org/WS/")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Empty(t, r.stderr)
		assert.ElementsMatch(t, []string{
			"removed " + a + " (workspace https://bitbucket.org/ws)",
			"removed " + b + " (api https://bitbucket.org/ws)",
		}, strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"))
		assert.Equal(t, map[string]string{keep: repoTok}, f.secrets.Snapshot())
	})
}

func TestGetStoreErase(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	repo := f.add(repoTok, "https://bitbucket.org/ws/repo", "--expires", "2027-01-31")
	f.add(dcTok, "https://git.example.com/scm/PRJ/repo")
	expiry := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC).Unix()

	t.Run("get answers with the token", func(t *testing.T) {
		r := f.run("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n\n", "get")
		want := fmt.Sprintf("username=x-token-auth\npassword=%s\npassword_expiry_utc=%d\n", repoTok, expiry)
		assert.Equal(t, result{ExitOK, want, ""}, r)
	})
	t.Run("get with a clone URL username", func(t *testing.T) {
		r := f.run("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\nusername=alice\n", "get")
		want := fmt.Sprintf("username=x-token-auth\npassword=%s\npassword_expiry_utc=%d\n", repoTok, expiry)
		assert.Equal(t, result{ExitOK, want, ""}, r)
	})
	t.Run("get a Bearer token when git offers authtype", func(t *testing.T) {
		r := f.run("capability[]=authtype\nprotocol=https\nhost=git.example.com\npath=scm/prj/repo.git\n", "get")
		assert.Equal(t, result{ExitOK, "capability[]=authtype\nauthtype=Bearer\ncredential=" + dcTok + "\n", ""}, r)
	})
	for name, in := range map[string]string{
		"other repository": "protocol=https\nhost=bitbucket.org\npath=ws/other.git\n",
		"no path":          "protocol=https\nhost=bitbucket.org\n",
		"other host":       "protocol=https\nhost=example.org\npath=ws/repo.git\n",
		"plain http":       "protocol=http\nhost=bitbucket.org\npath=ws/repo.git\n",
		"bearer, no cap":   "protocol=https\nhost=git.example.com\npath=scm/PRJ/repo.git\n",
	} {
		t.Run("get prints nothing: "+name, func(t *testing.T) {
			before := f.state()
			r := f.run(in, "get")
			assert.Equal(t, ExitOK, r.code)
			assert.Empty(t, r.stdout)
			if name != "bearer, no cap" {
				assert.Empty(t, r.stderr)
			}
			assertUnchanged(t, before, f.state())
		})
	}
	t.Run("store of our own token changes nothing", func(t *testing.T) {
		before := f.state()
		r := f.run("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\nusername=x-token-auth\npassword="+repoTok+"\n", "store")
		assert.Equal(t, result{ExitOK, "", ""}, r)
		assertUnchanged(t, before, f.state())
	})
	t.Run("store, get and erase a typed password", func(t *testing.T) {
		in := "protocol=https\nhost=bitbucket.org\npath=ws/other.git\nusername=bob\npassword=" + typedPw + "\n"
		r := f.run(in, "store")
		require.Equal(t, result{ExitOK, "", ""}, r)
		var stored []store.Entry
		for _, e := range f.index().Entries {
			if e.Kind == store.KindStored {
				stored = append(stored, e)
			}
		}
		require.Len(t, stored, 1)
		assert.Equal(t, "https://bitbucket.org/ws/other", stored[0].URL)
		assert.Equal(t, typedPw, f.secrets.Snapshot()[stored[0].ID])

		r = f.run("protocol=https\nhost=bitbucket.org\npath=ws/other.git\n", "get")
		assert.Equal(t, result{ExitOK, "username=bob\npassword=" + typedPw + "\n", ""}, r)

		r = f.run(in, "erase")
		require.Equal(t, result{ExitOK, "", ""}, r)
		_, ok := f.index().Find(stored[0].ID)
		assert.False(t, ok)
		assert.NotContains(t, f.secrets.Snapshot(), stored[0].ID)
		assert.Equal(t, repoTok, f.secrets.Snapshot()[repo], "added tokens stay")
	})
}

// seeded returns a fixture holding one token, so that "no change" means
// something.
func seeded(t *testing.T) *fixture {
	f := newFixture(t)
	f.add(wsTok, "https://bitbucket.org/ws", "--kind", "workspace")
	return f
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string // substring of the one stderr line
	}{
		{"unknown flag", []string{"add", "https://bitbucket.org/ws/repo", "--bogus"}, repoTok, "flag provided but not defined: -bogus"},
		{"unknown flag first", []string{"add", "--bogus", "https://bitbucket.org/ws/repo"}, repoTok, "flag provided but not defined: -bogus"},
		{"two URLs", []string{"add", "https://bitbucket.org/ws/a", "https://bitbucket.org/ws/b"}, repoTok, "at most one URL"},
		{"token as argument", []string{"add", "https://bitbucket.org/ws/a", repoTok}, "", "never from arguments"},
		{"bad kind", []string{"add", "https://bitbucket.org/ws/repo", "--kind", "admin"}, repoTok, `--kind "admin": use repository, project, workspace, api or personal`},
		{"stored is no add kind", []string{"add", "--kind", "stored", "https://bitbucket.org/ws/repo"}, repoTok, `--kind "stored"`},
		{"flag without value", []string{"add", "https://bitbucket.org/ws/repo", "--kind"}, repoTok, "flag needs an argument: -kind"},
		{"add --help", []string{"add", "--help"}, "", "usage: git-credential-bbtoken add"},
		{"bad store", []string{"add", "https://bitbucket.org/ws/repo", "--store", "vault"}, repoTok, `--store "vault": use keyring or pass`},
		{"login without consumer", []string{"login"}, "secret\n", "login needs --consumer KEY"},
		{"login two hosts", []string{"login", "https://bitbucket.org", "https://bb.example.com", "--consumer", "K"}, "secret\n", "usage: git-credential-bbtoken login"},
		{"login token as consumer", []string{"login", "--consumer", repoTok}, "secret\n", "looks like a token"},
		{"logout two hosts", []string{"logout", "https://bitbucket.org", "https://bb.example.com"}, "", "usage: git-credential-bbtoken logout"},
		{"env is no --store", []string{"add", "https://bitbucket.org/ws/repo", "--store", "env"}, repoTok, `--store "env"`},
		{"store and from-env", []string{"add", "https://bitbucket.org/ws/repo", "--store", "pass", "--from-env", "TOK"}, "", "exclude each other"},
		{"from-env empty", []string{"add", "https://bitbucket.org/ws/repo", "--from-env", ""}, "", "--from-env needs the name of a variable"},
		{"from-env not a name", []string{"add", "https://bitbucket.org/ws/repo", "--from-env", "$TOK"}, "", "--from-env: invalid environment variable name"},
		{"from-env with a value", []string{"add", "https://bitbucket.org/ws/repo", "--from-env", "TOK=x"}, "", "--from-env: invalid environment variable name"},
		{"bad flavor", []string{"setup", "--flavor", "moon"}, "", `--flavor: unknown flavor "moon"`},
		{"setup positional", []string{"setup", "https://bitbucket.org"}, "", "setup takes no arguments (use --host URL)"},
		{"remove without args", []string{"remove"}, "", "usage: git-credential-bbtoken remove ID|URL"},
		{"remove two args", []string{"remove", "a", "b"}, "", "usage: git-credential-bbtoken remove ID|URL"},
		{"list positional", []string{"list", "all"}, "", "list takes no arguments"},
		{"list unknown flag", []string{"list", "--yaml"}, "", "flag provided but not defined: -yaml"},
		{"get with arguments", []string{"get", "extra"}, "protocol=https\nhost=bitbucket.org\n", `unexpected arguments ["extra"]`},
		{"store with arguments", []string{"store", "--x"}, "protocol=https\nhost=bitbucket.org\npassword=" + typedPw + "\n", "unexpected arguments"},
		{"unknown command: flag", []string{"--frobnicate"}, "", `unknown command "--frobnicate"`},
		{"unknown command: capitals", []string{"LIST"}, "", `unknown command "LIST"`},
		{"unknown command: digits", []string{"add2"}, "", `unknown command "add2"`},
		{"unknown command: empty", []string{""}, "", `unknown command ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := seeded(t)
			before := f.state()
			r := f.run(tt.stdin, tt.args...)
			assert.Equal(t, ExitUsage, r.code)
			assert.Empty(t, r.stdout)
			assertOneLine(t, r.stderr)
			assert.Contains(t, r.stderr, tt.want)
			assert.True(t, strings.HasPrefix(r.stderr, "git-credential-bbtoken: "), r.stderr)
			assert.Contains(t, r.stderr, "git-credential-bbtoken help")
			assert.NotContains(t, r.stderr, repoTok)
			assertUnchanged(t, before, f.state())
		})
	}
}

func TestEnvironmentUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, key, value string
		args             []string
		nilSecrets       bool
		want             string
	}{
		{"relative trace path", "GIT_CREDENTIAL_BBTOKEN_TRACE", "trace.log", []string{"list"}, false, "use 1 for stderr or an absolute file path"},
		{"bad keyring timeout", "GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT", "soon", []string{"list"}, true, `GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT="soon" is not a duration`},
		{"negative keyring timeout", "GIT_CREDENTIAL_BBTOKEN_KEYRING_TIMEOUT", "-1s", []string{"list"}, true, "is not a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := seeded(t)
			f.getenv[tt.key] = tt.value
			before := f.state()
			r := f.runWith(func(e *Env) {
				if tt.nilSecrets {
					e.Secrets = nil
				}
			}, "", tt.args...)
			assert.Equal(t, ExitUsage, r.code)
			assert.Empty(t, r.stdout)
			assertOneLine(t, r.stderr)
			assert.Contains(t, r.stderr, tt.want)
			assertUnchanged(t, before, f.state())
		})
	}
}

func TestUserErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string // substring of the one stderr line
	}{
		{"empty stdin", []string{"add", "https://bitbucket.org/ws/repo"}, "", "invalid token: no token on stdin"},
		{"blank first line", []string{"add", "https://bitbucket.org/ws/repo"}, " \t\n" + repoTok + "\n", "invalid token: no token on stdin"},
		{"token with spaces", []string{"add", "https://bitbucket.org/ws/repo"}, repoTok + " " + wsTok + "\n", "invalid token: it contains spaces"},
		{"token too long", []string{"add", "https://bitbucket.org/ws/repo"}, strings.Repeat("A", 5000) + "\n", "invalid token"},
		{"app password", []string{"add", "https://bitbucket.org/ws/repo", "--kind", "api", "--username", "alice"}, appPw + "\n", "app passwords stopped working"},
		{"e-mail username for api", []string{"add", "https://bitbucket.org", "--kind", "api", "--username", "alice@example.com"}, apiTok + "\n", "not your Atlassian e-mail"},
		{"username with access token", []string{"add", "https://bitbucket.org/ws/repo", "--username", "alice"}, repoTok + "\n", "always use the username x-token-auth"},
		{"expiry in the past", []string{"add", "https://bitbucket.org/ws/repo", "--expires", "2026-08-31"}, repoTok + "\n", "invalid expiry: 2026-08-31 is in the past"},
		{"expiry today", []string{"add", "https://bitbucket.org/ws/repo", "--expires", "2026-09-01"}, repoTok + "\n", "is in the past"},
		{"bad date", []string{"add", "https://bitbucket.org/ws/repo", "--expires", "31/01/2027"}, repoTok + "\n", `invalid expiry: "31/01/2027" is not a date like 2027-01-31`},
		{"impossible date", []string{"add", "https://bitbucket.org/ws/repo", "--expires", "2027-02-30"}, repoTok + "\n", "is not a date"},
		{"http URL", []string{"add", "http://bitbucket.org/ws/repo"}, repoTok + "\n", "plain http is never served a token"},
		{"ssh URL", []string{"add", "ssh://git@bitbucket.org/ws/repo.git"}, repoTok + "\n", "SSH URLs cannot use tokens"},
		{"scp-like URL", []string{"add", "git@bitbucket.org:ws/repo.git"}, repoTok + "\n", "SSH URLs cannot use tokens"},
		{"ftp URL", []string{"add", "ftp://bitbucket.org/ws/repo"}, repoTok + "\n", `scheme "ftp" is not https`},
		{"dot-dot path", []string{"add", "https://bitbucket.org/ws/../repo"}, repoTok + "\n", "not a Bitbucket URL"},
		{"repository kind on a workspace", []string{"add", "https://bitbucket.org/ws", "--kind", "repository"}, repoTok + "\n", "a repository token needs a repository URL"},
		{"personal kind on Cloud", []string{"add", "https://bitbucket.org/ws/repo", "--kind", "personal"}, repoTok + "\n", "personal HTTP access tokens are a Data Center kind"},
		{"kind not inferable", []string{"add", "https://bitbucket.org/ws/repo"}, "unknownprefix-0123456789\n", "cannot tell the token's kind"},
		{"label with control characters", []string{"add", "https://bitbucket.org/ws/repo", "--label", "a\x1bb"}, repoTok + "\n", "invalid label"},
		{"remove unknown id", []string{"remove", "deadbeef"}, "", "no such entry"},
		{"login without a secret", []string{"login", "--consumer", "KEY", "--no-browser"}, "", "no consumer secret on stdin"},
		{"login to a repository", []string{"login", "https://bitbucket.org/ws/repo", "--consumer", "KEY", "--no-browser"}, "consumer-secret\n", "a login is for a whole host"},
		{"login with a remote callback", []string{"login", "--consumer", "KEY", "--callback", "https://example.com/cb"}, "consumer-secret\n", "needs a loopback URL with a port"},
		{"logout without a login", []string{"logout"}, "", "no login for bitbucket.org"},
		{"remove unknown URL", []string{"remove", "https://bitbucket.org/ws/none"}, "", "no such entry for https://bitbucket.org/ws/none"},
		{"remove ssh URL", []string{"remove", "git@bitbucket.org:ws/repo.git"}, "", "no such entry"},
		{"setup http host", []string{"setup", "--host", "http://bitbucket.example.com"}, "", "--host http://bitbucket.example.com: plain http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := seeded(t)
			before := f.state()
			r := f.run(tt.stdin, tt.args...)
			assert.Equal(t, ExitError, r.code)
			assert.Empty(t, r.stdout)
			assertOneLine(t, r.stderr)
			assert.Contains(t, r.stderr, tt.want)
			prefix := "git-credential-bbtoken: " + tt.args[0] + ": "
			assert.True(t, strings.HasPrefix(r.stderr, prefix), "%q lacks %q", r.stderr, prefix)
			for _, tok := range []string{repoTok, wsTok, apiTok, appPw} {
				assert.NotContains(t, r.stderr, tok)
			}
			assertUnchanged(t, before, f.state())
		})
	}
}

// TestProtocolBadInput feeds get, store and erase input that git never
// sends or that an attacker might.
func TestProtocolBadInput(t *testing.T) {
	t.Parallel()
	const base = "protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n"
	big := strings.Repeat("wwwauth[]=Basic realm=\""+strings.Repeat("x", 1000)+"\"\n", 1100)
	tests := []struct {
		name, stdin, want string
	}{
		{"CR at line end", "protocol=https\r\nhost=bitbucket.org\n", "carriage return"},
		{"CR inside a value", base + "password=" + typedPw + "\rhost=evil.example\n", `line 4 (key "password"): value contains a carriage return`},
		{"NUL", "protocol=https\nhost=bitbucket.org\x00.evil.example\n", `(key "host"): value contains a NUL byte`},
		{"NUL in the password", base + "password=" + typedPw + "\x00\n", `(key "password"): value contains a NUL byte`},
		{"missing host", "protocol=https\npath=ws/repo.git\npassword=" + typedPw + "\n", "invalid credential request: no host"},
		{"empty host", "protocol=https\nhost=\npassword=" + typedPw + "\n", "no host"},
		{"missing protocol", "host=bitbucket.org\npath=ws/repo.git\npassword=" + typedPw + "\n", "invalid credential request: no protocol"},
		{"line longer than 65535 bytes", base + "wwwauth[]=" + strings.Repeat("y", 65536) + "\n", "line too long"},
		{"input over 1 MiB", base + big, "input too large"},
		{"line without =", base + typedPw + "\n", "malformed line (want key=value)"},
		{"bad expiry", base + "password_expiry_utc=-5\n", "invalid value"},
		{"url with an encoded LF", "url=https://bitbucket.org/ws/repo%0Ahost=evil.example\n", `line 1 (key "url"): path: value contains a newline`},
		{"url with an encoded CR in the password", "url=https://u:p%0D@bitbucket.org/ws/repo\n", `(key "url"): password: value contains a carriage return`},
	}
	for _, op := range []string{"get", "store", "erase"} {
		for _, tt := range tests {
			t.Run(op+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				f := seeded(t)
				before := f.state()
				r := f.run(tt.stdin, op)
				assert.Equal(t, ExitError, r.code)
				assert.Empty(t, r.stdout)
				assertOneLine(t, r.stderr)
				assert.Contains(t, r.stderr, tt.want)
				assert.True(t, strings.HasPrefix(r.stderr, "git-credential-bbtoken: "+op+": "), r.stderr)
				assert.NotContains(t, r.stderr, typedPw)
				assert.NotContains(t, r.stderr, "evil")
				assert.Less(t, len(r.stderr), 500)
				assertUnchanged(t, before, f.state())
			})
		}
	}
}

func TestUnknownGitOperationIsIgnored(t *testing.T) {
	t.Parallel()
	for _, op := range []string{"capability", "foo", "approve", "reject", "get-all", "erase-all"} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			f := seeded(t)
			before := f.state()
			r := f.run("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\npassword="+typedPw+"\n", op, "--anything")
			assert.Equal(t, result{ExitOK, "", ""}, r)
			assertUnchanged(t, before, f.state())
		})
	}
}

// newRepo makes a git work tree whose origin is url, with the real git.
func newRepo(t *testing.T, url string) string {
	t.Helper()
	requireGit(t)
	home := t.TempDir()
	dir := filepath.Join(t.TempDir(), "work")
	env := gitEnv(home)
	mustGit(t, env, "", "init", "-q", dir)
	mustGit(t, env, dir, "remote", "add", "origin", url)
	return dir
}

func TestAddFromOrigin(t *testing.T) {
	t.Parallel()
	t.Run("https origin", func(t *testing.T) {
		t.Parallel()
		dir := newRepo(t, "https://bitbucket.org/ws/repo.git")
		sub := filepath.Join(dir, "sub", "dir")
		require.NoError(t, os.MkdirAll(sub, 0o755))
		for _, wd := range []string{dir, sub} {
			f := newFixture(t)
			f.wd = wd
			r := f.run(repoTok+"\n", "add")
			require.Equal(t, ExitOK, r.code, r.stderr)
			assert.Regexp(t, `^[0-9a-f]{8}\n$`, r.stdout)
			assert.Equal(t, "using the origin remote: https://bitbucket.org/ws/repo.git\n"+
				"added repository token ****1111 for https://bitbucket.org/ws/repo (as x-token-auth)\n", r.stderr)
			e := f.entry(strings.TrimSpace(r.stdout))
			assert.Equal(t, "https://bitbucket.org/ws/repo", e.URL)
			assert.Equal(t, store.KindRepository, e.Kind)
		}
	})
	t.Run("flags only", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.wd = newRepo(t, "https://bitbucket.org/ws/repo.git")
		r := f.run(wsTok+"\n", "add", "--kind", "repository", "--label", "x")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Equal(t, "https://bitbucket.org/ws/repo", f.entry(strings.TrimSpace(r.stdout)).URL)
	})
	t.Run("origin with a password in its URL", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.wd = newRepo(t, "https://alice:"+typedPw+"@bitbucket.org/ws/repo.git")
		r := f.run(repoTok+"\n", "add")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Contains(t, r.stderr, "using the origin remote: https://alice:****@bitbucket.org/ws/repo.git\n")
		assert.NotContains(t, r.stderr, typedPw)
	})
	errs := []struct{ name, origin, want string }{
		{"scp-like ssh origin", "git@bitbucket.org:ws/repo.git", "the origin remote: SSH URLs cannot use tokens: git@bitbucket.org:ws/repo.git is an SSH remote; use its https clone URL"},
		{"ssh:// origin", "ssh://git@bitbucket.org/ws/repo.git", "the origin remote: SSH URLs cannot use tokens"},
		{"http origin", "http://bitbucket.org/ws/repo.git", "the origin remote: plain http is never served a token"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := seeded(t)
			f.wd = newRepo(t, tt.origin)
			before := f.state()
			read := false
			r := f.runWith(func(e *Env) {
				e.IsTerminal = func() bool { return true }
				e.ReadPassword = func() ([]byte, error) { read = true; return []byte(repoTok), nil }
			}, "", "add")
			assert.Equal(t, ExitError, r.code)
			assert.Empty(t, r.stdout)
			assertOneLine(t, r.stderr)
			assert.Contains(t, r.stderr, tt.want)
			assert.False(t, read, "no token is asked for a URL that cannot use one")
			assertUnchanged(t, before, f.state())
		})
	}
	t.Run("not in a repository", func(t *testing.T) {
		t.Parallel()
		f := seeded(t)
		before := f.state()
		r := f.run(repoTok+"\n", "add")
		assert.Equal(t, ExitError, r.code)
		assert.Empty(t, r.stdout)
		assertOneLine(t, r.stderr)
		assert.Contains(t, r.stderr, "no URL given and not inside a git work tree")
		assertUnchanged(t, before, f.state())
	})
	t.Run("no origin", func(t *testing.T) {
		t.Parallel()
		requireGit(t)
		dir := filepath.Join(t.TempDir(), "work")
		mustGit(t, gitEnv(t.TempDir()), "", "init", "-q", dir)
		f := seeded(t)
		f.wd = dir
		before := f.state()
		r := f.run(repoTok+"\n", "add")
		assert.Equal(t, ExitError, r.code)
		assert.Empty(t, r.stdout)
		assertOneLine(t, r.stderr)
		assert.Contains(t, r.stderr, `the repository has no remote "origin"`)
		assertUnchanged(t, before, f.state())
	})
}

// failReader fails the test's expectations if anything reads stdin.
type failReader struct{ read *bool }

func (r failReader) Read([]byte) (int, error) { *r.read = true; return 0, io.EOF }

func TestAddOnTerminal(t *testing.T) {
	t.Parallel()
	t.Run("prompts without echo", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		stdinRead, asked := false, 0
		r := f.runWith(func(e *Env) {
			e.Stdin = failReader{&stdinRead}
			e.IsTerminal = func() bool { return true }
			e.ReadPassword = func() ([]byte, error) { asked++; return []byte("  " + repoTok + "  "), nil }
		}, "", "add", "https://bitbucket.org/ws/repo")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Equal(t, 1, asked)
		assert.False(t, stdinRead, "the token comes from ReadPassword, not stdin")
		assert.Regexp(t, `^[0-9a-f]{8}\n$`, r.stdout)
		assert.Equal(t, "Token for https://bitbucket.org/ws/repo (input hidden): \n"+
			"added repository token ****1111 for https://bitbucket.org/ws/repo (as x-token-auth)\n", r.stderr)
		assert.NotContains(t, r.stdout+r.stderr, repoTok)
		assert.Equal(t, map[string]string{strings.TrimSpace(r.stdout): repoTok}, f.secrets.Snapshot())
	})
	t.Run("read error", func(t *testing.T) {
		t.Parallel()
		f := seeded(t)
		before := f.state()
		r := f.runWith(func(e *Env) {
			e.IsTerminal = func() bool { return true }
			e.ReadPassword = func() ([]byte, error) { return nil, errors.New("interrupted") }
		}, "", "add", "https://bitbucket.org/ws/repo")
		assert.Equal(t, ExitError, r.code)
		assert.Empty(t, r.stdout)
		assert.Equal(t, "Token for https://bitbucket.org/ws/repo (input hidden): \n"+
			"git-credential-bbtoken: add: reading the token: interrupted\n", r.stderr)
		assertUnchanged(t, before, f.state())
	})
	t.Run("empty input", func(t *testing.T) {
		t.Parallel()
		f := seeded(t)
		before := f.state()
		r := f.runWith(func(e *Env) {
			e.IsTerminal = func() bool { return true }
			e.ReadPassword = func() ([]byte, error) { return []byte(""), nil }
		}, "", "add", "https://bitbucket.org/ws/repo")
		assert.Equal(t, ExitError, r.code)
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.stderr, "no token")
		assertUnchanged(t, before, f.state())
	})
	t.Run("no terminal: stdin", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		r := f.runWith(func(e *Env) {
			e.IsTerminal = func() bool { return false }
			e.ReadPassword = func() ([]byte, error) { t.Error("ReadPassword without a terminal"); return nil, nil }
		}, repoTok+"\n", "add", "https://bitbucket.org/ws/repo")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.NotContains(t, r.stderr, "Token for")
	})
}

func TestAddRefusesTokenAsURL(t *testing.T) {
	for _, arg := range []string{"ATCTT3xFfGF0secretsecret", "ATATT3xFfGF0secretsecret", "BBDC-NjQ1secretsecretsecret", "abcdefghijklmnopqrstuvwxyz0123456789"} {
		t.Run(arg[:6], func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(Env{Args: []string{"add", arg}, Stdin: strings.NewReader("tok\n"), Stdout: &stdout, Stderr: &stderr,
				ConfigDir: t.TempDir(), Secrets: memory.New()})
			if code != ExitUsage || stdout.Len() != 0 {
				t.Fatalf("exit %d stdout %q, want exit 2 and no stdout", code, stdout.String())
			}
			if !strings.Contains(stderr.String(), "looks like a token") || strings.Contains(stderr.String(), arg) {
				t.Fatalf("stderr %q: want the hint without the token", stderr.String())
			}
			if strings.Count(stderr.String(), "\n") != 1 {
				t.Fatalf("stderr %q: want one line", stderr.String())
			}
		})
	}
}

// A person at a terminal hears of a bad option before typing the token.
func TestAddChecksOptionsBeforePrompting(t *testing.T) {
	for _, args := range [][]string{
		{"add", "https://bitbucket.org/ws/repo", "--expires", "2001-01-01"},
		{"add", "https://bitbucket.org/ws/repo", "--expires", "soon"},
		{"add", "https://bitbucket.org", "--kind", "api", "--username", "a b"},
		{"add", "https://bitbucket.org/ws/repo", "--label", "bad\x07label"},
	} {
		t.Run(strings.Join(args[2:], " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(Env{Args: args, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
				ConfigDir: t.TempDir(), Secrets: memory.New(),
				IsTerminal: func() bool { return true },
				ReadPassword: func() ([]byte, error) {
					t.Error("prompted for the token before checking the options")
					return []byte("ATCTT3xToken"), nil
				}})
			if code != ExitError || stdout.Len() != 0 || strings.Contains(stderr.String(), "Token for") {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
			}
		})
	}
}

func TestRepair(t *testing.T) {
	run := func(dir string, mem *memory.Backend, args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Main(Env{Args: args, Stdin: strings.NewReader("ATCTT3xFfGF0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yTRepairToken0123456789\n"), Stdout: &stdout, Stderr: &stderr,
			ConfigDir: dir, Secrets: mem})
		return code, stdout.String(), stderr.String()
	}
	dir, mem := t.TempDir(), memory.New()
	code, idOut, _ := run(dir, mem, "add", "https://bitbucket.org/ws/repo")
	require.Equal(t, ExitOK, code)
	id := strings.TrimSpace(idOut)

	code, out, errOut := run(dir, mem, "repair")
	assert.Equal(t, ExitOK, code, errOut)
	assert.Equal(t, "consistent: 1 entries, 1 keyring item(s)\n", out)

	// An entry of an older version (no check): recorded, still consistent.
	index := filepath.Join(dir, store.IndexFile)
	data, err := os.ReadFile(index)
	require.NoError(t, err)
	older := regexp.MustCompile(`,"check":"[^"]*"`).ReplaceAll(data, nil)
	require.NotEqual(t, data, older)
	require.NoError(t, os.WriteFile(index, older, 0o600))
	code, out, _ = run(dir, mem, "repair", "--dry-run")
	assert.Equal(t, ExitOK, code)
	assert.Equal(t, "would record where 1 token(s) added by an older version are kept, so get reads them directly\nconsistent: 1 entries, 1 keyring item(s)\n", out)
	code, out, _ = run(dir, mem, "repair")
	assert.Equal(t, ExitOK, code)
	assert.Equal(t, "recorded where 1 token(s) added by an older version are kept: get reads them directly now\nconsistent: 1 entries, 1 keyring item(s)\n", out)
	data, err = os.ReadFile(index)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"check":"v1:`)

	// An item nobody knows: reported, kept, exit 1; deleted on request.
	_, err = mem.Set(context.Background(), "feedf00d", "stray")
	require.NoError(t, err)
	code, out, errOut = run(dir, mem, "repair")
	assert.Equal(t, ExitError, code)
	assert.Contains(t, out, "unknown keyring item feedf00d")
	assert.Equal(t, "git-credential-bbtoken: repair: needs attention (1 entries, 2 keyring item(s)): see above\n", errOut)
	code, out, _ = run(dir, mem, "repair", "--delete-unknown")
	assert.Equal(t, ExitOK, code)
	assert.Equal(t, "deleted unknown keyring item feedf00d\nconsistent: 1 entries, 1 keyring item(s)\n", out)

	// An entry whose secret went (deleted by hand in a keyring app).
	require.NoError(t, mem.Delete(context.Background(), id))
	code, out, _ = run(dir, mem, "repair", "--dry-run")
	assert.Equal(t, ExitError, code)
	assert.Contains(t, out, "entry "+id+" (repository https://bitbucket.org/ws/repo) has no secret in the keyring")

	code, _, errOut = run(dir, mem, "repair", "extra")
	assert.Equal(t, ExitUsage, code, errOut)
}

func TestConfig(t *testing.T) {
	dir, mem := t.TempDir(), memory.New()
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Main(Env{Args: args, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, ConfigDir: dir, Secrets: mem})
		return code, stdout.String(), stderr.String()
	}
	tests := []struct {
		args     []string
		code     int
		stdout   string
		inStderr string
	}{
		{[]string{"config"}, ExitOK, "expiry-warnings=on\nstore=keyring\n", ""},
		{[]string{"config", "expiry-warnings", "off"}, ExitOK, "", ""},
		{[]string{"config", "expiry-warnings"}, ExitOK, "expiry-warnings=off\n", ""},
		{[]string{"config", "expiry-warnings", "maybe"}, ExitUsage, "", "expiry-warnings takes on or off"},
		{[]string{"config", "expiry-warnings", ""}, ExitUsage, "", `expiry-warnings takes on or off, not ""`},
		{[]string{"config", "colour"}, ExitUsage, "", `unknown setting "colour"`},
		{[]string{"config", "colour", "on"}, ExitUsage, "", `unknown setting "colour"`},
		{[]string{"config", "expiry-warnings", "on"}, ExitOK, "", ""},
		{[]string{"config"}, ExitOK, "expiry-warnings=on\nstore=keyring\n", ""},
	}
	for _, tt := range tests {
		before, _ := os.ReadFile(filepath.Join(dir, store.IndexFile))
		code, out, errOut := run(tt.args...)
		if tt.code != ExitOK {
			after, _ := os.ReadFile(filepath.Join(dir, store.IndexFile))
			assert.Equal(t, string(before), string(after), "%v changed the index", tt.args)
		}
		assert.Equal(t, tt.code, code, "%v: %s", tt.args, errOut)
		assert.Equal(t, tt.stdout, out, "%v", tt.args)
		if tt.inStderr != "" {
			assert.Contains(t, errOut, tt.inStderr, "%v", tt.args)
		}
	}
}

// git pipes stdin: an unknown word on a terminal is a person's typo.
func TestUnknownWordOnTerminal(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main(Env{Args: []string{"lsit"}, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		ConfigDir: t.TempDir(), Secrets: memory.New(), IsTerminal: func() bool { return true }})
	assert.Equal(t, ExitUsage, code)
	assert.Empty(t, stdout.String())
	assert.Contains(t, stderr.String(), `unknown command "lsit"`)
	stderr.Reset()
	code = Main(Env{Args: []string{"lsit"}, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		ConfigDir: t.TempDir(), Secrets: memory.New(), IsTerminal: func() bool { return false }})
	assert.Equal(t, ExitOK, code, "from git (stdin not a terminal) unknown operations are ignored")
	assert.Empty(t, stderr.String())
}

// login --no-browser prints its instructions, then fails in one last line
// on a redirect it cannot use, changing nothing.
func TestLoginRefusesRedirects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, stdin, want string }{
		{"no redirect", "consumer-secret\n", "no redirect URL or code"},
		{"forged state", "consumer-secret\nhttp://127.0.0.1:53171/?code=x&state=forged\n", "state is not this login's"},
		{"an error without this login's state", "consumer-secret\nhttp://127.0.0.1:53171/?error=access_denied\n", "state is not this login's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := seeded(t)
			before := f.state()
			r := f.run(tc.stdin, "login", "--consumer", "KEY", "--no-browser")
			assert.Equal(t, ExitError, r.code)
			assert.Empty(t, r.stdout)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			assert.Contains(t, lines[0], "Open this URL in a browser")
			assert.Contains(t, lines[len(lines)-1], "git-credential-bbtoken: login: ")
			assert.Contains(t, lines[len(lines)-1], tc.want)
			assert.NotContains(t, r.stderr, "consumer-secret")
			assertUnchanged(t, before, f.state())
		})
	}
}
