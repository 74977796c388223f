package fakebb

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fixture is a server plus what the tests need to drive git against it.
type fixture struct {
	t       *testing.T
	s       *Server
	home    string
	secrets []string
}

func newFixture(t *testing.T, opts Options, repos []string, tokens ...Token) *fixture {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	s, err := Start(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	f := &fixture{t: t, s: s, home: t.TempDir()}
	t.Cleanup(func() {
		s.Close()
		f.assertNoSecrets()
	})
	for _, r := range repos {
		if _, err := s.CreateRepo(r); err != nil {
			t.Fatalf("CreateRepo(%q): %v", r, err)
		}
	}
	for _, tok := range tokens {
		f.addToken(tok)
	}
	return f
}

func (f *fixture) addToken(tok Token) {
	f.secrets = append(f.secrets, tok.Secret)
	f.s.AddToken(tok)
}

// assertNoSecrets checks that no secret appears anywhere in the log.
func (f *fixture) assertNoSecrets() {
	dump := fmt.Sprintf("%#v", f.s.Requests())
	for _, sec := range f.secrets {
		for _, form := range []string{sec, base64.StdEncoding.EncodeToString([]byte(sec))} {
			if strings.Contains(dump, form) {
				f.t.Errorf("request log contains a secret: %s", dump)
			}
		}
	}
}

func basic(user, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+secret))
}

func bearer(secret string) string { return "Bearer " + secret }

// git runs the real git client in dir with a clean environment; auth, when
// set, is sent as the Authorization header via http.extraHeader.
func (f *fixture) git(dir, auth string, args ...string) (string, error) {
	f.t.Helper()
	var full []string
	if auth != "" {
		full = append(full, "-c", "http.extraHeader=Authorization: "+auth)
	}
	full = append(full, args...)
	cmd := exec.Command("git", full...)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + f.home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_SSL_CAINFO=" + f.s.CAFile,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.invalid",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.invalid",
		"LC_ALL=C",
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// since returns the log entries after the first n.
func (f *fixture) since(n int) []Request { return f.s.Requests()[n:] }

// clientFromCAFile builds an HTTP client trusting only the CA file.
func clientFromCAFile(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in CA file")
	}
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
}

func TestCovers(t *testing.T) {
	cases := []struct {
		flavor       Flavor
		prefix, repo string // repo is a canonical key
		want         bool
	}{
		{Cloud, "ws/repo", "ws/repo", true},
		{Cloud, "ws/repo.git", "ws/repo", true},
		{Cloud, "ws/repo", "ws/repo2", false},
		{Cloud, "ws", "ws/repo", true},
		{Cloud, "ws", "ws2/repo", false},
		{Cloud, "/ws/", "ws/repo", true},
		{Cloud, "WS/Repo", "ws/repo", true},
		{Cloud, "", "ws/repo", false},
		{DataCenter, "PROJ/repo", "proj/repo", true},
		{DataCenter, "proj", "proj/repo", true},
		{DataCenter, "PROJ/Repo", "proj/repo", false},
		{DataCenter, "PROJ", "proj2/repo", false},
		{DataCenter, "~Alice", "~alice/repo", true},
	}
	for _, c := range cases {
		if got := covers(c.flavor, c.prefix, c.repo); got != c.want {
			t.Errorf("covers(%s, %q, %q) = %v, want %v", c.flavor, c.prefix, c.repo, got, c.want)
		}
	}
}

