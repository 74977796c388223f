package helper_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/bbapi"
	"github.com/bbtoken/git-credential-bbtoken/internal/credential"
	"github.com/bbtoken/git-credential-bbtoken/internal/fakebb"
	"github.com/bbtoken/git-credential-bbtoken/internal/helper"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

const alicePassword = "correct horse battery staple"

// dcWorld is a fixture next to a Data Center server (context path
// /bitbucket) with repositories PRJ/repo and PRJ/other, and the users
// alice (admin of PRJ) and bob (no admin rights).
type dcWorld struct {
	*fixture
	srv  *fakebb.Server
	host string // host:port
	base string // https://host:port/bitbucket
}

func newDCWorld(t *testing.T, newFixture func(*testing.T) *fixture, opts fakebb.Options) *dcWorld {
	t.Helper()
	opts.Flavor, opts.ContextPath = fakebb.DataCenter, "bitbucket"
	srv, err := fakebb.Start(t.TempDir(), opts)
	require.NoError(t, err)
	t.Cleanup(srv.Close)
	for _, r := range []string{"PRJ/repo", "PRJ/other"} {
		_, err := srv.CreateRepo(r)
		require.NoError(t, err)
	}
	srv.AddUser(fakebb.User{Name: "alice", Password: alicePassword, Admin: []string{"PRJ"}, Write: true})
	srv.AddUser(fakebb.User{Name: "bob", Password: "bobs-password-1", Write: true})
	f := newFixture(t)
	f.remember(alicePassword, "bobs-password-1")
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	f.mutate(func(ix *store.Index) {
		ix.Hosts = map[string]store.HostConfig{u.Host: {Flavor: "datacenter"}}
	})
	pem, err := os.ReadFile(srv.CAFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	f.h.OAuthHTTP = bbapi.New(bbapi.Options{RootCAs: pool, Redactor: f.h.Redactor})
	f.h.RotateGrace = time.Millisecond
	w := &dcWorld{fixture: f, srv: srv, host: u.Host, base: srv.URL}
	// Whatever the server made must not show in a notice or the trace.
	t.Cleanup(func() {
		for _, st := range srv.ServerTokens("") {
			w.remember(st.Secret)
		}
	})
	return w
}

func (w *dcWorld) repoURL(path string) string { return w.base + "/scm/" + path }

// create runs PlanCreate and Create with alice's password.
func (w *dcWorld) create(o helper.CreateOptions) (*store.Entry, error) {
	p, err := w.h.PlanCreate(o)
	if err != nil {
		return nil, err
	}
	pw := credential.Secret("")
	if p.PasswordFor != "" {
		pw = alicePassword
	}
	return w.h.Create(context.Background(), p, pw)
}

func (w *dcWorld) mustCreate(o helper.CreateOptions) *store.Entry {
	w.t.Helper()
	e, err := w.create(o)
	require.NoError(w.t, err)
	return e
}

// live is the one live server token of owner.
func (w *dcWorld) live(owner string) fakebb.ServerToken {
	w.t.Helper()
	l := w.srv.LiveServerTokens(owner)
	require.Len(w.t, l, 1, "live tokens of %s", owner)
	return l[0]
}

// bearerGet is what get answers a git that knows authtype, for path.
func (w *dcWorld) bearerGet(path string) string {
	return w.get(q("capability[]=authtype", "protocol=https", "host="+w.host, "path=bitbucket/scm/"+path))
}

// gitAccepts reports whether the server lets git fetch path with the
// Authorization header value auth.
func (w *dcWorld) gitAccepts(path, auth string) bool {
	w.t.Helper()
	req, err := http.NewRequest(http.MethodGet, w.base+"/scm/"+path+"/info/refs?service=git-upload-pack", nil)
	require.NoError(w.t, err)
	req.Header.Set("Authorization", auth)
	resp, err := w.srv.Client().Do(req)
	require.NoError(w.t, err)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func TestCreate(t *testing.T) { eachStore(t, testCreate) }

func testCreate(t *testing.T, newFixture func(*testing.T) *fixture) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	e := w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ/repo.git"), Username: "alice", Name: "ci", ExpiryDays: 30})
	st := w.live("projects/PRJ/repos/repo")
	require.Equal(t, store.KindRepository, e.Kind)
	require.Equal(t, "Bearer", e.AuthType)
	require.Regexp(t, `^ci \(created 2026-08-15 [0-9a-f]{8}\)$`, e.Server.Name, "the name, marked so a lost create is found by it alone")
	require.Equal(t, st.Name, e.Server.Name)
	require.Equal(t, &store.ServerToken{
		ID: st.ID, Name: e.Server.Name, API: w.base, Owner: "projects/PRJ/repos/repo", Permissions: []string{"REPO_WRITE"},
		ExpiryDays: 30, By: "alice",
	}, e.Server)
	require.Equal(t, st.Expiry.UTC().Format(time.RFC3339), e.Expires, "the server's expiry is recorded")
	// git gets the token as Bearer at once, and the server takes it.
	require.Equal(t, q("capability[]=authtype", "password_expiry_utc="+itoa(st.Expiry.Unix()),
		"authtype=Bearer", "credential="+st.Secret), w.bearerGet("PRJ/repo.git"))
	require.True(t, w.gitAccepts("PRJ/repo.git", "Bearer "+st.Secret))
	require.False(t, w.gitAccepts("PRJ/other.git", "Bearer "+st.Secret), "a repository token opens other repositories")

	// A personal token: Basic with the user's name; a project token.
	p := w.mustCreate(helper.CreateOptions{URL: w.base, Username: "alice", Permissions: []string{"project_read", "REPO_READ"}})
	require.Equal(t, store.KindPersonal, p.Kind)
	require.Equal(t, "alice", p.Username)
	require.Equal(t, []string{"PROJECT_READ", "REPO_READ"}, p.Server.Permissions)
	require.Empty(t, p.Expires, "no expiry asked, none enforced")
	pt := w.live("users/alice")
	require.True(t, w.gitAccepts("PRJ/other.git", "Basic "+basic("alice", pt.Secret)))
	g := w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ"), Username: "alice", Name: "ci box (created by ops)"})
	require.Equal(t, store.KindProject, g.Kind)
	require.Regexp(t, `^ci box \(created by ops\) \(created 2026-08-15 [0-9a-f]{8}\)$`, g.Server.Name, "the given name is kept whole")
	require.Equal(t, []string{"PROJECT_READ", "REPO_WRITE"}, g.Server.Permissions)
	require.Len(t, w.srv.LiveServerTokens(""), 3)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func basic(user, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + secret))
}

