package helper_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

const cloudQ = "protocol=https\nhost=bitbucket.org"

// git calls store after every successful request, on every helper: when
// the credential is what get serves, nothing at all may be written.
func TestStoreNoOpWhenAlreadyServed(t *testing.T) { eachStoreLong(t, testStoreNoOpWhenAlreadyServed) }

func testStoreNoOpWhenAlreadyServed(t *testing.T, newFixture func(*testing.T) *fixture) {
	exp := fmt.Sprintf("password_expiry_utc=%d", datedExpiry.Unix())
	tests := []struct {
		name string
		in   string // what git's store sends (get's answer merged into the query)
	}{
		{"repository token", q(cloudQ, "path=ws/repo.git", "username=x-token-auth", "password="+repoTok)},
		{"repository token lfs", q(cloudQ, "path=ws/repo.git/info/lfs", "username=x-token-auth", "password="+repoTok)},
		{"repository token host case", q("protocol=https", "host=BitBucket.org:443", "path=WS/Repo.git", "username=x-token-auth", "password="+repoTok)},
		{"repository token with state", q("capability[]=state", cloudQ, "path=ws/repo.git", "username=x-token-auth", "password="+repoTok, "state[]=bbtoken:id={repo}")},
		{"project token", q(cloudQ, "path=ws/other.git", "username=x-token-auth", "password="+projTok)},
		{"host-wide api token on a path", q(cloudQ, "path=other/x.git", "username=alice", "password="+apiTok)},
		{"host-wide api token without path", q(cloudQ, "username=alice", "password="+apiTok)},
		{"fixed api username", q(cloudQ, "path=ws3/x.git", "username=x-bitbucket-api-token-auth", "password="+api3Tok)},
		{"token with an expiry", q(cloudQ, "path=ws/dated.git", "username=x-token-auth", "password="+datedTok, exp)},
		{"dc personal", q("protocol=https", "host=bb.example.com", "path=scm/X/y.git", "username=bob", "password="+personalTok)},
		{"dc bearer", q("capability[]=authtype", "protocol=https", "host=bb.example.com", "path=scm/PROJ/repo.git", "authtype=Bearer", "credential="+dcRepoTok)},
		{"dc bearer with state", q("capability[]=authtype", "capability[]=state", "protocol=https", "host=bb.example.com", "path=scm/PROJ/repo.git", "authtype=Bearer", "credential="+dcRepoTok, "state[]=bbtoken:id={dcrepo}")},
		{"dc context path", q("capability[]=authtype", "protocol=https", "host=ctx.example.com", "path=bitbucket/scm/P/r.git", "authtype=Bearer", "credential="+ctxTok)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			standardTokens(f)
			before := f.snapshot()
			time.Sleep(10 * time.Millisecond) // a rewrite would show in the mtime
			gets := f.sec.gets.Load()
			f.store(f.expand(tt.in))
			f.requireUnchanged(before)
			assert.Equal(t, gets, f.sec.gets.Load(), "an added token's check spares the keyring read")
		})
	}
}

// Without a check (an index written before checks existed) or with one
// that does not match, store asks the keyring: still a no-op when the
// keyring holds the credential, and a change is still seen.
func TestStoreCheckFallsBackToKeyring(t *testing.T) {
	in := q(cloudQ, "path=ws/repo.git", "username=x-token-auth", "password="+repoTok)
	for _, check := range []string{"", "v1:AAAAAAAAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA", "v9:x:y", "garbage"} {
		t.Run(check, func(t *testing.T) {
			f := newFixture(t)
			standardTokens(f)
			f.mutate(func(ix *store.Index) {
				for i := range ix.Entries {
					ix.Entries[i].Check = check
				}
			})
			before := f.snapshot()
			time.Sleep(10 * time.Millisecond)
			gets := f.sec.gets.Load()
			f.store(f.expand(in))
			f.requireUnchanged(before)
			assert.Greater(t, f.sec.gets.Load(), gets, "the keyring decides")
		})
	}
	// Another token for the same repository is not taken for the added one.
	f := newFixture(t)
	standardTokens(f)
	f.store(q(cloudQ, "path=ws/repo.git", "username=x-token-auth", "password=ATCTT3xAnotherTokenTypedAtThePrompt0123456789"))
	require.Len(t, f.storedEntries(), 1)
}

