package fakebb

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a controllable OAuthOptions.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const (
	testCallback = "http://127.0.0.1:7777/callback"
	testKey      = "ConsumerKey123"
	testSecret   = "ConsumerSecretABCDEF0123456789"
)

// oauthFlavor holds what differs between the flavors in these tests.
type oauthFlavor struct {
	opts     Options
	repo     string   // repository inside the consumer's Prefixes
	outside  string   // repository outside them
	prefixes []string // Consumer.Prefixes
	scopes   []string // Consumer.Scopes: read, write
	ttl      int      // default expires_in
}

var oauthFlavors = []oauthFlavor{
	{Options{Flavor: Cloud}, "ws/repo", "other/repo", []string{"ws"}, []string{"repository", "repository:write"}, 7200},
	{Options{Flavor: DataCenter, ContextPath: "bitbucket"}, "PROJ/repo", "OTHER/repo", []string{"PROJ"}, []string{"REPO_READ", "REPO_WRITE"}, 3600},
}

func (fl oauthFlavor) consumer() Consumer {
	return Consumer{Key: testKey, Secret: testSecret, CallbackURL: testCallback, Scopes: fl.scopes, Write: true, Prefixes: fl.prefixes}
}

// newOAuthFixture starts a server of the flavor with its two repositories
// and the test consumer.
func newOAuthFixture(t *testing.T, fl oauthFlavor, oauth OAuthOptions) *fixture {
	t.Helper()
	opts := fl.opts
	opts.OAuth = oauth
	f := newFixture(t, opts, []string{fl.repo, fl.outside})
	f.addConsumer(fl.consumer())
	return f
}

func (f *fixture) addConsumer(c Consumer) {
	f.secrets = append(f.secrets, c.Secret)
	f.s.AddConsumer(c)
}

// repoURL is the clone URL of a repository path.
func (f *fixture) repoURL(repo string) string { return f.s.cloneURL(repo) }

