package helper_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// The tokens of the standard fixture.
const (
	repoTok     = "ATCTT3xFfGN0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0-repo-ws-repo-7Ab1"
	projTok     = "ATCTT3xFfGN0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yT-project-ws-8Cd2"
	wsTok       = "ATCTT3xFfGN0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC-workspace-ws2-9Ef3"
	apiTok      = "ATATT3xFfGN0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yTZ-api-alice-1Gh4"
	api3Tok     = "ATATT3xFfGN0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yTZq8-api-ws3-2Ij5"
	datedTok    = "ATCTT3xFfGN0Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yT-repo-dated-3Kl6"
	personalTok = "BBDC-Zq8vR2mK9tW4xN7pL3personal-bob-4Mn7"
	dcProjTok   = "BBDC-Zq8vR2mK9tW4xN7pL3project-PROJ-5Op8"
	dcRepoTok   = "BBDC-Zq8vR2mK9tW4xN7prepo-PROJ-repo-6Qr9"
	ctxTok      = "BBDC-Zq8vR2mK9tW4repo-ctx-bitbucket-7St0"
)

// datedExpiry is when datedTok expires (00:00 UTC on its expiry date).
var datedExpiry = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

// standardTokens adds a set of tokens covering every kind and level:
//
//	bitbucket.org                      api (username alice)
//	bitbucket.org/ws                   project access token
//	bitbucket.org/ws/repo              repository access token
//	bitbucket.org/ws/dated             repository access token, expires 2026-09-01
//	bitbucket.org/ws2                  workspace access token
//	bitbucket.org/ws3                  api (default username)
//	bb.example.com                     DC personal token of bob
//	bb.example.com/scm/PROJ            DC project token (Bearer)
//	bb.example.com/scm/PROJ/repo       DC repository token (Bearer)
//	ctx.example.com/bitbucket/scm/P/r  DC repository token under a context path
func standardTokens(f *fixture) {
	f.add("api", helper.AddOptions{URL: "https://bitbucket.org", Username: "alice", Token: apiTok})
	f.add("proj", helper.AddOptions{URL: "https://bitbucket.org/ws", Kind: store.KindProject, Token: projTok})
	f.add("repo", helper.AddOptions{URL: "https://bitbucket.org/ws/repo.git", Token: repoTok})
	f.add("dated", helper.AddOptions{URL: "https://bitbucket.org/ws/dated", Token: datedTok, Expires: "2026-09-01"})
	f.add("ws", helper.AddOptions{URL: "https://bitbucket.org/ws2/", Kind: store.KindWorkspace, Token: wsTok})
	f.add("api3", helper.AddOptions{URL: "https://bitbucket.org/ws3", Token: api3Tok})
	f.add("personal", helper.AddOptions{URL: "https://bb.example.com", Username: "bob", Token: personalTok})
	f.add("dcproj", helper.AddOptions{URL: "https://bb.example.com/projects/PROJ", Token: dcProjTok})
	f.add("dcrepo", helper.AddOptions{URL: "https://bb.example.com/scm/PROJ/repo.git", Token: dcRepoTok})
	f.add("ctx", helper.AddOptions{URL: "https://ctx.example.com/bitbucket/projects/P/repos/r/browse", Token: ctxTok})
}

func TestStandardTokensAsAdded(t *testing.T) {
	f := newFixture(t)
	standardTokens(f)
	type row struct{ URL, Kind, Username, AuthType, Expires string }
	var got []row
	for _, e := range f.index().Entries {
		got = append(got, row{e.URL, string(e.Kind), e.Username, e.AuthType, e.Expires})
	}
	assert.Equal(t, []row{
		{"https://bitbucket.org", "api", "alice", "", ""},
		{"https://bitbucket.org/ws", "project", "x-token-auth", "", ""},
		{"https://bitbucket.org/ws/repo", "repository", "x-token-auth", "", ""},
		{"https://bitbucket.org/ws/dated", "repository", "x-token-auth", "", "2026-09-01"},
		{"https://bitbucket.org/ws2", "workspace", "x-token-auth", "", ""},
		{"https://bitbucket.org/ws3", "api", "x-bitbucket-api-token-auth", "", ""},
		{"https://bb.example.com", "personal", "bob", "", ""},
		{"https://bb.example.com/scm/PROJ", "project", "", "Bearer", ""},
		{"https://bb.example.com/scm/PROJ/repo", "repository", "", "Bearer", ""},
		{"https://ctx.example.com/bitbucket/scm/P/r", "repository", "", "Bearer", ""},
	}, got)
}

