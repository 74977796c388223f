package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// secrets every hygiene run may see; none may leak.
var allSecrets = []string{repoTok, wsTok, apiTok, dcTok, typedPw, appPw, "refresh-token-FFFF7777", "second-typed-pw-GGGG8888"}

// assertNoSecret checks that no secret occurs in s.
func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range allSecrets {
		assert.NotContains(t, s, sec, "%s leaks a secret", what)
	}
}

// TestSecretHygiene runs every command, successful or not, with tracing
// off, on stderr and to a file, and looks for secrets where none may be.
func TestSecretHygiene(t *testing.T) {
	t.Parallel()
	modes := []string{"off", "stderr", "file"}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			tracePath := filepath.Join(t.TempDir(), "trace.log")
			switch mode {
			case "stderr":
				f.getenv["GIT_CREDENTIAL_BBTOKEN_TRACE"] = "1"
			case "file":
				f.getenv["GIT_CREDENTIAL_BBTOKEN_TRACE"] = tracePath
			}
			var ids []string
			steps := []struct {
				name  string
				args  []string
				stdin string
				code  int
				// passwordLine is the one stdout line allowed to hold a secret.
				passwordLine string
			}{
				{"add repository", []string{"add", "https://bitbucket.org/ws/repo"}, repoTok + "\n", 0, ""},
				{"add workspace", []string{"add", "https://bitbucket.org/ws", "--kind", "workspace", "--label", "team"}, wsTok + "\n", 0, ""},
				{"add api", []string{"add", "https://bitbucket.org", "--kind", "api", "--username", "alice"}, apiTok + "\n", 0, ""},
				{"add data center", []string{"add", "https://git.example.com/scm/PRJ/repo"}, dcTok + "\n", 0, ""},
				{"add bad URL", []string{"add", "http://bitbucket.org/ws/repo"}, repoTok + "\n", 1, ""},
				{"add ssh URL", []string{"add", "git@bitbucket.org:ws/repo.git"}, repoTok + "\n", 1, ""},
				{"add app password", []string{"add", "https://bitbucket.org/ws/repo", "--kind", "api"}, appPw + "\n", 1, ""},
				{"add token with junk", []string{"add", "https://bitbucket.org/ws/repo"}, "token: " + repoTok + "\n", 1, ""},
				{"add past expiry", []string{"add", "https://bitbucket.org/ws/repo", "--expires", "2020-01-01"}, repoTok + "\n", 1, ""},
				{"add token as argument", []string{"add", "https://bitbucket.org/ws/repo", repoTok}, "", 2, ""},
				{"get repository", []string{"get"}, "protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n", 0, "password=" + repoTok},
				{"get workspace", []string{"get"}, "protocol=https\nhost=bitbucket.org\npath=ws/other.git\n", 0, "password=" + wsTok},
				{"get api", []string{"get"}, "protocol=https\nhost=bitbucket.org\npath=elsewhere/x.git\nusername=alice\n", 0, "password=" + apiTok},
				{"get bearer", []string{"get"}, "capability[]=authtype\nprotocol=https\nhost=git.example.com\npath=scm/PRJ/repo.git\n", 0, "credential=" + dcTok},
				{"get bearer without capability", []string{"get"}, "protocol=https\nhost=git.example.com\npath=scm/PRJ/repo.git\n", 0, ""},
				{"store ours", []string{"store"}, "protocol=https\nhost=bitbucket.org\npath=ws/repo.git\nusername=x-token-auth\npassword=" + repoTok + "\n", 0, ""},
				{"store typed", []string{"store"}, "protocol=https\nhost=example.org\npath=a/b.git\nusername=bob\npassword=" + typedPw + "\noauth_refresh_token=refresh-token-FFFF7777\n", 0, ""},
				{"get typed", []string{"get"}, "protocol=https\nhost=example.org\npath=a/b.git\n", 0, "password=" + typedPw + "\noauth_refresh_token=refresh-token-FFFF7777"},
				{"store CR", []string{"store"}, "protocol=https\nhost=bitbucket.org\npassword=" + typedPw + "\r\n", 1, ""},
				{"store NUL", []string{"store"}, "protocol=https\nhost=bitbucket.org\npassword=" + typedPw + "\x00\n", 1, ""},
				{"store stray password line", []string{"store"}, "protocol=https\nhost=bitbucket.org\n" + typedPw + "\n", 1, ""},
				{"store no host", []string{"store"}, "protocol=https\npassword=" + typedPw + "\n", 1, ""},
				{"erase differing password", []string{"erase"}, "protocol=https\nhost=example.org\npath=a/b.git\nusername=bob\npassword=second-typed-pw-GGGG8888\n", 0, ""},
				{"erase typed", []string{"erase"}, "protocol=https\nhost=example.org\npath=a/b.git\nusername=bob\npassword=" + typedPw + "\n", 0, ""},
				{"erase added", []string{"erase"}, "protocol=https\nhost=bitbucket.org\npath=ws/repo.git\nusername=x-token-auth\npassword=" + repoTok + "\n", 0, ""},
				{"erase malformed", []string{"erase"}, "protocol=https\nhost=bitbucket.org\npassword=" + repoTok + "\x00\n", 1, ""},
				{"list", []string{"list"}, "", 0, ""},
				{"list json", []string{"list", "--json"}, "", 0, ""},
				{"remove unknown", []string{"remove", "0badc0de"}, "", 1, ""},
				{"unknown operation", []string{"capability"}, "protocol=https\nhost=bitbucket.org\npassword=" + typedPw + "\n", 0, ""},
			}
			for _, st := range steps {
				r := f.run(st.stdin, st.args...)
				require.Equal(t, st.code, r.code, "%s: %s", st.name, r.stderr)
				stdout := r.stdout
				if st.passwordLine != "" {
					require.Contains(t, stdout, st.passwordLine+"\n", st.name)
					stdout = strings.Replace(stdout, st.passwordLine+"\n", "", 1)
				}
				if strings.HasPrefix(st.name, "add ") && st.code == 0 {
					ids = append(ids, strings.TrimSpace(r.stdout))
				}
				assertNoSecret(t, st.name+": stdout", stdout)
				assertNoSecret(t, st.name+": stderr", r.stderr)
				if mode == "stderr" && (st.args[0] == "get" || st.args[0] == "store" || st.args[0] == "erase") {
					assert.Contains(t, r.stderr, "bbtoken[", "%s: trace on stderr", st.name)
				}
			}
			for _, id := range ids {
				r := f.run("", "remove", id)
				require.Equal(t, ExitOK, r.code, r.stderr)
				assertNoSecret(t, "remove: stdout", r.stdout)
				assertNoSecret(t, "remove: stderr", r.stderr)
			}
			if mode == "file" {
				b, err := os.ReadFile(tracePath)
				require.NoError(t, err)
				assertNoSecret(t, "trace file", string(b))
				assert.Contains(t, string(b), "get: answer with")
				st, err := os.Stat(tracePath)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the trace file is private")
			}
		})
	}
}

