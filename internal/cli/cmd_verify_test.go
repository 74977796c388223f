package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/fakebb"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
	"github.com/bbtoken/git-credential-bbtoken/internal/testkeyring"
	"github.com/bbtoken/git-credential-bbtoken/internal/verify"
)

// In process: everything that sends nothing.

func TestVerifyUsage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, args := range [][]string{
		{"verify", "a", "b"},
		{"verify", "--bogus"},
		{"verify", "--json=maybe"},
	} {
		r := f.run("", args...)
		assert.Equal(t, ExitUsage, r.code, "%v", args)
		assertOneLine(t, r.stderr)
		assert.Empty(t, r.stdout)
	}
	f.getenv[EnvVerifyMaxWait] = "ten seconds"
	r := f.run("", "verify")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.stderr, EnvVerifyMaxWait)

	r = f.run("", "help")
	assert.Contains(t, r.stdout, "git-credential-bbtoken verify [ID|URL] [--json]")
	assert.Contains(t, r.stdout, "--email")
	assert.Contains(t, r.stdout, "--api-url")
}

func TestVerifyNothingToCheck(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.run("", "verify")
	assert.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "no tokens stored")
	r = f.run("", "verify", "--json")
	assert.Equal(t, ExitOK, r.code, r.stderr)
	assert.Equal(t, "[]\n", r.stdout)

	f.add(repoTok, "https://bitbucket.org/ws/repo")
	for _, arg := range []string{"0badc0de", "https://bitbucket.org/other/repo", "https://bitbucket.org/other", "https://git.example.com/ws/repo"} {
		r = f.run("", "verify", arg)
		assert.Equal(t, ExitError, r.code, arg)
		assertOneLine(t, r.stderr)
		assert.Contains(t, r.stderr, "no such entry", arg)
		assert.Empty(t, r.stdout)
	}
	r = f.run("", "verify", "ssh://git@bitbucket.org/ws/repo.git")
	assert.Equal(t, ExitError, r.code)
	assert.Contains(t, r.stderr, "neither an id nor a URL")
}

func TestVerifyUnverifiable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	api := f.add(apiTok, "https://bitbucket.org", "--kind", "api", "--username", "alice")
	st := &store.Store{Dir: f.dir, Secrets: f.secrets}
	// A Cloud-flavoured host other than bitbucket.org, without --api-url.
	require.NoError(t, st.Update(context.Background(), func(tx *store.Tx) error {
		tx.Index.Hosts = map[string]store.HostConfig{"bb-proxy.example.com": {Flavor: "cloud"}}
		tx.Changed()
		return nil
	}))
	proxied := f.add(repoTok, "https://bb-proxy.example.com/ws/repo")
	missing := f.add(wsTok, "https://bitbucket.org/ws", "--kind", "workspace")
	require.NoError(t, f.secrets.Delete(context.Background(), missing))
	// A password git stored after its prompt, with a Bitbucket username.
	r := f.run("protocol=https\nhost=bitbucket.org\npath=team/x.git\nusername=bob\npassword="+typedPw+"\n", "store")
	require.Equal(t, ExitOK, r.code, r.stderr)
	// An env entry whose variable is unset where verify runs.
	r = f.run("", "add", "https://bitbucket.org/ws/env", "--kind", "repository", "--from-env", "UNSET_BB_TOKEN")
	require.Equal(t, ExitOK, r.code, r.stderr)
	envID := strings.TrimSpace(r.stdout)
	var typed string
	for _, e := range f.index().Entries {
		if e.Kind == store.KindStored {
			typed = e.ID
		}
	}
	before := f.state()

	r = f.run("", "verify", "--json")
	assert.Equal(t, ExitError, r.code)
	assertOneLine(t, r.stderr)
	assert.Contains(t, r.stderr, "5 of 5 token(s) not verified valid (see the JSON on stdout)")
	var rows []verify.Row
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rows), r.stdout)
	require.Len(t, rows, 5)
	byID := map[string]verify.Row{}
	for _, row := range rows {
		byID[row.ID] = row
		assert.Equal(t, "unverifiable", row.Status)
		assert.Empty(t, row.Checked, "nothing was requested")
		assert.Nil(t, row.HTTPStatus)
		assert.Nil(t, row.CanClone)
		assert.Nil(t, row.CanPush)
		assert.Nil(t, row.Scopes)
	}
	assert.Contains(t, byID[api].Detail, "add the token again with --email")
	assert.Contains(t, byID[proxied].Detail, "setup --host https://bb-proxy.example.com --flavor cloud --api-url URL")
	assert.Contains(t, byID[missing].Detail, "missing from the keyring")
	assert.Contains(t, byID[typed].Detail, "git stored this credential with a username")
	assert.Contains(t, byID[envID].Detail, "$UNSET_BB_TOKEN")
	assert.Contains(t, byID[envID].Detail, "set it where verify runs")
	assertUnchanged(t, before, f.state())

	// The JSON keys, as documented.
	var raw []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &raw))
	for _, k := range []string{"id", "url", "kind", "status", "http_status", "credential_type", "scopes", "can_clone", "can_push", "expires", "detail"} {
		assert.Contains(t, raw[0], k)
	}

	r = f.run("", "verify")
	assert.Equal(t, ExitError, r.code)
	assert.Regexp(t, `(?m)^ID\s+KIND\s+STATUS\s+HTTP\s+CLONE\s+PUSH\s+EXPIRES\s+TYPE\s+SCOPES\s+URL$`, r.stdout)
	assert.Regexp(t, `(?m)^`+api+`\s+api\s+unverifiable\s+-\s+unknown\s+unknown\s+-\s+-\s+-\s+https://bitbucket.org$`, r.stdout)
	assert.Contains(t, r.stdout, "\n5 checked: 5 unverifiable\n")
	assertNoSecret(t, "stdout", r.stdout)
}

