package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/crashpoint"
	"github.com/bbtoken/git-credential-bbtoken/internal/fakebb"
)

const alicePassword = "alice-password-e2e-0123456789"

// dcFixture is a user of a Data Center server (context path /bitbucket)
// with the repository PRJ/repo, as alice, an admin of PRJ. Every token the
// server's access-token API makes, and alice's password, are in the
// hygiene scan.
func dcFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, fixtureOptions{repos: []string{"PRJ/repo"}, trace: true, dataCenter: true})
	f.srv.AddUser(fakebb.User{Name: "alice", Password: alicePassword, Admin: []string{"PRJ"}, Write: true})
	f.secrets = append(f.secrets, alicePassword)
	f.env = append(f.env, "SSL_CERT_FILE="+f.srv.CAFile) // the helper's own HTTPS: the token API
	t.Cleanup(func() {
		for _, st := range f.srv.ServerTokens("") {
			f.secrets = append(f.secrets, st.Secret)
		}
	})
	return f
}

func (f *fixture) dcURL(path string) string { return f.srv.URL + "/scm/" + path }

// withPassword runs the helper with alice's password on stdin (create,
// rotate, revoke, repair).
func (f *fixture) withPassword(t testing.TB, extraEnv []string, args ...string) result {
	t.Helper()
	return f.run(t, "", alicePassword+"\n", extraEnv, helperBin, args...)
}

// rawGet is the helper's answer to git's get for path, asked as a git
// that knows authtype. Not recorded for the hygiene scan: get's stdout is
// git's, and carries the token.
func (f *fixture) rawGet(t testing.TB, path string) map[string]string {
	t.Helper()
	host := strings.SplitN(strings.TrimPrefix(f.srv.URL, "https://"), "/", 2)[0]
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, helperBin, "get")
	cmd.Env = f.env
	cmd.Dir = f.home
	cmd.Stdin = strings.NewReader("capability[]=authtype\nprotocol=https\nhost=" + host + "\npath=bitbucket/scm/" + path + "\n\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		m[k] = v
	}
	return m
}

