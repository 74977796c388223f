package helper_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/bitbucket"
	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

func TestAddRefuses(t *testing.T) {
	const (
		cloudRepo = "https://bitbucket.org/ws/repo.git"
		cloudWS   = "https://bitbucket.org/ws"
		cloudHost = "https://bitbucket.org"
		dcRepo    = "https://bb.example.com/scm/PROJ/repo.git"
		dcProj    = "https://bb.example.com/projects/PROJ"
		dcHost    = "https://bb.example.com"
		access    = "ATCTT3xAddTest-0001"
		api       = "ATATT3xAddTest-0002"
		other     = "plain-token-0003"
	)
	tests := []struct {
		name     string
		o        helper.AddOptions
		want     error
		contains []string
	}{
		// The token itself.
		{"app password", helper.AddOptions{URL: cloudRepo, Token: "ATBBxYz0123456789abcdef"}, helper.ErrAppPassword, []string{"July 2026", "API token"}},
		{"app password with kind", helper.AddOptions{URL: cloudRepo, Kind: store.KindAPI, Username: "alice", Token: "ATBB0123456789"}, helper.ErrAppPassword, []string{"July 2026", "API token"}},
		{"empty token", helper.AddOptions{URL: cloudRepo, Token: ""}, helper.ErrBadToken, []string{"empty"}},
		{"token with a space", helper.AddOptions{URL: cloudRepo, Token: "ATCTT3x abc-0001"}, helper.ErrBadToken, nil},
		{"token with a newline", helper.AddOptions{URL: cloudRepo, Token: "ATCTT3xabc-0001\n"}, helper.ErrBadToken, nil},
		{"token with a control character", helper.AddOptions{URL: cloudRepo, Token: "ATCTT3x\x1babc-0001"}, helper.ErrBadToken, nil},
		{"non-ASCII token", helper.AddOptions{URL: cloudRepo, Token: "ATCTT3x\u00e9abc-0001"}, helper.ErrBadToken, nil},
		{"token too long", helper.AddOptions{URL: cloudRepo, Token: credential.Secret("ATCTT" + strings.Repeat("a", helper.MaxTokenLength-4))}, helper.ErrBadToken, nil},

		// The URL.
		{"http URL", helper.AddOptions{URL: "http://bitbucket.org/ws/repo.git", Token: access}, bitbucket.ErrNotHTTPS, nil},
		{"ssh URL", helper.AddOptions{URL: "git@bitbucket.org:ws/repo.git", Token: access}, bitbucket.ErrSSHURL, nil},
		{"traversal URL", helper.AddOptions{URL: "https://bitbucket.org/ws/../x", Token: access}, bitbucket.ErrBadURL, nil},
		{"empty URL", helper.AddOptions{URL: "", Token: access}, bitbucket.ErrBadURL, nil},

		// Cloud kinds and depths.
		{"api token with an e-mail", helper.AddOptions{URL: cloudHost, Username: "alice@example.com", Token: api}, helper.ErrBadUsername, []string{"e-mail"}},
		{"api kind with an e-mail", helper.AddOptions{URL: cloudRepo, Kind: store.KindAPI, Username: "alice@example.com", Token: other}, helper.ErrBadUsername, []string{"e-mail"}},
		{"access token at a workspace URL", helper.AddOptions{URL: cloudWS, Token: access}, helper.ErrNeedKind, []string{"--kind workspace", "--kind project"}},
		{"access token at the host", helper.AddOptions{URL: cloudHost, Token: access}, helper.ErrBadKind, nil},
		{"unknown prefix", helper.AddOptions{URL: cloudRepo, Token: other}, helper.ErrNeedKind, nil},
		{"repository kind at a workspace URL", helper.AddOptions{URL: cloudWS, Kind: store.KindRepository, Token: access}, helper.ErrBadKind, nil},
		{"repository kind at the host", helper.AddOptions{URL: cloudHost, Kind: store.KindRepository, Token: access}, helper.ErrBadKind, nil},
		{"workspace kind at the host", helper.AddOptions{URL: cloudHost, Kind: store.KindWorkspace, Token: access}, helper.ErrBadKind, nil},
		{"project kind at the host", helper.AddOptions{URL: cloudHost, Kind: store.KindProject, Token: access}, helper.ErrBadKind, nil},
		{"personal kind on Cloud", helper.AddOptions{URL: cloudRepo, Kind: store.KindPersonal, Username: "alice", Token: other}, helper.ErrBadKind, []string{"--kind api"}},
		{"unknown kind on Cloud", helper.AddOptions{URL: cloudRepo, Kind: "oauth", Token: access}, helper.ErrBadKind, nil},
		{"access token with a username", helper.AddOptions{URL: cloudRepo, Username: "alice", Token: access}, helper.ErrBadUsername, []string{"x-token-auth"}},
		{"workspace token with a username", helper.AddOptions{URL: cloudWS, Kind: store.KindWorkspace, Username: "alice", Token: access}, helper.ErrBadUsername, nil},

		// Data Center kinds and depths.
		{"dc api kind", helper.AddOptions{URL: dcRepo, Kind: store.KindAPI, Token: other}, helper.ErrBadKind, []string{"--flavor cloud"}},
		{"dc workspace kind", helper.AddOptions{URL: dcProj, Kind: store.KindWorkspace, Token: other}, helper.ErrBadKind, nil},
		{"dc unknown kind", helper.AddOptions{URL: dcRepo, Kind: "oauth", Token: other}, helper.ErrBadKind, nil},
		{"dc personal without username", helper.AddOptions{URL: dcHost, Kind: store.KindPersonal, Token: other}, helper.ErrBadUsername, []string{"--username"}},
		{"dc project with username", helper.AddOptions{URL: dcProj, Kind: store.KindProject, Username: "bob", Token: other}, helper.ErrBadUsername, []string{"Bearer"}},
		{"dc repository with username", helper.AddOptions{URL: dcRepo, Kind: store.KindRepository, Username: "bob", Token: other}, helper.ErrBadUsername, []string{"Bearer"}},
		{"dc host without username or kind", helper.AddOptions{URL: dcHost, Token: other}, helper.ErrNeedKind, nil},
		{"dc context path without username or kind", helper.AddOptions{URL: "https://bb.example.com/bitbucket", Token: other}, helper.ErrNeedKind, nil},
		{"dc personal space without kind", helper.AddOptions{URL: "https://bb.example.com/users/bob", Token: other}, helper.ErrNeedKind, nil},
		{"dc repository kind at a project URL", helper.AddOptions{URL: dcProj, Kind: store.KindRepository, Token: other}, helper.ErrBadKind, nil},
		{"dc project kind at the host", helper.AddOptions{URL: dcHost, Kind: store.KindProject, Token: other}, helper.ErrBadKind, nil},

		// Username, expiry, label.
		{"username with a colon", helper.AddOptions{URL: dcHost, Username: "bob:pw", Token: other}, helper.ErrBadUsername, nil},
		{"username with a space", helper.AddOptions{URL: dcHost, Username: "bob smith", Token: other}, helper.ErrBadUsername, nil},
		{"username with a newline", helper.AddOptions{URL: dcHost, Username: "bob\n", Token: other}, helper.ErrBadUsername, nil},
		{"username too long", helper.AddOptions{URL: dcHost, Username: strings.Repeat("b", 257), Token: other}, helper.ErrBadUsername, nil},
		{"expiry not a date", helper.AddOptions{URL: cloudRepo, Token: access, Expires: "tomorrow"}, helper.ErrBadExpiry, nil},
		{"expiry bad month", helper.AddOptions{URL: cloudRepo, Token: access, Expires: "2026-13-01"}, helper.ErrBadExpiry, nil},
		{"expiry with time", helper.AddOptions{URL: cloudRepo, Token: access, Expires: "2027-01-01T00:00:00Z"}, helper.ErrBadExpiry, nil},
		{"expiry in the past", helper.AddOptions{URL: cloudRepo, Token: access, Expires: "2026-08-01"}, helper.ErrBadExpiry, []string{"past"}},
		{"expiry today", helper.AddOptions{URL: cloudRepo, Token: access, Expires: "2026-08-15"}, helper.ErrBadExpiry, nil},
		{"label with a newline", helper.AddOptions{URL: cloudRepo, Token: access, Label: "a\nb"}, helper.ErrBadLabel, nil},
		{"label too long", helper.AddOptions{URL: cloudRepo, Token: access, Label: strings.Repeat("l", 201)}, helper.ErrBadLabel, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			before := f.snapshot()
			e, err := f.h.Add(context.Background(), tt.o)
			require.ErrorIs(t, err, tt.want)
			assert.Nil(t, e)
			for _, s := range tt.contains {
				assert.Contains(t, err.Error(), s)
			}
			if tok := tt.o.Token.Reveal(); len(tok) >= 8 {
				assert.NotContains(t, err.Error(), strings.TrimSpace(tok), "the token leaked into the error")
			}
			f.requireUnchanged(before)
			assert.Zero(t, f.secretCount())
		})
	}
}