func TestAddEmail(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.add(apiTok, "https://bitbucket.org", "--kind", "api", "--email", "alice@example.com")
	e := f.entry(id)
	assert.Equal(t, "alice@example.com", e.Email)
	assert.Equal(t, "x-bitbucket-api-token-auth", e.Username, "git never gets the e-mail")
	r := f.run("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n", "get")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.NotContains(t, r.stdout, "alice@example.com")

	before := f.state()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"https://bitbucket.org", "--kind", "api", "--email", "alice"}, "not an address"},
		{[]string{"https://bitbucket.org", "--kind", "api", "--email", "a:b@example.com"}, "':'"},
		{[]string{"https://bitbucket.org/ws/repo", "--email", "alice@example.com"}, "Cloud API tokens only"},
		{[]string{"https://git.example.com", "--kind", "personal", "--username", "alice", "--email", "alice@example.com"}, "Cloud API tokens only"},
	} {
		tok := repoTok
		if c.args[0] == "https://git.example.com" {
			tok = dcTok
		}
		r := f.run(tok+"\n", append([]string{"add"}, c.args...)...)
		assert.Equal(t, ExitError, r.code, "%v", c.args)
		assert.Contains(t, r.stderr, c.want, "%v", c.args)
		assertNoSecret(t, "stderr", r.stderr)
	}
	assertUnchanged(t, before, f.state())
}

func TestSetupAPIURL(t *testing.T) {
	isolateGit(t)
	f := newFixture(t)
	r := f.run("", "setup", "--host", "https://bb.example.com", "--api-url", "https://API-proxy.example.com/bb/")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "https://bb.example.com: verify uses the REST API at https://api-proxy.example.com/bb\n")
	assert.Equal(t, "https://api-proxy.example.com/bb", f.index().Hosts["bb.example.com"].APIURL)

	// setup again without --api-url keeps it; --api-url "" resets it.
	r = f.run("", "setup", "--host", "https://bb.example.com")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Equal(t, "https://api-proxy.example.com/bb", f.index().Hosts["bb.example.com"].APIURL)
	r = f.run("", "setup", "--host", "https://bb.example.com", "--api-url", "", "--dry-run")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "verify would use the default REST API")
	assert.Equal(t, "https://api-proxy.example.com/bb", f.index().Hosts["bb.example.com"].APIURL)
	r = f.run("", "setup", "--host", "https://bb.example.com", "--api-url", "")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Empty(t, f.index().Hosts["bb.example.com"].APIURL)

	before := f.state()
	for _, args := range [][]string{
		{"setup", "--api-url", "http://api.example.com"},
		{"setup", "--api-url", "https://user:pw@api.example.com"},
		{"setup", "--host", "https://a.example.com", "--host", "https://b.example.com", "--api-url", "https://api.example.com"},
		{"setup", "--remove", "--api-url", "https://api.example.com"},
	} {
		r := f.run("", args...)
		assert.Equal(t, ExitUsage, r.code, "%v", args)
		assertOneLine(t, r.stderr)
		assert.NotContains(t, r.stderr, "pw@")
	}
	assertUnchanged(t, before, f.state())
}