// noRedirect is the server's client, not following redirects.
func noRedirect(s *Server) *http.Client {
	c := s.Client()
	c.Timeout = 10 * time.Second
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func newPKCE(f *fixture) (verifier, challenge string) {
	verifier = randomToken(32)
	sum := sha256.Sum256([]byte(verifier))
	f.secrets = append(f.secrets, verifier)
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorize sends the browser's GET to the authorization endpoint and
// returns the status and the redirect location (nil when none).
func (f *fixture) authorize(params url.Values) (int, *url.URL) {
	f.t.Helper()
	resp, err := noRedirect(f.s).Get(f.s.AuthorizeURL() + "?" + params.Encode())
	if err != nil {
		f.t.Fatalf("authorize: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	loc, err := resp.Location()
	if err != nil {
		return resp.StatusCode, nil
	}
	if code := loc.Query().Get("code"); code != "" {
		f.secrets = append(f.secrets, code)
	}
	return resp.StatusCode, loc
}

// authParams are the usual authorization request parameters.
func authParams(challenge string) url.Values {
	v := url.Values{
		"client_id":     {testKey},
		"response_type": {"code"},
		"redirect_uri":  {testCallback},
		"state":         {"state-1234"},
	}
	if challenge != "" {
		v.Set("code_challenge", challenge)
		v.Set("code_challenge_method", "S256")
	}
	return v
}

// code runs the authorization request and returns the code.
func (f *fixture) code(params url.Values) string {
	f.t.Helper()
	status, loc := f.authorize(params)
	if status != http.StatusFound || loc == nil || loc.Query().Get("code") == "" {
		f.t.Fatalf("authorize: status %d, location %v", status, loc)
	}
	return loc.Query().Get("code")
}

type tokenAnswer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a tokenAnswer) str(k string) string { s, _ := a.body[k].(string); return s }

// postToken posts a form to the token endpoint, with Basic client
// authentication when user is not "".
func (f *fixture) postToken(form url.Values, user, pass string) tokenAnswer {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.s.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := noRedirect(f.s).Do(req)
	if err != nil {
		f.t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := tokenAnswer{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		f.t.Fatalf("token answer %d is not JSON: %q", resp.StatusCode, raw)
	}
	for _, k := range []string{"access_token", "refresh_token"} {
		if s := a.str(k); s != "" {
			f.secrets = append(f.secrets, s)
		}
	}
	return a
}

// login runs the whole code+PKCE flow and returns the token answer.
func (f *fixture) login() tokenAnswer {
	f.t.Helper()
	verifier, challenge := newPKCE(f)
	code := f.code(authParams(challenge))
	a := f.postToken(url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {testCallback},
		"code_verifier": {verifier},
	}, testKey, testSecret)
	if a.status != 200 || a.str("access_token") == "" || a.str("refresh_token") == "" {
		f.t.Fatalf("code exchange: %d %v", a.status, a.body)
	}
	return a
}

func (f *fixture) refreshWith(refresh string) tokenAnswer {
	f.t.Helper()
	return f.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, testKey, testSecret)
}

// accessAuth is how git presents an access token: Basic x-token-auth for
// Cloud, Bearer for Data Center.
func (f *fixture) accessAuth(access string) string {
	if f.s.flavor == Cloud {
		return basic("x-token-auth", access)
	}
	return bearer(access)
}

// infoRefs sends git's first request with an Authorization value and
// returns the status (quicker than running git).
func (f *fixture) infoRefs(repo, auth string) int {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.repoURL(repo)+"/info/refs?service=git-upload-pack", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	resp, err := noRedirect(f.s).Do(req)
	if err != nil {
		f.t.Fatalf("info/refs: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// lsRemote runs the real git ls-remote with an access token: for Cloud as
// the password of x-token-auth in the URL, for Data Center as a Bearer
// header. It returns the last logged request and git's error.
func (f *fixture) lsRemote(repo, access string) (Request, error) {
	f.t.Helper()
	n := len(f.s.Requests())
	var out string
	var err error
	if f.s.flavor == Cloud {
		u, _ := url.Parse(f.repoURL(repo))
		u.User = url.UserPassword("x-token-auth", access)
		out, err = f.git(f.home, "", "ls-remote", u.String())
	} else {
		out, err = f.git(f.home, bearer(access), "ls-remote", f.repoURL(repo))
	}
	reqs := f.since(n)
	if len(reqs) == 0 {
		f.t.Fatalf("git ls-remote logged nothing: %v\n%s", err, out)
	}
	return reqs[len(reqs)-1], err
}

func TestOAuthLogin(t *testing.T) {
	t.Parallel()
	for _, fl := range oauthFlavors {
		t.Run(string(fl.opts.Flavor), func(t *testing.T) {
			t.Parallel()
			f := newOAuthFixture(t, fl, OAuthOptions{})
			s := f.s
			wantAuthorize, wantToken := "/site/oauth2/authorize", "/site/oauth2/access_token"
			if fl.opts.Flavor == DataCenter {
				wantAuthorize, wantToken = "/bitbucket/rest/oauth2/latest/authorize", "/bitbucket/rest/oauth2/latest/token"
			}
			if s.AuthorizeURL() != s.srv.URL+wantAuthorize || s.TokenURL() != s.srv.URL+wantToken {
				t.Fatalf("endpoints %s, %s", s.AuthorizeURL(), s.TokenURL())
			}

			verifier, challenge := newPKCE(f)
			status, loc := f.authorize(authParams(challenge))
			if status != http.StatusFound || loc == nil {
				t.Fatalf("authorize: %d %v", status, loc)
			}
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != testCallback {
				t.Errorf("redirected to %s, want %s", got, testCallback)
			}
			if loc.Query().Get("state") != "state-1234" || loc.Query().Get("code") == "" {
				t.Errorf("redirect query %q", loc.RawQuery)
			}
			n := len(s.Requests())
			a := f.postToken(url.Values{
				"grant_type":    {"authorization_code"},
				"code":          {loc.Query().Get("code")},
				"redirect_uri":  {testCallback},
				"code_verifier": {verifier},
			}, testKey, testSecret)
			if a.status != 200 {
				t.Fatalf("code exchange: %d %v", a.status, a.body)
			}
			if a.str("token_type") != "bearer" || a.body["expires_in"] != float64(fl.ttl) || a.str("scope") != strings.Join(fl.scopes, " ") {
				t.Errorf("token answer %v", a.body)
			}
			if a.header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(a.header.Get("Content-Type"), "application/json") {
				t.Errorf("token answer headers %v", a.header)
			}
			_, hasScopes := a.body["scopes"]
			if fl.opts.Flavor == Cloud {
				if a.str("state") != "authorization_code" || hasScopes {
					t.Errorf("Cloud token answer %v", a.body)
				}
			} else if _, hasState := a.body["state"]; hasState || hasScopes {
				t.Errorf("Data Center token answer %v", a.body)
			}
			if strings.HasPrefix(a.str("access_token"), "eyJ") != (fl.opts.Flavor == DataCenter) {
				t.Errorf("access token shape: %.10s…", a.str("access_token"))
			}
			tokReq := f.since(n)
			if len(tokReq) != 1 || tokReq[0].Service != "oauth" || tokReq[0].Token != OAuthTokenName(testKey) ||
				tokReq[0].Username != testKey || tokReq[0].Auth != "basic" || tokReq[0].Status != 200 || tokReq[0].Path != wantToken {
				t.Errorf("token request log %+v", tokReq)
			}

			access := a.str("access_token")
			last, err := f.lsRemote(fl.repo, access)
			if err != nil || last.Status != 200 || last.Token != OAuthTokenName(testKey) {
				t.Errorf("git ls-remote with the access token: %v, last request %+v", err, last)
			}
			if last, err := f.lsRemote(fl.outside, access); err == nil || last.Status != 401 {
				t.Errorf("git ls-remote outside the consumer's prefixes: %v, last request %+v", err, last)
			}
			// The other flavor's presentation is refused.
			wrong := bearer(access)
			if fl.opts.Flavor == DataCenter {
				wrong = basic("x-token-auth", access)
			}
			if got := f.infoRefs(fl.repo, wrong); got != 401 {
				t.Errorf("access token presented the other flavor's way: %d, want 401", got)
			}
			if got := f.infoRefs(fl.repo, f.accessAuth(access)); got != 200 {
				t.Errorf("info/refs with the access token: %d", got)
			}
		})
	}
}

// TestOAuthPush: the consumer's Write and the granted scopes decide pushes.
func TestOAuthPush(t *testing.T) {
	t.Parallel()
	for _, fl := range oauthFlavors {
		t.Run(string(fl.opts.Flavor), func(t *testing.T) {
			t.Parallel()
			f := newOAuthFixture(t, fl, OAuthOptions{})
			writer := f.login().str("access_token")

			// A login asking only for the read scope cannot push.
			verifier, challenge := newPKCE(f)
			params := authParams(challenge)
			params.Set("scope", fl.scopes[0])
			code := f.code(params)
			ra := f.postToken(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testCallback}, "code_verifier": {verifier}}, testKey, testSecret)
			if ra.status != 200 || ra.str("scope") != fl.scopes[0] {
				t.Fatalf("read-only login: %d %v", ra.status, ra.body)
			}
			reader := ra.str("access_token")

			auth := func(access string) string {
				if fl.opts.Flavor == Cloud {
					return basic("x-token-auth", access)
				}
				return bearer(access)
			}
			work := filepath.Join(t.TempDir(), "work")
			if out, err := f.git(f.home, auth(writer), "clone", "--quiet", f.repoURL(fl.repo), work); err != nil {
				t.Fatalf("clone: %v\n%s", err, out)
			}
			if err := os.WriteFile(filepath.Join(work, "oauth.txt"), []byte("oauth\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"add", "oauth.txt"}, {"commit", "--quiet", "-m", "oauth"}} {
				if out, err := f.git(work, "", args...); err != nil {
					t.Fatalf("git %v: %v\n%s", args, err, out)
				}
			}
			n := len(f.s.Requests())
			if out, err := f.git(work, auth(reader), "push", "--quiet", "origin", "HEAD:main"); err == nil {
				t.Errorf("push with a read-scoped access token succeeded\n%s", out)
			} else if reqs := f.since(n); reqs[len(reqs)-1].Status != 403 {
				t.Errorf("push with a read-scoped access token: %+v", reqs)
			}
			if out, err := f.git(work, auth(writer), "push", "--quiet", "origin", "HEAD:main"); err != nil {
				t.Errorf("push with a write access token: %v\n%s", err, out)
			}

			// A consumer without Write cannot push, whatever the scopes.
			c := fl.consumer()
			c.Write = false
			f.s.AddConsumer(c)
			if out, err := f.git(work, auth(writer), "push", "--quiet", "origin", "HEAD:refs/heads/other"); err == nil {
				t.Errorf("push after the consumer lost Write succeeded\n%s", out)
			}
		})
	}
}

func TestOAuthAuthorizeErrors(t *testing.T) {
	t.Parallel()
	cloud := newOAuthFixture(t, oauthFlavors[0], OAuthOptions{})
	dc := newOAuthFixture(t, oauthFlavors[1], OAuthOptions{})
	for _, f := range []*fixture{cloud, dc} {
		f.addConsumer(Consumer{Key: "strict", Secret: "StrictSecret0123456789", CallbackURL: testCallback, RequirePKCE: true})
	}
	_, challenge := newPKCE(cloud)
	cases := []struct {
		name       string
		f          *fixture
		change     func(url.Values)
		wantStatus int
		wantError  string // error= in the redirect; "" for a code
		wantTo     string // redirect target without query; "" when no redirect
	}{
		{"unknown client", cloud, func(v url.Values) { v.Set("client_id", "nope") }, 400, "", ""},
		{"unknown client dc", dc, func(v url.Values) { v.Set("client_id", "nope") }, 400, "", ""},
		{"other redirect", cloud, func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:7778/callback") }, 400, "", ""},
		{"other redirect dc", dc, func(v url.Values) { v.Set("redirect_uri", "http://evil.example/callback") }, 400, "", ""},
		{"cloud extends the callback", cloud, func(v url.Values) { v.Set("redirect_uri", testCallback+"/more") }, 302, "", testCallback + "/more"},
		{"cloud prefix without boundary", cloud, func(v url.Values) { v.Set("redirect_uri", testCallback+"x") }, 400, "", ""},
		{"dc needs the exact callback", dc, func(v url.Values) { v.Set("redirect_uri", testCallback+"/more") }, 400, "", ""},
		{"redirect omitted", cloud, func(v url.Values) { v.Del("redirect_uri") }, 302, "", testCallback},
		{"redirect omitted dc", dc, func(v url.Values) { v.Del("redirect_uri") }, 302, "", testCallback},
		{"implicit grant", cloud, func(v url.Values) { v.Set("response_type", "token") }, 302, "unsupported_response_type", testCallback},
		{"no PKCE where optional", cloud, func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, 302, "", testCallback},
		{"no PKCE where required", cloud, func(v url.Values) {
			v.Set("client_id", "strict")
			v.Del("code_challenge")
			v.Del("code_challenge_method")
		}, 302, "invalid_request", testCallback},
		{"no PKCE where required dc", dc, func(v url.Values) {
			v.Set("client_id", "strict")
			v.Del("code_challenge")
		}, 302, "invalid_request", testCallback},
		{"PKCE where required", dc, func(v url.Values) { v.Set("client_id", "strict") }, 302, "", testCallback},
		{"method without challenge", cloud, func(v url.Values) { v.Del("code_challenge") }, 302, "invalid_request", testCallback},
		{"malformed S256 challenge", cloud, func(v url.Values) { v.Set("code_challenge", "abc") }, 302, "invalid_request", testCallback},
		{"unknown challenge method", dc, func(v url.Values) { v.Set("code_challenge_method", "S512") }, 302, "invalid_request", testCallback},
		{"scope the consumer lacks", cloud, func(v url.Values) { v.Set("scope", "repository:admin") }, 302, "invalid_scope", testCallback},
		{"scope the consumer lacks dc", dc, func(v url.Values) { v.Set("scope", "REPO_READ ADMIN") }, 302, "invalid_scope", testCallback},
		{"subset of the scopes", dc, func(v url.Values) { v.Set("scope", "REPO_READ") }, 302, "", testCallback},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			params := authParams(challenge)
			c.change(params)
			status, loc := c.f.authorize(params)
			if status != c.wantStatus {
				t.Fatalf("status %d, want %d (location %v)", status, c.wantStatus, loc)
			}
			if c.wantTo == "" {
				if loc != nil {
					t.Errorf("redirected to %v, want no redirect", loc)
				}
				return
			}
			if loc == nil {
				t.Fatal("no redirect")
			}
			q := loc.Query()
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != c.wantTo {
				t.Errorf("redirected to %s, want %s", got, c.wantTo)
			}
			if q.Get("error") != c.wantError || q.Get("state") != "state-1234" {
				t.Errorf("redirect query %q, want error %q and the state", loc.RawQuery, c.wantError)
			}
			if (q.Get("code") == "") != (c.wantError != "") {
				t.Errorf("redirect query %q: code present iff no error", loc.RawQuery)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodPost, cloud.s.AuthorizeURL(), nil)
	if resp, err := noRedirect(cloud.s).Do(req); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST authorize: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

func TestOAuthCodeExchangeErrors(t *testing.T) {
	t.Parallel()
	for _, fl := range oauthFlavors {
		t.Run(string(fl.opts.Flavor), func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			f := newOAuthFixture(t, fl, OAuthOptions{Now: clock.Now})
			f.addConsumer(Consumer{Key: "other", Secret: "OtherSecret0123456789", CallbackURL: testCallback})
			type request struct {
				form       url.Values
				user, pass string
			}
			cases := []struct {
				name       string
				change     func(r *request)
				wantStatus int
				wantError  string
			}{
				{"valid", func(*request) {}, 200, ""},
				{"client in the body", func(r *request) {
					r.form.Set("client_id", testKey)
					r.form.Set("client_secret", testSecret)
					r.user = ""
				}, 200, ""},
				{"wrong verifier", func(r *request) { r.form.Set("code_verifier", strings.Repeat("v", 43)) }, 400, "invalid_grant"},
				{"missing verifier", func(r *request) { r.form.Del("code_verifier") }, 400, "invalid_grant"},
				{"wrong redirect_uri", func(r *request) { r.form.Set("redirect_uri", testCallback+"/more") }, 400, "invalid_grant"},
				{"missing redirect_uri", func(r *request) { r.form.Del("redirect_uri") }, 400, "invalid_grant"},
				{"unknown code", func(r *request) { r.form.Set("code", "nope") }, 400, "invalid_grant"},
				{"code of another client", func(r *request) { r.user, r.pass = "other", "OtherSecret0123456789" }, 400, "invalid_grant"},
				{"wrong client secret", func(r *request) { r.pass = "wrong" }, 401, "invalid_client"},
				{"wrong client secret in the body", func(r *request) {
					r.form.Set("client_id", testKey)
					r.form.Set("client_secret", "wrong")
					r.user = ""
				}, 401, "invalid_client"},
				{"unknown client", func(r *request) { r.user = "nope" }, 401, "invalid_client"},
				{"no client authentication", func(r *request) { r.user = "" }, 401, "invalid_client"},
				{"password grant", func(r *request) { r.form.Set("grant_type", "password") }, 400, "unsupported_grant_type"},
				{"no grant type", func(r *request) { r.form.Del("grant_type") }, 400, "invalid_request"},
				{"expired code", func(*request) { clock.Advance(11 * time.Minute) }, 400, "invalid_grant"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					verifier, challenge := newPKCE(f)
					code := f.code(authParams(challenge))
					r := request{
						form: url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testCallback}, "code_verifier": {verifier}},
						user: testKey, pass: testSecret,
					}
					c.change(&r)
					a := f.postToken(r.form, r.user, r.pass)
					if a.status != c.wantStatus || a.str("error") != c.wantError {
						t.Fatalf("answer %d %v, want %d %q", a.status, a.body, c.wantStatus, c.wantError)
					}
					if c.wantError != "" && a.str("error_description") == "" {
						t.Errorf("no error_description: %v", a.body)
					}
					if c.wantStatus == 401 && r.user != "" && a.header.Get("WWW-Authenticate") == "" {
						t.Errorf("401 to Basic client authentication without WWW-Authenticate")
					}
				})
			}

			// A code works once; its second use is invalid_grant and revokes
			// what the first issued.
			verifier, challenge := newPKCE(f)
			code := f.code(authParams(challenge))
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testCallback}, "code_verifier": {verifier}}
			first := f.postToken(form, testKey, testSecret)
			if first.status != 200 {
				t.Fatalf("first use: %d %v", first.status, first.body)
			}
			if got := f.infoRefs(fl.repo, f.accessAuth(first.str("access_token"))); got != 200 {
				t.Fatalf("access token before the code's reuse: %d", got)
			}
			if again := f.postToken(form, testKey, testSecret); again.status != 400 || again.str("error") != "invalid_grant" {
				t.Errorf("second use: %d %v", again.status, again.body)
			}
			if got := f.infoRefs(fl.repo, f.accessAuth(first.str("access_token"))); got != 401 {
				t.Errorf("access token after the code's reuse: %d, want 401", got)
			}
			if r := f.refreshWith(first.str("refresh_token")); r.status != 400 || r.str("error") != "invalid_grant" {
				t.Errorf("refresh token after the code's reuse: %d %v", r.status, r.body)
			}

			// Only POST.
			resp, err := noRedirect(f.s).Get(f.s.TokenURL())
			if err != nil || resp.StatusCode != 405 {
				t.Errorf("GET token endpoint: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
		})
	}
}

func TestOAuthRefreshRotation(t *testing.T) {
	t.Parallel()
	for _, fl := range oauthFlavors {
		t.Run(string(fl.opts.Flavor), func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			f := newOAuthFixture(t, fl, OAuthOptions{Now: clock.Now, RefreshGrace: 5 * time.Second})
			first := f.login()
			a1, r1 := first.str("access_token"), first.str("refresh_token")

			second := f.refreshWith(r1)
			if second.status != 200 {
				t.Fatalf("refresh: %d %v", second.status, second.body)
			}
			a2, r2 := second.str("access_token"), second.str("refresh_token")
			if a2 == a1 || r2 == r1 || a2 == "" || r2 == "" {
				t.Fatal("refresh did not rotate both tokens")
			}
			if second.str("scope") != strings.Join(fl.scopes, " ") || second.body["expires_in"] != float64(fl.ttl) {
				t.Errorf("refresh answer %v", second.body)
			}
			if fl.opts.Flavor == Cloud && second.str("state") != "refresh_token" {
				t.Errorf("Cloud refresh answer state %v", second.body["state"])
			}
			// Data Center deletes the access token of the used refresh token;
			// Cloud lets it live until it expires.
			wantOld := 200
			if fl.opts.Flavor == DataCenter {
				wantOld = 401
			}
			if got := f.infoRefs(fl.repo, f.accessAuth(a1)); got != wantOld {
				t.Errorf("old access token after the refresh: %d, want %d", got, wantOld)
			}
			if got := f.infoRefs(fl.repo, f.accessAuth(a2)); got != 200 {
				t.Errorf("new access token: %d", got)
			}

			// Within the grace the used refresh token still works, and
			// rotates again.
			clock.Advance(4 * time.Second)
			third := f.refreshWith(r1)
			if third.status != 200 || third.str("refresh_token") == r2 {
				t.Fatalf("used refresh token within the grace: %d %v", third.status, third.body)
			}
			// The grace counts from the first use.
			clock.Advance(2 * time.Second)
			if late := f.refreshWith(r1); late.status != 400 || late.str("error") != "invalid_grant" {
				t.Errorf("used refresh token after the grace: %d %v", late.status, late.body)
			}
			// The unused newer ones are fine.
			if r := f.refreshWith(r2); r.status != 200 {
				t.Errorf("second refresh token: %d %v", r.status, r.body)
			}
			if got, want := f.s.RefreshCount(testKey), 3; got != want {
				t.Errorf("RefreshCount = %d, want %d", got, want)
			}
			if got, want := f.s.RefreshAttempts(testKey), 4; got != want {
				t.Errorf("RefreshAttempts = %d, want %d", got, want)
			}
			if r := f.refreshWith("not-a-refresh-token"); r.status != 400 || r.str("error") != "invalid_grant" {
				t.Errorf("unknown refresh token: %d %v", r.status, r.body)
			}
			if r := f.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {third.str("refresh_token")}}, testKey, "wrong"); r.status != 401 {
				t.Errorf("refresh with a wrong client secret: %d %v", r.status, r.body)
			}
		})
	}
}