func TestCreateRefused(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{MaxTokenExpiryDays: 90})
	repo := w.repoURL("PRJ/repo.git")
	handAdded := "BBDC-handaddedtokenxxxxxxxxxxxxxxxxxxxxxxxxxx"
	w.remember(handAdded)
	cases := []struct {
		name     string
		o        helper.CreateOptions
		password string // "" : alice's
		want     error
		msg      string
		asked    bool // the server was asked (and said no)
	}{
		{"cloud", helper.CreateOptions{URL: "https://bitbucket.org/ws/repo", Username: "alice"}, "", helper.ErrNoTokenAPI, "https://bitbucket.org/ws/repo/admin/access-tokens", false},
		{"cloud workspace", helper.CreateOptions{URL: "https://bitbucket.org/ws", Username: "alice"}, "", helper.ErrNoTokenAPI, "https://bitbucket.org/ws/workspace/settings/access-tokens", false},
		{"no username", helper.CreateOptions{URL: repo}, "", helper.ErrNeedCredentials, "--username", false},
		{"personal without username", helper.CreateOptions{URL: w.base, Kind: store.KindPersonal}, "", helper.ErrBadUsername, "--username", false},
		{"repository kind on a project", helper.CreateOptions{URL: w.repoURL("PRJ"), Kind: store.KindRepository, Username: "alice"}, "", helper.ErrBadKind, "repository", false},
		{"project kind on the host", helper.CreateOptions{URL: w.base, Kind: store.KindProject, Username: "alice"}, "", helper.ErrBadKind, "project URL", false},
		{"repository token for a personal repository", helper.CreateOptions{URL: w.repoURL("~alice/mine.git"), Kind: store.KindRepository, Username: "alice"}, "", helper.ErrBadKind, "personal", false},
		{"unknown permission", helper.CreateOptions{URL: repo, Username: "alice", Permissions: []string{"REPO_EVERYTHING"}}, "", helper.ErrBadPermissions, "REPO_EVERYTHING", false},
		{"project permission on a repository", helper.CreateOptions{URL: repo, Username: "alice", Permissions: []string{"PROJECT_READ"}}, "", helper.ErrBadPermissions, "REPO_READ", false},
		{"expiry", helper.CreateOptions{URL: repo, Username: "alice", ExpiryDays: -1}, "", helper.ErrBadExpiry, "--expiry-days", false},
		{"wrong password", helper.CreateOptions{URL: repo, Username: "alice"}, "not-her-password", bbapi.ErrRefused, "HTTP 401", true},
		{"a token as the password", helper.CreateOptions{URL: repo, Username: "alice"}, handAdded, bbapi.ErrRefused, "tokens cannot manage tokens", true},
		{"not an admin", helper.CreateOptions{URL: repo, Username: "bob"}, "bobs-password-1", bbapi.ErrNotPermitted, "not permitted", true},
		{"no such repository", helper.CreateOptions{URL: w.repoURL("PRJ/nope.git"), Username: "alice"}, "", bbapi.ErrOwnerGone, "HTTP 404", true},
		{"beyond the enforced expiry", helper.CreateOptions{URL: repo, Username: "alice", ExpiryDays: 365}, "", bbapi.ErrBadRequest, "cannot exceed 90", true},
	}
	w.srv.AddToken(fakebb.Token{Name: "hand", Secret: handAdded, Bearer: true})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := w.snapshot()
			m := len(w.srv.Requests())
			var err error
			p, err := w.h.PlanCreate(c.o)
			if err == nil {
				pw := credential.Secret(alicePassword)
				if c.password != "" {
					pw = credential.Secret(c.password)
				}
				_, err = w.h.Create(context.Background(), p, pw)
			}
			require.ErrorIs(t, err, c.want)
			require.Contains(t, err.Error(), c.msg)
			require.NotContains(t, err.Error(), alicePassword)
			require.NotContains(t, err.Error(), handAdded)
			require.Equal(t, c.asked, len(w.srv.Requests()) > m, "whether the server was asked")
			if c.asked {
				// The request was recorded, then forgotten: the same bytes.
				after := w.snapshot()
				require.Equal(t, string(before.data), string(after.data), "the index changed")
				require.Equal(t, before.sets, after.sets, "the keyring was written")
			} else {
				w.requireUnchanged(before)
			}
			require.Empty(t, w.srv.LiveServerTokens(""), "a token was left on the server")
		})
	}
	// The server's enforced expiry applies when none is asked for.
	e := w.mustCreate(helper.CreateOptions{URL: repo, Username: "alice"})
	require.NotEmpty(t, e.Expires)
	// One created token per slot: the next is a rotation.
	_, err := w.create(helper.CreateOptions{URL: repo, Username: "alice"})
	require.ErrorIs(t, err, helper.ErrAlreadyCreated)
	require.Contains(t, err.Error(), "rotate "+e.ID)
}