// Through the real binary, the real keyring and a local HTTPS server that
// answers like the Bitbucket REST API.

// verifyEnv is one user (HOME, config, keyring entries) and one server.
type verifyEnv struct {
	t     *testing.T
	srv   *fakebb.Server
	home  string
	env   []string
	ids   []string
	leaks []string // secrets and their Basic forms, never to be printed
}

func newVerifyEnv(t *testing.T, opts fakebb.Options, repos []string, tokens ...fakebb.Token) *verifyEnv {
	t.Helper()
	requireGit(t)
	testkeyring.Require(t)
	srv, err := fakebb.Start(t.TempDir(), opts)
	require.NoError(t, err)
	for _, r := range repos {
		_, err := srv.CreateRepo(r)
		require.NoError(t, err)
	}
	home := t.TempDir()
	v := &verifyEnv{t: t, srv: srv, home: home, env: binEnv(home,
		"DBUS_SESSION_BUS_ADDRESS="+os.Getenv("DBUS_SESSION_BUS_ADDRESS"),
		"SSL_CERT_FILE="+srv.CAFile,
		EnvVerifyMaxWait+"=4s",
	)}
	for _, tok := range tokens {
		v.token(tok)
	}
	t.Cleanup(func() {
		for _, id := range v.ids {
			r := runBin(t, binPath, v.env, "", "remove", id)
			assert.Equal(t, ExitOK, r.code, r.stderr)
		}
		srv.Close()
	})
	return v
}

func (v *verifyEnv) token(tok fakebb.Token) {
	v.srv.AddToken(tok)
	v.leaks = append(v.leaks, tok.Secret)
	for _, u := range append(tok.Usernames, "x-token-auth", "alice@example.com") {
		v.leaks = append(v.leaks, base64.StdEncoding.EncodeToString([]byte(u+":"+tok.Secret)))
	}
}

// run runs the binary and checks that no secret reached its output.
func (v *verifyEnv) run(stdin string, args ...string) procResult {
	v.t.Helper()
	return v.runEnv(v.env, stdin, args...)
}

func (v *verifyEnv) runEnv(env []string, stdin string, args ...string) procResult {
	v.t.Helper()
	r := runBin(v.t, binPath, env, stdin, args...)
	require.False(v.t, r.timedOut, "%v timed out", args)
	for _, leak := range v.leaks {
		assert.NotContains(v.t, r.stdout, leak, "%v: stdout leaks a secret", args)
		assert.NotContains(v.t, r.stderr, leak, "%v: stderr leaks a secret", args)
	}
	return r
}

func (v *verifyEnv) add(secret string, args ...string) string {
	v.t.Helper()
	r := v.run(secret+"\n", append([]string{"add"}, args...)...)
	require.Equal(v.t, ExitOK, r.code, "add %v: %s", args, r.stderr)
	id := strings.TrimSpace(r.stdout)
	v.ids = append(v.ids, id)
	return id
}