const dcNotice = "git-credential-bbtoken: https://bb.example.com/scm/PROJ/repo has a Data Center repository token, " +
	"which works only as a Bearer token: git 2.46 or newer is needed to send it\n"

func TestGetMatrix(t *testing.T) { eachStore(t, testGetMatrix) }

func testGetMatrix(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	standardTokens(f)

	var (
		repo     = q("username=x-token-auth", "password="+repoTok)
		proj     = q("username=x-token-auth", "password="+projTok)
		ws       = q("username=x-token-auth", "password="+wsTok)
		api      = q("username=alice", "password="+apiTok)
		api3     = q("username=x-bitbucket-api-token-auth", "password="+api3Tok)
		dated    = q("username=x-token-auth", "password="+datedTok, fmt.Sprintf("password_expiry_utc=%d", datedExpiry.Unix()))
		personal = q("username=bob", "password="+personalTok)
		dcRepo   = q("capability[]=authtype", "authtype=Bearer", "credential="+dcRepoTok)
		dcProj   = q("capability[]=authtype", "authtype=Bearer", "credential="+dcProjTok)
	)
	const cloud, dc = "protocol=https\nhost=bitbucket.org", "protocol=https\nhost=bb.example.com"
	const authtype = "capability[]=authtype"

	tests := []struct {
		name   string
		in     string
		want   string
		notice string
	}{
		// Cloud: the most specific scope wins; kinds on the wire.
		{"repository token", q(cloud, "path=ws/repo.git"), repo, ""},
		{"repository token without .git", q(cloud, "path=ws/repo"), repo, ""},
		{"repository token lfs", q(cloud, "path=ws/repo.git/info/lfs"), repo, ""},
		{"repository token lfs batch", q(cloud, "path=ws/repo.git/info/lfs/objects/batch"), repo, ""},
		{"repository token case", q(cloud, "path=WS/Repo.git"), repo, ""},
		{"project token for a sibling with the same prefix", q(cloud, "path=ws/repo2.git"), proj, ""},
		{"project token for another repository", q(cloud, "path=ws/other.git"), proj, ""},
		{"workspace token", q(cloud, "path=ws2/any.git"), ws, ""},
		{"workspace boundary", q(cloud, "path=ws22/any.git"), api, ""},
		{"api token default username", q(cloud, "path=ws3/any.git"), api3, ""},
		{"host-wide api token", q(cloud, "path=other/x.git"), api, ""},
		{"expiry on the wire", q(cloud, "path=ws/dated.git"), dated, ""},
		{"no path: only host-wide", q(cloud), api, ""},
		{"empty path: only host-wide", q(cloud, "path="), api, ""},
		{"path / : only host-wide", q(cloud, "path=/"), api, ""},
		{"traversal", q(cloud, "path=ws/../ws/repo.git"), api, ""},
		{"traversal out of a scope", q(cloud, "path=ws/repo.git/../../other/x.git"), api, ""},
		{"dot segment", q(cloud, "path=ws/./repo.git"), api, ""},
		{"escaped traversal", q(cloud, "path=ws/%2e%2e/repo.git"), api, ""},
		{"escaped slash", q(cloud, "path=ws%2frepo.git"), api, ""},
		{"empty segment", q(cloud, "path=ws//repo.git"), api, ""},
		{"backslash", q(cloud, `path=ws\repo.git`), api, ""},
		// "...git" below the repository is a literal name (only the
		// repository segment drops ".git"), never "..": inside ws/repo.
		{"dot-dot look-alike below the repository", q(cloud, "path=ws/repo/...git/...git/other.git"), repo, ""},
		{"url= line", q("url=https://bitbucket.org/ws/repo.git"), repo, ""},

		// Hosts.
		{"default port", q("protocol=https", "host=bitbucket.org:443", "path=ws/repo.git"), repo, ""},
		{"host case", q("protocol=https", "host=BitBucket.ORG", "path=ws/repo.git"), repo, ""},
		{"protocol case", q("protocol=HTTPS", "host=bitbucket.org", "path=ws/repo.git"), repo, ""},
		{"plain http", q("protocol=http", "host=bitbucket.org", "path=ws/repo.git"), "", ""},
		{"plain http no path", q("protocol=http", "host=bitbucket.org"), "", ""},
		{"ssh", q("protocol=ssh", "host=bitbucket.org"), "", ""},
		{"other port", q("protocol=https", "host=bitbucket.org:8443", "path=ws/repo.git"), "", ""},
		{"trailing dot", q("protocol=https", "host=bitbucket.org.", "path=ws/repo.git"), "", ""},
		{"userinfo in host", q("protocol=https", "host=alice@bitbucket.org", "path=ws/repo.git"), "", ""},
		{"suffix look-alike", q("protocol=https", "host=bitbucket.org.evil.example", "path=ws/repo.git"), "", ""},
		{"subdomain", q("protocol=https", "host=www.bitbucket.org", "path=ws/repo.git"), "", ""},
		{"unicode look-alike", q("protocol=https", "host=bitbuc\u212aet.org", "path=ws/repo.git"), "", ""},
		{"unknown host", q("protocol=https", "host=example.com", "path=ws/repo.git"), "", ""},

		// Usernames.
		{"copy-button username, access token", q(cloud, "path=ws/repo.git", "username=alice"), repo, ""},
		{"any username, workspace token", q(cloud, "path=ws2/x.git", "username=mallory"), ws, ""},
		{"any username, fixed api username", q(cloud, "path=ws3/x.git", "username=carol"), api3, ""},
		{"api username matches", q(cloud, "path=other/x.git", "username=alice"), api, ""},
		{"api username matches without case", q(cloud, "path=other/x.git", "username=ALICE"), api, ""},
		{"api username differs", q(cloud, "path=other/x.git", "username=bob"), "", ""},
		{"empty username in the query", q(cloud, "path=other/x.git", "username="), api, ""},

		// Data Center: Bearer only with capability[]=authtype.
		{"dc repository token", q(authtype, dc, "path=scm/PROJ/repo.git"), dcRepo, ""},
		{"dc project key case", q(authtype, dc, "path=scm/proj/repo.git"), dcRepo, ""},
		{"dc slug case", q(authtype, dc, "path=scm/PROJ/Repo.git"), dcProj, ""},
		{"dc lfs", q(authtype, dc, "path=scm/PROJ/repo.git/info/lfs"), dcRepo, ""},
		{"dc project token", q(authtype, dc, "path=scm/PROJ/other.git"), dcProj, ""},
		{"dc bearer ignores the username", q(authtype, dc, "path=scm/PROJ/repo.git", "username=carol"), dcRepo, ""},
		{"dc personal token with capability", q(authtype, dc, "path=scm/~bob/x.git"), q(authtype, "username=bob", "password="+personalTok), ""},
		{"dc no capability: next candidate and one notice", q(dc, "path=scm/PROJ/repo.git"), personal, dcNotice},
		{"dc no capability, username matches", q(dc, "path=scm/PROJ/repo.git", "username=bob"), personal, dcNotice},
		{"dc no capability, username differs", q(dc, "path=scm/PROJ/repo.git", "username=carol"), "", dcNotice},
		{"dc personal username is case-sensitive", q(dc, "path=scm/OTHER/x.git", "username=Bob"), "", ""},
		{"dc other project", q(dc, "path=scm/OTHER/x.git"), personal, ""},
		{"dc no path", q(dc), personal, ""},
		{"dc no path with capability", q(authtype, dc), q(authtype, "username=bob", "password="+personalTok), ""},
		{"dc context path", q(authtype, "protocol=https", "host=ctx.example.com", "path=bitbucket/scm/P/r.git"), q(authtype, "authtype=Bearer", "credential="+ctxTok), ""},
		{"dc context path missing", q(authtype, "protocol=https", "host=ctx.example.com", "path=scm/P/r.git"), "", ""},

		// state[]: only when offered.
		{"state offered", q("capability[]=state", cloud, "path=ws/repo.git"),
			q("capability[]=state", "username=x-token-auth", "password="+repoTok, "state[]=bbtoken:id={repo}"), ""},
		{"state and authtype offered", q(authtype, "capability[]=state", dc, "path=scm/PROJ/repo.git", "state[]=other:xyz"),
			q(authtype, "capability[]=state", "authtype=Bearer", "credential="+dcRepoTok, "state[]=bbtoken:id={dcrepo}"), ""},
		{"state of others without the capability", q(cloud, "path=ws/repo.git", "state[]=other:xyz"), repo, ""},

		// Nothing of the query is echoed.
		{"wwwauth and unknown keys", q(cloud, "path=ws/repo.git", `wwwauth[]=Basic realm="Bitbucket.org HTTP"`, "future_key=1", "password_expiry_utc=99", "quit=1"), repo, ""},
		{"a password in the query", q(cloud, "path=ws/repo.git", "username=x-token-auth", "password=typed-password-123"), repo, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.t = t
			f.notices.Reset()
			assert.Equal(t, f.expand(tt.want), f.get(tt.in))
			assert.Equal(t, tt.notice, f.notices.String())
		})
	}
}

