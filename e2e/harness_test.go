// Package e2e drives the real helper binary through the real git client
// against a fake Bitbucket Cloud server (internal/fakebb), with secrets in
// the real Secret Service. Run it through scripts/test.sh, which starts
// gnome-keyring in a private D-Bus session:
//
//	./scripts/test.sh ./e2e/
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/fakebb"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
	"github.com/bbtoken/git-credential-bbtoken/internal/testkeyring"
)

// cmdTimeout bounds every process a test runs: a hang fails the test
// instead of blocking the suite.
const cmdTimeout = 60 * time.Second

// helperBin is the absolute path of the helper binary built by TestMain.
var helperBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "bbtoken-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	helperBin = filepath.Join(dir, "git-credential-bbtoken")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The crashpoint tag lets the crash test stop the helper at named
	// steps of a write (internal/crashpoint); nothing else differs.
	build := exec.CommandContext(ctx, "go", "build", "-tags", "crashpoint", "-o", helperBin,
		"github.com/bbtoken/git-credential-bbtoken/cmd/git-credential-bbtoken")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the helper: %v\n%s", err, out)
		return 1
	}
	if _, err := exec.LookPath("git"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: git is not installed")
		return 1
	}
	return m.Run()
}

// Wire usernames the server expects.
const (
	userAccess = "x-token-auth"
	userAlice  = "alice"
)

// newSecret returns a fresh token value that looks like a Bitbucket token
// (prefix ATCTT3 for access tokens, ATATT3 for API tokens).
func newSecret(t testing.TB, prefix string) string {
	t.Helper()
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + "xE2E" + hex.EncodeToString(b[:])
}

// result is what one process did.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int
	dur    time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("%q: exit %d after %s\nstdout:\n%s\nstderr:\n%s", r.args, r.code, r.dur.Round(time.Millisecond), r.stdout, r.stderr)
}

// fixture is one user: a private HOME set up for the helper, plus the
// fake Bitbucket Cloud server that user talks to.
type fixture struct {
	srv     *fakebb.Server
	keyring secrets.Backend
	home    string
	env     []string
	trace   string // trace file path, "" when tracing is off

	secrets []string // every token value the test handed out

	mu      sync.Mutex
	outputs []result // every process run, for the secret hygiene check
}

type fixtureOptions struct {
	repos []string
	// trace sets GIT_CREDENTIAL_BBTOKEN_TRACE to a file under HOME.
	trace bool
	// gitconfig, when set, is written to ~/.gitconfig before anything runs.
	gitconfig string
	// noSetup skips `setup` (for tests of setup itself).
	noSetup bool
	// noKeyring runs everything without a D-Bus session (no
	// DBUS_SESSION_BUS_ADDRESS, an empty XDG_RUNTIME_DIR): a CI runner.
	noKeyring bool
	// srv is a server another fixture started (two machines, one Bitbucket).
	srv *fakebb.Server
	// oauth configures the server's OAuth endpoints.
	oauth fakebb.OAuthOptions
	// dataCenter starts a Data Center server (context path /bitbucket)
	// and sets it up as one.
	dataCenter bool
}