// verify runs verify --json and returns its rows by id.
func (v *verifyEnv) verify(args ...string) (map[string]verify.Row, procResult) {
	v.t.Helper()
	r := v.run("", append([]string{"verify", "--json"}, args...)...)
	var rows []verify.Row
	require.NoError(v.t, json.Unmarshal([]byte(r.stdout), &rows), "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	out := map[string]verify.Row{}
	for _, row := range rows {
		out[row.ID] = row
	}
	return out, r
}

// states is list --json's state of each entry.
func (v *verifyEnv) states() map[string]string {
	v.t.Helper()
	r := v.run("", "list", "--json")
	require.Equal(v.t, ExitOK, r.code, r.stderr)
	var rows []listed
	require.NoError(v.t, json.Unmarshal([]byte(r.stdout), &rows))
	out := map[string]string{}
	for _, row := range rows {
		out[row.ID] = row.State
	}
	return out
}

func (v *verifyEnv) apiRequests() []fakebb.Request { return v.srv.APIRequests() }

func boolp(b bool) *bool { return &b }

func TestVerifyCloudBinary(t *testing.T) {
	t.Parallel()
	const (
		repoSecret    = "ATCTT3xVerifyRepoTokenAA01"
		wsSecret      = "ATCTT3xVerifyWorkspaceTokAA02"
		apiSecret     = "ATATT3xVerifyApiTokenAAAA03"
		noMailSecret  = "ATATT3xVerifyApiNoMailAAA04"
		noScopeSecret = "ATCTT3xVerifyNoScopeTokAA05"
		revokedSecret = "ATCTT3xVerifyRevokedTokAA06"
		email         = "alice@example.com"
	)
	v := newVerifyEnv(t, fakebb.Options{Flavor: fakebb.Cloud}, []string{"ws/repo", "ws/repo2", "ws/repo3", "ws/old"},
		fakebb.Token{Name: "repo", Secret: repoSecret, Usernames: []string{"x-token-auth"}, Prefixes: []string{"ws/repo"}, Write: true},
		fakebb.Token{Name: "ws", Secret: wsSecret, Usernames: []string{"x-token-auth"}, Prefixes: []string{"ws"}},
		fakebb.Token{Name: "api", Secret: apiSecret, Usernames: []string{"x-bitbucket-api-token-auth"}, Write: true},
		fakebb.Token{Name: "nomail", Secret: noMailSecret, Usernames: []string{"x-bitbucket-api-token-auth"}},
		fakebb.Token{Name: "noscope", Secret: noScopeSecret, Usernames: []string{"x-token-auth"}, Prefixes: []string{"ws/repo2"}},
		fakebb.Token{Name: "revoked", Secret: revokedSecret, Usernames: []string{"x-token-auth"}, Prefixes: []string{"ws/old"}},
	)
	s := v.srv
	s.SetAPIToken("repo", fakebb.APIToken{Bearer: true, CredentialType: "repo_access_token", Scopes: []string{"repository:write", "repository"}})
	s.SetAPIToken("ws", fakebb.APIToken{Bearer: true, CredentialType: "workspace_access_token", Scopes: []string{"repository"}})
	s.SetAPIToken("api", fakebb.APIToken{Usernames: []string{email}, CredentialType: "api_token", Scopes: []string{"read:repository:bitbucket", "write:repository:bitbucket"}})
	s.SetAPIToken("noscope", fakebb.APIToken{Bearer: true, CredentialType: "repo_access_token", Scopes: []string{"webhook"}})
	s.SetAPIToken("revoked", fakebb.APIToken{Bearer: true, CredentialType: "repo_access_token", Scopes: []string{"repository"}})
	s.Revoke("revoked")

	// The server stands in for bitbucket.org: a Cloud host whose API is
	// the server itself.
	r := v.run("", "setup", "--host", s.URL, "--flavor", "cloud", "--api-url", s.APIURL())
	require.Equal(t, ExitOK, r.code, r.stderr)
	repo := v.add(repoSecret, s.URL+"/ws/repo", "--expires", time.Now().AddDate(0, 0, 3).UTC().Format(time.DateOnly))
	ws := v.add(wsSecret, s.URL+"/ws", "--kind", "workspace")
	api := v.add(apiSecret, s.URL, "--kind", "api", "--email", email)
	noMail := v.add(noMailSecret, s.URL+"/ws", "--kind", "api")
	noScope := v.add(noScopeSecret, s.URL+"/ws/repo2")
	revoked := v.add(revokedSecret, s.URL+"/ws/old")

	rows, r := v.verify()
	assert.Equal(t, ExitError, r.code)
	assert.Equal(t, "git-credential-bbtoken: verify: 3 of 6 token(s) not verified valid (see the JSON on stdout)\n", r.stderr)
	require.Len(t, rows, 6)
	host := strings.TrimPrefix(s.URL, "https://")

	got := rows[repo]
	assert.Equal(t, "valid", got.Status)
	assert.Equal(t, 200, *got.HTTPStatus)
	assert.Equal(t, "repo_access_token", got.CredentialType)
	assert.Equal(t, []string{"repository:write", "repository"}, got.Scopes)
	assert.Equal(t, boolp(true), got.CanClone)
	assert.Equal(t, boolp(true), got.CanPush)
	assert.Equal(t, s.URL+"/2.0/repositories/ws/repo", got.Checked)
	assert.Equal(t, "https://"+host+"/ws/repo", got.URL)
	assert.Contains(t, got.Detail, "the token can read repository ws/repo")
	assert.Contains(t, got.Detail, "in 2 day(s)", "the recorded expiry is reported")

	got = rows[ws]
	assert.Equal(t, "valid", got.Status)
	assert.Equal(t, "workspace_access_token", got.CredentialType)
	assert.Equal(t, boolp(true), got.CanClone)
	assert.Equal(t, boolp(false), got.CanPush)
	assert.Equal(t, s.URL+"/2.0/repositories/ws?pagelen=1", got.Checked)
	assert.Contains(t, got.Detail, "read-only: pushing needs repository:write")

	got = rows[api]
	assert.Equal(t, "valid", got.Status, got.Detail)
	assert.Equal(t, 403, *got.HTTPStatus, "no read:workspace:bitbucket, but the credentials authenticate")
	assert.Equal(t, "api_token", got.CredentialType)
	assert.Equal(t, boolp(true), got.CanClone)
	assert.Equal(t, boolp(true), got.CanPush)
	assert.Equal(t, s.URL+"/2.0/user/workspaces?pagelen=1", got.Checked)

	got = rows[noMail]
	assert.Equal(t, "unverifiable", got.Status)
	assert.Contains(t, got.Detail, "--email")

	got = rows[noScope]
	assert.Equal(t, "lacking-scope", got.Status)
	assert.Equal(t, 403, *got.HTTPStatus)
	assert.Equal(t, []string{"webhook"}, got.Scopes)
	assert.Equal(t, boolp(false), got.CanClone)
	assert.Contains(t, got.Detail, "lack one or more required privilege scopes")
	assert.Contains(t, got.Detail, "the endpoint takes repository")

	got = rows[revoked]
	assert.Equal(t, "rejected", got.Status)
	assert.Equal(t, 401, *got.HTTPStatus)
	assert.Equal(t, boolp(false), got.CanClone)
	assert.Contains(t, got.Detail, "now marked rejected")

	// How the API was called: Bearer for access tokens, Basic with the
	// e-mail for the API token, nothing for the one without an e-mail.
	byToken := map[string]fakebb.Request{}
	for _, req := range v.apiRequests() {
		byToken[req.Token] = req
	}
	assert.Equal(t, "bearer", byToken["repo"].Auth)
	assert.Equal(t, "basic", byToken["api"].Auth)
	assert.Equal(t, email, byToken["api"].Username)
	assert.NotContains(t, byToken, "nomail")
	assert.Len(t, v.apiRequests(), 5)

	states := v.states()
	assert.Equal(t, "rejected", states[revoked], "a 401 marks the token rejected")
	assert.Equal(t, "active", states[noScope], "a 403 does not")
	assert.Equal(t, "active", states[repo])

	// get (whose stdout carries a password by design) stays offline, and
	// skips the rejected token for the workspace token that covers it.
	n := len(v.apiRequests())
	r = runBin(t, binPath, v.env, "protocol=https\nhost="+host+"\npath=ws/old.git\n\n", "get")
	assert.Equal(t, ExitOK, r.code, r.stderr)
	assert.Equal(t, "username=x-token-auth\npassword="+wsSecret+"\n", r.stdout)
	r = runBin(t, binPath, v.env, "protocol=https\nhost="+host+"\npath=ws/repo.git\n\n", "get")
	assert.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "password="+repoSecret+"\n")
	assert.Len(t, v.apiRequests(), n, "get never calls the API")

	// The token works again (say Bitbucket had a hiccup): verify revives it.
	s.AddToken(fakebb.Token{Name: "revoked", Secret: revokedSecret, Usernames: []string{"x-token-auth"}, Prefixes: []string{"ws/old"}})
	rows, r = v.verify(revoked)
	assert.Equal(t, ExitOK, r.code, r.stderr)
	assert.Empty(t, r.stderr)
	require.Len(t, rows, 1)
	assert.Equal(t, "valid", rows[revoked].Status)
	assert.Contains(t, rows[revoked].Detail, "it was marked rejected and is active again")
	assert.Equal(t, "active", v.states()[revoked])

	// By id, in the human format; with a trace on stderr, secrets masked.
	env := append(append([]string(nil), v.env...), "GIT_CREDENTIAL_BBTOKEN_TRACE=1")
	r = v.runEnv(env, "", "verify", repo)
	assert.Equal(t, ExitOK, r.code, r.stderr)
	assert.Regexp(t, `(?m)^`+repo+`\s+repository\s+valid\s+200\s+yes\s+yes\s+\d{4}-\d\d-\d\d\s+repo_access_token\s+repository:write,repository\s+https://`+host+`/ws/repo$`, r.stdout)
	assert.Contains(t, r.stdout, repo+": the token can read repository ws/repo")
	assert.Contains(t, r.stdout, "\n1 checked: 1 valid\n")
	assert.Contains(t, r.stderr, "verify: GET "+s.URL+"/2.0/repositories/ws/repo (Bearer ****AA01)")
	assert.Contains(t, r.stderr, `verify: HTTP 200 x-credential-type="repo_access_token"`)

	// By URL: every token git could use there, the broader ones checked
	// for that repository.
	rows, r = v.verify(s.URL + "/ws/repo.git")
	assert.Equal(t, ExitError, r.code, "the API token without an e-mail cannot be checked")
	require.Len(t, rows, 4)
	assert.Equal(t, s.URL+"/2.0/repositories/ws/repo", rows[repo].Checked)
	assert.NotContains(t, rows[repo].Detail, "checked for", "the token's own scope")
	assert.Equal(t, s.URL+"/2.0/repositories/ws/repo", rows[ws].Checked)
	assert.Contains(t, rows[ws].Detail, "checked for ws/repo, inside the token's scope")
	assert.Equal(t, s.URL+"/2.0/repositories/ws/repo", rows[api].Checked)
	assert.Equal(t, "unverifiable", rows[noMail].Status)
	rows, r = v.verify(s.URL + "/ws/repo3")
	assert.Equal(t, ExitError, r.code, "the API token without an e-mail cannot be checked")
	require.Len(t, rows, 3)
	for _, id := range []string{ws, api} {
		assert.Equal(t, "valid", rows[id].Status, rows[id].Detail)
		assert.Equal(t, 200, *rows[id].HTTPStatus)
		assert.Equal(t, s.URL+"/2.0/repositories/ws/repo3", rows[id].Checked)
		assert.Contains(t, rows[id].Detail, "checked for ws/repo3, inside the token's scope")
	}
	assert.Equal(t, "unverifiable", rows[noMail].Status)

	// A workspace URL takes in the tokens below it, each for its own scope.
	rows, r = v.verify(s.URL + "/WS")
	assert.Equal(t, ExitError, r.code)
	assert.Len(t, rows, 6, "the host-wide tokens, the workspace's and those of its repositories")
	assert.Equal(t, s.URL+"/2.0/repositories/ws/repo2", rows[noScope].Checked)
	assert.Equal(t, s.URL+"/2.0/repositories/ws?pagelen=1", rows[api].Checked, "the host-wide token, for the workspace")
}