func TestAddKeepsACheckOnly(t *testing.T) {
	f := newFixture(t)
	standardTokens(f)
	for _, e := range f.index().Entries {
		assert.NotEmpty(t, e.Check, "%s", e.URL)
		assert.NotContains(t, e.Check, repoTok)
	}
	f.store(q(cloudQ, "path=ws/typed.git", "username=alice", "password=typed-password-1"))
	for _, e := range f.storedEntries() {
		assert.Empty(t, e.Check, "a typed password gets no check: it could be guessed from one")
	}
}

func TestStoreNoOpForStoredCredential(t *testing.T) {
	f := newFixture(t)
	in := q(cloudQ, "path=ws/repo.git", "username=alice", "password=typed-password-1")
	f.store(in)
	require.Len(t, f.storedEntries(), 1)
	assert.Equal(t, q("username=alice", "password=typed-password-1"), f.get(q(cloudQ, "path=ws/repo.git")))

	before := f.snapshot()
	time.Sleep(10 * time.Millisecond)
	f.store(in)
	f.store(q(cloudQ, "path=ws/repo.git/info/lfs", "username=alice", "password=typed-password-1"))
	f.store(q(cloudQ, "path=WS/REPO", "username=alice", "password=typed-password-1"))
	f.requireUnchanged(before)

	// With a refresh token and an expiry, all of it must match.
	exp := t0.Add(2 * time.Hour).Unix()
	full := q(cloudQ, "path=ws/repo.git", "username=alice", "password=typed-password-2",
		fmt.Sprintf("password_expiry_utc=%d", exp), "oauth_refresh_token=refresh-token-1")
	f.store(full)
	before = f.snapshot()
	time.Sleep(10 * time.Millisecond)
	f.store(full)
	f.requireUnchanged(before)
}

// A credential git stores that differs from what get serves is kept.
func TestStoreKeepsWhatDiffers(t *testing.T) {
	f := newFixture(t)
	standardTokens(f)
	// Another username than the token's (typed at the prompt).
	f.store(q(cloudQ, "path=other/x.git", "username=carol", "password=carols-password"))
	// Another password for a path a token covers.
	f.store(q(cloudQ, "path=ws/new.git", "username=x-token-auth", "password=another-token-1"))
	type row struct{ URL, Username string }
	var got []row
	for _, e := range f.storedEntries() {
		got = append(got, row{e.URL, e.Username})
		assert.Equal(t, store.StateActive, e.State)
		assert.True(t, e.UsernameSet)
	}
	assert.Equal(t, []row{{"https://bitbucket.org/other/x", "carol"}, {"https://bitbucket.org/ws/new", "x-token-auth"}}, got)
	assert.Equal(t, q("username=carol", "password=carols-password"), f.get(q(cloudQ, "path=other/x.git", "username=carol")))
	// The stored entry (ws/new) is deeper than the project token (ws).
	assert.Equal(t, q("username=x-token-auth", "password=another-token-1"), f.get(q(cloudQ, "path=ws/new.git")))
}

func TestStoreScope(t *testing.T) {
	tests := []struct {
		name, in, wantURL string
	}{
		{"repository path", q(cloudQ, "path=WS/Repo.git", "username=u", "password=secret-pw"), "https://bitbucket.org/ws/repo"},
		{"lfs path stored for the repository", q(cloudQ, "path=ws/repo.git/info/lfs", "username=u", "password=secret-pw"), "https://bitbucket.org/ws/repo"},
		{"no path: host-wide", q(cloudQ, "username=u", "password=secret-pw"), "https://bitbucket.org"},
		{"default port dropped", q("protocol=https", "host=BB.example.com:443", "path=scm/proj/Repo.git/info/lfs", "username=u", "password=secret-pw"), "https://bb.example.com/scm/PROJ/Repo"},
		{"other port kept", q("protocol=https", "host=bb.example.com:8443", "path=ctx/scm/P/r.git", "username=u", "password=secret-pw"), "https://bb.example.com:8443/ctx/scm/P/r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.store(tt.in)
			stored := f.storedEntries()
			require.Len(t, stored, 1)
			assert.Equal(t, tt.wantURL, stored[0].URL)
			assert.Equal(t, store.KindStored, stored[0].Kind)
		})
	}
}

