package helper_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/passstore"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// Entries a teammate wrote (this machine has never seen them): get chooses
// from their names, decrypts only the one it chose, keeps it for next
// time, and goes on to the next candidate when the chosen one is expired
// or unreadable.
func TestPassGetReadsOnlyTheChosen(t *testing.T) {
	f := newPassFixture(t)
	ctx := context.Background()
	write := func(name, body string) {
		t.Helper()
		_, err := f.h.Store.Pass.Write(ctx, name, body, "")
		require.NoError(t, err)
	}
	reads := func() int { return strings.Count(f.trace.String(), "pass: read ") }
	const (
		repoTok = "ATCTT3xTeamRepoToken0123456789abcdef0123456789abcdef0123"
		wsTok   = "ATCTT3xTeamWorkspace0123456789abcdef0123456789abcdef0123"
		apiTok  = "ATATT3xTeamApiToken0123456789abcdef0123456789abcdef01234"
		oldTok  = "ATCTT3xTeamExpired0123456789abcdef0123456789abcdef012345"
		ws2Tok  = "ATCTT3xTeamWs2Token0123456789abcdef0123456789abcdef01234"
	)
	f.remember(repoTok, wsTok, apiTok, oldTok, ws2Tok)
	write("bitbucket.org/ws/repo", repoTok+"\nkind: repository\n")
	write("bitbucket.org/ws", wsTok+"\n")
	write("alice@bitbucket.org", apiTok+"\nkind: api\n")
	write("bitbucket.org/ws2/repo", oldTok+"\nexpires: 2020-01-01\n")
	write("bitbucket.org/ws2", ws2Tok+"\n")

	in := q(cloudQ, "path=ws/repo.git")
	require.Equal(t, q("username=x-token-auth", "password="+repoTok), f.get(in))
	require.Equal(t, 1, reads(), "get decrypted more than the entry it chose:\n%s", f.trace.String())
	require.Equal(t, q("username=x-token-auth", "password="+repoTok), f.get(in))
	require.Equal(t, 1, reads(), "the second get decrypted again: the first did not keep what it read")

	// The chosen one expired: the next is read and served, and no
	// warning or Bearer notice comes from the expired one.
	f.notices.Reset()
	require.Equal(t, q("username=x-token-auth", "password="+ws2Tok), f.get(q(cloudQ, "path=ws2/repo.git")))
	require.Equal(t, 3, reads())
	require.Empty(t, f.notices.String())

	// Unreadable (not gpg at all): skipped, the broader entry answers.
	garbage := filepath.Join(f.h.Store.Pass.Dir, passstore.Folder, "bitbucket.org", "ws", "other.gpg")
	require.NoError(t, os.WriteFile(garbage, []byte("not an OpenPGP message"), 0o600))
	require.Equal(t, q("username=x-token-auth", "password="+wsTok), f.get(q(cloudQ, "path=ws/other.git")))

	// A password store that is not there (a mistyped PASSWORD_STORE_DIR)
	// is not an empty one: nothing cached is dropped, and get says why it
	// answers nothing.
	before := f.snapshot()
	dir := f.h.Store.Pass.Dir
	f.h.Store.Pass.Dir = dir + "-missing"
	_, err := f.h.Get(ctx, f.read(in))
	require.ErrorIs(t, err, store.ErrNoPass)
	require.Contains(t, err.Error(), "PASSWORD_STORE_DIR")
	require.NoError(t, f.h.RefreshPass(ctx))
	f.h.Store.Pass.Dir = dir
	f.requireUnchanged(before)
}

// A body that contradicts its name is not served (the name is what pass
// ls shows), and the skip names the fix.
func TestPassBodyMustMatchName(t *testing.T) {
	f := newPassFixture(t)
	ctx := context.Background()
	const tok = "ATCTT3xTeamMismatch0123456789abcdef0123456789abcdef01234"
	f.remember(tok)
	_, err := f.h.Store.Pass.Write(ctx, "bitbucket.org/ws/repo", tok+"\nkind: workspace\n", "")
	require.NoError(t, err)
	a, err := f.h.Get(ctx, f.read(q(cloudQ, "path=ws/repo.git")))
	require.Nil(t, a)
	require.ErrorContains(t, err, "its kind line says workspace")
	require.NoError(t, f.h.RefreshPass(ctx))
	require.Contains(t, f.notices.String(), "pass rm "+passstore.Folder+"/bitbucket.org/ws/repo")
	require.Empty(t, f.index().Entries)
}

// A typed password whose user name has spaces, stored by git with the
// store setting on pass, is read back under its name by every machine.
func TestPassStoredUserWithSpaces(t *testing.T) {
	f := newPassFixture(t)
	f.store(q(cloudQ, "path=ws/repo.git", "username=John Doe", "password=typed-password-9"))
	stored := f.storedEntries()
	require.Len(t, stored, 1)
	require.Equal(t, "John%20Doe@bitbucket.org/ws/repo+stored", stored[0].Name)
	require.NoError(t, os.Remove(f.h.Store.Path())) // a fresh machine: nothing cached
	require.Equal(t, q("username=John Doe", "password=typed-password-9"), f.get(q(cloudQ, "path=ws/repo.git", "username=John Doe")))
}
