package fakebb

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

type apiAnswer struct {
	code   int
	header http.Header
	body   map[string]any
}

// apiGet sends one GET with an Authorization value ("" for none).
func apiGet(t *testing.T, s *Server, url, auth string) apiAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	c := s.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := apiAnswer{code: resp.StatusCode, header: resp.Header}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func (a apiAnswer) message() string {
	if e, ok := a.body["error"].(map[string]any); ok {
		m, _ := e["message"].(string)
		return m
	}
	if es, ok := a.body["errors"].([]any); ok && len(es) > 0 {
		e, _ := es[0].(map[string]any)
		m, _ := e["message"].(string)
		x, _ := e["exceptionName"].(string)
		return m + " [" + x + "]"
	}
	return ""
}

func TestCloudAPI(t *testing.T) {
	t.Parallel()
	const (
		repoTok  = "ATCTT3xApiRepoTokenAAAA"
		wsTok    = "ATCTT3xApiWorkspaceTokBBBB"
		apiTok   = "ATATT3xApiUserTokenCCCC"
		noScope  = "ATCTT3xApiNoScopeTokenDDDD"
		goneTok  = "ATBBxAppPasswordEEEE"
		revoked  = "ATCTT3xApiRevokedTokFFFF"
		email    = "alice@example.com"
		gitOnly  = "ATCTT3xGitRulesOnlyGGGG"
		otherTok = "ATCTT3xOtherRepoTokHHHH"
	)
	f := newFixture(t, Options{Flavor: Cloud}, []string{"ws/repo", "ws/repo2", "other/repo"},
		Token{Name: "repo", Secret: repoTok, Usernames: []string{"x-token-auth"}, Prefixes: []string{"ws/repo"}, Write: true},
		Token{Name: "ws", Secret: wsTok, Usernames: []string{"x-token-auth"}, Prefixes: []string{"ws"}},
		Token{Name: "api", Secret: apiTok, Usernames: []string{"alice", "x-bitbucket-api-token-auth"}, Write: true},
		Token{Name: "noscope", Secret: noScope, Usernames: []string{"x-token-auth"}, Prefixes: []string{"ws/repo"}},
		Token{Name: "gone", Secret: goneTok, Usernames: []string{"alice"}},
		Token{Name: "revoked", Secret: revoked, Usernames: []string{"x-token-auth"}, Prefixes: []string{"ws/repo"}},
		Token{Name: "gitonly", Secret: gitOnly, Usernames: []string{"x-token-auth"}, Bearer: true, Prefixes: []string{"ws/repo"}},
		Token{Name: "other", Secret: otherTok, Usernames: []string{"x-token-auth"}, Prefixes: []string{"other/repo"}},
	)
	s := f.s
	s.SetAPIToken("repo", APIToken{Bearer: true, CredentialType: "repo_access_token", Scopes: []string{"repository:write", "repository"}})
	s.SetAPIToken("ws", APIToken{Bearer: true, CredentialType: "workspace_access_token", Scopes: []string{"repository"}})
	s.SetAPIToken("api", APIToken{Usernames: []string{email}, CredentialType: "api_token", Scopes: []string{"read:repository:bitbucket", "write:repository:bitbucket", "read:workspace:bitbucket"}})
	s.SetAPIToken("noscope", APIToken{Bearer: true, CredentialType: "repo_access_token", Scopes: []string{"webhook"}})
	s.SetAPIToken("gone", APIToken{Usernames: []string{"alice"}, Gone: true})
	s.SetAPIToken("revoked", APIToken{Bearer: true, CredentialType: "repo_access_token", Scopes: []string{"repository"}})
	s.SetAPIToken("other", APIToken{Bearer: true, CredentialType: "repo_access_token", Scopes: []string{"repository"}})
	s.Revoke("revoked")
	api := s.APIURL() + "/2.0/"
	if s.APIURL() != s.URL {
		t.Fatalf("Cloud APIURL %q, want the server root %q", s.APIURL(), s.URL)
	}

	cases := []struct {
		name, path, auth string
		code             int
		ctype, scopes    string
		msg              string
	}{
		{"repository token", "repositories/ws/repo", bearer(repoTok), 200, "repo_access_token", "repository:write, repository", ""},
		{"case-insensitive slugs", "repositories/WS/Repo", bearer(repoTok), 200, "repo_access_token", "repository:write, repository", ""},
		{"repository token elsewhere", "repositories/ws/repo2", bearer(repoTok), 403, "repo_access_token", "repository:write, repository", "Access denied"},
		{"repository token as Basic x-token-auth (git's way) is not the API's", "repositories/ws/repo", basic("x-token-auth", repoTok), 401, "", "", "Token is invalid"},
		{"workspace listing", "repositories/ws?pagelen=1", bearer(wsTok), 200, "workspace_access_token", "repository", ""},
		{"unknown workspace", "repositories/nope?pagelen=1", basic(email, apiTok), 404, "api_token", "read:repository:bitbucket, write:repository:bitbucket, read:workspace:bitbucket", "No workspace"},
		{"API token as Bearer", "repositories/ws/repo", bearer(apiTok), 401, "", "", ""},
		{"another workspace", "repositories/other?pagelen=1", bearer(wsTok), 403, "workspace_access_token", "repository", "Access denied"},
		{"missing repository", "repositories/ws/missing", bearer(wsTok), 404, "workspace_access_token", "repository", "not found"},
		{"API token with the e-mail", "repositories/ws/repo", basic(email, apiTok), 200, "api_token", "read:repository:bitbucket, write:repository:bitbucket, read:workspace:bitbucket", ""},
		{"API token with the git username", "repositories/ws/repo", basic("alice", apiTok), 401, "", "", ""},
		{"API token, user workspaces", "user/workspaces?pagelen=1", basic(email, apiTok), 200, "api_token", "read:repository:bitbucket, write:repository:bitbucket, read:workspace:bitbucket", ""},
		{"access token, user workspaces", "user/workspaces", bearer(wsTok), 403, "workspace_access_token", "repository", "not accessible by this authentication mechanism"},
		{"lacking scope", "repositories/ws/repo", bearer(noScope), 403, "repo_access_token", "webhook", ScopeErrorBody},
		{"app password", "repositories/ws/repo", basic("alice", goneTok), 410, "", "", ""},
		{"revoked", "repositories/ws/repo", bearer(revoked), 401, "", "", "Token is invalid"},
		{"no credentials", "repositories/ws/repo", "", 401, "", "", ""},
		{"unknown token", "repositories/ws/repo", bearer("ATCTT3xNoSuchToken"), 401, "", "", ""},
		{"git rules when no API token is set", "repositories/ws/repo", bearer(gitOnly), 200, "", "", ""},
		{"unknown endpoint", "snippets", bearer(repoTok), 404, "repo_access_token", "repository:write, repository", ""},
	}
	for _, c := range cases {
		a := apiGet(t, s, api+c.path, c.auth)
		if a.code != c.code {
			t.Errorf("%s: HTTP %d, want %d (%s)", c.name, a.code, c.code, a.message())
			continue
		}
		if got := a.header.Get("X-Credential-Type"); got != c.ctype {
			t.Errorf("%s: x-credential-type %q, want %q", c.name, got, c.ctype)
		}
		if got := a.header.Get("X-OAuth-Scopes"); got != c.scopes {
			t.Errorf("%s: x-oauth-scopes %q, want %q", c.name, got, c.scopes)
		}
		if !strings.Contains(a.message(), c.msg) {
			t.Errorf("%s: message %q, want %q in it", c.name, a.message(), c.msg)
		}
		if c.code == 401 && a.header.Get("WWW-Authenticate") != `Basic realm="`+CloudRealm+`"` {
			t.Errorf("%s: WWW-Authenticate %q", c.name, a.header.Get("WWW-Authenticate"))
		}
	}
	if a := apiGet(t, s, api+"repositories/ws/repo", bearer(noScope)); a.header.Get("X-Accepted-OAuth-Scopes") != "repository" {
		t.Errorf("403 for a scope: x-accepted-oauth-scopes %q", a.header.Get("X-Accepted-OAuth-Scopes"))
	}
	if a := apiGet(t, s, api+"repositories/ws?pagelen=1", bearer(wsTok)); a.body["size"] != float64(2) || len(a.body["values"].([]any)) != 1 {
		t.Errorf("workspace page: %v", a.body)
	}

	// Every API request is logged as such, without secrets (the fixture
	// checks the secrets at cleanup).
	reqs := s.APIRequests()
	if len(reqs) != len(cases)+2 {
		t.Errorf("%d API requests logged, want %d", len(reqs), len(cases)+2)
	}
	if r := reqs[0]; r.Service != "api" || r.Auth != "bearer" || r.Token != "repo" || r.Status != 200 {
		t.Errorf("first API request logged as %+v", r)
	}
	for _, r := range reqs {
		if strings.Contains(r.Path, "info/refs") {
			t.Errorf("git request in the API log: %+v", r)
		}
	}
}