// newFixture starts a Cloud server with the given repositories and a HOME
// in which `setup --host <server> --flavor cloud` has run.
func newFixture(t *testing.T, opts fixtureOptions) *fixture {
	t.Helper()
	var k secrets.Backend
	if !opts.noKeyring {
		k = testkeyring.Require(t)
	}
	srv := opts.srv
	if srv == nil {
		var err error
		o := fakebb.Options{Flavor: fakebb.Cloud, OAuth: opts.oauth}
		if opts.dataCenter {
			o.Flavor, o.ContextPath = fakebb.DataCenter, "bitbucket"
		}
		if srv, err = fakebb.Start(t.TempDir(), o); err != nil {
			t.Fatalf("starting fakebb: %v", err)
		}
		t.Cleanup(srv.Close)
	}
	for _, r := range opts.repos {
		if _, err := srv.CreateRepo(r); err != nil {
			t.Fatalf("CreateRepo(%q): %v", r, err)
		}
	}
	home := t.TempDir()
	f := &fixture{srv: srv, keyring: k, home: home}
	f.env = []string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_SSL_CAINFO=" + srv.CAFile,
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
		"PATH=" + os.Getenv("PATH"),
		"LC_ALL=C",
		"GIT_AUTHOR_NAME=E2E Test", "GIT_AUTHOR_EMAIL=e2e@example.invalid",
		"GIT_COMMITTER_NAME=E2E Test", "GIT_COMMITTER_EMAIL=e2e@example.invalid",
	}
	if opts.noKeyring {
		run := filepath.Join(home, "run")
		if err := os.Mkdir(run, 0o700); err != nil {
			t.Fatal(err)
		}
		f.env = append(f.env, "XDG_RUNTIME_DIR="+run)
	} else {
		f.env = append(f.env, "DBUS_SESSION_BUS_ADDRESS="+os.Getenv("DBUS_SESSION_BUS_ADDRESS"))
	}
	if opts.trace {
		f.trace = filepath.Join(home, "bbtoken-trace.log")
		f.env = append(f.env, "GIT_CREDENTIAL_BBTOKEN_TRACE="+f.trace)
	}
	if opts.gitconfig != "" {
		if err := os.WriteFile(f.gitconfigPath(), []byte(opts.gitconfig), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Registered after srv.Close, so it runs before it.
	t.Cleanup(func() { f.finish(t) })
	if !opts.noSetup {
		flavor := "cloud"
		if opts.dataCenter {
			flavor = "datacenter"
		}
		r := f.helper(t, "", "setup", "--host", srv.URL, "--flavor", flavor)
		wantCode(t, r, 0)
	}
	return f
}

func (f *fixture) gitconfigPath() string { return filepath.Join(f.home, ".gitconfig") }

func (f *fixture) indexPath() string {
	return filepath.Join(f.home, ".config", "git-credential-bbtoken", store.IndexFile)
}

// serverToken makes the server accept a token and remembers its secret for
// the hygiene check.
func (f *fixture) serverToken(tok fakebb.Token) {
	f.secrets = append(f.secrets, tok.Secret)
	f.srv.AddToken(tok)
}

// accessToken registers a Cloud access token (username x-token-auth) on the
// server and returns its secret.
func (f *fixture) accessToken(t *testing.T, name string, prefixes ...string) string {
	sec := newSecret(t, "ATCTT3")
	f.serverToken(fakebb.Token{Name: name, Secret: sec, Usernames: []string{userAccess}, Prefixes: prefixes, Write: true})
	return sec
}

// url is the https URL of a path on the server, e.g. "ws/repo.git".
func (f *fixture) url(path string) string { return f.srv.URL + "/" + path }

// urlAs is url with a username in it, as Bitbucket's copy button makes it.
func (f *fixture) urlAs(user, path string) string {
	rest, _ := strings.CutPrefix(f.srv.URL, "https://")
	return "https://" + user + "@" + rest + "/" + path
}

// run runs a process in dir (HOME when empty) with the fixture's
// environment plus extraEnv, bounded by cmdTimeout.
func (f *fixture) run(t testing.TB, dir, stdin string, extraEnv []string, name string, args ...string) result {
	t.Helper()
	res, err := f.exec(dir, stdin, extraEnv, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	if res.dur > 2*time.Second {
		t.Logf("slow: %q took %s", res.args, res.dur.Round(time.Millisecond))
	}
	return res
}

// exec is run for any goroutine: it reports a hang or a failure to start
// as an error instead of stopping the test.
func (f *fixture) exec(dir, stdin string, extraEnv []string, name string, args ...string) (result, error) {
	if dir == "" {
		dir = f.home
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(slices.Clone(f.env), extraEnv...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	res := result{
		args:   append([]string{filepath.Base(name)}, args...),
		stdout: stdout.String(), stderr: stderr.String(), dur: time.Since(start),
	}
	f.mu.Lock()
	f.outputs = append(f.outputs, res)
	f.mu.Unlock()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("timed out after %s (a hang): %s", cmdTimeout, res)
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		return res, fmt.Errorf("running %q: %v", res.args, err)
	}
	return res, nil
}

// helper runs the helper binary.
func (f *fixture) helper(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	return f.run(t, "", stdin, nil, helperBin, args...)
}

// git runs the real git.
func (f *fixture) git(t testing.TB, dir string, args ...string) result {
	t.Helper()
	return f.run(t, dir, "", nil, "git", args...)
}

func wantCode(t testing.TB, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got %s", code, r)
	}
}

// add stores a token with `add URL FLAGS...` (the token on stdin) and
// returns the new entry's id.
func (f *fixture) add(t testing.TB, url, secret string, flags ...string) string {
	t.Helper()
	r := f.helper(t, secret+"\n", append([]string{"add", url}, flags...)...)
	wantCode(t, r, 0)
	id := strings.TrimSpace(r.stdout)
	if id == "" || strings.ContainsAny(id, " \n") {
		t.Fatalf("add printed %q, want one entry id", r.stdout)
	}
	return id
}

// listed is one row of `list --json`.
type listed struct {
	ID       string `json:"id"`
	URL      string `json:"url"`
	Kind     string `json:"kind"`
	Username string `json:"username"`
	Label    string `json:"label"`
	Expires  string `json:"expires"`
	State    string `json:"state"`
	Store    string `json:"store"`
	Env      string `json:"env"`
	Name     string `json:"name"`
}

func (f *fixture) list(t testing.TB) []listed {
	t.Helper()
	r := f.helper(t, "", "list", "--json")
	wantCode(t, r, 0)
	var rows []listed
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("list --json: %v: %s", err, r.stdout)
	}
	return rows
}

// entry returns the listed row with the given id.
func (f *fixture) entry(t testing.TB, id string) listed {
	t.Helper()
	rows := f.list(t)
	for _, e := range rows {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("list --json has no entry %s: %+v", id, rows)
	return listed{}
}

func (f *fixture) wantState(t testing.TB, id, state string) {
	t.Helper()
	if e := f.entry(t, id); e.State != state {
		t.Errorf("entry %s (%s %s): state %q, want %q", id, e.Kind, e.URL, e.State, state)
	}
}

// clone runs `git clone URL` into a new directory under HOME/src and
// returns the directory with the result.
func (f *fixture) clone(t testing.TB, url string, extraEnv ...string) (string, result) {
	t.Helper()
	dir := f.cloneDir(t)
	return dir, f.run(t, filepath.Dir(dir), "", extraEnv, "git", "clone", "--quiet", url, dir)
}

// cloneDir makes a fresh directory under HOME/src for a clone.
func (f *fixture) cloneDir(t testing.TB) string {
	t.Helper()
	src := filepath.Join(f.home, "src")
	if err := os.MkdirAll(src, 0o700); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(src, "clone-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// mark is a position in the server's request log.
func (f *fixture) mark() int { return len(f.srv.Requests()) }

// since returns the requests logged after mark m.
func (f *fixture) since(m int) []fakebb.Request { return f.srv.Requests()[m:] }

func dump(reqs []fakebb.Request) string {
	var b strings.Builder
	for _, r := range reqs {
		fmt.Fprintf(&b, "\n  %s %s service=%s auth=%s user=%q token=%q -> %d", r.Method, r.Path, r.Service, r.Auth, r.Username, r.Token, r.Status)
	}
	return b.String()
}

// wantServed checks that every request was for repo ("ws/repo") and either
// presented nothing and got 401 (git's first try) or presented token as
// user and got 200, and that at least one did the latter.
func wantServed(t testing.TB, reqs []fakebb.Request, repo, token, user string) {
	t.Helper()
	wantServedURLUser(t, reqs, repo, token, user, "")
}

// wantServedURLUser is wantServed for a clone URL holding the username
// urlUser: curl first tries that username with an empty password (401)
// before git asks the helpers.
func wantServedURLUser(t testing.TB, reqs []fakebb.Request, repo, token, user, urlUser string) {
	t.Helper()
	prefix := "/" + repo + ".git/"
	served := 0
	for _, r := range reqs {
		switch {
		case !strings.HasPrefix(r.Path, prefix):
			t.Errorf("request for another repository than %s:%s", repo, dump(reqs))
			return
		case r.Auth == "none" && r.Status == 401:
		case urlUser != "" && r.Auth == "basic" && r.Username == urlUser && r.Token == "" && r.Status == 401:
		case r.Auth == "basic" && r.Token == token && r.Username == user && r.Status == 200:
			served++
		default:
			t.Errorf("want every request for %s to present token %q as %q (or nothing, getting 401):%s", repo, token, user, dump(reqs))
			return
		}
	}
	if served == 0 {
		t.Errorf("no request for %s was served with token %q:%s", repo, token, dump(reqs))
	}
}

// wantNoCredentials checks that git presented no credentials at all.
func wantNoCredentials(t testing.TB, reqs []fakebb.Request) {
	t.Helper()
	if len(reqs) == 0 {
		t.Errorf("git made no request")
	}
	for _, r := range reqs {
		if r.Auth != "none" || r.Status != 401 {
			t.Errorf("want only unauthenticated 401s:%s", dump(reqs))
			return
		}
	}
}

// fileState is a file's content and identity, to prove it was not rewritten.
type fileState struct {
	data []byte
	info os.FileInfo
}

func stateOf(t testing.TB, path string) fileState {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileState{data, info}
}

func wantUnchanged(t testing.TB, path string, before fileState) {
	t.Helper()
	after := stateOf(t, path)
	if !bytes.Equal(before.data, after.data) {
		t.Errorf("%s changed:\nbefore:\n%s\nafter:\n%s", path, before.data, after.data)
		return
	}
	if !os.SameFile(before.info, after.info) || !before.info.ModTime().Equal(after.info.ModTime()) {
		t.Errorf("%s was rewritten (same content): mtime %s -> %s", path, before.info.ModTime(), after.info.ModTime())
	}
}

// readTrace returns the trace file's content.
func (f *fixture) readTrace(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(f.trace)
	if err != nil {
		t.Fatalf("reading the trace: %v", err)
	}
	return string(b)
}

// finish checks secret hygiene, then removes every entry (and so its
// keyring item) and checks the keyring items are gone.
func (f *fixture) finish(t *testing.T) {
	f.checkHygiene(t)
	if t.Failed() {
		t.Logf("trace of the helper:\n%s", f.traceOrNone())
	}
	rows := f.list(t)
	for _, e := range rows {
		if r := f.helper(t, "", "remove", e.ID); r.code != 0 {
			t.Errorf("cleanup: %s", r)
		}
	}
	if f.keyring == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, e := range rows {
		if e.Store != "" && e.Store != "keyring" {
			continue
		}
		if _, _, err := f.keyring.Get(ctx, e.ID, "", nil); !errors.Is(err, secrets.ErrNotFound) {
			t.Errorf("after `remove %s` the keyring item is still there (err %v)", e.ID, err)
		}
	}
}

func (f *fixture) traceOrNone() string {
	if f.trace == "" {
		return "(tracing off)"
	}
	b, err := os.ReadFile(f.trace)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// checkHygiene fails when any token value appears in a captured output, the
// trace, or any file under HOME (except object stores of clones).
func (f *fixture) checkHygiene(t *testing.T) {
	t.Helper()
	leak := func(where, text string) {
		for _, s := range f.secrets {
			if strings.Contains(text, s) {
				t.Errorf("a token (…%s) appears in %s", s[len(s)-4:], where)
			}
		}
	}
	for _, r := range f.outputs {
		leak(fmt.Sprintf("the stdout of %q", r.args), r.stdout)
		leak(fmt.Sprintf("the stderr of %q", r.args), r.stderr)
	}
	for _, p := range []string{f.indexPath(), f.trace} {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %04o: others may read it", p, st.Mode().Perm())
		}
	}
	err := filepath.WalkDir(f.home, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "objects" && filepath.Base(filepath.Dir(path)) == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		leak("the file "+path, string(b))
		return nil
	})
	if err != nil {
		t.Errorf("walking HOME: %v", err)
	}
}