func TestRotate(t *testing.T) { eachStore(t, testRotate) }

func testRotate(t *testing.T, newFixture func(*testing.T) *fixture) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	e := w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ/repo.git"), Username: "alice", Name: "ci", ExpiryDays: 30})
	old := w.live("projects/PRJ/repos/repo")
	c, err := w.h.FindCreated(w.repoURL("PRJ/repo.git"), false)
	require.NoError(t, err)
	require.Equal(t, "alice", c.PasswordFor)
	next, err := w.h.Rotate(context.Background(), c, 0, alicePassword)
	require.NoError(t, err)
	cur := w.live("projects/PRJ/repos/repo")
	require.NotEqual(t, old.ID, cur.ID)
	require.Equal(t, cur.ID, next.Server.ID)
	require.True(t, strings.HasPrefix(cur.Name, "ci (rotated "), cur.Name)
	require.Equal(t, []string{"REPO_WRITE"}, cur.Permissions)
	require.False(t, next.Server.Unfinished())
	require.Equal(t, 30, next.Server.ExpiryDays)
	require.True(t, w.gitAccepts("PRJ/repo.git", "Bearer "+cur.Secret))
	require.False(t, w.gitAccepts("PRJ/repo.git", "Bearer "+old.Secret), "the old token still works")
	require.Contains(t, w.bearerGet("PRJ/repo.git"), "credential="+cur.Secret+"\n")
	require.Len(t, w.index().Entries, 1)
	if !w.pass {
		_, err := w.secretOf(e.ID)
		require.ErrorIs(t, err, secrets.ErrNotFound, "the old secret is still in the keyring")
		require.Equal(t, 1, w.secretCount())
	}
	// A second rotation with another expiry; the name keeps one mark.
	c, err = w.h.FindCreated(next.ID, false)
	require.NoError(t, err)
	again, err := w.h.Rotate(context.Background(), c, 7, alicePassword)
	require.NoError(t, err)
	last := w.live("projects/PRJ/repos/repo")
	require.Equal(t, 1, strings.Count(last.Name, "(rotated "), last.Name)
	require.Equal(t, 7, again.Server.ExpiryDays)
	require.WithinDuration(t, time.Now().Add(7*24*time.Hour), last.Expiry, time.Minute)
}

// TestRotateFinishesInterrupted starts from what a rotation killed at
// each step leaves, and checks that rotate and repair finish it: exactly
// one live token, the one the entry serves.
func TestRotateFinishesInterrupted(t *testing.T) {
	const owner = "projects/PRJ/repos/repo"
	type state struct{ pendingMade, pendingRecorded, retire bool }
	cases := []struct {
		name  string
		state state
	}{
		{"intent recorded, server not asked", state{pendingRecorded: true}},
		{"token made, not recorded", state{pendingRecorded: true, pendingMade: true}},
		{"switched, old not revoked", state{retire: true}},
	}
	for _, c := range cases {
		for _, finish := range []string{"rotate", "repair"} {
			t.Run(c.name+"/"+finish, func(t *testing.T) {
				w := newDCWorld(t, newFixture, fakebb.Options{})
				e := w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ/repo.git"), Username: "alice", Name: "ci"})
				api := &bbapi.TokenAPI{HTTP: w.h.OAuthHTTP, Base: w.base, Auth: bbapi.Auth{Username: "alice", Secret: alicePassword}}
				serving := e.Server.ID
				if c.state.pendingMade {
					// Two, as if the server was asked twice (a retried PUT).
					for range 2 {
						_, err := api.Create(context.Background(), owner, "ci (rotated x)", []string{"REPO_WRITE"}, 0)
						require.NoError(t, err)
					}
				}
				if c.state.retire {
					tok, err := api.Create(context.Background(), owner, "ci (rotated y)", []string{"REPO_WRITE"}, 0)
					require.NoError(t, err)
					serving = tok.ID
				}
				w.mutate(func(ix *store.Index) {
					s := ix.Entries[0].Server
					if c.state.pendingRecorded {
						s.Pending = "ci (rotated x)"
					}
					if c.state.retire {
						s.Retire, s.RetireAfter = s.ID, w.now.Add(-time.Second)
						s.ID = serving
					}
				})
				found, err := w.h.FindCreated(e.ID, false)
				require.NoError(t, err)
				var done *store.Entry
				if finish == "rotate" {
					done, err = w.h.Rotate(context.Background(), found, 0, alicePassword)
				} else {
					todo, err := w.h.Unfinished()
					require.NoError(t, err)
					require.Len(t, todo, 1)
					require.Equal(t, "alice", todo[0].PasswordFor)
					require.NoError(t, w.h.Finish(context.Background(), todo[0], alicePassword))
					done = w.entryByID(e.ID)
				}
				require.NoError(t, err)
				require.False(t, done.Server.Unfinished())
				live := w.live(owner)
				require.Equal(t, live.ID, done.Server.ID)
				if finish == "repair" {
					require.Equal(t, serving, live.ID, "repair changed which token serves")
				}
			})
		}
	}
}