func TestOAuthRefreshWithoutGrace(t *testing.T) {
	t.Parallel()
	f := newOAuthFixture(t, oauthFlavors[0], OAuthOptions{})
	r := f.login().str("refresh_token")
	if a := f.refreshWith(r); a.status != 200 {
		t.Fatalf("refresh: %d %v", a.status, a.body)
	}
	if a := f.refreshWith(r); a.status != 400 || a.str("error") != "invalid_grant" {
		t.Errorf("reused refresh token without grace: %d %v", a.status, a.body)
	}

	// Sixteen clients racing with one refresh token: exactly one wins.
	r = f.login().str("refresh_token")
	before := f.s.RefreshCount(testKey)
	var wg sync.WaitGroup
	results := make([]tokenAnswer, 16)
	for i := range results {
		wg.Go(func() { results[i] = f.refreshWith(r) })
	}
	wg.Wait()
	ok := 0
	for _, a := range results {
		switch {
		case a.status == 200:
			ok++
		case a.str("error") != "invalid_grant":
			t.Errorf("racing refresh: %d %v", a.status, a.body)
		}
	}
	if ok != 1 || f.s.RefreshCount(testKey)-before != 1 {
		t.Errorf("%d racing refreshes succeeded (RefreshCount +%d), want 1", ok, f.s.RefreshCount(testKey)-before)
	}
}

