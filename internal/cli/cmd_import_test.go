package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// importFixture is a fixture with a HOME holding a credential-store file.
func importFixture(t *testing.T, content string) (*fixture, string) {
	t.Helper()
	f := newFixture(t)
	home := t.TempDir()
	f.getenv["HOME"] = home
	path := filepath.Join(home, ".git-credentials")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return f, path
}

func TestImport(t *testing.T) {
	t.Parallel()
	content := "https://alice:" + appPw + "@bitbucket.org\n" +
		"https://x-token-auth:" + repoTok + "@bitbucket.org/ws/repo.git\n" +
		"https://alice%40example.com:" + apiTok + "@bitbucket.org\n" +
		"https://x-token-auth:" + wsTok + "@bitbucket.org/ws\n" +
		"https://bob:" + typedPw + "@github.com\n"
	f, path := importFixture(t, content)

	r := f.run("", "import")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assertNoSecret(t, "import's stdout", r.stdout)
	assertNoSecret(t, "import's stderr", r.stderr)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	require.Len(t, lines, 6, r.stdout)
	assert.Equal(t, path+":1: https://alice@bitbucket.org: an app password: Bitbucket app passwords stopped working on 28 July 2026 (git gets HTTP 410), so it is not imported; "+
		"fix: create an API token at https://id.atlassian.com/manage-profile/security/api-tokens with the scopes read:repository:bitbucket and write:repository:bitbucket, then: git-credential-bbtoken add https://bitbucket.org --kind api --username alice --expires YYYY-MM-DD", lines[0])
	assert.Regexp(t, `^`+path+`:2: https://x-token-auth@bitbucket.org/ws/repo.git: imported as [0-9a-f]{8} \(repository token for https://bitbucket.org/ws/repo\)$`, lines[1])
	assert.Regexp(t, `^`+path+`:3: https://alice@example.com@bitbucket.org: imported as [0-9a-f]{8} \(api token for https://bitbucket.org\); git cannot use the Atlassian e-mail`, lines[2])
	assert.Equal(t, path+":4: https://x-token-auth@bitbucket.org/ws: an access token for a workspace URL: it may be a workspace or a project token, so it is not imported; fix: git-credential-bbtoken add https://bitbucket.org/ws --kind workspace (or --kind project)", lines[3])
	assert.Equal(t, path+": 4 Bitbucket line(s): 2 imported, 1 dead app password(s), 1 skipped, 0 failed; 1 other line(s) left alone", lines[4])
	assert.Equal(t, "the imported tokens are still in plaintext in "+path+": import --remove-plaintext removes those lines (tokens already stored are not added twice)", lines[5])
	assert.Equal(t, content, readFileString(t, path), "without --remove-plaintext the file is untouched")

	ix := f.index()
	require.Len(t, ix.Entries, 2)
	for _, e := range ix.Entries {
		assert.Equal(t, "imported from .git-credentials", e.Label)
		switch e.Kind {
		case store.KindRepository:
			assert.Equal(t, repoTok, f.secrets.Snapshot()[e.ID])
		case store.KindAPI:
			assert.Equal(t, "x-bitbucket-api-token-auth", e.Username)
			assert.Equal(t, apiTok, f.secrets.Snapshot()[e.ID])
		default:
			t.Errorf("unexpected entry %+v", e)
		}
	}

	// The imported tokens serve git.
	r = f.run("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n", "get")
	assert.Equal(t, "username=x-token-auth\npassword="+repoTok+"\n", r.stdout)

	// Again with --remove-plaintext: nothing is added twice, and exactly
	// the imported lines go.
	before := len(f.secrets.Snapshot())
	r = f.run("", "import", "--remove-plaintext")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, ":2: https://x-token-auth@bitbucket.org/ws/repo.git: already stored as ")
	assert.Contains(t, r.stdout, "removed the 2 imported line(s) from "+path+"; every other line is unchanged\n")
	assert.Equal(t, before, len(f.secrets.Snapshot()))
	assert.Equal(t, "https://alice:"+appPw+"@bitbucket.org\n"+
		"https://x-token-auth:"+wsTok+"@bitbucket.org/ws\n"+
		"https://bob:"+typedPw+"@github.com\n", readFileString(t, path))
}

// TestImportRemovePlaintextByteForByte: every line that is not imported
// keeps its bytes (CRLF, blank lines, junk, no final newline) and the file
// keeps its mode.
func TestImportRemovePlaintextByteForByte(t *testing.T) {
	t.Parallel()
	kept := "https://bob:" + typedPw + "@github.com\r\n" +
		"\n" +
		"  not a credential line  \n" +
		"https://alice:" + appPw + "@bitbucket.org\n"
	imported := "https://x-token-auth:" + repoTok + "@bitbucket.org/ws/repo\n"
	tail := "https://carol:pw@example.org" // no newline
	f, path := importFixture(t, "")
	full := "https://bob:" + typedPw + "@github.com\r\n" + imported + "\n" + "  not a credential line  \n" + "https://alice:" + appPw + "@bitbucket.org\n" + tail
	require.NoError(t, os.WriteFile(path, []byte(full), 0o640))
	require.NoError(t, os.Chmod(path, 0o640))

	r := f.run("", "import", "--from", path, "--remove-plaintext")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Equal(t, kept+tail, readFileString(t, path))
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm())
	assert.Len(t, f.index().Entries, 1)
}