func TestStoreSkips(t *testing.T) {
	tests := []struct{ name, in string }{
		{"ephemeral", q("capability[]=authtype", cloudQ, "path=ws/repo.git", "authtype=Bearer", "credential=ephemeral-tok", "ephemeral=1")},
		{"ephemeral password", q(cloudQ, "path=ws/repo.git", "username=u", "password=ephemeral-pw", "ephemeral=1")},
		{"expired now", q(cloudQ, "username=u", "password=expired-pw", fmt.Sprintf("password_expiry_utc=%d", t0.Unix()))},
		{"expired before", q(cloudQ, "username=u", "password=expired-pw", fmt.Sprintf("password_expiry_utc=%d", t0.Unix()-1))},
		{"plain http", q("protocol=http", "host=bitbucket.org", "username=u", "password=http-password")},
		{"ssh", q("protocol=ssh", "host=bitbucket.org", "username=u", "password=ssh-password")},
		{"bad host", q("protocol=https", "host=a@bitbucket.org", "username=u", "password=host-password")},
		{"traversal path", q(cloudQ, "path=ws/../x.git", "username=u", "password=path-password")},
		{"escaped path", q(cloudQ, "path=ws/%2e%2e/x.git", "username=u", "password=path-password")},
		{"no password", q(cloudQ, "username=u")},
		{"authtype without credential", q("capability[]=authtype", cloudQ, "authtype=Bearer")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			before := f.snapshot()
			f.store(tt.in)
			f.requireUnchanged(before)
			assert.Zero(t, f.secretCount())
		})
	}
}

func TestStoreRequiresProtocolAndHost(t *testing.T) {
	f := newFixture(t)
	for _, in := range []string{q("host=bitbucket.org", "username=u", "password=p"), q("protocol=https", "username=u", "password=p")} {
		err := f.h.StoreCredential(context.Background(), f.read(in))
		require.ErrorIs(t, err, helper.ErrBadRequest)
		err = f.h.Erase(context.Background(), f.read(in))
		require.ErrorIs(t, err, helper.ErrBadRequest)
	}
}

func TestStoreOverwrite(t *testing.T) { eachStore(t, testStoreOverwrite) }

func testStoreOverwrite(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	f.store(q(cloudQ, "path=ws/repo.git", "username=alice", "password=old-password"))
	old := f.storedEntries()[0]
	f.now = t0.Add(time.Minute)
	f.store(q(cloudQ, "path=ws/repo.git/info/lfs", "username=alice", "password=new-password"))

	stored := f.storedEntries()
	require.Len(t, stored, 1)
	if !f.pass { // the password store rewrites the slot's entry in place
		assert.NotEqual(t, old.ID, stored[0].ID)
	}
	assert.Equal(t, old.Created, stored[0].Created)
	assert.Equal(t, t0.Add(time.Minute), stored[0].Updated)
	if v, err := f.secretOf(old.ID); f.pass {
		assert.Equal(t, "new-password", v, "the slot's entry still holds the old password")
	} else {
		require.ErrorIs(t, err, secrets.ErrNotFound, "the old secret stays in the keyring")
	}
	assert.Equal(t, 1, f.secretCount())
	assert.Equal(t, q("username=alice", "password=new-password"), f.get(q(cloudQ, "path=ws/repo.git")))

	// Another username is another credential.
	f.store(q(cloudQ, "path=ws/repo.git", "username=bob", "password=bobs-password"))
	assert.Len(t, f.storedEntries(), 2)
	// Another path too.
	f.store(q(cloudQ, "path=ws/repo2.git", "username=alice", "password=new-password"))
	assert.Len(t, f.storedEntries(), 3)
}