func TestAddAccepts(t *testing.T) {
	type row struct {
		URL      string
		Kind     store.Kind
		Username string
		AuthType string
		Expires  string
		Label    string
	}
	tests := []struct {
		name string
		o    helper.AddOptions
		want row
	}{
		{"cloud repository token from the prefix", helper.AddOptions{URL: "https://bitbucket.org/ws/repo.git", Token: "ATCTT3xA-1"},
			row{"https://bitbucket.org/ws/repo", store.KindRepository, "x-token-auth", "", "", ""}},
		{"cloud browser URL", helper.AddOptions{URL: "https://bitbucket.org/WS/Repo/src/main/", Token: "ATCTT3xA-1"},
			row{"https://bitbucket.org/ws/repo", store.KindRepository, "x-token-auth", "", "", ""}},
		{"cloud copy-button URL", helper.AddOptions{URL: "https://alice@bitbucket.org/ws/repo.git", Token: "ATCTT3xA-1"},
			row{"https://bitbucket.org/ws/repo", store.KindRepository, "x-token-auth", "", "", ""}},
		{"cloud access token, username x-token-auth", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Username: "x-token-auth", Token: "ATCTT3xA-1"},
			row{"https://bitbucket.org/ws/repo", store.KindRepository, "x-token-auth", "", "", ""}},
		{"cloud workspace token", helper.AddOptions{URL: "https://bitbucket.org/ws/workspace/overview", Kind: store.KindWorkspace, Token: "ATCTT3xA-1"},
			row{"https://bitbucket.org/ws", store.KindWorkspace, "x-token-auth", "", "", ""}},
		{"cloud project token", helper.AddOptions{URL: "https://bitbucket.org/ws", Kind: store.KindProject, Token: "ATCTT3xA-1"},
			row{"https://bitbucket.org/ws", store.KindProject, "x-token-auth", "", "", ""}},
		{"cloud project token narrowed to a repository", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindProject, Token: "ATCTT3xA-1"},
			row{"https://bitbucket.org/ws/repo", store.KindProject, "x-token-auth", "", "", ""}},
		{"cloud api token from the prefix", helper.AddOptions{URL: "https://bitbucket.org", Token: "ATATT3xA-1"},
			row{"https://bitbucket.org", store.KindAPI, "x-bitbucket-api-token-auth", "", "", ""}},
		{"cloud api token with username", helper.AddOptions{URL: "bitbucket.org/ws", Username: "alice", Token: "ATATT3xA-1"},
			row{"https://bitbucket.org/ws", store.KindAPI, "alice", "", "", ""}},
		{"cloud api kind, other prefix", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindAPI, Token: "future-format-1"},
			row{"https://bitbucket.org/ws/repo", store.KindAPI, "x-bitbucket-api-token-auth", "", "", ""}},
		{"cloud repository kind, other prefix", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindRepository, Token: "future-format-1"},
			row{"https://bitbucket.org/ws/repo", store.KindRepository, "x-token-auth", "", "", ""}},
		{"expiry and label", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Token: "ATCTT3xA-1", Expires: "2027-01-31", Label: "laptop \u00e9"},
			row{"https://bitbucket.org/ws/repo", store.KindRepository, "x-token-auth", "", "2027-01-31", "laptop \u00e9"}},
		{"expiry tomorrow", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Token: "ATCTT3xA-1", Expires: "2026-08-16"},
			row{"https://bitbucket.org/ws/repo", store.KindRepository, "x-token-auth", "", "2026-08-16", ""}},
		{"longest token", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Token: credential.Secret("ATCTT" + strings.Repeat("a", helper.MaxTokenLength-5))},
			row{"https://bitbucket.org/ws/repo", store.KindRepository, "x-token-auth", "", "", ""}},
		{"dc repository token", helper.AddOptions{URL: "https://bb.example.com/scm/proj/repo.git", Token: "BBDC-1"},
			row{"https://bb.example.com/scm/PROJ/repo", store.KindRepository, "", "Bearer", "", ""}},
		{"dc project token", helper.AddOptions{URL: "https://bb.example.com/projects/PROJ/repos", Token: "BBDC-1"},
			row{"https://bb.example.com/scm/PROJ", store.KindProject, "", "Bearer", "", ""}},
		{"dc project token narrowed to a repository", helper.AddOptions{URL: "https://bb.example.com/projects/PROJ/repos/r/browse", Kind: store.KindProject, Token: "BBDC-1"},
			row{"https://bb.example.com/scm/PROJ/r", store.KindProject, "", "Bearer", "", ""}},
		{"dc personal token host-wide", helper.AddOptions{URL: "https://bb.example.com", Username: "bob", Token: "BBDC-1"},
			row{"https://bb.example.com", store.KindPersonal, "bob", "", "", ""}},
		{"dc personal token, explicit kind", helper.AddOptions{URL: "https://bb.example.com/scm/PROJ/repo.git", Kind: store.KindPersonal, Username: "bob", Token: "BBDC-1"},
			row{"https://bb.example.com/scm/PROJ/repo", store.KindPersonal, "bob", "", "", ""}},
		{"dc personal space", helper.AddOptions{URL: "https://bb.example.com/users/bob", Username: "bob", Token: "BBDC-1"},
			row{"https://bb.example.com/scm/~bob", store.KindPersonal, "bob", "", "", ""}},
		{"dc context path", helper.AddOptions{URL: "https://bb.example.com:8443/bitbucket", Username: "bob", Token: "BBDC-1"},
			row{"https://bb.example.com:8443/bitbucket", store.KindPersonal, "bob", "", "", ""}},
		{"dc access-token prefix is no kind", helper.AddOptions{URL: "https://bb.example.com/scm/PROJ/repo.git", Token: "ATCTT3xA-1"},
			row{"https://bb.example.com/scm/PROJ/repo", store.KindRepository, "", "Bearer", "", ""}},
		{"host recorded as Cloud by setup", helper.AddOptions{URL: "https://cloud.example.com/WS/Repo", Token: "ATCTT3xA-1"},
			row{"https://cloud.example.com/ws/repo", store.KindRepository, "x-token-auth", "", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.mutate(func(ix *store.Index) {
				ix.Hosts = map[string]store.HostConfig{"cloud.example.com": {Flavor: "cloud"}}
			})
			e := f.add("e", tt.o)
			assert.Equal(t, tt.want, row{e.URL, e.Kind, e.Username, e.AuthType, e.Expires, e.Label})
			assert.Equal(t, store.StateActive, e.State)
			assert.Equal(t, t0, e.Created)
			assert.Equal(t, t0, e.Updated)
			assert.Len(t, e.ID, 8)
			// What Add returned is what the index holds, and the secret is in the keyring.
			assert.Equal(t, *e, *f.entry("e"))
			secret, err := f.secretOf(e.ID)
			require.NoError(t, err)
			assert.Equal(t, tt.o.Token.Reveal(), secret)
		})
	}
}