func TestAPIRateLimitAndRedirect(t *testing.T) {
	t.Parallel()
	const tok = "ATCTT3xRateLimitedTokIIII"
	f := newFixture(t, Options{Flavor: Cloud}, []string{"ws/repo"},
		Token{Name: "t", Secret: tok, Usernames: []string{"x-token-auth"}, Bearer: true})
	s := f.s
	url := s.APIURL() + "/2.0/repositories/ws/repo"

	s.RateLimit(2, "7")
	for i := range 2 {
		a := apiGet(t, s, url, bearer(tok))
		if a.code != http.StatusTooManyRequests || a.header.Get("Retry-After") != "7" {
			t.Fatalf("request %d: HTTP %d Retry-After %q, want 429 and 7", i, a.code, a.header.Get("Retry-After"))
		}
	}
	if a := apiGet(t, s, url, bearer(tok)); a.code != 200 {
		t.Fatalf("after the limit: HTTP %d", a.code)
	}
	s.RateLimit(1, "")
	if a := apiGet(t, s, url, ""); a.code != http.StatusTooManyRequests || a.header.Get("Retry-After") != "" {
		t.Fatalf("without Retry-After: HTTP %d %q", a.code, a.header.Get("Retry-After"))
	}

	s.RedirectAPI("https://elsewhere.example/")
	a := apiGet(t, s, url, bearer(tok))
	if a.code != http.StatusFound || a.header.Get("Location") != "https://elsewhere.example/2.0/repositories/ws/repo" {
		t.Fatalf("redirect: HTTP %d Location %q", a.code, a.header.Get("Location"))
	}
	s.RedirectAPI("")

	// git still works next to the API.
	if out, err := f.git(t.TempDir(), bearer(tok), "ls-remote", s.URL+"/ws/repo.git"); err != nil {
		t.Fatalf("git ls-remote: %v\n%s", err, out)
	}
}

