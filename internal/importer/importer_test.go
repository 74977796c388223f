package importer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

const (
	apiTok   = "ATATT3xFfGF0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yapiTokenCCCCC3333"
	repoTok  = "ATCTT3xFfGF0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yrepoTokenAAAA1111"
	otherTok = "ATCTT3xFfGF0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yotherTokenBBB2222"
	appPw    = "ATBB8sfPvFFg3rWkKEHWq6666"
	dcTok    = "BBDC-Zq8vR2mK9tW4dataCenterTokenDDDD4444"
)

func TestSplitKeepsEveryByte(t *testing.T) {
	t.Parallel()
	for _, data := range []string{"", "a", "a\n", "a\nb", "a\r\nb\n\n", "\n\n", "x\ry\n"} {
		var got []byte
		for _, l := range Split([]byte(data)) {
			got = append(got, l.Raw...)
		}
		assert.Equal(t, data, string(got), "%q", data)
	}
	lines := Split([]byte("one\r\ntwo\nthree"))
	require.Len(t, lines, 3)
	assert.Equal(t, Line{N: 1, Raw: []byte("one\r\n"), Text: "one"}, lines[0])
	assert.Equal(t, Line{N: 3, Raw: []byte("three"), Text: "three"}, lines[2])
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		want Entry
		ok   bool
	}{
		{"https://alice:pw@bitbucket.org", Entry{Protocol: "https", Username: "alice", HasUsername: true, Password: "pw", Host: "bitbucket.org"}, true},
		{"https://x-token-auth:" + repoTok + "@bitbucket.org/ws/repo.git", Entry{Protocol: "https", Username: "x-token-auth", HasUsername: true, Password: repoTok, Host: "bitbucket.org", Path: "ws/repo.git"}, true},
		// git percent-encodes everything but unreserved characters.
		{"https://alice%40example.com:p%2Fw%3Ad%40x%25@bitbucket.org/ws/my%20repo", Entry{Protocol: "https", Username: "alice@example.com", HasUsername: true, Password: "p/w:d@x%", Host: "bitbucket.org", Path: "ws/my repo"}, true},
		{"https://bb.example.com:8443/ctx/scm/P/r.git/", Entry{Protocol: "https", Host: "bb.example.com:8443", Path: "ctx/scm/P/r.git"}, true},
		{"https://bob@bb.example.com", Entry{Protocol: "https", Username: "bob", HasUsername: true, Host: "bb.example.com"}, true},
		{"https://a:b+c%zz@h", Entry{Protocol: "https", Username: "a", HasUsername: true, Password: "b+c%zz", Host: "h"}, true},
		{"https://h/p@q", Entry{Protocol: "https", Host: "h", Path: "p@q"}, true},
		{"", Entry{}, false},
		{"# a comment", Entry{}, false},
		{"bitbucket.org", Entry{}, false},
		{"://x:y@h", Entry{}, false},
		{"https://u:p@", Entry{}, false},
		{"https://u:p%0a@h", Entry{}, false},
	}
	for _, tt := range tests {
		got, ok := Parse(tt.line)
		assert.Equal(t, tt.ok, ok, tt.line)
		assert.Equal(t, tt.want, got, tt.line)
	}
	e, _ := Parse("https://alice:" + apiTok + "@bitbucket.org/ws")
	assert.Equal(t, "https://alice@bitbucket.org/ws", e.Display())
	assert.NotContains(t, e.Display(), apiTok)
}

func testIndex() *store.Index {
	return &store.Index{Version: store.IndexVersion, Hosts: map[string]store.HostConfig{
		"bitbucket.org":       {Flavor: "cloud"},
		"bb.example.com":      {Flavor: "datacenter"},
		"cloudlike.example":   {Flavor: "cloud"},
		"bb.example.com:8443": {Flavor: "datacenter"},
	}}
}