// TestGetTrace checks what the trace of get tells: the request, the
// candidates it skipped and why, and the answer with its secret masked.
func TestGetTrace(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"stderr", "file"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.now = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
			expired := f.add(repoTok, "https://bitbucket.org/ws/repo", "--expires", "2026-10-01")
			ws := f.add(wsTok, "https://bitbucket.org/ws", "--kind", "workspace")
			f.now = time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC)

			tracePath := filepath.Join(t.TempDir(), "trace.log")
			if mode == "stderr" {
				f.getenv["GIT_CREDENTIAL_BBTOKEN_TRACE"] = "1"
			} else {
				f.getenv["GIT_CREDENTIAL_BBTOKEN_TRACE"] = tracePath
			}
			r := f.run("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\nusername=x-token-auth\n", "get")
			require.Equal(t, ExitOK, r.code, r.stderr)
			assert.Equal(t, "username=x-token-auth\npassword="+wsTok+"\n", r.stdout, "stdout holds protocol lines only")

			trace := r.stderr
			if mode == "file" {
				assert.Empty(t, r.stderr)
				b, err := os.ReadFile(tracePath)
				require.NoError(t, err)
				trace = string(b)
			}
			assertNoSecret(t, "trace", trace)
			for _, line := range strings.Split(strings.TrimSuffix(trace, "\n"), "\n") {
				assert.Regexp(t, regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{6} bbtoken\[\d+\]: `), line)
			}
			assert.Contains(t, trace, `get: protocol="https" host="bitbucket.org" path="ws/repo.git" username="x-token-auth"`)
			assert.Regexp(t, `get: skip `+expired+` \(repository https://bitbucket.org/ws/repo\): expired 2026-10-01`, trace)
			assert.Contains(t, trace, "get: answer with "+ws+" (workspace https://bitbucket.org/ws)")
			assert.Contains(t, trace, "password=****"+wsTok[len(wsTok)-4:])
		})
	}
	t.Run("no answer", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.add(repoTok, "https://bitbucket.org/ws/repo")
		f.getenv["GIT_CREDENTIAL_BBTOKEN_TRACE"] = "1"
		r := f.run("protocol=https\nhost=bitbucket.org\npath=ws/other.git\n", "get")
		require.Equal(t, ExitOK, r.code)
		assert.Empty(t, r.stdout)
		assert.Contains(t, r.stderr, "get: no answer: 0 candidate(s)")
	})
}