// TestRotateAbandoned: a new token that fails its check, or an entry
// that changed meanwhile, leaves the old token served and no new one on
// the server.
func TestRotateAbandoned(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	e := w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ/repo.git"), Username: "alice", Name: "ci"})
	old := w.live("projects/PRJ/repos/repo")
	c, err := w.h.FindCreated(e.ID, false)
	require.NoError(t, err)
	w.srv.RedirectAPI("https://elsewhere.invalid") // the check cannot pass
	_, err = w.h.Rotate(context.Background(), c, 0, alicePassword)
	require.ErrorIs(t, err, helper.ErrRotation)
	require.Contains(t, err.Error(), "still serves token "+old.ID)
	w.srv.RedirectAPI("")
	require.Equal(t, old.ID, w.live("projects/PRJ/repos/repo").ID)
	require.False(t, w.entryByID(e.ID).Server.Unfinished())
	require.Contains(t, w.bearerGet("PRJ/repo.git"), "credential="+old.Secret+"\n")

	// The wrong password: nothing asked of the entry, nothing made.
	_, err = w.h.Rotate(context.Background(), c, 0, "wrong-password-x")
	require.ErrorIs(t, err, bbapi.ErrRefused)
	require.Equal(t, old.ID, w.live("projects/PRJ/repos/repo").ID)
	require.False(t, w.entryByID(e.ID).Server.Unfinished())
}

func (w *dcWorld) entryByID(id string) *store.Entry {
	w.t.Helper()
	e, ok := w.index().Find(id)
	require.True(w.t, ok, "entry %s is gone", id)
	return e
}

func TestRevoke(t *testing.T) { eachStore(t, testRevoke) }

func testRevoke(t *testing.T, newFixture func(*testing.T) *fixture) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	e := w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ/repo.git"), Username: "alice"})
	st := w.live("projects/PRJ/repos/repo")
	c, err := w.h.FindCreated(w.repoURL("PRJ/repo.git"), false)
	require.NoError(t, err)
	got, gone, err := w.h.Revoke(context.Background(), c, alicePassword)
	require.NoError(t, err)
	require.False(t, gone)
	require.Equal(t, e.ID, got.ID)
	require.Empty(t, w.srv.LiveServerTokens(""))
	require.False(t, w.gitAccepts("PRJ/repo.git", "Bearer "+st.Secret))
	require.Empty(t, w.index().Entries)
	require.Empty(t, w.bearerGet("PRJ/repo.git"))

	// Revoked in Bitbucket already: removed here, with gone set.
	w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ/repo.git"), Username: "alice"})
	w.srv.Revoke(w.live("projects/PRJ/repos/repo").TokenName())
	c, err = w.h.FindCreated(w.repoURL("PRJ/repo.git"), false)
	require.NoError(t, err)
	_, gone, err = w.h.Revoke(context.Background(), c, alicePassword)
	require.NoError(t, err)
	require.True(t, gone)
	require.Empty(t, w.index().Entries)
}

func TestFindCreated(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	byHand := w.add("hand", helper.AddOptions{URL: w.repoURL("PRJ/other.git"), Token: "BBDC-byhandxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"})
	w.mustCreate(helper.CreateOptions{URL: w.base, Username: "alice"})
	w.srv.AddUser(fakebb.User{Name: "carol", Password: "carols-password", Admin: []string{"*"}})
	p, err := w.h.PlanCreate(helper.CreateOptions{URL: w.base, Username: "carol"})
	require.NoError(t, err)
	_, err = w.h.Create(context.Background(), p, "carols-password")
	require.NoError(t, err)
	w.remember("carols-password")
	cloud := w.add("cloud", helper.AddOptions{URL: "https://bitbucket.org/ws/cloudrepo", Token: "ATCTT3xCloudHand0123456789abcdef0123456789abcdef0123456789ab"})
	cases := []struct {
		arg  string
		want error
		msg  string
	}{
		{byHand.ID, helper.ErrNotCreated, "create " + w.repoURL("PRJ/other")},
		{w.repoURL("PRJ/other.git"), helper.ErrNotCreated, "added by hand"},
		{w.base, helper.ErrAmbiguous, "alice"},
		{w.repoURL("PRJ/repo.git"), helper.ErrAmbiguous, "alice"}, // served by both personal tokens
		{"https://elsewhere.example.com/scm/PRJ/repo.git", store.ErrNoEntry, "list"},
		{"https://bitbucket.org/ws/repo", helper.ErrNoTokenAPI, "admin/access-tokens"},
		{"nonsense id", store.ErrNoEntry, `no such entry with id "nonsense id"`},
		{"https://[::1", store.ErrNoEntry, "neither an id nor a URL"},
		{cloud.ID, helper.ErrNoTokenAPI, "https://bitbucket.org/ws/cloudrepo/admin/access-tokens"},
		{"https://bitbucket.org/ws/cloudrepo", helper.ErrNoTokenAPI, "admin/access-tokens"},
	}
	for _, c := range cases {
		_, err := w.h.FindCreated(c.arg, true)
		require.ErrorIs(t, err, c.want, c.arg)
		assert.Contains(t, err.Error(), c.msg, c.arg)
	}
	// revoke takes no token for one that merely serves the URL.
	_, err = w.h.FindCreated(w.repoURL("PRJ/repo.git"), false)
	require.ErrorIs(t, err, store.ErrNoEntry)
}

// TestCreatedTokenExpiryWarning: get's daily expiry line names rotate for
// a token the helper created.
func TestCreatedTokenExpiryWarning(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	e := w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ/repo.git"), Username: "alice", ExpiryDays: 3})
	w.now = time.Now()
	require.NotEmpty(t, w.bearerGet("PRJ/repo.git"))
	require.Contains(t, w.notices.String(), "renew it with `git-credential-bbtoken rotate "+e.ID+"`")
}