func TestGetRequiresProtocolAndHost(t *testing.T) {
	f := newFixture(t)
	standardTokens(f)
	for _, in := range []string{
		q("host=bitbucket.org", "path=ws/repo.git"),
		q("protocol=https", "path=ws/repo.git"),
		q("protocol=https", "host=", "path=ws/repo.git"),
		"",
	} {
		_, err := f.h.Get(context.Background(), f.read(in))
		require.ErrorIs(t, err, helper.ErrBadRequest, "input %q", in)
	}
}

func TestGetSkipsExpired(t *testing.T) { eachStore(t, testGetSkipsExpired) }

func testGetSkipsExpired(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	standardTokens(f)
	in := q("protocol=https", "host=bitbucket.org", "path=ws/dated.git")

	f.now = datedExpiry.Add(-time.Second)
	assert.Contains(t, f.get(in), "password="+datedTok)

	for _, now := range []time.Time{datedExpiry, datedExpiry.Add(time.Second), datedExpiry.AddDate(1, 0, 0)} {
		f.now = now
		assert.Equal(t, q("username=x-token-auth", "password="+projTok), f.get(in), "at %s", now)
	}
	assert.Equal(t, store.StateExpired, f.entry("dated").EffectiveState(f.now))
}

func TestGetSkipsRejected(t *testing.T) {
	f := newFixture(t)
	standardTokens(f)
	f.mutate(func(ix *store.Index) {
		e, _ := ix.Find(f.ids["repo"])
		e.State = store.StateRejected
	})
	cloud := "protocol=https\nhost=bitbucket.org"
	assert.Equal(t, q("username=x-token-auth", "password="+projTok), f.get(q(cloud, "path=ws/repo.git")))
	assert.Equal(t, q("username=x-token-auth", "password="+projTok), f.get(q(cloud, "path=ws/repo.git/info/lfs")))
	assert.Equal(t, store.StateRejected, f.entry("repo").EffectiveState(f.now))
}