func TestOAuthRevokeRefreshTokens(t *testing.T) {
	t.Parallel()
	for _, fl := range oauthFlavors {
		t.Run(string(fl.opts.Flavor), func(t *testing.T) {
			t.Parallel()
			f := newOAuthFixture(t, fl, OAuthOptions{})
			other := Consumer{Key: "other", Secret: "OtherSecret0123456789", CallbackURL: testCallback}
			f.addConsumer(other)
			one, two := f.login(), f.login()
			// A login of the other consumer.
			verifier, challenge := newPKCE(f)
			params := authParams(challenge)
			params.Set("client_id", "other")
			code := f.code(params)
			o := f.postToken(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testCallback}, "code_verifier": {verifier}}, "other", other.Secret)
			if o.status != 200 {
				t.Fatalf("other consumer's login: %d %v", o.status, o.body)
			}

			f.s.RevokeRefreshTokens(testKey)
			for _, a := range []tokenAnswer{one, two} {
				if r := f.refreshWith(a.str("refresh_token")); r.status != 400 || r.str("error") != "invalid_grant" {
					t.Errorf("revoked refresh token: %d %v", r.status, r.body)
				}
			}
			if r := f.postToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {o.str("refresh_token")}}, "other", other.Secret); r.status != 200 {
				t.Errorf("other consumer's refresh token: %d %v", r.status, r.body)
			}
			if got := f.infoRefs(fl.repo, f.accessAuth(one.str("access_token"))); got != 200 {
				t.Errorf("access token after RevokeRefreshTokens: %d, want 200 until it expires", got)
			}
			if f.s.RefreshCount(testKey) != 0 || f.s.RefreshAttempts(testKey) != 2 || f.s.RefreshCount("other") != 1 {
				t.Errorf("RefreshCount %d, RefreshAttempts %d, other's RefreshCount %d",
					f.s.RefreshCount(testKey), f.s.RefreshAttempts(testKey), f.s.RefreshCount("other"))
			}
			// A new login works again.
			if r := f.refreshWith(f.login().str("refresh_token")); r.status != 200 {
				t.Errorf("refresh after a new login: %d %v", r.status, r.body)
			}
		})
	}
}