func TestVerifyRateLimitsAndFailures(t *testing.T) {
	t.Parallel()
	const (
		repoSecret = "ATCTT3xLimitsRepoTokenBB01"
		goneSecret = "ATCTT3xLimitsGoneTokenBB02"
	)
	v := newVerifyEnv(t, fakebb.Options{Flavor: fakebb.Cloud}, []string{"ws/repo", "ws/gone"},
		fakebb.Token{Name: "repo", Secret: repoSecret, Usernames: []string{"x-token-auth"}, Prefixes: []string{"ws/repo"}, Write: true},
		fakebb.Token{Name: "gone", Secret: goneSecret, Usernames: []string{"x-token-auth"}, Prefixes: []string{"ws/gone"}},
	)
	s := v.srv
	s.SetAPIToken("repo", fakebb.APIToken{Bearer: true, CredentialType: "repo_access_token", Scopes: []string{"repository"}})
	s.SetAPIToken("gone", fakebb.APIToken{Bearer: true, Gone: true})
	r := v.run("", "setup", "--host", s.URL, "--flavor", "cloud", "--api-url", s.APIURL())
	require.Equal(t, ExitOK, r.code, r.stderr)
	repo := v.add(repoSecret, s.URL+"/ws/repo")
	gone := v.add(goneSecret, s.URL+"/ws/gone")

	t.Run("Retry-After seconds: waits, then valid", func(t *testing.T) {
		s.RateLimit(1, "1")
		before := len(v.apiRequests())
		rows, r := v.verify(repo)
		assert.Equal(t, ExitOK, r.code, r.stderr)
		assert.Equal(t, "valid", rows[repo].Status)
		assert.GreaterOrEqual(t, r.elapsed, time.Second)
		assert.Len(t, v.apiRequests(), before+2)
	})
	t.Run("Retry-After date: waits, then valid", func(t *testing.T) {
		s.RateLimit(1, time.Now().Add(2*time.Second).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT"))
		rows, r := v.verify(repo)
		assert.Equal(t, ExitOK, r.code, r.stderr)
		assert.Equal(t, "valid", rows[repo].Status)
	})
	t.Run("Retry-After too long: rate-limited at once", func(t *testing.T) {
		s.RateLimit(100, "120")
		defer s.RateLimit(0, "")
		rows, r := v.verify(repo)
		assert.Equal(t, ExitError, r.code)
		assert.Equal(t, "rate-limited", rows[repo].Status)
		assert.Equal(t, 429, *rows[repo].HTTPStatus)
		assert.Nil(t, rows[repo].CanClone, "nothing learned")
		assert.Contains(t, rows[repo].Detail, "retry after 2m0s, more than the 4s left to wait")
		assert.Less(t, r.elapsed, 4*time.Second)
		assert.Equal(t, "active", v.states()[repo], "no state change")
	})
	t.Run("without Retry-After: bounded backoff", func(t *testing.T) {
		s.RateLimit(100, "")
		defer s.RateLimit(0, "")
		rows, r := v.verify(repo)
		assert.Equal(t, ExitError, r.code)
		assert.Equal(t, "rate-limited", rows[repo].Status)
		assert.Less(t, r.elapsed, 8*time.Second, "at most the 4 s bound of waiting")
	})
	t.Run("gone", func(t *testing.T) {
		rows, r := v.verify(gone)
		assert.Equal(t, ExitError, r.code)
		assert.Equal(t, "gone", rows[gone].Status)
		assert.Equal(t, 410, *rows[gone].HTTPStatus)
		assert.Equal(t, boolp(false), rows[gone].CanClone)
		assert.Equal(t, "active", v.states()[gone], "only a 401 marks a token rejected")
	})
	t.Run("redirect to another host: not followed", func(t *testing.T) {
		s.RedirectAPI("https://127.0.0.1:1")
		defer s.RedirectAPI("")
		rows, r := v.verify(repo)
		assert.Equal(t, ExitError, r.code)
		assert.Equal(t, "error", rows[repo].Status)
		assert.Equal(t, 302, *rows[repo].HTTPStatus)
		assert.Contains(t, rows[repo].Detail, "redirected to https://127.0.0.1:1/2.0/repositories/ws/repo: not followed")
	})
	t.Run("no answer: the next check on that host is skipped", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		dead := "https://" + l.Addr().String()
		require.NoError(t, l.Close())
		r := v.run("", "setup", "--host", s.URL, "--flavor", "cloud", "--api-url", dead)
		require.Equal(t, ExitOK, r.code, r.stderr)
		defer func() {
			r := v.run("", "setup", "--host", s.URL, "--flavor", "cloud", "--api-url", s.APIURL())
			require.Equal(t, ExitOK, r.code, r.stderr)
		}()
		rows, r := v.verify()
		assert.Equal(t, ExitError, r.code)
		assert.Equal(t, "error", rows[gone].Status)
		assert.Nil(t, rows[gone].HTTPStatus)
		assert.Contains(t, rows[gone].Detail, "no answer from "+strings.TrimPrefix(dead, "https://"))
		assert.Equal(t, "error", rows[repo].Status)
		assert.Contains(t, rows[repo].Detail, "not checked: no answer from")
		assert.Equal(t, "active", v.states()[repo])
	})
}