func TestStoreRoundTripsExpiryAndRefreshToken(t *testing.T) {
	eachStore(t, testStoreRoundTripsExpiryAndRefreshToken)
}

func testStoreRoundTripsExpiryAndRefreshToken(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	exp := t0.Add(2 * time.Hour).Unix()
	f.store(q(cloudQ, "path=ws/repo.git", "username=x-token-auth", "password=oauth-access-1",
		fmt.Sprintf("password_expiry_utc=%d", exp), "oauth_refresh_token=oauth-refresh-1"))
	want := q("username=x-token-auth", "password=oauth-access-1", fmt.Sprintf("password_expiry_utc=%d", exp), "oauth_refresh_token=oauth-refresh-1")
	assert.Equal(t, want, f.get(q(cloudQ, "path=ws/repo.git")))
	if !f.pass { // a password store keeps it as a line of the entry
		assert.Equal(t, store.SecretJSON, f.storedEntries()[0].Format)
	}

	// A rotated refresh token with the same access token is kept.
	f.store(q(cloudQ, "path=ws/repo.git", "username=x-token-auth", "password=oauth-access-1",
		fmt.Sprintf("password_expiry_utc=%d", exp), "oauth_refresh_token=oauth-refresh-2"))
	assert.Equal(t, q("username=x-token-auth", "password=oauth-access-1", fmt.Sprintf("password_expiry_utc=%d", exp), "oauth_refresh_token=oauth-refresh-2"),
		f.get(q(cloudQ, "path=ws/repo.git")))
	assert.Len(t, f.storedEntries(), 1)

	// A new expiry alone is kept too.
	exp2 := exp + 3600
	f.store(q(cloudQ, "path=ws/repo.git", "username=x-token-auth", "password=oauth-access-1",
		fmt.Sprintf("password_expiry_utc=%d", exp2), "oauth_refresh_token=oauth-refresh-2"))
	assert.Contains(t, f.get(q(cloudQ, "path=ws/repo.git")), fmt.Sprintf("password_expiry_utc=%d\n", exp2))

	// Once expired it is never served.
	f.now = time.Unix(exp2, 0)
	assert.Equal(t, "", f.get(q(cloudQ, "path=ws/repo.git")))
}

func TestStoreRoundTripsBearer(t *testing.T) { eachStore(t, testStoreRoundTripsBearer) }

func testStoreRoundTripsBearer(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	const c = "capability[]=authtype\nprotocol=https\nhost=bb.example.com"
	f.store(q(c, "path=scm/P/r.git", "authtype=Bearer", "credential=stored-bearer-1"))
	stored := f.storedEntries()
	require.Len(t, stored, 1)
	assert.Equal(t, "Bearer", stored[0].AuthType)
	assert.Equal(t, q("capability[]=authtype", "authtype=Bearer", "credential=stored-bearer-1"), f.get(q(c, "path=scm/P/r.git")))
	// Without the capability it is not offered (and git stored it, so no
	// notice about an added token either).
	assert.Equal(t, "", f.get(q("protocol=https", "host=bb.example.com", "path=scm/P/r.git")))
	assert.Empty(t, f.notices.String())

	before := f.snapshot()
	f.store(q(c, "path=scm/P/r.git", "authtype=Bearer", "credential=stored-bearer-1"))
	f.requireUnchanged(before)
}

func TestStoreEmptyUsername(t *testing.T) {
	f := newFixture(t)
	f.store(q("protocol=https", "host=sso.example.com", "username=", "password=sso-password"))
	assert.Equal(t, q("username=", "password=sso-password"), f.get(q("protocol=https", "host=sso.example.com")))
	assert.Equal(t, q("username=", "password=sso-password"), f.get(q("protocol=https", "host=sso.example.com", "username=")))
	assert.Equal(t, "", f.get(q("protocol=https", "host=sso.example.com", "username=someone")))

	before := f.snapshot()
	f.store(q("protocol=https", "host=sso.example.com", "username=", "password=sso-password"))
	f.requireUnchanged(before)

	// No username at all is yet another credential, served without one.
	f.store(q("protocol=https", "host=nouser.example.com", "password=nouser-password"))
	stored := f.storedEntries()
	require.Len(t, stored, 2)
	assert.False(t, stored[1].UsernameSet)
	assert.Equal(t, q("password=nouser-password"), f.get(q("protocol=https", "host=nouser.example.com")))
	assert.Equal(t, "", f.get(q("protocol=https", "host=nouser.example.com", "username=x")))
}