// TestLifecycleWithOAuthLogin: with an OAuth login of the host, create,
// rotate and revoke need no password (Bearer with the login's access
// token, acting for its user).
func TestLifecycleWithOAuthLogin(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	const consumerSecret = "consumer-secret-dc-0001"
	w.remember(consumerSecret)
	w.srv.AddConsumer(fakebb.Consumer{Key: "KEY", Secret: consumerSecret, CallbackURL: "http://127.0.0.1:53171/", Write: true, User: "alice"})
	byPassword := w.mustCreate(helper.CreateOptions{URL: w.base, Kind: store.KindPersonal, Username: "alice"})
	flow, err := w.h.OAuthStart(w.base, "KEY", consumerSecret, "http://127.0.0.1:53171/", nil)
	require.NoError(t, err)
	client := w.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Get(flow.AuthURL)
	require.NoError(t, err)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	_, err = w.h.OAuthFinish(context.Background(), flow, loc.Query().Get("code"), "")
	require.NoError(t, err)
	t.Cleanup(func() { w.remember(w.srv.OAuthIssued()...) })

	// A token made with a password before the login: still managed with
	// that user's password (the login may be someone else's).
	c0, err := w.h.FindCreated(byPassword.ID, false)
	require.NoError(t, err)
	require.Equal(t, "alice", c0.PasswordFor)

	p, err := w.h.PlanCreate(helper.CreateOptions{URL: w.repoURL("PRJ")})
	require.NoError(t, err)
	require.Empty(t, p.PasswordFor, "a login needs no password")
	mark := len(w.srv.Requests())
	e, err := w.h.Create(context.Background(), p, "")
	require.NoError(t, err)
	require.Empty(t, e.Server.By)
	first := w.live("projects/PRJ")
	for _, r := range w.srv.Requests()[mark:] {
		if r.Service == "tokens" {
			require.Equal(t, "bearer", r.Auth, "the token API was called without the login")
		}
	}
	c, err := w.h.FindCreated(e.ID, false)
	require.NoError(t, err)
	require.Empty(t, c.PasswordFor)
	next, err := w.h.Rotate(context.Background(), c, 0, "")
	require.NoError(t, err)
	require.NotEqual(t, first.ID, w.live("projects/PRJ").ID)
	c, err = w.h.FindCreated(next.ID, false)
	require.NoError(t, err)
	_, _, err = w.h.Revoke(context.Background(), c, "")
	require.NoError(t, err)
	require.Empty(t, w.srv.LiveServerTokens("projects/PRJ"))

	// Without the login, a token it created names login as the way back.
	e = w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ")})
	_, err = w.h.Logout(context.Background(), w.base)
	require.NoError(t, err)
	_, err = w.h.FindCreated(e.ID, false)
	require.ErrorIs(t, err, helper.ErrNeedCredentials)
	require.Contains(t, err.Error(), "git-credential-bbtoken login "+w.base)
}

// TestStoreOfRotatedOutToken: git's store, after a fetch that used the
// token a rotation just replaced, keeps no copy of it (it dies after the
// grace period; a copy would outlive it as a stored credential).
func TestStoreOfRotatedOutToken(t *testing.T) { eachStore(t, testStoreOfRotatedOutToken) }

func testStoreOfRotatedOutToken(t *testing.T, newFixture func(*testing.T) *fixture) {
	// The same token comes back as a password (Basic) or as a Bearer
	// credential (git 2.46+, authtype).
	cases := []struct {
		name, owner string
		create      helper.CreateOptions
		stored      func(secret string) []string
		served      string
	}{
		{"personal, Basic", "users/alice", helper.CreateOptions{Kind: store.KindPersonal, Username: "alice"},
			func(sec string) []string { return []string{"username=alice", "password=" + sec} }, "password="},
		{"repository, Bearer", "projects/PRJ/repos/repo", helper.CreateOptions{Username: "alice"},
			func(sec string) []string {
				return []string{"capability[]=authtype", "authtype=Bearer", "credential=" + sec}
			}, "credential="},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newDCWorld(t, newFixture, fakebb.Options{})
			c.create.URL = w.base
			if c.create.Kind == "" {
				c.create.URL = w.repoURL("PRJ/repo.git")
			}
			e := w.mustCreate(c.create)
			old := w.live(c.owner)
			found, err := w.h.FindCreated(e.ID, false)
			require.NoError(t, err)
			_, err = w.h.Rotate(context.Background(), found, 0, alicePassword)
			require.NoError(t, err)
			in := append([]string{"protocol=https", "host=" + w.host, "path=bitbucket/scm/PRJ/repo.git"}, c.stored(old.Secret)...)
			w.store(q(in...))
			require.Empty(t, w.storedEntries(), "git's store kept the rotated-out token")
			cur := w.live(c.owner)
			require.Contains(t, w.get(q("capability[]=authtype", "protocol=https", "host="+w.host, "path=bitbucket/scm/PRJ/repo.git")), c.served+cur.Secret+"\n")
		})
	}
}