func TestVerifyDataCenterBinary(t *testing.T) {
	t.Parallel()
	const (
		projSecret     = "BBDC-VerifyProjectTokenCC01"
		repoSecret     = "BBDC-VerifyRepoTokenCCCCC02"
		personalSecret = "BBDC-VerifyPersonalTokCC03"
		misplaced      = "BBDC-VerifyMisplacedTokCC04"
		revokedSecret  = "BBDC-VerifyRevokedTokCCC05"
	)
	v := newVerifyEnv(t, fakebb.Options{Flavor: fakebb.DataCenter, ContextPath: "bitbucket"}, []string{"PROJ/repo", "PROJ/two", "OTHER/x"},
		fakebb.Token{Name: "proj", Secret: projSecret, Bearer: true, Prefixes: []string{"PROJ"}, Write: true},
		fakebb.Token{Name: "repo", Secret: repoSecret, Bearer: true, Prefixes: []string{"PROJ/repo"}},
		fakebb.Token{Name: "personal", Secret: personalSecret, Usernames: []string{"alice"}, Write: true},
		fakebb.Token{Name: "misplaced", Secret: misplaced, Bearer: true, Prefixes: []string{"OTHER/x"}},
		fakebb.Token{Name: "revoked", Secret: revokedSecret, Usernames: []string{"bob"}},
	)
	s := v.srv
	s.SetAPIToken("personal", fakebb.APIToken{Usernames: []string{"alice"}, Account: "alice"})
	s.Revoke("revoked")
	require.True(t, strings.HasSuffix(s.URL, "/bitbucket"))

	// No setup: a host other than bitbucket.org is Data Center, and its
	// API is under the instance URL, context path kept.
	proj := v.add(projSecret, s.URL+"/projects/PROJ", "--kind", "project")
	repo := v.add(repoSecret, s.URL+"/scm/PROJ/repo.git")
	personal := v.add(personalSecret, s.URL, "--kind", "personal", "--username", "alice")
	wrong := v.add(misplaced, s.URL+"/scm/PROJ/two.git")
	bob := v.add(revokedSecret, s.URL+"/scm/PROJ/two.git", "--kind", "personal", "--username", "bob")

	rows, r := v.verify()
	assert.Equal(t, ExitError, r.code)
	require.Len(t, rows, 5)
	api := s.URL + "/rest/api/1.0/"

	got := rows[proj]
	assert.Equal(t, "valid", got.Status, got.Detail)
	assert.Equal(t, api+"projects/PROJ", got.Checked)
	assert.Nil(t, got.Scopes, "Data Center reports no scopes")
	assert.Empty(t, got.CredentialType)
	assert.Nil(t, got.CanClone, "not guessed")
	assert.Nil(t, got.CanPush)
	assert.Contains(t, got.Detail, "Data Center does not report a token's permissions: clone and push unknown")

	got = rows[repo]
	assert.Equal(t, "valid", got.Status)
	assert.Equal(t, api+"projects/PROJ/repos/repo", got.Checked)
	assert.Equal(t, boolp(true), got.CanClone, "the endpoint needs REPO_READ")
	assert.Nil(t, got.CanPush)

	got = rows[personal]
	assert.Equal(t, "valid", got.Status)
	assert.Equal(t, api+"projects?limit=1", got.Checked)
	assert.Contains(t, got.Detail, "authenticated as alice")

	got = rows[wrong]
	assert.Equal(t, "lacking-scope", got.Status, "Data Center's 401 for a user without permission is not a rejection")
	assert.Equal(t, 401, *got.HTTPStatus)
	assert.Equal(t, boolp(false), got.CanClone)
	assert.Contains(t, got.Detail, "You are not permitted to access this resource")

	got = rows[bob]
	assert.Equal(t, "rejected", got.Status)
	assert.Contains(t, got.Detail, "Authentication failed")

	states := v.states()
	assert.Equal(t, "rejected", states[bob])
	assert.Equal(t, "active", states[wrong])

	for _, req := range v.apiRequests() {
		assert.True(t, strings.HasPrefix(req.Path, "/bitbucket/rest/api/1.0/"), req.Path)
		switch req.Token {
		case "proj", "repo", "misplaced":
			assert.Equal(t, "bearer", req.Auth, req.Token)
		case "personal":
			assert.Equal(t, "basic", req.Auth, req.Token)
			assert.Equal(t, "alice", req.Username)
		case "revoked":
			assert.Equal(t, "basic", req.Auth, req.Token)
			assert.Equal(t, "bob", req.Username)
		}
	}

	r = v.run("", "verify", repo)
	assert.Equal(t, ExitOK, r.code, r.stderr)
	assert.Regexp(t, `(?m)^`+repo+`\s+repository\s+valid\s+200\s+yes\s+unknown\s+-\s+-\s+-\s+`, r.stdout)
}