func TestGetSkipsRejectedFor(t *testing.T) { eachStore(t, testGetSkipsRejectedFor) }

func testGetSkipsRejectedFor(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	standardTokens(f)
	f.mutate(func(ix *store.Index) {
		e, _ := ix.Find(f.ids["proj"])
		e.RejectedFor = []string{"ws/other"}
		e, _ = ix.Find(f.ids["dcproj"])
		e.RejectedFor = []string{"scm/PROJ/other"}
	})
	const cloud, dc = "protocol=https\nhost=bitbucket.org", "capability[]=authtype\nprotocol=https\nhost=bb.example.com"
	api := q("username=alice", "password="+apiTok)
	proj := q("username=x-token-auth", "password="+projTok)
	tests := []struct{ in, want string }{
		{q(cloud, "path=ws/other.git"), api},
		{q(cloud, "path=WS/Other"), api},
		{q(cloud, "path=ws/other.git/info/lfs"), api},
		{q(cloud, "path=ws/other2.git"), proj},
		{q(cloud, "path=ws/another.git"), proj},
		{q(dc, "path=scm/PROJ/other.git"), q("capability[]=authtype", "username=bob", "password="+personalTok)},
		{q(dc, "path=scm/proj/other.git/info/lfs"), q("capability[]=authtype", "username=bob", "password="+personalTok)},
		{q(dc, "path=scm/PROJ/Other.git"), q("capability[]=authtype", "authtype=Bearer", "credential="+dcProjTok)},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, f.get(tt.in), "input %q", tt.in)
	}
	assert.Equal(t, store.StateActive, f.entry("proj").EffectiveState(f.now))
}

// A Bearer token that would not be served anyway (expired, rejected) is no
// reason to tell the user to upgrade git.
func TestNoBearerNoticeForUnusableTokens(t *testing.T) {
	f := newFixture(t)
	f.add("personal", helper.AddOptions{URL: "https://bb.example.com", Username: "bob", Token: personalTok})
	f.add("dcrepo", helper.AddOptions{URL: "https://bb.example.com/scm/PROJ/repo.git", Token: dcRepoTok, Expires: "2026-09-01"})
	in := q("protocol=https", "host=bb.example.com", "path=scm/PROJ/repo.git")

	assert.Equal(t, q("username=bob", "password="+personalTok), f.get(in))
	assert.Equal(t, dcNotice, f.notices.String())

	f.notices.Reset()
	f.now = datedExpiry
	assert.Equal(t, q("username=bob", "password="+personalTok), f.get(in))
	assert.Empty(t, f.notices.String())

	f.now = t0
	f.mutate(func(ix *store.Index) {
		e, _ := ix.Find(f.ids["dcrepo"])
		e.State = store.StateRejected
	})
	assert.Equal(t, q("username=bob", "password="+personalTok), f.get(in))
	assert.Empty(t, f.notices.String())
}