func TestAddReplacesSameScopeAndKind(t *testing.T) { eachStore(t, testAddReplacesSameScopeAndKind) }

func testAddReplacesSameScopeAndKind(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	first := f.add("", helper.AddOptions{URL: "https://bitbucket.org/ws/repo.git", Token: "ATCTT3xFirst-0001"})
	f.erase(q(cloudQ, "path=ws/repo.git", "username=x-token-auth", "password=ATCTT3xFirst-0001"))
	other := f.add("", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindProject, Token: "ATCTT3xProject-0002"})
	elsewhere := f.add("", helper.AddOptions{URL: "https://bitbucket.org/ws/repo2", Token: "ATCTT3xElsewhere-0003"})

	second := f.add("", helper.AddOptions{URL: "https://BitBucket.org/WS/Repo/src/main/", Token: "ATCTT3xSecond-0004"})

	ids := []string{}
	for _, e := range f.index().Entries {
		ids = append(ids, e.ID)
	}
	assert.ElementsMatch(t, []string{other.ID, elsewhere.ID, second.ID}, ids)
	if v, err := f.secretOf(first.ID); f.pass {
		assert.NotEqual(t, "ATCTT3xFirst-0001", v, "the slot's entry still holds the replaced token")
	} else {
		require.ErrorIs(t, err, secrets.ErrNotFound, "the replaced token's secret is left in the keyring")
	}
	assert.Equal(t, 3, f.secretCount())
	assert.Equal(t, q("username=x-token-auth", "password=ATCTT3xSecond-0004"), f.get(q(cloudQ, "path=ws/repo.git")))
}