// --- erase ---------------------------------------------------------------

func TestEraseAddedTokenForItsOwnScope(t *testing.T) { eachStore(t, testEraseAddedTokenForItsOwnScope) }

func testEraseAddedTokenForItsOwnScope(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	standardTokens(f)
	f.erase(q(cloudQ, "path=ws/repo.git", "username=x-token-auth", "password="+repoTok))

	e := f.entry("repo")
	assert.Equal(t, store.StateRejected, e.State)
	assert.Equal(t, store.StateRejected, e.EffectiveState(f.now))
	assert.Empty(t, e.RejectedFor)
	secret, err := f.secretOf(e.ID)
	require.NoError(t, err, "an added token is never deleted")
	assert.Equal(t, repoTok, secret)
	// The next candidate is offered.
	assert.Equal(t, q("username=x-token-auth", "password="+projTok), f.get(q(cloudQ, "path=ws/repo.git")))
	// Nothing else changed.
	for _, name := range []string{"api", "proj", "dated", "ws", "api3", "personal", "dcproj", "dcrepo", "ctx"} {
		assert.Equal(t, store.StateActive, f.entry(name).State, name)
		assert.Empty(t, f.entry(name).RejectedFor, name)
	}

	// Revived when git stores the same token after a success (typed again).
	before := f.sec.sets.Load()
	f.store(q(cloudQ, "path=ws/repo.git", "username=x-token-auth", "password="+repoTok))
	assert.Equal(t, store.StateActive, f.entry("repo").State)
	assert.Equal(t, before, f.sec.sets.Load(), "revival must not copy the token")
	assert.Empty(t, f.storedEntries())
	assert.Equal(t, q("username=x-token-auth", "password="+repoTok), f.get(q(cloudQ, "path=ws/repo.git")))
}

func TestEraseRevivedByAddAgain(t *testing.T) { eachStore(t, testEraseRevivedByAddAgain) }

func testEraseRevivedByAddAgain(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	standardTokens(f)
	f.erase(q(cloudQ, "path=ws/repo.git/info/lfs", "username=x-token-auth", "password="+repoTok))
	require.Equal(t, store.StateRejected, f.entry("repo").State)
	f.add("repo", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Token: repoTok})
	assert.Equal(t, store.StateActive, f.entry("repo").State)
	assert.Equal(t, q("username=x-token-auth", "password="+repoTok), f.get(q(cloudQ, "path=ws/repo.git")))
}

func TestEraseBroaderTokenOnlyForThatRepository(t *testing.T) {
	eachStoreLong(t, testEraseBroaderTokenOnlyForThatRepository)
}