// TestVerifyServerEchoesCredentials: a server (or a proxy) that quotes the
// credentials it was sent, raw, in their Authorization form and
// percent-encoded, in its 401 answer: verify's report, text and JSON, with
// tracing off (the redactor learns every secret read, traced or not),
// shows none of it.
func TestVerifyServerEchoesCredentials(t *testing.T) {
	const dcSecret = "BBDC-NDM2MjA5NzQ5OTQ4Ok1+YmZ4K3hZ/4Ttq9n6uOHr0pQ9Qp"
	v := newVerifyEnv(t, fakebb.Options{Flavor: fakebb.DataCenter, EchoCredentials: true}, []string{"PROJ/repo"})
	v.leaks = append(v.leaks, dcSecret, url.QueryEscape(dcSecret), url.PathEscape(dcSecret))
	r := v.run("", "setup", "--host", v.srv.URL, "--flavor", "datacenter")
	require.Equal(t, ExitOK, r.code, r.stderr)
	v.add(dcSecret, v.srv.URL+"/projects/PROJ", "--kind", "project")
	rows, r := v.verify()
	require.Len(t, rows, 1)
	for _, row := range rows {
		assert.Equal(t, "rejected", row.Status, "%+v", row)
		assert.Contains(t, row.Detail, "****", "the echo is there, masked")
	}
	r = v.run("", "verify")
	assert.Contains(t, r.stdout, "****")
}