func TestPlan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		line     string
		verdict  Verdict
		kind     store.Kind
		username string
		scope    string
		note     string // substring
		fix      string // substring
	}{
		{"api token with username", "https://alice:" + apiTok + "@bitbucket.org", Import, store.KindAPI, "alice", "https://bitbucket.org", "", ""},
		{"api token with a path keeps it", "https://alice:" + apiTok + "@bitbucket.org/ws/repo.git", Import, store.KindAPI, "alice", "https://bitbucket.org/ws/repo", "", ""},
		{"api token with e-mail", "https://alice%40example.com:" + apiTok + "@bitbucket.org", Import, store.KindAPI, "", "https://bitbucket.org", "e-mail", ""},
		{"api token with the static username", "https://x-bitbucket-api-token-auth:" + apiTok + "@bitbucket.org", Import, store.KindAPI, "", "https://bitbucket.org", "", ""},
		{"repository access token", "https://x-token-auth:" + repoTok + "@bitbucket.org/WS/Repo.git", Import, store.KindRepository, "", "https://bitbucket.org/ws/repo", "", ""},
		{"access token for a workspace", "https://x-token-auth:" + repoTok + "@bitbucket.org/ws", Skip, "", "", "https://bitbucket.org/ws", "workspace or a project", "--kind workspace"},
		{"access token without path", "https://x-token-auth:" + repoTok + "@bitbucket.org", Skip, "", "", "https://bitbucket.org", "without a repository path", "--kind repository"},
		{"app password", "https://alice:" + appPw + "@bitbucket.org", Dead, "", "", "https://bitbucket.org", "28 July 2026", "--username alice"},
		{"app password with e-mail", "https://a%40b.c:" + appPw + "@bitbucket.org", Dead, "", "", "https://bitbucket.org", "app password", "YOUR_BITBUCKET_USERNAME"},
		{"unknown secret on Cloud", "https://alice:hunter2@bitbucket.org", Skip, "", "", "https://bitbucket.org", "not a Bitbucket Cloud token", "--kind"},
		{"plain http", "http://alice:" + apiTok + "@bitbucket.org", Skip, "", "", "", "plain http", ""},
		{"cloud flavour on another host", "https://alice:" + apiTok + "@cloudlike.example", Import, store.KindAPI, "alice", "https://cloudlike.example", "", ""},
		{"data center personal token", "https://bob:" + dcTok + "@bb.example.com", Import, store.KindPersonal, "bob", "https://bb.example.com", "", ""},
		{"data center with port and path", "https://bob:" + dcTok + "@bb.example.com:8443/scm/p/r.git", Import, store.KindPersonal, "bob", "https://bb.example.com:8443/scm/P/r", "", ""},
		{"data center without username", "https://:" + dcTok + "@bb.example.com", Skip, "", "", "https://bb.example.com", "no username", "--kind"},
		{"no password", "https://alice@bitbucket.org", Skip, "", "", "https://bitbucket.org", "no password", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			items := Plan(Split([]byte(tt.line+"\n")), testIndex())
			require.Len(t, items, 1)
			it := items[0]
			assert.Equal(t, tt.verdict, it.Verdict)
			assert.Equal(t, tt.kind, it.Kind)
			assert.Equal(t, tt.username, it.Username)
			assert.Equal(t, tt.scope, it.Scope)
			assert.Contains(t, it.Note, tt.note)
			assert.Contains(t, it.Fix, tt.fix)
			if tt.name == "api token with e-mail" {
				assert.Equal(t, "alice@example.com", it.Email)
			} else {
				assert.Empty(t, it.Email)
			}
			for _, s := range []string{apiTok, repoTok, appPw, dcTok, "hunter2"} {
				assert.NotContains(t, it.Note+it.Fix+it.Entry.Display(), s)
			}
		})
	}
}

func TestPlanIgnoresOtherHostsAndDuplicates(t *testing.T) {
	t.Parallel()
	data := "https://bob:gh-secret@github.com\n" +
		"garbage\n" +
		"https://x-token-auth:" + repoTok + "@bitbucket.org/ws/repo\n" +
		"https://x-token-auth:" + otherTok + "@bitbucket.org/ws/repo.git\n" +
		"https://u:p@unknown.example/scm/P/r.git\n"
	items := Plan(Split([]byte(data)), &store.Index{Version: 1})
	require.Len(t, items, 2)
	assert.Equal(t, 3, items[0].Line.N)
	assert.Equal(t, Import, items[0].Verdict)
	assert.Equal(t, Skip, items[1].Verdict)
	assert.Contains(t, items[1].Note, "line 3 has a repository token for the same scope")
}

// newHelper is a helper on a memory keyring in a temp config directory.
func newHelper(t *testing.T) (*helper.Helper, *memory.Backend) {
	t.Helper()
	mem := memory.New()
	now := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	return &helper.Helper{Store: &store.Store{Dir: t.TempDir(), Secrets: mem}, Now: func() time.Time { return now }}, mem
}

func writeFile(t *testing.T, data string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), ".git-credentials")
	require.NoError(t, os.WriteFile(p, []byte(data), mode))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