func testEraseBroaderTokenOnlyForThatRepository(t *testing.T, newFixture func(*testing.T) *fixture) {
	tests := []struct {
		name, erase, entry, wantRejectedFor string
		next, stillServed                   string
	}{
		{"project token", q(cloudQ, "path=ws/other.git", "username=x-token-auth", "password="+projTok), "proj", "ws/other",
			q(cloudQ, "path=ws/other.git"), q(cloudQ, "path=ws/third.git")},
		{"project token via lfs", q(cloudQ, "path=WS/Other.git/info/lfs", "username=x-token-auth", "password="+projTok), "proj", "ws/other",
			q(cloudQ, "path=ws/other.git"), q(cloudQ, "path=ws/third.git")},
		{"host-wide api token", q(cloudQ, "path=other/x.git", "username=alice", "password="+apiTok), "api", "other/x",
			q(cloudQ, "path=other/x.git"), q(cloudQ, "path=other/y.git")},
		{"dc project token", q("capability[]=authtype", "protocol=https", "host=bb.example.com", "path=scm/proj/other.git", "authtype=Bearer", "credential="+dcProjTok), "dcproj", "scm/PROJ/other",
			q("capability[]=authtype", "protocol=https", "host=bb.example.com", "path=scm/PROJ/other.git"), q("capability[]=authtype", "protocol=https", "host=bb.example.com", "path=scm/PROJ/third.git")},
		{"dc personal token", q("protocol=https", "host=bb.example.com", "path=scm/X/y.git/info/lfs", "username=bob", "password="+personalTok), "personal", "scm/X/y",
			q("protocol=https", "host=bb.example.com", "path=scm/X/y.git"), q("protocol=https", "host=bb.example.com", "path=scm/X/z.git")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			standardTokens(f)
			served := f.get(tt.stillServed)
			require.NotEmpty(t, served)
			f.erase(tt.erase)
			e := f.entry(tt.entry)
			assert.Equal(t, store.StateActive, e.State)
			assert.Equal(t, []string{tt.wantRejectedFor}, e.RejectedFor)
			assert.NotEqual(t, served, f.get(tt.next), "still offered where it was rejected")
			assert.Equal(t, served, f.get(tt.stillServed), "withdrawn elsewhere too")

			// git storing it there again (it worked after all) revives it.
			f.store(tt.erase)
			assert.Empty(t, f.entry(tt.entry).RejectedFor)
			assert.Empty(t, f.storedEntries())
		})
	}
}

func TestEraseHostWideTokenWithoutPath(t *testing.T) {
	f := newFixture(t)
	standardTokens(f)
	f.erase(q(cloudQ, "username=alice", "password="+apiTok))
	assert.Equal(t, store.StateRejected, f.entry("api").State)
	assert.Equal(t, "", f.get(q(cloudQ)))
	assert.Equal(t, "", f.get(q(cloudQ, "path=other/x.git")))
	assert.Equal(t, q("username=x-token-auth", "password="+repoTok), f.get(q(cloudQ, "path=ws/repo.git")))
}

func TestEraseKeepsAddedTokens(t *testing.T) {
	tests := []struct{ name, in string }{
		{"differing password", q(cloudQ, "path=ws/repo.git", "username=x-token-auth", "password=not-the-token")},
		{"no password", q(cloudQ, "path=ws/repo.git", "username=x-token-auth")},
		{"no password, host only", q(cloudQ)},
		{"differing credential", q("capability[]=authtype", "protocol=https", "host=bb.example.com", "path=scm/PROJ/repo.git", "authtype=Bearer", "credential=not-the-token")},
		{"traversal path", q(cloudQ, "path=ws/../ws/repo.git", "username=x-token-auth", "password="+repoTok)},
		{"plain http", q("protocol=http", "host=bitbucket.org", "path=ws/repo.git", "username=x-token-auth", "password="+repoTok)},
		{"other host", q("protocol=https", "host=bitbucket.org.evil.example", "path=ws/repo.git", "username=x-token-auth", "password="+repoTok)},
		{"other port", q("protocol=https", "host=bitbucket.org:8443", "path=ws/repo.git", "username=x-token-auth", "password="+repoTok)},
		{"a token where it is not offered", q(cloudQ, "path=other/x.git", "username=x-token-auth", "password="+repoTok)},
		{"bearer token without the capability", q("protocol=https", "host=bb.example.com", "path=scm/PROJ/repo.git", "username=x", "password="+dcRepoTok)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			standardTokens(f)
			before := f.snapshot()
			f.erase(tt.in)
			f.requireUnchanged(before)
		})
	}
}

func TestEraseBearer(t *testing.T) {
	f := newFixture(t)
	standardTokens(f)
	const dc = "capability[]=authtype\nprotocol=https\nhost=bb.example.com"
	f.erase(q(dc, "path=scm/PROJ/repo.git", "authtype=Bearer", "credential="+dcRepoTok))
	assert.Equal(t, store.StateRejected, f.entry("dcrepo").State)
	assert.Equal(t, q("capability[]=authtype", "authtype=Bearer", "credential="+dcProjTok), f.get(q(dc, "path=scm/PROJ/repo.git")))
}