// accepts reports whether the server serves git's first request for
// path with the Authorization value auth.
func (f *fixture) accepts(t testing.TB, path, auth string) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.dcURL(path)+"/info/refs?service=git-upload-pack", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// gitVersionAtLeast reports whether the git on PATH is at least maj.min.
func gitVersionAtLeast(t *testing.T, maj, min int) bool {
	out, err := exec.Command("git", "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(\d+)\.(\d+)`).FindStringSubmatch(string(out))
	if m == nil {
		return false
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	return a > maj || a == maj && b >= min
}

// TestCreateRepositoryToken: create makes a repository token through the
// API, keeps it without showing it, and git gets it as Bearer (cloned and
// pushed with a git that has authtype, 2.46+; with an older git, the
// protocol answer, checked against the server); revoke ends it.
func TestCreateRepositoryToken(t *testing.T) {
	f := dcFixture(t)
	r := f.withPassword(t, nil, "create", f.dcURL("PRJ/repo.git"), "--username", "alice", "--expiry-days", "30", "--name", "e2e")
	wantCode(t, r, 0)
	id := strings.TrimSpace(r.stdout)
	live := f.srv.LiveServerTokens("projects/PRJ/repos/repo")
	if len(live) != 1 {
		t.Fatalf("the server has %d tokens for the repository, want 1", len(live))
	}
	tok := live[0]
	row := f.entry(t, id)
	if row.Kind != "repository" || row.Expires == "" || !strings.HasPrefix(row.Expires, tok.Expiry.UTC().Format("2006-01-02")) {
		t.Errorf("list: %+v; want a repository token expiring %s", row, tok.Expiry.UTC().Format(time.DateOnly))
	}
	if !strings.Contains(r.stderr, "created repository token "+tok.ID) {
		t.Errorf("create's report: %s", r)
	}
	got := f.rawGet(t, "PRJ/repo.git")
	if got["authtype"] != "Bearer" || got["credential"] != tok.Secret {
		t.Fatalf("get answered %v, want the new token as Bearer", maskedKeys(got))
	}
	if !f.accepts(t, "PRJ/repo.git", "Bearer "+got["credential"]) {
		t.Fatal("the server refused the token get answered")
	}
	if gitVersionAtLeast(t, 2, 46) {
		dir, r := f.clone(t, f.dcURL("PRJ/repo.git"))
		wantCode(t, r, 0)
		f.git(t, dir, "commit", "--allow-empty", "-qm", "bearer")
		wantCode(t, f.git(t, dir, "push", "-q", "origin", "HEAD"), 0)
	} else {
		t.Log("git < 2.46 sends no Bearer tokens: checked the protocol answer only")
	}

	r = f.withPassword(t, nil, "revoke", id)
	wantCode(t, r, 0)
	if f.accepts(t, "PRJ/repo.git", "Bearer "+tok.Secret) {
		t.Error("the server still takes the revoked token")
	}
	if rows := f.list(t); len(rows) != 0 {
		t.Errorf("list after revoke: %+v", rows)
	}
}

func maskedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestRotateUnderLoad: a token is rotated while 8 processes fetch in a
// loop: no fetch fails, fetches after the rotation use the new token, and
// the old one is revoked. A personal token (Basic) with any git; a
// repository token (Bearer) too with a git that has authtype (2.46+).
func TestRotateUnderLoad(t *testing.T) {
	t.Run("personal", func(t *testing.T) {
		rotateUnderLoad(t, "users/alice", "create", "URL", "--kind", "personal", "--username", "alice")
	})
	t.Run("repository", func(t *testing.T) {
		if !gitVersionAtLeast(t, 2, 46) {
			t.Skip("git < 2.46 sends no Bearer tokens")
		}
		rotateUnderLoad(t, "projects/PRJ/repos/repo", "create", "REPO", "--username", "alice")
	})
}

func rotateUnderLoad(t *testing.T, owner string, create ...string) {
	f := dcFixture(t)
	for i, a := range create {
		switch a {
		case "URL":
			create[i] = f.srv.URL
		case "REPO":
			create[i] = f.dcURL("PRJ/repo.git")
		}
	}
	r := f.withPassword(t, nil, create...)
	wantCode(t, r, 0)
	id := strings.TrimSpace(r.stdout)
	old := f.srv.LiveServerTokens(owner)
	if len(old) != 1 {
		t.Fatalf("%d tokens of %s on the server, want 1", len(old), owner)
	}
	dir, r := f.clone(t, f.dcURL("PRJ/repo.git"))
	wantCode(t, r, 0)
	// Each fetch holds the token it was given for a while, as against a
	// busy server: the grace period must outlast that.
	f.srv.SlowGit(300 * time.Millisecond)

	var stop atomic.Bool
	var fetches, failures atomic.Int32
	var mu sync.Mutex
	var failed []result
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				res, err := f.exec(dir, "", nil, "git", "fetch", "-q", "origin")
				fetches.Add(1)
				if err != nil || res.code != 0 {
					failures.Add(1)
					mu.Lock()
					failed = append(failed, res)
					mu.Unlock()
				}
			}
		})
	}
	// Let the loops run before, during and after the rotation.
	time.Sleep(time.Second)
	m := f.mark()
	rot := f.withPassword(t, nil, "rotate", id)
	after := f.mark()
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
	wantCode(t, rot, 0)
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d fetches failed during the rotation; first: %s", n, fetches.Load(), failed[0])
	}
	live := f.srv.LiveServerTokens(owner)
	if len(live) != 1 || live[0].ID == old[0].ID {
		t.Fatalf("after rotate the server has %d live tokens of %s (old %s): %+v", len(live), owner, old[0].ID, names(live))
	}
	newID := strings.TrimSpace(rot.stdout)
	if rows := f.list(t); len(rows) != 1 || rows[0].ID != newID || rows[0].State != "active" {
		t.Errorf("after the rotation list shows %+v, want only the rotated entry %s (git's store keeps no copy of the old token)", rows, newID)
	}
	usedNew := false
	for _, req := range f.srv.Requests()[m:] {
		if req.Token == live[0].TokenName() && req.Status == 200 {
			usedNew = true
		}
	}
	for _, req := range f.srv.Requests()[after:] {
		if req.Auth != "none" && req.Service != "tokens" && req.Service != "api" && req.Token != live[0].TokenName() {
			t.Errorf("a fetch after the rotation presented %q, not the new token", req.Token)
		}
	}
	if !usedNew {
		t.Error("no fetch used the new token")
	}
	if f.accepts(t, "PRJ/repo.git", "Basic "+basicAuth("alice", old[0].Secret)) || f.accepts(t, "PRJ/repo.git", "Bearer "+old[0].Secret) {
		t.Error("the old token still works after rotate")
	}
	t.Logf("%d fetches, %d failed", fetches.Load(), failures.Load())
}