// TestRepairWaitsForARunningRotation: repair started while a rotation is
// between creating its token and switching to it takes nothing for a
// crash's leftovers: it waits for the rotation (the lifecycle lock), and
// the entry ends serving the one live token.
func TestRepairWaitsForARunningRotation(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	w.h.RotateGrace = 200 * time.Millisecond
	w.mustCreate(helper.CreateOptions{URL: w.base, Kind: store.KindPersonal, Username: "alice"})
	c, err := w.h.FindCreated(w.base, false)
	require.NoError(t, err)
	w.srv.SlowAPI(time.Second) // the new token's check takes a second
	done := make(chan error, 1)
	go func() {
		_, err := w.h.Rotate(context.Background(), c, 0, alicePassword)
		done <- err
	}()
	require.Eventually(t, func() bool { return len(w.srv.LiveServerTokens("users/alice")) == 2 }, 10*time.Second, 5*time.Millisecond,
		"the rotation never made its token")
	// Mid-rotation: the entry records a pending token; repair runs now.
	todo, err := w.h.Unfinished()
	require.NoError(t, err)
	require.Len(t, todo, 1)
	require.NoError(t, w.h.Finish(context.Background(), todo[0], alicePassword))
	require.NoError(t, <-done)
	w.srv.SlowAPI(0)
	live := w.live("users/alice")
	require.Contains(t, w.get(q("protocol=https", "host="+w.host, "path=bitbucket/scm/PRJ/repo.git")), "password="+live.Secret+"\n",
		"the entry does not serve the one live token")
}

// TestCreateAnswerLost: the server makes the token but the answer never
// comes: create revokes what it made (found by its name), and says so.
func TestCreateAnswerLost(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	repo := w.repoURL("PRJ/repo.git")
	// A token of the same name made by hand before: never touched.
	api := &bbapi.TokenAPI{HTTP: w.h.OAuthHTTP, Base: w.base, Auth: bbapi.Auth{Username: "alice", Secret: alicePassword}}
	hand, err := api.Create(context.Background(), "projects/PRJ/repos/repo", "ci", []string{"REPO_READ"}, 0)
	require.NoError(t, err)
	w.srv.LoseTokenAnswers(1)
	_, err = w.create(helper.CreateOptions{URL: repo, Username: "alice", Name: "ci"})
	require.ErrorIs(t, err, bbapi.ErrNoAnswer)
	require.Contains(t, err.Error(), "any token it made is revoked")
	require.Equal(t, hand.ID, w.live("projects/PRJ/repos/repo").ID, "the token made by hand went, or the lost one stayed")
	require.Empty(t, w.index().Entries)
	// The server might make it later still: the request stays for repair,
	// which looks again and forgets it.
	require.Len(t, w.index().Creating, 1)
	todo, err := w.h.Unfinished()
	require.NoError(t, err)
	require.Len(t, todo, 1)
	require.NoError(t, w.h.Finish(context.Background(), todo[0], alicePassword))
	require.Empty(t, w.index().Creating)
	require.Equal(t, hand.ID, w.live("projects/PRJ/repos/repo").ID)
	// Afterwards a create goes through.
	w.mustCreate(helper.CreateOptions{URL: repo, Username: "alice", Name: "ci"})
	require.Len(t, w.srv.LiveServerTokens("projects/PRJ/repos/repo"), 2)
}

// TestUnfinishedCreateFinishedByRepair: a create killed after the server
// made its token (its request recorded, the token kept nowhere) is
// finished by repair: the token is revoked, the request forgotten.
func TestUnfinishedCreateFinishedByRepair(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	api := &bbapi.TokenAPI{HTTP: w.h.OAuthHTTP, Base: w.base, Auth: bbapi.Auth{Username: "alice", Secret: alicePassword}}
	kept, err := api.Create(context.Background(), "projects/PRJ", "ci", []string{"REPO_READ"}, 0)
	require.NoError(t, err)
	_, err = api.Create(context.Background(), "projects/PRJ", "ci", []string{"REPO_READ"}, 0) // the killed create's
	require.NoError(t, err)
	w.mutate(func(ix *store.Index) {
		ix.Creating = []store.PendingCreate{{URL: w.repoURL("PRJ"), API: w.base, Owner: "projects/PRJ", Name: "ci", By: "alice", Existing: []string{kept.ID}, Started: w.now}}
	})
	todo, err := w.h.Unfinished()
	require.NoError(t, err)
	require.Len(t, todo, 1)
	require.Contains(t, todo[0].Subject, `the create of "ci"`)
	require.NoError(t, w.h.Finish(context.Background(), todo[0], alicePassword))
	require.Equal(t, kept.ID, w.live("projects/PRJ").ID)
	require.Empty(t, w.index().Creating)
}

// TestLongNameRotates: the longest name create takes still lets a
// rotation find its tokens by name; a longer one is refused up front.
func TestLongNameRotates(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	long := strings.Repeat("n", 150)
	e := w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ/repo.git"), Username: "alice", Name: long})
	w.mutate(func(ix *store.Index) { ix.Entries[0].Server.Pending = long + " (rotated 2026-12-05 abcdef01)" })
	api := &bbapi.TokenAPI{HTTP: w.h.OAuthHTTP, Base: w.base, Auth: bbapi.Auth{Username: "alice", Secret: alicePassword}}
	_, err := api.Create(context.Background(), "projects/PRJ/repos/repo", long+" (rotated 2026-12-05 abcdef01)", []string{"REPO_WRITE"}, 0)
	require.NoError(t, err)
	c, err := w.h.FindCreated(e.ID, false)
	require.NoError(t, err)
	_, err = w.h.Rotate(context.Background(), c, 0, alicePassword)
	require.NoError(t, err)
	require.Len(t, w.srv.LiveServerTokens("projects/PRJ/repos/repo"), 1)
	_, err = w.h.PlanCreate(helper.CreateOptions{URL: w.repoURL("PRJ/other.git"), Username: "alice", Name: long + "x"})
	require.ErrorIs(t, err, helper.ErrBadName)
}