func TestCreateRepoValidation(t *testing.T) {
	t.Parallel()
	cloud := newFixture(t, Options{Flavor: Cloud}, []string{"ws/repo"})
	dc := newFixture(t, Options{Flavor: DataCenter}, nil)
	cases := []struct {
		f       *fixture
		path    string
		wantURL string // "" = error expected
	}{
		{cloud, "ws/other", cloud.s.URL + "/ws/other.git"},
		{cloud, "ws/third.git", cloud.s.URL + "/ws/third.git"},
		{cloud, "WS/REPO", ""}, // duplicate, case-insensitively
		{cloud, "ws", ""},
		{cloud, "a/b/c", ""},
		{cloud, "ws/../x", ""},
		{cloud, "~user/repo", ""},
		{dc, "PROJ/repo", dc.s.URL + "/scm/PROJ/repo.git"},
		{dc, "proj/repo", ""},
		{dc, "PROJ/Repo", dc.s.URL + "/scm/PROJ/Repo.git"},
		{dc, "~alice/repo", dc.s.URL + "/scm/~alice/repo.git"},
	}
	for _, c := range cases {
		got, err := c.f.s.CreateRepo(c.path)
		if c.wantURL == "" {
			if err == nil {
				t.Errorf("%s CreateRepo(%q) = %q, want error", c.f.s.flavor, c.path, got)
			}
			continue
		}
		if err != nil || got != c.wantURL {
			t.Errorf("%s CreateRepo(%q) = %q, %v; want %q", c.f.s.flavor, c.path, got, err, c.wantURL)
		}
	}
}

var cloudTokens = []Token{
	{Name: "repo-read", Secret: "ATCTT3xRepoReadSecret", Usernames: []string{"x-token-auth"}, Prefixes: []string{"ws/repo"}},
	{Name: "repo-write", Secret: "ATCTT3xRepoWriteSecret", Usernames: []string{"x-token-auth"}, Prefixes: []string{"ws/repo"}, Write: true},
	{Name: "ws-read", Secret: "ATCTT3xWorkspaceSecret", Usernames: []string{"x-token-auth"}, Bearer: true, Prefixes: []string{"ws"}},
	{Name: "api", Secret: "ATATT3xApiTokenSecret", Usernames: []string{"alice", "x-bitbucket-api-token-auth"}, Write: true},
}

func TestCloudAccess(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{Flavor: Cloud}, []string{"ws/repo", "ws/repo2", "other/repo"}, cloudTokens...)
	base := f.s.URL
	const (
		repoRead = "ATCTT3xRepoReadSecret"
		wsRead   = "ATCTT3xWorkspaceSecret"
		api      = "ATATT3xApiTokenSecret"
	)
	cases := []struct {
		name       string
		op         string // "clone" or "ls-remote"
		url        string
		auth       string
		wantStatus int    // status of the last request; 200 means git must succeed
		wantToken  string // Token in the log
		wantAuth   string
	}{
		{"repo token clones its repo", "clone", base + "/ws/repo.git", basic("x-token-auth", repoRead), 200, "repo-read", "basic"},
		{"repo token denied on sibling repo2", "clone", base + "/ws/repo2.git", basic("x-token-auth", repoRead), 401, "repo-read", "basic"},
		{"repo token denied outside workspace", "ls-remote", base + "/other/repo.git", basic("x-token-auth", repoRead), 401, "repo-read", "basic"},
		{"repo token case-insensitive URL", "ls-remote", base + "/WS/Repo.git", basic("x-token-auth", repoRead), 200, "repo-read", "basic"},
		{"repo token URL without .git", "ls-remote", base + "/ws/repo", basic("x-token-auth", repoRead), 200, "repo-read", "basic"},
		{"repo token bearer not accepted", "ls-remote", base + "/ws/repo.git", bearer(repoRead), 401, "repo-read", "bearer"},
		{"repo token wrong username", "ls-remote", base + "/ws/repo.git", basic("alice", repoRead), 401, "repo-read", "basic"},
		{"workspace token clones repo", "clone", base + "/ws/repo.git", basic("x-token-auth", wsRead), 200, "ws-read", "basic"},
		{"workspace token clones repo2", "clone", base + "/ws/repo2.git", basic("x-token-auth", wsRead), 200, "ws-read", "basic"},
		{"workspace token bearer", "ls-remote", base + "/ws/repo2.git", bearer(wsRead), 200, "ws-read", "bearer"},
		{"workspace token denied on other workspace", "clone", base + "/other/repo.git", basic("x-token-auth", wsRead), 401, "ws-read", "basic"},
		{"workspace token unknown repo", "ls-remote", base + "/ws/nope.git", basic("x-token-auth", wsRead), 404, "ws-read", "basic"},
		{"repo token unknown repo outside prefix", "ls-remote", base + "/ws/nope.git", basic("x-token-auth", repoRead), 401, "repo-read", "basic"},
		{"api token with username", "clone", base + "/other/repo.git", basic("alice", api), 200, "api", "basic"},
		{"api token with static username", "ls-remote", base + "/ws/repo2.git", basic("x-bitbucket-api-token-auth", api), 200, "api", "basic"},
		{"api token with e-mail rejected", "ls-remote", base + "/ws/repo.git", basic("alice@example.com", api), 401, "api", "basic"},
		{"unknown secret", "ls-remote", base + "/ws/repo.git", basic("x-token-auth", "ATCTT3xNotAToken"), 401, "", "basic"},
		{"anonymous", "ls-remote", base + "/ws/repo.git", "", 401, "", "none"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := len(f.s.Requests())
			var out string
			var err error
			if c.op == "clone" {
				out, err = f.git(f.home, c.auth, "clone", "--quiet", c.url, filepath.Join(t.TempDir(), fmt.Sprint("c", i)))
			} else {
				out, err = f.git(f.home, c.auth, "ls-remote", c.url)
			}
			reqs := f.since(n)
			if len(reqs) == 0 {
				t.Fatalf("no request logged; git: %v\n%s", err, out)
			}
			if c.wantStatus == 200 {
				if err != nil {
					t.Fatalf("git %s failed: %v\n%s\nlog: %+v", c.op, err, out, reqs)
				}
				for _, r := range reqs {
					if r.Status != 200 || r.Token != c.wantToken || r.Auth != c.wantAuth {
						t.Errorf("request %+v, want status 200 token %q auth %q", r, c.wantToken, c.wantAuth)
					}
				}
				if c.op == "ls-remote" && !strings.Contains(out, "refs/heads/main") {
					t.Errorf("ls-remote output lacks main: %s", out)
				}
				return
			}
			if err == nil {
				t.Fatalf("git %s succeeded, want failure; log: %+v", c.op, reqs)
			}
			last := reqs[len(reqs)-1]
			if last.Status != c.wantStatus || last.Token != c.wantToken || last.Auth != c.wantAuth || last.Service != "git-upload-pack" {
				t.Errorf("last request %+v, want status %d token %q auth %q service git-upload-pack", last, c.wantStatus, c.wantToken, c.wantAuth)
			}
		})
	}
}