func TestGetOrdering(t *testing.T) { eachStore(t, testGetOrdering) }

func testGetOrdering(t *testing.T, newFixture func(*testing.T) *fixture) {
	f := newFixture(t)
	// Same depth: repository, project, workspace, personal, api, stored.
	f.add("wsAtRepo", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindWorkspace, Token: wsTok})
	f.add("apiAtRepo", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindAPI, Token: apiTok})
	f.add("projAtRepo", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Kind: store.KindProject, Token: projTok})
	f.store(q("protocol=https", "host=bitbucket.org", "path=ws/repo.git", "username=x-token-auth", "password=stored-secret-1"))
	in := q("protocol=https", "host=bitbucket.org", "path=ws/repo.git")

	assert.Equal(t, q("username=x-token-auth", "password="+projTok), f.get(in))
	f.add("repo", helper.AddOptions{URL: "https://bitbucket.org/ws/repo", Token: repoTok})
	assert.Equal(t, q("username=x-token-auth", "password="+repoTok), f.get(in))

	for _, name := range []string{"repo", "projAtRepo"} {
		_, err := f.h.Remove(context.Background(), f.ids[name])
		require.NoError(t, err)
	}
	assert.Equal(t, q("username=x-token-auth", "password="+wsTok), f.get(in))
	_, err := f.h.Remove(context.Background(), f.ids["wsAtRepo"])
	require.NoError(t, err)
	assert.Equal(t, q("username=x-bitbucket-api-token-auth", "password="+apiTok), f.get(in))
	_, err = f.h.Remove(context.Background(), f.ids["apiAtRepo"])
	require.NoError(t, err)
	assert.Equal(t, q("username=x-token-auth", "password=stored-secret-1"), f.get(in))

	// Deeper stored beats a broader added token.
	f.add("proj", helper.AddOptions{URL: "https://bitbucket.org/ws", Kind: store.KindProject, Token: projTok})
	assert.Equal(t, q("username=x-token-auth", "password=stored-secret-1"), f.get(in))

	// Among equals, the most recently updated.
	f.now = t0.Add(time.Hour)
	f.store(q("protocol=https", "host=example.com", "username=u1", "password=first-pass"))
	f.now = t0.Add(2 * time.Hour)
	f.store(q("protocol=https", "host=example.com", "username=u2", "password=second-pass"))
	assert.Equal(t, q("username=u2", "password=second-pass"), f.get(q("protocol=https", "host=example.com")))
}

// An entry whose keyring item vanished is skipped, not an error.
func TestGetSkipsMissingSecret(t *testing.T) {
	f := newFixture(t)
	standardTokens(f)
	require.NoError(t, f.sec.Backend.Delete(context.Background(), f.ids["repo"]))
	assert.Equal(t, q("username=x-token-auth", "password="+projTok), f.get(q("protocol=https", "host=bitbucket.org", "path=ws/repo.git")))
}

func TestGetKeyringFailure(t *testing.T) {
	f := newFixture(t)
	standardTokens(f)
	f.sec.Fail = fmt.Errorf("%w: test", secrets.ErrUnavailable)
	_, err := f.h.Get(context.Background(), f.read(q("protocol=https", "host=bitbucket.org", "path=ws/repo.git")))
	require.ErrorIs(t, err, secrets.ErrUnavailable)
}

func TestGetAnswerNeverHasCRorLF(t *testing.T) {
	// Whatever the query holds, the answer is only what we own.
	f := newFixture(t)
	standardTokens(f)
	c := f.read(q("protocol=https", "host=bitbucket.org", "path=ws/repo.git"))
	c.WWWAuth = []string{"x\ny"}
	a, err := f.h.Get(context.Background(), c)
	require.NoError(t, err)
	var b strings.Builder
	require.NoError(t, credential.Write(&b, a))
	assert.Equal(t, q("username=x-token-auth", "password="+repoTok), b.String())
}
