package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/fakebb"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
)

const consumerSecret = "consumer-secret-e2e-0123456789"

// loginNoBrowser runs `login --no-browser` as a person over SSH would: the
// consumer's secret on stdin, then, once the authorization URL is printed,
// the URL the browser was sent to (here: where the server redirects).
func (f *fixture) loginNoBrowser(t *testing.T, extra ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	args := append([]string{"login", f.srv.URL, "--consumer", "KEY", "--no-browser"}, extra...)
	cmd := exec.CommandContext(ctx, helperBin, args...)
	cmd.Env = f.env
	cmd.Dir = f.home
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(stdin, consumerSecret)
	var errText strings.Builder
	sc := bufio.NewScanner(stderr)
	pasted := false
	for sc.Scan() {
		line := sc.Text()
		errText.WriteString(line + "\n")
		if u := strings.TrimSpace(line); !pasted && strings.HasPrefix(u, f.srv.AuthorizeURL()+"?") {
			client := f.srv.Client()
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := client.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			fmt.Fprintln(stdin, resp.Header.Get("Location"))
			stdin.Close()
			pasted = true
		}
	}
	err = cmd.Wait()
	r := result{args: append([]string{"git-credential-bbtoken"}, args...), stdout: stdout.String(), stderr: errText.String()}
	if exit, ok := err.(*exec.ExitError); ok {
		r.code = exit.ExitCode()
	}
	f.mu.Lock()
	f.outputs = append(f.outputs, r)
	f.mu.Unlock()
	if !pasted {
		t.Fatalf("login printed no authorization URL: %s", r)
	}
	return r
}

func oauthFixture(t *testing.T, ttl time.Duration) *fixture {
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}, trace: true, oauth: fakebb.OAuthOptions{AccessTokenTTL: ttl}})
	f.srv.AddConsumer(fakebb.Consumer{Key: "KEY", Secret: consumerSecret, CallbackURL: "http://127.0.0.1:53171/", Write: true})
	f.secrets = append(f.secrets, consumerSecret)
	f.env = append(f.env, "SSL_CERT_FILE="+f.srv.CAFile) // the helper's own HTTPS: the refresh
	// Runs before the fixture's own cleanup: its hygiene scan then looks
	// for every code, access and refresh token the server issued too.
	t.Cleanup(func() { f.secrets = append(f.secrets, f.srv.OAuthIssued()...) })
	return f
}