// TestForgettingCreatedTokens: the old id still finds a rotated entry;
// remove and add drop a created token (remove is the way out when the
// server cannot be asked) but say what stays valid on the server,
// including what an unfinished rotation made.
func TestForgettingCreatedTokens(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	e := w.mustCreate(helper.CreateOptions{URL: w.base, Kind: store.KindPersonal, Username: "alice"})
	c, err := w.h.FindCreated(e.ID, false)
	require.NoError(t, err)
	next, err := w.h.Rotate(context.Background(), c, 0, alicePassword)
	require.NoError(t, err)
	byOld, err := w.h.FindCreated(e.ID, false)
	require.NoError(t, err, "the id before the rotation no longer finds the entry")
	require.Equal(t, next.ID, byOld.Entry.ID)

	w.mutate(func(ix *store.Index) { ix.Entries[0].Server.Pending = "x (rotated y)" })
	removed, err := w.h.Remove(context.Background(), next.ID)
	require.NoError(t, err)
	require.Len(t, removed, 1)
	require.Contains(t, w.notices.String(), "its rotation was unfinished: its token "+next.Server.ID+` and any named "x (rotated y)" stay valid`)

	w.notices.Reset()
	made := w.mustCreate(helper.CreateOptions{URL: w.base, Kind: store.KindPersonal, Username: "alice"})
	w.add("byhand", helper.AddOptions{URL: w.base, Kind: store.KindPersonal, Username: "alice", Token: "BBDC-byhandxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"})
	require.Contains(t, w.notices.String(), made.ID+" was made by create: its token "+made.Server.ID+" stays valid on the server")
	require.Len(t, w.index().Entries, 1)
}

// TestUnfinishedWithoutCredentials: a rotation whose login is gone is
// reported, not a reason to stop repair.
func TestUnfinishedWithoutCredentials(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	e := w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ/repo.git"), Username: "alice"})
	w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ"), Username: "alice"})
	w.mutate(func(ix *store.Index) {
		for i := range ix.Entries {
			ix.Entries[i].Server.Pending = "x (rotated y)"
			if ix.Entries[i].ID == e.ID {
				ix.Entries[i].Server.By = "" // made with a login that is gone
			}
		}
	})
	todo, err := w.h.Unfinished()
	require.NoError(t, err)
	require.Len(t, todo, 2)
	var withErr, without int
	for _, u := range todo {
		if u.Err != nil {
			withErr++
			require.ErrorIs(t, u.Err, helper.ErrNeedCredentials)
		} else {
			without++
			require.NoError(t, w.h.Finish(context.Background(), u, alicePassword))
		}
	}
	require.Equal(t, 1, withErr)
	require.Equal(t, 1, without)
}

// TestRotateByServedURL: rotate URL finds the created token that serves
// the URL when none was created for that very scope.
func TestRotateByServedURL(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	project := w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ"), Username: "alice"})
	w.mustCreate(helper.CreateOptions{URL: w.base, Kind: store.KindPersonal, Username: "alice"})
	c, err := w.h.FindCreated(w.repoURL("PRJ/repo.git"), true)
	require.NoError(t, err)
	require.Equal(t, project.ID, c.Entry.ID, "not the most specific created token serving the URL")
	// A more specific token added by hand serves the URL: not rotatable.
	w.add("hand", helper.AddOptions{URL: w.repoURL("PRJ/repo.git"), Token: "BBDC-byhandxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"})
	_, err = w.h.FindCreated(w.repoURL("PRJ/repo/browse"), true)
	require.ErrorIs(t, err, helper.ErrNotCreated)
}

// TestRevokeOwnerNotFound: a repository that Bitbucket no longer finds
// under the recorded name (renamed, its tokens live on) is no proof the
// token is gone: revoke fails in one line naming what to do, and keeps
// the entry.
func TestRevokeOwnerNotFound(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	e := w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ/repo.git"), Username: "alice"})
	w.mutate(func(ix *store.Index) { ix.Entries[0].Server.Owner = "projects/PRJ/repos/renamed" })
	c, err := w.h.FindCreated(e.ID, false)
	require.NoError(t, err)
	_, _, err = w.h.Revoke(context.Background(), c, alicePassword)
	require.ErrorIs(t, err, bbapi.ErrOwnerGone)
	require.Contains(t, err.Error(), "if renamed, revoke token "+e.Server.ID+" in Bitbucket")
	require.NotContains(t, err.Error(), "\n")
	require.Len(t, w.index().Entries, 1)
	require.Len(t, w.srv.LiveServerTokens("projects/PRJ/repos/repo"), 1)
}

// TestCreatePersonalEmailUser: a user named by an e-mail address has a
// slug that is not the lower-cased name (jane@corp.com: jane_corp.com);
// create asks the server for it.
func TestCreatePersonalEmailUser(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	w.srv.AddUser(fakebb.User{Name: "Jane@Corp.com", Password: "janes-password-1", Write: true})
	w.remember("janes-password-1")
	p, err := w.h.PlanCreate(helper.CreateOptions{URL: w.base, Kind: store.KindPersonal, Username: "Jane@Corp.com"})
	require.NoError(t, err)
	e, err := w.h.Create(context.Background(), p, "janes-password-1")
	require.NoError(t, err)
	require.Equal(t, "users/jane_corp.com", e.Server.Owner)
	st := w.live("users/jane_corp.com")
	require.True(t, w.gitAccepts("PRJ/repo.git", "Basic "+basic("Jane@Corp.com", st.Secret)))
	// An unknown user is told as such, before anything is made.
	p, err = w.h.PlanCreate(helper.CreateOptions{URL: w.repoURL("PRJ/repo.git"), Kind: store.KindPersonal, Username: "nobody"})
	require.NoError(t, err)
	_, err = w.h.Create(context.Background(), p, "whatever-password")
	require.ErrorIs(t, err, bbapi.ErrRefused, "a wrong password first")
}