func TestEraseStateRoundTrip(t *testing.T) {
	f := newFixture(t)
	// The same workspace token added for the workspace and, narrowed, for
	// one repository: the password alone cannot tell them apart.
	f.add("wide", helper.AddOptions{URL: "https://bitbucket.org/ws", Kind: store.KindWorkspace, Token: wsTok})
	f.add("narrow", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindWorkspace, Token: wsTok})

	const sq = "capability[]=state\nprotocol=https\nhost=bitbucket.org"
	answer := f.get(q(sq, "path=ws/repo.git"))
	require.Equal(t, f.expand(q("capability[]=state", "username=x-token-auth", "password="+wsTok, "state[]=bbtoken:id={narrow}")), answer)

	// git echoes our state (and others') on erase: only that entry is hit.
	f.erase(f.expand(q(sq, "path=ws/repo.git", "username=x-token-auth", "password="+wsTok, "state[]=other:1", "state[]=bbtoken:id={narrow}")))
	assert.Equal(t, store.StateRejected, f.entry("narrow").State)
	assert.Equal(t, store.StateActive, f.entry("wide").State)
	assert.Empty(t, f.entry("wide").RejectedFor)
	assert.Equal(t, f.expand(q("capability[]=state", "username=x-token-auth", "password="+wsTok, "state[]=bbtoken:id={wide}")), f.get(q(sq, "path=ws/repo.git")))

	// A state naming an entry that does not hold the password changes nothing.
	before := f.snapshot()
	f.erase(f.expand(q(sq, "path=ws/repo.git", "username=x-token-auth", "password=other-password", "state[]=bbtoken:id={wide}")))
	f.requireUnchanged(before)

	// Without state, matching applies: the wide entry is withdrawn there.
	f.erase(q(cloudQ, "path=ws/repo.git", "username=x-token-auth", "password="+wsTok))
	assert.Equal(t, []string{"ws/repo"}, f.entry("wide").RejectedFor)
	assert.Equal(t, "", f.get(q(sq, "path=ws/repo.git")))
}

func TestEraseStoredCredentials(t *testing.T) { eachStoreLong(t, testEraseStoredCredentials) }