// TestOAuthLogin: log in over "SSH", clone and push without a token in
// sight, across the access token's expiry (16 fetches at once refresh it
// once), a 401 (the access token dropped, renewed next time), a refused
// refresh token (needs-login, one line, nothing more tried), logout.
func TestOAuthLogin(t *testing.T) {
	// 310 s: 10 s more than get's 5-minute margin when issued, so a token
	// is renewed only once it is 10 s old: the 16 fetches below, all within
	// 10 s of the renewal, renew it once; 11 s after the push, whenever
	// that renewal was, they must.
	f := oauthFixture(t, 310*time.Second)
	r := f.loginNoBrowser(t)
	wantCode(t, r, 0)
	rows := f.list(t)
	if len(rows) != 1 || rows[0].Kind != "oauth" || rows[0].State != "active" || rows[0].URL != f.srv.URL {
		t.Fatalf("list after login: %+v", rows)
	}
	dir, r := f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)
	f.run(t, dir, "", nil, "git", "commit", "--allow-empty", "-qm", "oauth")
	wantCode(t, f.run(t, dir, "", nil, "git", "push", "-q", "origin", "HEAD"), 0)
	for _, req := range f.srv.Requests() {
		if req.Auth == "basic" && req.Status == 200 && req.Token != fakebb.OAuthTokenName("KEY") {
			t.Errorf("a request was served with %q, not the login", req.Token)
		}
	}

	// Expiry: 11 s later the access token has under 5 minutes left; 16
	// fetches at once renew it once and all succeed.
	time.Sleep(11 * time.Second)
	before := f.srv.RefreshAttempts("KEY")
	var wg sync.WaitGroup
	results := make([]result, 16)
	for i := range results {
		wg.Go(func() {
			res, err := f.exec(dir, "", nil, "git", "ls-remote", "-q", "origin")
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	for _, res := range results {
		wantCode(t, res, 0)
	}
	if n := f.srv.RefreshAttempts("KEY") - before; n != 1 {
		t.Errorf("16 fetches at expiry sent %d refreshes, want exactly 1", n)
	}

	// A 401 (the server ended the access token): git's erase drops it,
	// the next fetch renews it.
	f.srv.ExpireAccessTokens()
	if res := f.run(t, dir, "", nil, "git", "ls-remote", "-q", "origin"); res.code == 0 {
		t.Fatalf("ls-remote with an expired access token succeeded: %s", res)
	}
	before = f.srv.RefreshAttempts("KEY")
	wantCode(t, f.run(t, dir, "", nil, "git", "ls-remote", "-q", "origin"), 0)
	if n := f.srv.RefreshAttempts("KEY") - before; n != 1 {
		t.Errorf("the fetch after a 401 sent %d refreshes, want 1", n)
	}

	// The refresh token refused: needs-login, one line naming login.
	f.srv.RevokeRefreshTokens("KEY")
	f.srv.ExpireAccessTokens()
	f.run(t, dir, "", nil, "git", "ls-remote", "-q", "origin") // 401: erase drops the access token
	res := f.run(t, dir, "", nil, "git", "ls-remote", "-q", "origin")
	if res.code == 0 || !strings.Contains(res.stderr, "git-credential-bbtoken login "+f.srv.URL+" --consumer KEY") {
		t.Errorf("want a failure naming the login command: %s", res)
	}
	if st := f.list(t)[0].State; st != "needs-login" {
		t.Errorf("state %q, want needs-login", st)
	}
	before = f.srv.RefreshAttempts("KEY")
	f.run(t, dir, "", nil, "git", "ls-remote", "-q", "origin")
	if n := f.srv.RefreshAttempts("KEY") - before; n != 0 {
		t.Errorf("a login that ended was tried again (%d refreshes)", n)
	}

	// Log in again: active; logout removes everything.
	wantCode(t, f.loginNoBrowser(t), 0)
	rows = f.list(t)
	if len(rows) != 1 || rows[0].State != "active" {
		t.Fatalf("after login again: %+v", rows)
	}
	wantCode(t, f.helper(t, "", "logout", f.srv.URL), 0)
	if rows := f.list(t); len(rows) != 0 {
		t.Errorf("after logout: %+v", rows)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := f.keyring.Get(ctx, rows[0].ID, "", nil); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("logout left the login's keyring item (%v)", err)
	}
}

// TestOAuthLoginBrowser: the browser way, with $BROWSER a program that
// follows the redirects to the loopback listener.
func TestOAuthLoginBrowser(t *testing.T) {
	f := oauthFixture(t, 2*time.Hour)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	callback := fmt.Sprintf("http://%s/done", ln.Addr())
	ln.Close()
	f.srv.AddConsumer(fakebb.Consumer{Key: "KEY", Secret: consumerSecret, CallbackURL: callback, Write: true})
	browser := filepath.Join(f.home, "browser.py")
	script := "#!/usr/bin/env python3\nimport sys, urllib.request\nurllib.request.urlopen(sys.argv[1]).read()\n"
	if err := os.WriteFile(browser, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	r := f.run(t, "", consumerSecret+"\n", []string{"BROWSER=" + browser}, helperBin, "login", f.srv.URL, "--consumer", "KEY", "--callback", callback)
	wantCode(t, r, 0)
	if rows := f.list(t); len(rows) != 1 || rows[0].Kind != "oauth" {
		t.Fatalf("list after login: %+v", rows)
	}
	_, r = f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)

	// A redirect with another state (a stale tab, another local program)
	// is refused, and the login waits for its own and succeeds.
	bad := filepath.Join(f.home, "forger.py")
	forger := "#!/usr/bin/env python3\nimport sys, urllib.request, urllib.parse, urllib.error\n" +
		"q = urllib.parse.parse_qs(urllib.parse.urlparse(sys.argv[1]).query)\n" +
		"try:\n  urllib.request.urlopen(q['redirect_uri'][0] + '?code=x&state=forged').read()\n  sys.exit('a forged redirect was accepted')\n" +
		"except urllib.error.HTTPError as e:\n  assert e.code == 400, e.code\n" +
		"urllib.request.urlopen(sys.argv[1]).read()\n"
	if err := os.WriteFile(bad, []byte(forger), 0o700); err != nil {
		t.Fatal(err)
	}
	r = f.run(t, "", consumerSecret+"\n", []string{"BROWSER=" + bad}, helperBin, "login", f.srv.URL, "--consumer", "KEY", "--callback", callback)
	wantCode(t, r, 0)
}