// TestRotateKilledAtEveryStep kills `rotate` (SIGKILL) at each step it
// reaches (see internal/crashpoint): afterwards git is still served a
// working token, and `repair` leaves exactly one live server token, the
// one served.
func TestRotateKilledAtEveryStep(t *testing.T) {
	f := dcFixture(t)
	grace := []string{"GIT_CREDENTIAL_BBTOKEN_ROTATE_GRACE=1s"}
	wantCode(t, f.withPassword(t, nil, "create", f.srv.URL, "--kind", "personal", "--username", "alice"), 0)
	dir, r := f.clone(t, f.dcURL("PRJ/repo.git"))
	wantCode(t, r, 0)
	steps := []string{
		crashpoint.IndexSaved, // the intent's write
		crashpoint.RotateIntent,
		crashpoint.RotateCreated,
		crashpoint.Journaled,     // the switch's write: the new secret journaled
		crashpoint.SecretWritten, // ... and written, the index not yet saved
		crashpoint.RotateSwitched,
		crashpoint.RotateRevoked,
	}
	for _, step := range steps {
		rows := f.list(t)
		if len(rows) != 1 {
			t.Fatalf("before %s: %d entries, want 1: %+v", step, len(rows), rows)
		}
		res, stopped := f.stopAndKill(t, op{argv: []string{"rotate", rows[0].ID}, stdin: alicePassword + "\n"}, grace, step)
		if res.err != nil {
			t.Fatal(res.err)
		}
		if !stopped {
			t.Fatalf("rotate never reached %s: %s", step, res.result)
		}
		// Killed there: git is served a token that works.
		if r := f.git(t, dir, "fetch", "-q", "origin"); r.code != 0 {
			t.Errorf("killed at %s: the fetch failed: %s", step, r)
		}
		r := f.withPassword(t, grace, "repair")
		if r.code != 0 {
			t.Errorf("killed at %s: repair: %s", step, r)
		}
		live := f.srv.LiveServerTokens("users/alice")
		if len(live) != 1 {
			t.Errorf("killed at %s: after repair the server has %d live personal tokens, want 1: %+v", step, len(live), names(live))
			continue
		}
		got := f.rawGet(t, "PRJ/repo.git")
		if got["password"] != live[0].Secret {
			t.Errorf("killed at %s: get serves another token than the one live token (%s)", step, live[0].ID)
		}
		if r := f.git(t, dir, "fetch", "-q", "origin"); r.code != 0 {
			t.Errorf("after repair (killed at %s): the fetch failed: %s", step, r)
		}
		if j := f.journal(t); len(j) != 0 {
			t.Errorf("killed at %s: the journal still lists %v after repair", step, j)
		}
	}
	// And a rotation after all that completes normally.
	wantCode(t, f.withPassword(t, grace, "rotate", f.list(t)[0].ID), 0)
	if live := f.srv.LiveServerTokens("users/alice"); len(live) != 1 {
		t.Errorf("after a last rotate: %d live tokens", len(live))
	}
}

func basicAuth(user, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + secret))
}

func names(ts []fakebb.ServerToken) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID+" "+t.Name)
	}
	return out
}

// TestCreateKilled kills `create` after it recorded its request and after
// the server made the token: git is served nothing new, and repair
// revokes what the server made, so no token is left that nothing serves.
func TestCreateKilled(t *testing.T) {
	f := dcFixture(t)
	for _, step := range []string{crashpoint.CreateIntent, crashpoint.CreateCreated} {
		res, stopped := f.stopAndKill(t, op{argv: []string{"create", f.dcURL("PRJ/repo.git"), "--username", "alice"}, stdin: alicePassword + "\n"}, nil, step)
		if res.err != nil {
			t.Fatal(res.err)
		}
		if !stopped {
			t.Fatalf("create never reached %s: %s", step, res.result)
		}
		if rows := f.list(t); len(rows) != 0 {
			t.Errorf("killed at %s: list shows %+v", step, rows)
		}
		r := f.withPassword(t, nil, "repair")
		if r.code != 0 || !strings.Contains(r.stdout, "finished the create of") {
			t.Errorf("killed at %s: repair: %s", step, r)
		}
		if live := f.srv.LiveServerTokens("projects/PRJ/repos/repo"); len(live) != 0 {
			t.Errorf("killed at %s: after repair the server has %d live tokens nothing serves: %v", step, len(live), names(live))
		}
	}
	r := f.withPassword(t, nil, "create", f.dcURL("PRJ/repo.git"), "--username", "alice")
	wantCode(t, r, 0)
	if live := f.srv.LiveServerTokens("projects/PRJ/repos/repo"); len(live) != 1 {
		t.Errorf("after a create: %d live tokens", len(live))
	}
}