func testEraseStoredCredentials(t *testing.T, newFixture func(*testing.T) *fixture) {
	setup := func(t *testing.T) *fixture {
		f := newFixture(t)
		f.add("api", helper.AddOptions{URL: "https://bitbucket.org", Username: "alice", Token: apiTok})
		f.store(q(cloudQ, "username=u1", "password=pass-host-u1"))
		f.store(q(cloudQ, "path=ws/a.git", "username=u1", "password=pass-a-u1"))
		f.store(q(cloudQ, "path=ws/a.git", "username=u2", "password=pass-a-u2"))
		f.store(q(cloudQ, "path=ws/b.git", "username=u1", "password=pass-b-u1"))
		f.store(q("protocol=https", "host=example.com", "username=u1", "password=pass-other-host"))
		require.Len(t, f.storedEntries(), 5)
		return f
	}
	type left struct{ URL, Username string }
	tests := []struct {
		name string
		in   string
		want []left
	}{
		{"host only: every stored entry of the host", q(cloudQ),
			[]left{{"https://example.com", "u1"}}},
		{"host and password: those holding it", q(cloudQ, "password=pass-a-u1"),
			[]left{{"https://bitbucket.org", "u1"}, {"https://bitbucket.org/ws/a", "u2"}, {"https://bitbucket.org/ws/b", "u1"}, {"https://example.com", "u1"}}},
		{"by user", q(cloudQ, "username=u1"),
			[]left{{"https://bitbucket.org/ws/a", "u2"}, {"https://example.com", "u1"}}},
		// Without a password, a broader host-wide entry is not the one git
		// meant: only entries for exactly that repository go.
		{"by path without password: that repository's entries only", q(cloudQ, "path=ws/a.git"),
			[]left{{"https://bitbucket.org", "u1"}, {"https://bitbucket.org/ws/b", "u1"}, {"https://example.com", "u1"}}},
		{"by path lfs", q(cloudQ, "path=WS/A.git/info/lfs", "username=u2"),
			[]left{{"https://bitbucket.org", "u1"}, {"https://bitbucket.org/ws/a", "u1"}, {"https://bitbucket.org/ws/b", "u1"}, {"https://example.com", "u1"}}},
		{"skips a differing password", q(cloudQ, "path=ws/a.git", "username=u1", "password=wrong-password"),
			[]left{{"https://bitbucket.org", "u1"}, {"https://bitbucket.org/ws/a", "u1"}, {"https://bitbucket.org/ws/a", "u2"}, {"https://bitbucket.org/ws/b", "u1"}, {"https://example.com", "u1"}}},
		{"path, user and password", q(cloudQ, "path=ws/a.git", "username=u1", "password=pass-a-u1"),
			[]left{{"https://bitbucket.org", "u1"}, {"https://bitbucket.org/ws/a", "u2"}, {"https://bitbucket.org/ws/b", "u1"}, {"https://example.com", "u1"}}},
		{"unknown user", q(cloudQ, "username=nobody"),
			[]left{{"https://bitbucket.org", "u1"}, {"https://bitbucket.org/ws/a", "u1"}, {"https://bitbucket.org/ws/a", "u2"}, {"https://bitbucket.org/ws/b", "u1"}, {"https://example.com", "u1"}}},
		{"plain http erases nothing", q("protocol=http", "host=bitbucket.org"),
			[]left{{"https://bitbucket.org", "u1"}, {"https://bitbucket.org/ws/a", "u1"}, {"https://bitbucket.org/ws/a", "u2"}, {"https://bitbucket.org/ws/b", "u1"}, {"https://example.com", "u1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			before := f.storedEntries()
			f.erase(tt.in)
			var got []left
			kept := map[string]bool{}
			for _, e := range f.storedEntries() {
				got = append(got, left{e.URL, e.Username})
				kept[e.ID] = true
			}
			want := tt.want
			if f.pass && !strings.Contains(tt.in, "password=") {
				// A password store (maybe a team's) loses an entry only
				// with the very password git rejected.
				want = nil
				for _, e := range before {
					want = append(want, left{e.URL, e.Username})
				}
			}
			assert.Equal(t, want, got)
			// Secrets of erased entries are gone; the others stay.
			for _, e := range before {
				_, err := f.secretOf(e.ID)
				if kept[e.ID] {
					assert.NoError(t, err)
				} else {
					assert.ErrorIs(t, err, secrets.ErrNotFound)
				}
			}
			// The added token is never touched by an erase without its secret.
			assert.Equal(t, store.StateActive, f.entry("api").State)
			assert.Empty(t, f.entry("api").RejectedFor)
		})
	}
}

func TestEraseNothingStoredWritesNothing(t *testing.T) {
	f := newFixture(t)
	before := f.snapshot()
	f.erase(q(cloudQ, "username=u", "password=some-password"))
	f.requireUnchanged(before)

	standardTokens(f)
	before = f.snapshot()
	f.erase(q("protocol=https", "host=example.com", "username=u", "password=some-password"))
	f.requireUnchanged(before)
}

// get skips an entry whose keyring item vanished and serves the next one;
// store must recognise that next one as what get served.
func TestStoreNoOpWhenFirstCandidateIsOrphaned(t *testing.T) {
	f := newFixture(t)
	standardTokens(f)
	require.NoError(t, f.sec.Backend.Delete(context.Background(), f.ids["repo"]))
	in := q(cloudQ, "path=ws/repo.git", "username=x-token-auth", "password="+projTok)
	require.Equal(t, q("username=x-token-auth", "password="+projTok), f.get(q(cloudQ, "path=ws/repo.git")))
	before := f.snapshot()
	f.store(in)
	f.requireUnchanged(before)
	assert.Empty(t, f.storedEntries())
}