// TestOAuthExpiry: real git gets 401 with an expired access token and
// works with the refreshed one.
func TestOAuthExpiry(t *testing.T) {
	t.Parallel()
	for _, fl := range oauthFlavors {
		t.Run(string(fl.opts.Flavor), func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			f := newOAuthFixture(t, fl, OAuthOptions{Now: clock.Now, AccessTokenTTL: 30 * time.Second})
			a := f.login()
			if a.body["expires_in"] != float64(30) {
				t.Errorf("expires_in %v, want 30", a.body["expires_in"])
			}
			if last, err := f.lsRemote(fl.repo, a.str("access_token")); err != nil || last.Status != 200 {
				t.Fatalf("git with a fresh access token: %v %+v", err, last)
			}

			f.s.ExpireAccessTokens()
			last, err := f.lsRemote(fl.repo, a.str("access_token"))
			if err == nil || last.Status != 401 || last.Token != OAuthTokenName(testKey) {
				t.Errorf("git after ExpireAccessTokens: %v, last request %+v", err, last)
			}
			r := f.refreshWith(a.str("refresh_token"))
			if r.status != 200 {
				t.Fatalf("refresh: %d %v", r.status, r.body)
			}
			if last, err := f.lsRemote(fl.repo, r.str("access_token")); err != nil || last.Status != 200 {
				t.Errorf("git with the refreshed access token: %v %+v", err, last)
			}

			// Expiry by the clock: live 1 s before, dead at the TTL.
			clock.Advance(29 * time.Second)
			if got := f.infoRefs(fl.repo, f.accessAuth(r.str("access_token"))); got != 200 {
				t.Errorf("access token before its TTL: %d", got)
			}
			clock.Advance(time.Second)
			if last, err := f.lsRemote(fl.repo, r.str("access_token")); err == nil || last.Status != 401 {
				t.Errorf("git after the TTL: %v %+v", err, last)
			}
		})
	}
}

func TestOAuthResponseOptions(t *testing.T) {
	t.Parallel()
	f := newOAuthFixture(t, oauthFlavors[0], OAuthOptions{LegacyScopes: true})
	long := Consumer{Key: testKey, Secret: testSecret, CallbackURL: testCallback, Scopes: []string{"repository"}, RefreshTokenLength: 3000}
	f.s.AddConsumer(long)
	a := f.login()
	if _, has := a.body["scope"]; has || a.str("scopes") != "repository" {
		t.Errorf("LegacyScopes answer %v", a.body)
	}
	if n := len(a.str("refresh_token")); n != 3000 {
		t.Errorf("refresh token has %d characters, want 3000", n)
	}
	r := f.refreshWith(a.str("refresh_token"))
	if r.status != 200 || len(r.str("refresh_token")) != 3000 {
		t.Errorf("refresh with a long token: %d, new one %d characters", r.status, len(r.str("refresh_token")))
	}
}