// TestCreateWithoutKeyring: with no keyring to keep the token, create
// asks the server for nothing; revoke revokes on the server and, unable
// to remove the entry, at least stops serving it.
func TestCreateWithoutKeyring(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	e := w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ/repo.git"), Username: "alice"})
	w.sec.Backend.Fail = secrets.ErrUnavailable
	m := len(w.srv.Requests())
	_, err := w.create(helper.CreateOptions{URL: w.repoURL("PRJ"), Username: "alice"})
	require.ErrorIs(t, err, secrets.ErrUnavailable)
	require.Contains(t, err.Error(), "nothing created")
	require.Len(t, w.srv.Requests(), m, "the server was asked")

	c, err := w.h.FindCreated(e.ID, false)
	require.NoError(t, err)
	_, _, err = w.h.Revoke(context.Background(), c, alicePassword)
	require.ErrorContains(t, err, "no longer served")
	require.Empty(t, w.srv.LiveServerTokens(""))
	require.Equal(t, store.StateRejected, w.entryByID(e.ID).State)
	w.sec.Backend.Fail = nil
	require.Empty(t, w.bearerGet("PRJ/repo.git"))
}

// TestOriginalIDSurvivesRotations: the id create printed keeps finding
// the entry however often it is rotated (a cron job's `rotate ID`), for
// rotate, revoke and remove alike.
func TestOriginalIDSurvivesRotations(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	first := w.mustCreate(helper.CreateOptions{URL: w.base, Kind: store.KindPersonal, Username: "alice"}).ID
	for i := range 12 {
		c, err := w.h.FindCreated(first, false)
		require.NoError(t, err, "rotation %d", i)
		_, err = w.h.Rotate(context.Background(), c, 0, alicePassword)
		require.NoError(t, err, "rotation %d", i)
	}
	require.Len(t, w.srv.LiveServerTokens("users/alice"), 1)
	ix := w.index()
	require.Len(t, ix.Entries, 1)
	require.LessOrEqual(t, len(ix.Entries[0].Server.Formerly), 10)
	_, err := w.h.FindCreated("0bad1dea", false)
	require.ErrorContains(t, err, `no such entry with id "0bad1dea"`)
	removed, err := w.h.Remove(context.Background(), first)
	require.NoError(t, err)
	require.Len(t, removed, 1)
}

// TestRotateInterrupted: an interrupt (a cancelled context) during the
// grace period stops rotate with one error naming repair; the entry
// serves the new token and repair revokes the old one.
func TestRotateInterrupted(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	w.h.RotateGrace = time.Minute
	e := w.mustCreate(helper.CreateOptions{URL: w.base, Kind: store.KindPersonal, Username: "alice"})
	c, err := w.h.FindCreated(e.ID, false)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(w.srv.LiveServerTokens("users/alice")) < 2 || !w.replaced(e.ID) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	_, err = w.h.Rotate(ctx, c, 0, alicePassword)
	require.ErrorIs(t, err, context.Canceled)
	require.Contains(t, err.Error(), "repair")
	require.Len(t, w.srv.LiveServerTokens("users/alice"), 2)
	w.h.RotateGrace = time.Millisecond
	todo, err := w.h.Unfinished()
	require.NoError(t, err)
	require.Len(t, todo, 1)
	require.NoError(t, w.h.Finish(context.Background(), todo[0], alicePassword))
	live := w.live("users/alice")
	require.Contains(t, w.get(q("protocol=https", "host="+w.host, "path=bitbucket/scm/PRJ/repo.git")), "password="+live.Secret+"\n")
}

// replaced reports whether the entry with this id is gone (replaced by a
// rotation's switch), without failing the test.
func (w *dcWorld) replaced(id string) bool {
	ix, err := w.h.Store.Load()
	if err != nil {
		return false
	}
	_, ok := ix.Find(id)
	return !ok
}

// TestRepairOwnerNotFound: repair of an interrupted rotation whose
// repository Bitbucket no longer finds under the recorded name keeps what
// it recorded (the tokens may live on under a new name) and says what to
// do, as revoke does.
func TestRepairOwnerNotFound(t *testing.T) {
	w := newDCWorld(t, newFixture, fakebb.Options{})
	e := w.mustCreate(helper.CreateOptions{URL: w.repoURL("PRJ/repo.git"), Username: "alice"})
	for _, state := range []func(s *store.ServerToken){
		func(s *store.ServerToken) { s.Pending = "x (rotated 2026-08-15 0123abcd)" },
		func(s *store.ServerToken) { s.Retire, s.RetireAfter = "100000000999", w.now },
	} {
		w.mutate(func(ix *store.Index) {
			s := ix.Entries[0].Server
			s.Owner, s.Pending, s.Retire = "projects/PRJ/repos/renamed", "", ""
			state(s)
		})
		todo, err := w.h.Unfinished()
		require.NoError(t, err)
		require.Len(t, todo, 1)
		err = w.h.Finish(context.Background(), todo[0], alicePassword)
		require.ErrorIs(t, err, bbapi.ErrOwnerGone)
		require.Contains(t, err.Error(), "if renamed, revoke token "+e.Server.ID)
		require.True(t, w.entryByID(e.ID).Server.Unfinished(), "the record of what is left was dropped")
	}
}