func TestDataCenterAPI(t *testing.T) {
	t.Parallel()
	const (
		projTok  = "BBDC-ApiProjectTokenJJJJ"
		repoTok  = "BBDC-ApiRepoTokenKKKK"
		personal = "BBDC-ApiPersonalTokenLLLL"
		elsewhr  = "BBDC-ApiElsewhereTokMMMM"
	)
	f := newFixture(t, Options{Flavor: DataCenter, ContextPath: "bitbucket"}, []string{"PROJ/repo", "PROJ/two", "OTHER/repo", "~alice/mine"},
		Token{Name: "proj", Secret: projTok, Bearer: true, Prefixes: []string{"PROJ"}},
		Token{Name: "repo", Secret: repoTok, Bearer: true, Prefixes: []string{"PROJ/repo"}, Write: true},
		Token{Name: "personal", Secret: personal, Usernames: []string{"alice"}, Write: true},
		Token{Name: "elsewhere", Secret: elsewhr, Bearer: true, Prefixes: []string{"OTHER/repo"}},
	)
	s := f.s
	s.SetAPIToken("personal", APIToken{Usernames: []string{"alice"}, Account: "alice"})
	if !strings.HasSuffix(s.APIURL(), "/bitbucket") || s.APIURL() != s.URL {
		t.Fatalf("Data Center APIURL %q, want the instance URL %q", s.APIURL(), s.URL)
	}
	api := s.APIURL() + "/rest/api/1.0/"
	cases := []struct {
		name, path, auth string
		code             int
		account, msg     string
	}{
		{"project token, project", "projects/PROJ", bearer(projTok), 200, "", ""},
		{"project token, repository", "projects/PROJ/repos/two", bearer(projTok), 200, "", ""},
		{"project keys are case-insensitive", "projects/proj/repos/repo", bearer(projTok), 200, "", ""},
		{"slugs are not", "projects/PROJ/repos/Repo", bearer(projTok), 404, "", "NoSuchRepositoryException"},
		{"repository token", "projects/PROJ/repos/repo", bearer(repoTok), 200, "", ""},
		{"repository token, another repository", "projects/PROJ/repos/two", bearer(repoTok), 401, "", "You are not permitted to access this resource [com.atlassian.bitbucket.AuthorisationException]"},
		{"another project", "projects/PROJ/repos/repo", bearer(elsewhr), 401, "", "AuthorisationException"},
		{"missing repository", "projects/PROJ/repos/nope", bearer(projTok), 404, "", "NoSuchRepositoryException"},
		{"personal token as Bearer when only Basic is set", "projects/PROJ", bearer(personal), 401, "", "IncorrectPassword"},
		{"personal token as Basic", "projects?limit=1", basic("alice", personal), 200, "alice", ""},
		{"personal token, user repository", "users/alice/repos/mine", basic("alice", personal), 200, "alice", ""},
		{"personal token, missing project", "projects/NOPE", basic("alice", personal), 404, "alice", "NoSuchProjectException"},
		{"personal token, wrong username", "projects?limit=1", basic("bob", personal), 401, "", "Authentication failed"},
		{"project token as Basic", "projects/PROJ", basic("x-token-auth", projTok), 401, "", "IncorrectPassword"},
		{"no context path", "", bearer(projTok), 0, "", ""},
		{"application properties", "application-properties", bearer(projTok), 200, "", ""},
	}
	for _, c := range cases {
		url := api + c.path
		if c.code == 0 {
			// Without the context path the API is not there.
			a := apiGet(t, s, strings.Replace(api, "/bitbucket/", "/", 1)+"projects/PROJ", c.auth)
			if a.code != 404 {
				t.Errorf("%s: HTTP %d, want 404", c.name, a.code)
			}
			continue
		}
		a := apiGet(t, s, url, c.auth)
		if a.code != c.code {
			t.Errorf("%s: HTTP %d, want %d (%s)", c.name, a.code, c.code, a.message())
			continue
		}
		if got := a.header.Get("X-AUSERNAME"); got != c.account {
			t.Errorf("%s: X-AUSERNAME %q, want %q", c.name, got, c.account)
		}
		if a.header.Get("X-AREQUESTID") == "" {
			t.Errorf("%s: no X-AREQUESTID", c.name)
		}
		if a.header.Get("X-OAuth-Scopes") != "" || a.header.Get("X-Credential-Type") != "" {
			t.Errorf("%s: Data Center sent Cloud headers", c.name)
		}
		if !strings.Contains(a.message(), c.msg) {
			t.Errorf("%s: message %q, want %q in it", c.name, a.message(), c.msg)
		}
		if c.code == 401 && strings.Contains(c.msg, "Authentication failed") && a.header.Get("WWW-Authenticate") != `Basic realm="`+DataCenterRealm+`"` {
			t.Errorf("%s: WWW-Authenticate %q", c.name, a.header.Get("WWW-Authenticate"))
		}
	}
}