func TestCloudPush(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{Flavor: Cloud}, []string{"ws/repo"}, cloudTokens...)
	url := f.s.URL + "/ws/repo.git"
	writeAuth := basic("x-token-auth", "ATCTT3xRepoWriteSecret")
	readAuth := basic("x-token-auth", "ATCTT3xRepoReadSecret")
	bare, err := f.s.RepoDir("ws/repo")
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "work")
	if out, err := f.git(f.home, writeAuth, "clone", "--quiet", url, work); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	commit := func(name string) string {
		t.Helper()
		if _, err := os.Stat(filepath.Join(work, name)); err != nil {
			if err := os.WriteFile(filepath.Join(work, name), []byte(name+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := f.git(work, "", "add", name); err != nil {
			t.Fatalf("add: %v\n%s", err, out)
		}
		if out, err := f.git(work, "", "commit", "--quiet", "-m", name); err != nil {
			t.Fatalf("commit: %v\n%s", err, out)
		}
		out, err := f.git(work, "", "rev-parse", "HEAD")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	remoteMain := func() string {
		t.Helper()
		out, err := f.git(f.home, "", "--git-dir", bare, "rev-parse", "main")
		if err != nil {
			t.Fatalf("rev-parse in bare repo: %v\n%s", err, out)
		}
		return strings.TrimSpace(out)
	}

	// Push with Write lands in the bare repository.
	c1 := commit("one.txt")
	n := len(f.s.Requests())
	if out, err := f.git(work, writeAuth, "push", "--quiet", url, "HEAD:main"); err != nil {
		t.Fatalf("push with write token: %v\n%s", err, out)
	}
	if got := remoteMain(); got != c1 {
		t.Fatalf("bare main = %s, want pushed %s", got, c1)
	}
	var sawPost bool
	for _, r := range f.since(n) {
		if r.Status != 200 || r.Token != "repo-write" {
			t.Errorf("push request %+v", r)
		}
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/git-receive-pack") && r.Service == "git-receive-pack" {
			sawPost = true
		}
	}
	if !sawPost {
		t.Errorf("no git-receive-pack POST logged: %+v", f.since(n))
	}

	// A push larger than http.postBuffer arrives with a chunked body (after
	// git's auth probe); it must still land.
	big := make([]byte, 256<<10)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "big.bin"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	c2 := commit("big.bin")
	if out, err := f.git(work, writeAuth, "-c", "http.postBuffer=65536", "push", "--quiet", url, "HEAD:main"); err != nil {
		t.Fatalf("chunked push: %v\n%s", err, out)
	}
	if got := remoteMain(); got != c2 {
		t.Fatalf("bare main = %s, want pushed %s", got, c2)
	}
	c1 = c2

	// Push without Write is refused with 403 and does not land.
	commit("two.txt")
	n = len(f.s.Requests())
	out, err := f.git(work, readAuth, "push", "--quiet", url, "HEAD:main")
	if err == nil {
		t.Fatalf("push with read-only token succeeded")
	}
	if !strings.Contains(out, "403") {
		t.Errorf("git output does not mention 403: %s", out)
	}
	reqs := f.since(n)
	if len(reqs) == 0 {
		t.Fatal("no request logged")
	}
	if last := reqs[len(reqs)-1]; last.Status != 403 || last.Service != "git-receive-pack" || last.Token != "repo-read" {
		t.Errorf("last request %+v, want 403 git-receive-pack repo-read", last)
	}
	if got := remoteMain(); got != c1 {
		t.Errorf("bare main moved to %s after refused push", got)
	}

	// The receive-pack POST itself is refused too, with Bitbucket's body.
	req, _ := http.NewRequest(http.MethodPost, url+"/git-receive-pack", strings.NewReader("0000"))
	req.Header.Set("Authorization", readAuth)
	req.Header.Set("Content-Type", "application/x-git-receive-pack-request")
	resp, err := clientFromCAFile(t, f.s.CAFile).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || strings.TrimSpace(string(body)) != ScopeErrorBody {
		t.Errorf("POST git-receive-pack with read token: %d %q", resp.StatusCode, body)
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{Flavor: Cloud}, []string{"ws/repo"})
	tok := Token{Name: "rotating", Secret: "ATCTT3xRevokeMe", Usernames: []string{"x-token-auth"}}
	f.addToken(tok)
	url := f.s.URL + "/ws/repo.git"
	auth := basic("x-token-auth", tok.Secret)
	if out, err := f.git(f.home, auth, "clone", "--quiet", url, filepath.Join(t.TempDir(), "c")); err != nil {
		t.Fatalf("clone before revoke: %v\n%s", err, out)
	}
	f.s.Revoke("rotating")
	f.s.ResetLog()
	if _, err := f.git(f.home, auth, "ls-remote", url); err == nil {
		t.Fatal("ls-remote with revoked token succeeded")
	}
	reqs := f.s.Requests()
	if len(reqs) != 1 || reqs[0].Status != 401 || reqs[0].Token != "rotating" {
		t.Errorf("log after revoke: %+v", reqs)
	}
	// Adding the token again reinstates it.
	f.addToken(tok)
	if out, err := f.git(f.home, auth, "ls-remote", url); err != nil {
		t.Errorf("ls-remote after re-adding token: %v\n%s", err, out)
	}
}

func TestDataCenter(t *testing.T) {
	t.Parallel()
	const (
		repoSecret     = "BBDCRepoTokenSecret0123456789"
		personalSecret = "BBDCPersonalTokenSecret012345"
	)
	f := newFixture(t, Options{Flavor: DataCenter, ContextPath: "/bitbucket/"}, []string{"PROJ/repo", "PROJ/other", "~alice/repo"},
		Token{Name: "repo-http", Secret: repoSecret, Bearer: true, Prefixes: []string{"PROJ/repo"}, Write: true},
		Token{Name: "personal", Secret: personalSecret, Usernames: []string{"alice"}, Bearer: true},
	)
	u, _ := url.Parse(f.s.URL)
	if !strings.HasSuffix(f.s.URL, "/bitbucket") {
		t.Fatalf("URL %q lacks the context path", f.s.URL)
	}
	base := f.s.URL + "/scm"
	root := u.Scheme + "://" + u.Host
	cases := []struct {
		name       string
		url        string
		auth       string
		wantStatus int
		wantToken  string
	}{
		{"repo token bearer", base + "/PROJ/repo.git", bearer(repoSecret), 200, "repo-http"},
		{"project key case-insensitive", base + "/proj/repo.git", bearer(repoSecret), 200, "repo-http"},
		{"repo token in basic rejected", base + "/PROJ/repo.git", basic("x-token-auth", repoSecret), 401, "repo-http"},
		{"repo token on sibling repo", base + "/PROJ/other.git", bearer(repoSecret), 401, "repo-http"},
		{"repo token on personal repo", base + "/~alice/repo.git", bearer(repoSecret), 401, "repo-http"},
		{"personal token basic", base + "/~alice/repo.git", basic("alice", personalSecret), 200, "personal"},
		{"personal token bearer", base + "/PROJ/other.git", bearer(personalSecret), 200, "personal"},
		{"user slug case-insensitive", base + "/~ALICE/repo.git", basic("alice", personalSecret), 200, "personal"},
		{"repo slug is case-sensitive", base + "/PROJ/Repo.git", bearer(personalSecret), 404, "personal"},
		{"personal token wrong user", base + "/PROJ/repo.git", basic("bob", personalSecret), 401, "personal"},
		{"missing context path", root + "/scm/PROJ/repo.git", bearer(repoSecret), 404, ""},
		{"anonymous", base + "/PROJ/repo.git", "", 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := len(f.s.Requests())
			out, err := f.git(f.home, c.auth, "ls-remote", c.url)
			reqs := f.since(n)
			if len(reqs) == 0 {
				t.Fatalf("no request logged: %v\n%s", err, out)
			}
			last := reqs[len(reqs)-1]
			if (err == nil) != (c.wantStatus == 200) {
				t.Fatalf("git ls-remote err=%v, want status %d\n%s\nlog: %+v", err, c.wantStatus, out, reqs)
			}
			if c.wantStatus == 404 && c.wantToken == "" {
				// Not a repository path: rejected before authentication.
				if last.Status != 404 {
					t.Errorf("last request %+v, want 404", last)
				}
				return
			}
			if last.Status != c.wantStatus || last.Token != c.wantToken {
				t.Errorf("last request %+v, want status %d token %q", last, c.wantStatus, c.wantToken)
			}
		})
	}

	// Clone and push with a Bearer token through the context path.
	work := filepath.Join(t.TempDir(), "work")
	auth := bearer(repoSecret)
	if out, err := f.git(f.home, auth, "clone", "--quiet", base+"/PROJ/repo.git", work); err != nil {
		t.Fatalf("clone: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(work, "dc.txt"), []byte("dc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"add", "dc.txt"}, {"commit", "--quiet", "-m", "dc"}} {
		if out, err := f.git(work, "", args...); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if out, err := f.git(work, auth, "push", "--quiet", "origin", "HEAD:main"); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	head, _ := f.git(work, "", "rev-parse", "HEAD")
	bare, err := f.s.RepoDir("proj/repo")
	if err != nil {
		t.Fatal(err)
	}
	remote, _ := f.git(f.home, "", "--git-dir", bare, "rev-parse", "main")
	if strings.TrimSpace(head) != strings.TrimSpace(remote) || strings.TrimSpace(head) == "" {
		t.Errorf("bare main %q, want %q", remote, head)
	}
}

func TestAnonymousChallenge(t *testing.T) {
	t.Parallel()
	cases := []struct {
		opts      Options
		repo      string
		path      string // appended to the server URL
		realm     string
		requestID bool
	}{
		{Options{Flavor: Cloud}, "ws/repo", "/ws/repo.git", `Basic realm="Bitbucket.org HTTP"`, false},
		{Options{Flavor: DataCenter}, "PROJ/repo", "/scm/PROJ/repo.git", `Basic realm="Atlassian Bitbucket"`, true},
		{Options{Flavor: DataCenter, ContextPath: "bitbucket"}, "PROJ/repo", "/scm/PROJ/repo.git", `Basic realm="Atlassian Bitbucket"`, true},
	}
	for _, c := range cases {
		t.Run(string(c.opts.Flavor)+"/"+c.opts.ContextPath, func(t *testing.T) {
			f := newFixture(t, c.opts, []string{c.repo})
			client := clientFromCAFile(t, f.s.CAFile)
			u, _ := url.Parse(f.s.URL)
			for _, host := range []string{u.Host, strings.Replace(u.Host, "127.0.0.1", "localhost", 1)} {
				target := "https://" + host + u.Path + c.path
				for _, ep := range []struct{ method, suffix string }{
					{http.MethodGet, "/info/refs?service=git-upload-pack"},
					{http.MethodGet, "/info/refs?service=git-receive-pack"},
					{http.MethodPost, "/git-upload-pack"},
				} {
					req, _ := http.NewRequest(ep.method, target+ep.suffix, bytes.NewReader(nil))
					resp, err := client.Do(req)
					if err != nil {
						t.Fatalf("%s %s: %v", ep.method, target+ep.suffix, err)
					}
					resp.Body.Close()
					if resp.StatusCode != 401 {
						t.Errorf("%s %s: status %d, want 401", ep.method, ep.suffix, resp.StatusCode)
					}
					if got := resp.Header.Get("WWW-Authenticate"); got != c.realm {
						t.Errorf("WWW-Authenticate %q, want %q", got, c.realm)
					}
					if got := resp.Header.Get("X-AREQUESTID") != ""; got != c.requestID {
						t.Errorf("X-AREQUESTID present=%v, want %v", got, c.requestID)
					}
				}
			}
			f.s.ResetLog()
			if out, err := f.git(f.home, "", "clone", "--quiet", f.s.URL+c.path, filepath.Join(t.TempDir(), "c")); err == nil {
				t.Fatalf("anonymous clone succeeded: %s", out)
			}
			reqs := f.s.Requests()
			if len(reqs) == 0 || reqs[0].Status != 401 || reqs[0].Auth != "none" || reqs[0].Token != "" {
				t.Errorf("log after anonymous clone: %+v", reqs)
			}
		})
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	const secret = "ATCTT3xDaemonSecret"
	cfg := `{"flavor":"cloud","context_path":"","repos":["ws/repo","ws/repo2"],
		"tokens":[{"name":"demo","secret":"` + secret + `","usernames":["x-token-auth"],"bearer":false,"prefixes":["ws/repo"],"write":true}]}`
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := Run(ctx, t.TempDir(), strings.NewReader(cfg), pw)
		pw.CloseWithError(err)
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	var lines []string
	for len(lines) < 4 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 4 {
		t.Fatalf("output lines %q, err %v", lines, sc.Err())
	}
	base, ok := strings.CutPrefix(lines[0], "URL=https://127.0.0.1:")
	ca, ok2 := strings.CutPrefix(lines[1], "CA=")
	if !ok || !ok2 || !strings.HasPrefix(lines[2], "REPO=https://127.0.0.1:"+base+"/ws/repo.git") ||
		lines[3] != "REPO=https://127.0.0.1:"+base+"/ws/repo2.git" {
		t.Fatalf("unexpected output %q", lines)
	}
	for _, l := range lines {
		if strings.Contains(l, secret) {
			t.Errorf("output contains the secret: %q", l)
		}
	}
	client := clientFromCAFile(t, ca)
	for repoURL, want := range map[string]int{
		strings.TrimPrefix(lines[2], "REPO="): 200,
		strings.TrimPrefix(lines[3], "REPO="): 401,
	} {
		req, _ := http.NewRequest(http.MethodGet, repoURL+"/info/refs?service=git-upload-pack", nil)
		req.Header.Set("Authorization", basic("x-token-auth", secret))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", repoURL, resp.StatusCode, want)
		}
		if want == 200 && !bytes.Contains(body, []byte("refs/heads/main")) {
			t.Errorf("info/refs body lacks main: %q", body)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestStartConfigRejectsUnknownFields(t *testing.T) {
	t.Parallel()
	_, _, err := StartConfig(t.TempDir(), strings.NewReader(`{"flavour":"cloud"}`))
	if err == nil {
		t.Fatal("want error for unknown field")
	}
}
