package helper_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/bbapi"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// tokenServer is a token endpoint with Bitbucket's rotating, single-use
// refresh tokens (no grace here), counting the refreshes it granted.
type tokenServer struct {
	mu        sync.Mutex
	live      map[string]bool // refresh tokens that still work
	n         int             // tokens issued
	refreshes int
	down      bool // answer 502
	ttl       int  // expires_in
}

func (s *tokenServer) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = r.ParseForm()
	w.Header().Set("Content-Type", "application/json")
	if key, sec, _ := r.BasicAuth(); key != "KEY" || sec != "consumer-secret-9" {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client"}`)
		return
	}
	if s.down {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	if r.Form.Get("grant_type") == "refresh_token" {
		rt := r.Form.Get("refresh_token")
		if !s.live[rt] {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Invalid refresh_token"}`)
			return
		}
		delete(s.live, rt) // single use
		s.refreshes++
	}
	s.n++
	access, refresh := fmt.Sprintf("oauth-access-%02d-xxxxxxxx", s.n), fmt.Sprintf("oauth-refresh-%02d-yyyyyyyy", s.n)
	s.live[refresh] = true
	fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"expires_in":%d,"scopes":"repository"}`, access, refresh, s.ttl)
}

func (s *tokenServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

// loggedIn is a fixture logged in to the server's host (Cloud flavour).
func loggedIn(t *testing.T, newFixture func(*testing.T) *fixture, ts *tokenServer) (*fixture, string) {
	return loggedInAs(t, newFixture, ts, "cloud")
}

func loggedInAs(t *testing.T, newFixture func(*testing.T) *fixture, ts *tokenServer, flavor string) (*fixture, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(ts.handle))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	f := newFixture(t)
	host := strings.TrimPrefix(srv.URL, "https://")
	f.mutate(func(ix *store.Index) { ix.Hosts = map[string]store.HostConfig{host: {Flavor: flavor}} })
	f.h.OAuthHTTP = bbapi.New(bbapi.Options{RootCAs: pool, Redactor: f.h.Redactor, Now: func() time.Time { return f.now }})
	f.remember("consumer-secret-9")
	flow, err := f.h.OAuthStart(srv.URL, "KEY", "consumer-secret-9", "http://127.0.0.1:53171/", nil)
	require.NoError(t, err)
	if flavor == "cloud" {
		require.Contains(t, flow.AuthURL, srv.URL+"/site/oauth2/authorize?")
	}
	e, err := f.h.OAuthFinish(context.Background(), flow, "the-code", "")
	require.NoError(t, err)
	require.Equal(t, store.KindOAuth, e.Kind)
	for i := 1; i <= 40; i++ {
		f.remember(fmt.Sprintf("oauth-access-%02d-xxxxxxxx", i), fmt.Sprintf("oauth-refresh-%02d-yyyyyyyy", i))
	}
	return f, host
}

func TestOAuthRefresh(t *testing.T) { eachStore(t, testOAuthRefresh) }

func testOAuthRefresh(t *testing.T, newFixture func(*testing.T) *fixture) {
	ts := &tokenServer{live: map[string]bool{}, ttl: 7200}
	f, host := loggedIn(t, newFixture, ts)
	in := q("protocol=https", "host="+host, "path=ws/repo.git")
	exp := func(d time.Duration) string {
		return fmt.Sprintf("password_expiry_utc=%d", f.now.Truncate(time.Second).Add(d).Unix())
	}
	// The access token as granted, with its expiry; never the refresh token.
	require.Equal(t, q("username=x-token-auth", "password=oauth-access-01-xxxxxxxx", exp(2*time.Hour)), f.get(in))
	require.Zero(t, ts.count())
	f.store(q("protocol=https", "host="+host, "path=ws/repo.git", "username=x-token-auth", "password=oauth-access-01-xxxxxxxx"))
	require.Empty(t, f.storedEntries(), "git's store kept a copy of the login's access token")

	// Within RefreshBefore of its expiry: 8 processes at once, one refresh.
	f.now = f.now.Add(2*time.Hour - time.Minute)
	var wg sync.WaitGroup
	answers := make([]string, 8)
	for i := range answers {
		h := *f.h
		h.Trace, h.Notices = nil, nil
		wg.Go(func() {
			c := f.read(in)
			a, err := h.Get(context.Background(), c)
			if err == nil && a != nil {
				answers[i] = a.Password.Reveal()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, 1, ts.count(), "parallel gets spent the refresh token more than once")
	for i, a := range answers {
		assert.Equal(t, "oauth-access-02-xxxxxxxx", a, "process %d", i)
	}

	// git's erase after a 401: the access token goes, the login stays, and
	// the next get refreshes.
	f.erase(q("protocol=https", "host="+host, "path=ws/repo.git", "username=x-token-auth", "password=oauth-access-02-xxxxxxxx"))
	require.Contains(t, f.get(in), "password=oauth-access-03-xxxxxxxx")
	require.Equal(t, 2, ts.count())

	// No answer (a 502): nothing served, one line, nothing changed.
	ts.mu.Lock()
	ts.down = true
	ts.mu.Unlock()
	f.now = f.now.Add(3 * time.Hour)
	before := f.snapshot()
	f.notices.Reset()
	require.Empty(t, f.get(in))
	require.Equal(t, 1, strings.Count(f.notices.String(), "\n"), f.notices.String())
	f.requireUnchanged(before)

	// The refresh token refused: needs-login, one line naming login.
	ts.mu.Lock()
	ts.down, ts.live = false, map[string]bool{}
	ts.mu.Unlock()
	f.notices.Reset()
	require.Empty(t, f.get(in))
	require.Contains(t, f.notices.String(), "git-credential-bbtoken login https://"+host+" --consumer KEY")
	var login store.Entry
	for _, e := range f.index().Entries {
		login = e
	}
	require.Equal(t, store.StateNeedsLogin, login.State)
	n := ts.count()
	require.Empty(t, f.get(in))
	require.Equal(t, n, ts.count(), "a login that ended is not tried again")

	// Logout removes it and its secret.
	removed, err := f.h.Logout(context.Background(), "https://"+host)
	require.NoError(t, err)
	require.Len(t, removed, 1)
	require.Empty(t, f.index().Entries)
	require.Zero(t, f.secretCount())
}

// Endpoints follow the host: Data Center's under its context path; a
// login is for a whole host.
func TestOAuthStart(t *testing.T) {
	f := newFixture(t)
	f.mutate(func(ix *store.Index) {
		ix.Hosts = map[string]store.HostConfig{"bb.example.com": {Flavor: "datacenter"}}
	})
	for _, tc := range []struct{ url, authorize string }{
		{"https://bitbucket.org", "https://bitbucket.org/site/oauth2/authorize?"},
		{"https://bb.example.com", "https://bb.example.com/rest/oauth2/latest/authorize?"},
		{"https://bb.example.com/bitbucket", "https://bb.example.com/bitbucket/rest/oauth2/latest/authorize?"},
	} {
		flow, err := f.h.OAuthStart(tc.url, "KEY", "s3cret-consumer", "http://127.0.0.1:53171/", []string{"REPO_READ"})
		require.NoError(t, err, tc.url)
		assert.True(t, strings.HasPrefix(flow.AuthURL, tc.authorize), flow.AuthURL)
		assert.NotContains(t, flow.AuthURL, "s3cret-consumer")
	}
	for _, u := range []string{"https://bitbucket.org/ws/repo", "https://bitbucket.org/ws", "https://bb.example.com/scm/PROJ/repo", "http://bitbucket.org"} {
		_, err := f.h.OAuthStart(u, "KEY", "s3cret-consumer", "http://127.0.0.1:53171/", nil)
		assert.Error(t, err, u)
	}
	_, err := f.h.OAuthStart("https://bitbucket.org", "KEY", "", "http://127.0.0.1:53171/", nil)
	assert.Error(t, err, "no consumer secret")
}

// Data Center: the access token goes as Bearer, to a git that offers
// authtype; an older git is told why it gets nothing.
func TestOAuthDataCenter(t *testing.T) {
	ts := &tokenServer{live: map[string]bool{}, ttl: 3600}
	f, host := loggedInAs(t, newFixture, ts, "datacenter")
	exp := fmt.Sprintf("password_expiry_utc=%d", f.now.Truncate(time.Second).Add(time.Hour).Unix())
	require.Equal(t, q("capability[]=authtype", exp, "authtype=Bearer", "credential=oauth-access-01-xxxxxxxx"),
		f.get(q("capability[]=authtype", "protocol=https", "host="+host, "path=scm/proj/repo.git")))
	f.notices.Reset()
	require.Empty(t, f.get(q("protocol=https", "host="+host, "path=scm/proj/repo.git")))
	require.Contains(t, f.notices.String(), "git 2.46")
	// Renewed like Cloud's.
	f.now = f.now.Add(time.Hour)
	require.Contains(t, f.get(q("capability[]=authtype", "protocol=https", "host="+host, "path=scm/proj/repo.git")), "credential=oauth-access-02-xxxxxxxx")
	require.Equal(t, 1, ts.count())
}

// What review found: a second login in place, git's store of tokens the
// login issued (with state, after a parallel refresh, within the renewal
// window), needs-login said on every get, a login another machine wrote.
func TestOAuthStoreAndRelogin(t *testing.T) { eachStore(t, testOAuthStoreAndRelogin) }

func testOAuthStoreAndRelogin(t *testing.T, newFixture func(*testing.T) *fixture) {
	ts := &tokenServer{live: map[string]bool{}, ttl: 7200}
	f, host := loggedIn(t, newFixture, ts)
	ctx := context.Background()
	in := q("protocol=https", "host="+host, "path=ws/repo.git")
	storeOf := func(access string, extra ...string) string {
		return q(append([]string{"capability[]=state", "protocol=https", "host=" + host, "path=ws/repo.git", "username=x-token-auth", "password=" + access}, extra...)...)
	}

	// Logging in again replaces the login (same name in a password store).
	flow, err := f.h.OAuthStart("https://"+host, "KEY", "consumer-secret-9", "http://127.0.0.1:53171/", nil)
	require.NoError(t, err)
	_, err = f.h.OAuthFinish(ctx, flow, "the-code", "")
	require.NoError(t, err)
	require.Len(t, f.index().Entries, 1)
	require.Contains(t, f.get(in), "password=oauth-access-02-xxxxxxxx")
	id := f.index().Entries[0].ID

	// git's store of what get served, with state (git 2.46): no copy.
	f.store(storeOf("oauth-access-02-xxxxxxxx", "state[]=bbtoken:id="+id))
	require.Empty(t, f.storedEntries())

	// Within the renewal window, store never refreshes and keeps no copy.
	f.now = f.now.Add(2*time.Hour - time.Minute)
	f.store(storeOf("oauth-access-02-xxxxxxxx"))
	require.Zero(t, ts.count(), "store refreshed the login")
	require.Empty(t, f.storedEntries())

	// A parallel get renewed it meanwhile: the old token is still the
	// login's, not a credential to keep.
	require.Contains(t, f.get(in), "password=oauth-access-03-xxxxxxxx")
	f.store(storeOf("oauth-access-02-xxxxxxxx"))
	require.Empty(t, f.storedEntries())

	// Ended: every get says so, in one line.
	ts.mu.Lock()
	ts.live = map[string]bool{}
	ts.mu.Unlock()
	f.now = f.now.Add(3 * time.Hour)
	for range 2 {
		f.notices.Reset()
		require.Empty(t, f.get(in))
		require.Equal(t, 1, strings.Count(f.notices.String(), "git-credential-bbtoken login https://"+host), f.notices.String())
	}
}

// A refresh is never rolled back once the server has rotated the refresh
// token: a keyring that cannot delete the old item only leaves it for the
// next write.
func TestOAuthRefreshSurvivesAFailedDelete(t *testing.T) {
	ts := &tokenServer{live: map[string]bool{}, ttl: 7200}
	f, host := loggedIn(t, newFixture, ts)
	in := q("protocol=https", "host="+host, "path=ws/repo.git")
	f.h.Store.Secrets = noDeletes{f.sec}
	f.now = f.now.Add(2 * time.Hour)
	require.Contains(t, f.get(in), "password=oauth-access-02-xxxxxxxx")
	require.Equal(t, 2, f.sec.Len(), "the old item is left")
	f.h.Store.Secrets = f.sec
	require.Contains(t, f.get(in), "password=oauth-access-02-xxxxxxxx")
	f.mutate(func(*store.Index) {}) // any write finishes the journal
	require.Equal(t, 1, f.sec.Len(), "the next write did not delete the old item")
	require.Contains(t, f.get(in), "password=oauth-access-02-xxxxxxxx")
}

// noDeletes is a keyring whose deletes time out.
type noDeletes struct{ *countingSecrets }

func (noDeletes) Delete(context.Context, string) error { return secrets.ErrTimeout }

// A login kept in a password store, read on a machine that never saw it
// (a pull, a lost index): its expired access token is renewed first.
func TestOAuthPassLoginOnAnotherMachine(t *testing.T) {
	ts := &tokenServer{live: map[string]bool{}, ttl: 7200}
	f, host := loggedIn(t, newPassFixture, ts)
	require.NoError(t, os.Remove(f.h.Store.Path()))
	f.mutate(func(ix *store.Index) { ix.Hosts = map[string]store.HostConfig{host: {Flavor: "cloud"}} })
	f.now = f.now.Add(2 * time.Hour)
	require.Contains(t, f.get(q("protocol=https", "host="+host, "path=ws/repo.git")), "password=oauth-access-02-xxxxxxxx", f.trace.String())
	require.Equal(t, 1, ts.count())
}

// get marks a login's answer in state[]; git's store of it keeps nothing
// even when the login is gone meanwhile (logout while git ran).
func TestOAuthStoreAfterLogout(t *testing.T) {
	ts := &tokenServer{live: map[string]bool{}, ttl: 7200}
	f, host := loggedIn(t, newFixture, ts)
	a := f.get(q("capability[]=state", "protocol=https", "host="+host, "path=ws/repo.git"))
	require.Contains(t, a, "state[]=bbtoken:login\n")
	_, err := f.h.Logout(context.Background(), "https://"+host)
	require.NoError(t, err)
	id, _, _ := strings.Cut(strings.SplitN(a, "state[]=bbtoken:id=", 2)[1], "\n")
	f.store(q("capability[]=state", "protocol=https", "host="+host, "path=ws/repo.git", "username=x-token-auth",
		"password=oauth-access-01-xxxxxxxx", "state[]=bbtoken:id="+id, "state[]=bbtoken:login"))
	require.Empty(t, f.index().Entries, "git's store kept a copy of a login's token")
}