func TestImportDryRun(t *testing.T) {
	t.Parallel()
	content := "https://x-token-auth:" + repoTok + "@bitbucket.org/ws/repo\n"
	f, path := importFixture(t, content)
	before := f.state()
	r := f.run("", "import", "--dry-run", "--remove-plaintext")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, ":1: https://x-token-auth@bitbucket.org/ws/repo: would import as a repository token for https://bitbucket.org/ws/repo\n")
	assert.Contains(t, r.stdout, "1 Bitbucket line(s): 1 to import, 0 dead app password(s), 0 skipped, 0 failed; 0 other line(s) left alone\n")
	assertUnchanged(t, before, f.state())
	assert.Equal(t, content, readFileString(t, path))
}

func TestImportFailures(t *testing.T) {
	t.Parallel()
	t.Run("no default file", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		home := t.TempDir()
		f.getenv["HOME"] = home
		require.NoError(t, os.MkdirAll(filepath.Join(home, ".config", "git"), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(home, ".config", "git", "credentials"), nil, 0o600))
		r := f.run("", "import")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Equal(t, "no "+filepath.Join(home, ".git-credentials")+": nothing to import\n"+
			"git's store helper also reads "+filepath.Join(home, ".config", "git", "credentials")+": import --from "+filepath.Join(home, ".config", "git", "credentials")+"\n", r.stdout)
	})
	t.Run("missing --from file", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		r := f.run("", "import", "--from", filepath.Join(t.TempDir(), "nope"))
		assert.Equal(t, ExitError, r.code)
		assertOneLine(t, r.stderr)
		assert.Contains(t, r.stderr, "reading ")
	})
	t.Run("usage", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		r := f.run("", "import", "file")
		assert.Equal(t, ExitUsage, r.code)
		assert.Contains(t, r.stderr, "usage: git-credential-bbtoken import [--from FILE] [--dry-run] [--remove-plaintext]")
	})
	t.Run("keyring unavailable", func(t *testing.T) {
		t.Parallel()
		content := "https://x-token-auth:" + repoTok + "@bitbucket.org/ws/repo\n"
		f, path := importFixture(t, content)
		f.secrets.Fail = secrets.ErrUnavailable
		r := f.run("", "import", "--remove-plaintext")
		assert.Equal(t, ExitError, r.code)
		assert.Contains(t, r.stdout, ":1: https://x-token-auth@bitbucket.org/ws/repo: not imported: saving the token in the keyring: keyring unavailable")
		assert.Contains(t, r.stderr, "1 line(s) could not be imported (see above); they stay in "+path)
		assert.Equal(t, content, readFileString(t, path))
		assertNoSecret(t, "stdout", r.stdout)
	})
	t.Run("locked file", func(t *testing.T) {
		t.Parallel()
		content := "https://x-token-auth:" + repoTok + "@bitbucket.org/ws/repo\n"
		f, path := importFixture(t, content)
		require.NoError(t, os.WriteFile(path+".lock", nil, 0o600))
		r := f.run("", "import", "--remove-plaintext")
		assert.Equal(t, ExitError, r.code)
		assert.Contains(t, r.stderr, "the credential file is locked")
		assert.Equal(t, content, readFileString(t, path))
		assert.Len(t, f.index().Entries, 1, "the token was imported; only the removal waits")
	})
}

// TestImportDataCenter: a host set up as Data Center turns entries with a
// username into personal tokens.
func TestImportDataCenter(t *testing.T) {
	t.Parallel()
	f, path := importFixture(t, "https://bob:"+dcTok+"@git.example.com/scm/prj/repo.git\n")
	require.NoError(t, (&store.Store{Dir: f.dir, Secrets: f.secrets}).Update(t.Context(), func(tx *store.Tx) error {
		tx.Index.Hosts = map[string]store.HostConfig{"git.example.com": {Flavor: "datacenter"}}
		tx.Changed()
		return nil
	}))
	r := f.run("", "import", "--from", path)
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Regexp(t, `:1: https://bob@git.example.com/scm/prj/repo.git: imported as [0-9a-f]{8} \(personal token for https://git.example.com/scm/PRJ/repo\)`, r.stdout)
	e := f.index().Entries[0]
	assert.Equal(t, store.KindPersonal, e.Kind)
	assert.Equal(t, "bob", e.Username)
}