func TestRemove(t *testing.T) { eachStoreLong(t, testRemove) }

func testRemove(t *testing.T, newFixture func(*testing.T) *fixture) {
	setup := func(t *testing.T) *fixture {
		f := newFixture(t)
		standardTokens(f)
		f.add("projAtRepo", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindProject, Token: "ATCTT3xProjAtRepo-01"})
		f.store(q(cloudQ, "path=ws/stored.git", "username=u", "password=stored-password"))
		return f
	}
	tests := []struct {
		name string
		arg  string
		want []string // names of the removed entries; "stored" is git's
	}{
		{"by id", "{repo}", []string{"repo"}},
		{"by clone URL", "https://bitbucket.org/ws/repo.git", []string{"repo", "projAtRepo"}},
		{"by browser URL", "https://alice@BitBucket.org/WS/Repo/src/main/", []string{"repo", "projAtRepo"}},
		{"by workspace URL", "https://bitbucket.org/ws", []string{"proj"}},
		{"by host URL", "bitbucket.org", []string{"api"}},
		{"dc by browser URL", "https://bb.example.com/projects/proj/repos/repo/browse", []string{"dcrepo"}},
		{"a stored credential by URL", "https://bitbucket.org/ws/stored", []string{"stored"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := setup(t)
			stored := f.storedEntries()
			require.Len(t, stored, 1)
			f.ids["stored"] = stored[0].ID
			n := len(f.index().Entries)

			removed, err := f.h.Remove(context.Background(), f.expand(tt.arg))
			require.NoError(t, err)
			var got []string
			for _, e := range removed {
				got = append(got, e.ID)
			}
			var want []string
			for _, name := range tt.want {
				want = append(want, f.ids[name])
			}
			assert.ElementsMatch(t, want, got)
			assert.Len(t, f.index().Entries, n-len(want))
			for _, id := range want {
				_, ok := f.index().Find(id)
				assert.False(t, ok)
				_, err := f.secretOf(id)
				assert.ErrorIs(t, err, secrets.ErrNotFound, "secret of %s left behind", id)
			}
		})
	}
}