// TestRunRemovePlaintextKeepsEveryOtherByte imports the tokens of a file
// and removes exactly their lines: other hosts, dead app passwords,
// skipped lines, garbage, CRLF endings and a last line without a newline
// stay byte for byte, and the file keeps its mode.
func TestRunRemovePlaintextKeepsEveryOtherByte(t *testing.T) {
	t.Parallel()
	h, mem := newHelper(t)
	keep := []string{
		"https://bob:gh-secret@github.com\n",
		"https://alice:" + appPw + "@bitbucket.org\n",
		"not a URL at all\r\n",
		"\n",
		"https://x-token-auth:" + otherTok + "@bitbucket.org/ws\n",
	}
	imported := []string{
		"https://alice%40example.com:" + apiTok + "@bitbucket.org\r\n",
		"https://x-token-auth:" + repoTok + "@bitbucket.org/ws/repo.git\n",
	}
	last := "https://carol:ghp-last@github.com" // no newline at the end
	data := keep[0] + imported[0] + keep[1] + keep[2] + imported[1] + keep[3] + keep[4] + last
	path := writeFile(t, data, 0o640)

	rep, err := Run(context.Background(), h, Options{File: path, RemovePlaintext: true})
	require.NoError(t, err)
	assert.Equal(t, 2, rep.Removed)
	assert.Equal(t, 2, rep.Count(func(r Result) bool { return r.Imported }))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, keep[0]+keep[1]+keep[2]+keep[3]+keep[4]+last, string(got))
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o640), st.Mode().Perm())
	}
	_, err = os.Stat(path + ".lock")
	assert.True(t, os.IsNotExist(err), "the lock file is left behind")

	ix, err := h.Store.Load()
	require.NoError(t, err)
	require.Len(t, ix.Entries, 2)
	byKind := map[store.Kind]store.Entry{}
	for _, e := range ix.Entries {
		byKind[e.Kind] = e
		assert.Equal(t, "imported from .git-credentials", e.Label)
	}
	assert.Equal(t, "https://bitbucket.org", byKind[store.KindAPI].URL)
	assert.Equal(t, helper.UserAPIToken, byKind[store.KindAPI].Username, "an e-mail is not a git username")
	assert.Equal(t, "alice@example.com", byKind[store.KindAPI].Email, "the e-mail is kept for verify")
	assert.Equal(t, "https://bitbucket.org/ws/repo", byKind[store.KindRepository].URL)
	v, _, err := mem.Get(context.Background(), byKind[store.KindRepository].ID, "", nil)
	require.NoError(t, err)
	assert.Equal(t, repoTok, v)
	assert.Equal(t, 2, mem.Len())
}

// TestRunIsIdempotent: a second run finds the tokens already stored (and
// can then remove their lines); a different token already stored for the
// scope is never replaced and its line stays.
func TestRunIsIdempotent(t *testing.T) {
	t.Parallel()
	h, mem := newHelper(t)
	data := "https://x-token-auth:" + repoTok + "@bitbucket.org/ws/repo\n"
	path := writeFile(t, data, 0o600)
	ctx := context.Background()
	rep, err := Run(ctx, h, Options{File: path})
	require.NoError(t, err)
	require.True(t, rep.Results[0].Imported)
	id := rep.Results[0].ID
	got, _ := os.ReadFile(path)
	assert.Equal(t, data, string(got), "without --remove-plaintext the file is not touched")

	rep, err = Run(ctx, h, Options{File: path, RemovePlaintext: true})
	require.NoError(t, err)
	assert.True(t, rep.Results[0].Already)
	assert.Equal(t, id, rep.Results[0].ID)
	assert.Equal(t, 1, rep.Removed)
	assert.Equal(t, 1, mem.Len())

	// Another token for the same scope and kind is not imported.
	data = "https://x-token-auth:" + otherTok + "@bitbucket.org/ws/repo\n"
	require.NoError(t, os.WriteFile(path, []byte(data), 0o600))
	rep, err = Run(ctx, h, Options{File: path, RemovePlaintext: true})
	require.NoError(t, err)
	assert.Equal(t, Skip, rep.Results[0].Verdict)
	assert.Contains(t, rep.Results[0].Note, "already stored ("+id+")")
	assert.Zero(t, rep.Removed)
	got, _ = os.ReadFile(path)
	assert.Equal(t, data, string(got))
	v, _, _ := mem.Get(ctx, id, "", nil)
	assert.Equal(t, repoTok, v)
}

func TestRunDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	h, mem := newHelper(t)
	data := "https://x-token-auth:" + repoTok + "@bitbucket.org/ws/repo\n"
	path := writeFile(t, data, 0o600)
	rep, err := Run(context.Background(), h, Options{File: path, DryRun: true, RemovePlaintext: true})
	require.NoError(t, err)
	assert.Equal(t, Import, rep.Results[0].Verdict)
	assert.False(t, rep.Results[0].Imported)
	assert.Zero(t, mem.Len())
	got, _ := os.ReadFile(path)
	assert.Equal(t, data, string(got))
	_, err = os.Stat(filepath.Join(h.Store.Dir, store.IndexFile))
	assert.True(t, os.IsNotExist(err))
}