func TestRemoveNothing(t *testing.T) {
	f := newFixture(t)
	standardTokens(f)
	for _, arg := range []string{"deadbeef", "https://bitbucket.org/nope", "https://bitbucket.org/ws/repo2", "http://bitbucket.org/ws/repo", "not a url at all", ""} {
		before := f.snapshot()
		removed, err := f.h.Remove(context.Background(), arg)
		require.ErrorIs(t, err, store.ErrNoEntry, "arg %q", arg)
		assert.Empty(t, removed)
		f.requireUnchanged(before)
	}
}

func TestFlavorOf(t *testing.T) {
	ix := &store.Index{Hosts: map[string]store.HostConfig{
		"cloud.example.com": {Flavor: "cloud"},
		"bb.example.com":    {Flavor: "datacenter"},
		"noflavor.example":  {HelperValue: "bbtoken"},
	}}
	assert.Equal(t, bitbucket.Cloud, helper.FlavorOf(ix, "cloud.example.com"))
	assert.Equal(t, bitbucket.DataCenter, helper.FlavorOf(ix, "bb.example.com"))
	assert.Equal(t, bitbucket.DataCenter, helper.FlavorOf(ix, "noflavor.example"))
	assert.Equal(t, bitbucket.Cloud, helper.FlavorOf(ix, "bitbucket.org"))
	assert.Equal(t, bitbucket.DataCenter, helper.FlavorOf(&store.Index{}, "other.example"))
}