// TestRunKeyringFault: when the keyring fails, nothing is imported and no
// line is removed.
func TestRunKeyringFault(t *testing.T) {
	t.Parallel()
	h, mem := newHelper(t)
	mem.Fail = secrets.ErrUnavailable
	data := "https://x-token-auth:" + repoTok + "@bitbucket.org/ws/repo\nhttps://alice:" + apiTok + "@bitbucket.org\n"
	path := writeFile(t, data, 0o600)
	rep, err := Run(context.Background(), h, Options{File: path, RemovePlaintext: true})
	require.NoError(t, err)
	for _, r := range rep.Results {
		assert.ErrorIs(t, r.Err, secrets.ErrUnavailable)
		assert.False(t, r.Imported)
	}
	assert.Contains(t, rep.Results[1].Err.Error(), "not tried")
	got, _ := os.ReadFile(path)
	assert.Equal(t, data, string(got))
}

// TestRunValidationErrorKeepsLine: add's checks apply; a refused token is
// reported and its line kept while the others are imported.
func TestRunValidationErrorKeepsLine(t *testing.T) {
	t.Parallel()
	h, _ := newHelper(t)
	bad := "https://x-token-auth:ATCTT3%20with%20spaces@bitbucket.org/ws/bad\n"
	good := "https://x-token-auth:" + repoTok + "@bitbucket.org/ws/repo\n"
	path := writeFile(t, bad+good, 0o600)
	rep, err := Run(context.Background(), h, Options{File: path, RemovePlaintext: true})
	require.NoError(t, err)
	assert.ErrorIs(t, rep.Results[0].Err, helper.ErrBadToken)
	assert.True(t, rep.Results[1].Imported)
	got, _ := os.ReadFile(path)
	assert.Equal(t, bad, string(got))
}

func TestRemoveLinesLockAndSymlink(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real := filepath.Join(dir, "real-credentials")
	require.NoError(t, os.WriteFile(real, []byte("a\nb\nc\n"), 0o600))
	link := filepath.Join(dir, ".git-credentials")
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("no symlinks here: %v", err)
	}
	n, err := RemoveLines(link, []string{"b"})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	st, err := os.Lstat(link)
	require.NoError(t, err)
	assert.True(t, st.Mode()&os.ModeSymlink != 0, "the symlink was replaced")
	got, _ := os.ReadFile(real)
	assert.Equal(t, "a\nc\n", string(got))

	require.NoError(t, os.WriteFile(real+".lock", nil, 0o600))
	_, err = RemoveLines(link, []string{"a"})
	assert.ErrorIs(t, err, ErrLocked)
	got, _ = os.ReadFile(real)
	assert.Equal(t, "a\nc\n", string(got))
	lock, _ := os.ReadFile(real + ".lock")
	assert.Empty(t, lock, "someone else's lock file was touched")

	require.NoError(t, os.Remove(real+".lock"))
	n, err = RemoveLines(link, []string{"nothing"})
	require.NoError(t, err)
	assert.Zero(t, n)
	_, err = os.Stat(real + ".lock")
	assert.True(t, os.IsNotExist(err))
}

// TestNoSecretInResults: nothing a report shows holds a token.
func TestNoSecretInResults(t *testing.T) {
	t.Parallel()
	h, _ := newHelper(t)
	data := strings.Join([]string{
		"https://alice:" + appPw + "@bitbucket.org",
		"https://x-token-auth:" + repoTok + "@bitbucket.org",
		"https://alice%40example.com:" + apiTok + "@bitbucket.org",
	}, "\n")
	path := writeFile(t, data, 0o600)
	rep, err := Run(context.Background(), h, Options{File: path})
	require.NoError(t, err)
	var buf bytes.Buffer
	for _, r := range rep.Results {
		buf.WriteString(r.Entry.Display() + r.Note + r.Fix + r.Scope + r.URL)
		if r.Err != nil {
			buf.WriteString(r.Err.Error())
		}
		buf.WriteString(r.Entry.Password.String())
	}
	for _, s := range []string{appPw, repoTok, apiTok} {
		assert.NotContains(t, buf.String(), s)
	}
}

// The slot holds an env entry whose variable is unset here: import leaves
// it alone (it never replaces a token) instead of failing on the variable.
func TestRunEnvEntryInTheSlot(t *testing.T) {
	t.Parallel()
	h, mem := newHelper(t)
	h.Store.Getenv = func(string) string { return "" }
	ctx := context.Background()
	_, err := h.Add(ctx, helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindRepository, FromEnv: "CI_TOKEN"})
	require.NoError(t, err)
	path := writeFile(t, "https://x-token-auth:"+repoTok+"@bitbucket.org/ws/repo\n", 0o600)
	rep, err := Run(ctx, h, Options{File: path})
	require.NoError(t, err)
	require.NoError(t, rep.Results[0].Err)
	assert.Equal(t, Skip, rep.Results[0].Verdict)
	assert.Contains(t, rep.Results[0].Note, "already stored")
	assert.Zero(t, mem.Len(), "nothing went to the keyring")
}
