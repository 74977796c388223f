package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/fakebb"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
)

// TestMostSpecificTokenServes: a repository token, a workspace token and a
// host-wide API token; each clone gets the most specific token that covers
// it, the repository token never leaves its repository, and git's store
// after each success writes nothing.
func TestMostSpecificTokenServes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo", "ws/repo2", "ws3/repo"}})
	repoTok := f.accessToken(t, "repo", "ws/repo")
	wsTok := f.accessToken(t, "ws", "ws")
	apiTok := newSecret(t, "ATATT3")
	f.serverToken(fakebb.Token{Name: "api", Secret: apiTok, Usernames: []string{userAlice}, Write: true})

	wsExpires := time.Now().UTC().AddDate(0, 6, 0).Format(time.DateOnly)
	ids := map[string]string{
		"repo": f.add(t, f.url("ws/repo.git"), repoTok, "--kind", "repository"),
		// With an expiry: get then also answers password_expiry_utc, which
		// git 2.39 predates and must ignore.
		"ws":  f.add(t, f.url("ws"), wsTok, "--kind", "workspace", "--expires", wsExpires),
		"api": f.add(t, f.srv.URL, apiTok, "--kind", "api", "--username", userAlice),
	}
	rows := f.list(t)
	if len(rows) != 3 {
		t.Fatalf("list --json: want 3 entries, got %+v", rows)
	}
	for _, e := range rows {
		want := map[string]struct{ kind, url, user, expires string }{
			ids["repo"]: {"repository", f.url("ws/repo"), userAccess, ""},
			ids["ws"]:   {"workspace", f.url("ws"), userAccess, wsExpires},
			ids["api"]:  {"api", f.srv.URL, userAlice, ""},
		}[e.ID]
		if e.Kind != want.kind || e.URL != want.url || e.Username != want.user || e.Expires != want.expires || e.State != "active" {
			t.Errorf("list --json entry %+v, want kind %s url %s username %s expires %q state active", e, want.kind, want.url, want.user, want.expires)
		}
	}

	cases := []struct {
		name    string
		url     string
		urlUser string // username inside url
		repo    string
		token   string
		user    string
		push    bool
	}{
		{"repository token clones and pushes", f.url("ws/repo.git"), "", "ws/repo", "repo", userAccess, true},
		{"workspace token serves another repository of the workspace", f.url("ws/repo2.git"), "", "ws/repo2", "ws", userAccess, false},
		{"host-wide API token serves another workspace as alice", f.url("ws3/repo.git"), "", "ws3/repo", "api", userAlice, false},
		{"copy-button URL with the viewer's username gets the repository token", f.urlAs(userAlice, "ws/repo.git"), userAlice, "ws/repo", "repo", userAccess, false},
		{"mixed-case URL still gets the repository token", f.url("WS/Repo.git"), "", "WS/Repo", "repo", userAccess, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			index := stateOf(t, f.indexPath())
			m := f.mark()
			dir, r := f.clone(t, c.url)
			wantCode(t, r, 0)
			if c.push {
				if err := os.WriteFile(filepath.Join(dir, "pushed.txt"), []byte("pushed by e2e\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				wantCode(t, f.git(t, dir, "add", "pushed.txt"), 0)
				wantCode(t, f.git(t, dir, "commit", "--quiet", "-m", "e2e push"), 0)
				wantCode(t, f.git(t, dir, "push", "--quiet", "origin", "HEAD:main"), 0)
				head := f.git(t, dir, "rev-parse", "HEAD")
				wantCode(t, head, 0)
				bare, err := f.srv.RepoDir(c.repo)
				if err != nil {
					t.Fatal(err)
				}
				remote := f.git(t, "", "--git-dir="+bare, "rev-parse", "refs/heads/main")
				wantCode(t, remote, 0)
				if strings.TrimSpace(head.stdout) != strings.TrimSpace(remote.stdout) {
					t.Errorf("push did not land: local HEAD %s, server main %s", head.stdout, remote.stdout)
				}
			}
			reqs := f.since(m)
			wantServedURLUser(t, reqs, c.repo, c.token, c.user, c.urlUser)
			if c.push && !hasRequest(reqs, "git-receive-pack", c.token, 200) {
				t.Errorf("no git-receive-pack POST served with %q:%s", c.token, dump(reqs))
			}
			// git calls store after every success: with our own token that
			// must not touch the index.
			wantUnchanged(t, f.indexPath(), index)
			for _, e := range f.list(t) {
				if e.State != "active" {
					t.Errorf("after a successful clone entry %+v is not active", e)
				}
			}
		})
	}
	// The repository token was never presented outside ws/repo.
	for _, r := range f.srv.Requests() {
		if r.Token == "repo" && !strings.HasPrefix(strings.ToLower(r.Path), "/ws/repo.git/") {
			t.Errorf("the repository token was sent to %s", r.Path)
		}
	}
}

func hasRequest(reqs []fakebb.Request, post, token string, status int) bool {
	for _, r := range reqs {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/"+post) && r.Token == token && r.Status == status {
			return true
		}
	}
	return false
}

// TestNoTokenFailsWithoutPrompting: a repository no token covers fails at
// once; the helper answers nothing and git, with prompts disabled, gives up.
func TestNoTokenFailsWithoutPrompting(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo", "other/repo"}, trace: true})
	id := f.add(t, f.url("ws/repo.git"), f.accessToken(t, "repo", "ws/repo"), "--kind", "repository")

	index := stateOf(t, f.indexPath())
	m := f.mark()
	_, r := f.clone(t, f.url("other/repo.git"))
	if r.code == 0 {
		t.Fatalf("clone of a repository without a token succeeded: %s", r)
	}
	// git fell through to its own prompt: no helper answered.
	if !strings.Contains(r.stderr, "terminal prompts disabled") {
		t.Errorf("want git to fail at its (disabled) prompt: %s", r)
	}
	wantNoCredentials(t, f.since(m))
	wantUnchanged(t, f.indexPath(), index)
	f.wantState(t, id, "active")
	tr := f.readTrace(t)
	if !strings.Contains(tr, "get: no answer") {
		t.Errorf("trace does not show the helper declining:\n%s", tr)
	}
	if strings.Contains(tr, "answer with") {
		t.Errorf("trace shows the helper answering:\n%s", tr)
	}
}

// TestRevokedRepositoryToken: a 401 for a repository token's own repository
// makes git call erase, which marks the token rejected; the next clone falls
// back to the workspace token, which stays active.
func TestRevokedRepositoryToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}, trace: true})
	repoID := f.add(t, f.url("ws/repo.git"), f.accessToken(t, "repo", "ws/repo"), "--kind", "repository")
	wsID := f.add(t, f.url("ws"), f.accessToken(t, "ws", "ws"), "--kind", "workspace")

	m := f.mark()
	_, r := f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/repo", "repo", userAccess)

	f.srv.Revoke("repo")
	m = f.mark()
	_, r = f.clone(t, f.url("ws/repo.git"))
	if r.code == 0 {
		t.Fatalf("clone with a revoked token succeeded: %s", r)
	}
	reqs := f.since(m)
	rejected := false
	for _, q := range reqs {
		switch {
		case q.Token == "repo" && q.Status == 401:
			rejected = true
		case q.Auth == "none" && q.Status == 401:
		default:
			t.Errorf("unexpected request while the token is revoked:%s", dump(reqs))
		}
	}
	if !rejected {
		t.Errorf("the revoked token was never presented:%s", dump(reqs))
	}
	if tr := f.readTrace(t); !strings.Contains(tr, `erase: protocol="https"`) {
		t.Errorf("git did not call erase on the helper; trace:\n%s", tr)
	}
	f.wantState(t, repoID, "rejected")
	f.wantState(t, wsID, "active")

	m = f.mark()
	_, r = f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/repo", "ws", userAccess)
	f.wantState(t, repoID, "rejected")
	f.wantState(t, wsID, "active")

	// Rotation: adding a new token for the repository replaces the
	// rejected one, whose keyring item goes too.
	newID := f.add(t, f.url("ws/repo.git"), f.accessToken(t, "repo-rotated", "ws/repo"), "--kind", "repository")
	for _, e := range f.list(t) {
		if e.ID == repoID {
			t.Errorf("the replaced token is still listed: %+v", e)
		}
	}
	f.wantState(t, newID, "active")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := f.keyring.Get(ctx, repoID, "", nil); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("the replaced token's keyring item %s is still there (err %v)", repoID, err)
	}
	m = f.mark()
	_, r = f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/repo", "repo-rotated", userAccess)

	tr := f.readTrace(t)
	if tr == "" || !strings.Contains(tr, "answer with") {
		t.Errorf("trace is empty or never mentions an answer:\n%s", tr)
	}
}

// TestRejectedWorkspaceTokenRevivedAtPrompt: once a workspace token was
// withdrawn from a repository, typing that same token at git's prompt for
// it (say, after an admin widened its access) offers it there again instead
// of keeping a second copy.
func TestRejectedWorkspaceTokenRevivedAtPrompt(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo2", "ws/secret"}})
	sec := f.accessToken(t, "ws", "ws/repo2")
	wsID := f.add(t, f.url("ws"), sec, "--kind", "workspace")
	_, r := f.clone(t, f.url("ws/secret.git"))
	if r.code == 0 {
		t.Fatalf("clone of ws/secret succeeded with a workspace token the server refuses there: %s", r)
	}

	f.serverToken(fakebb.Token{Name: "ws", Secret: sec, Usernames: []string{userAccess}, Prefixes: []string{"ws"}, Write: true})
	m := f.mark()
	_, r = f.clone(t, f.url("ws/secret.git"), "GIT_ASKPASS="+writeAskpass(t, userAccess, sec))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/secret", "ws", userAccess)
	rows := f.list(t)
	if len(rows) != 1 || rows[0].ID != wsID || rows[0].State != "active" {
		t.Errorf("want only the workspace token, active; list --json: %+v", rows)
	}

	m = f.mark()
	_, r = f.clone(t, f.url("ws/secret.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/secret", "ws", userAccess)
}

// TestWorkspaceTokenRejectedForOneRepository: a 401 for a workspace token
// on one repository withdraws it from that repository only.
func TestWorkspaceTokenRejectedForOneRepository(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo2", "ws/secret"}, trace: true})
	// The server lets the workspace token into ws/repo2 only.
	wsID := f.add(t, f.url("ws"), f.accessToken(t, "ws", "ws/repo2"), "--kind", "workspace")

	m := f.mark()
	_, r := f.clone(t, f.url("ws/secret.git"))
	if r.code == 0 {
		t.Fatalf("clone of ws/secret succeeded with a workspace token the server refuses there: %s", r)
	}
	reqs := f.since(m)
	if !slices.ContainsFunc(reqs, func(q fakebb.Request) bool { return q.Token == "ws" && q.Status == 401 }) {
		t.Errorf("the workspace token was never tried on ws/secret:%s", dump(reqs))
	}
	f.wantState(t, wsID, "active")

	// Withdrawn from ws/secret: git is not even offered it again.
	m = f.mark()
	_, r = f.clone(t, f.url("ws/secret.git"))
	if r.code == 0 {
		t.Fatalf("second clone of ws/secret succeeded: %s", r)
	}
	wantNoCredentials(t, f.since(m))

	// Still used elsewhere.
	m = f.mark()
	_, r = f.clone(t, f.url("ws/repo2.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/repo2", "ws", userAccess)
	f.wantState(t, wsID, "active")

	// A repository token added afterwards serves ws/secret.
	secretID := f.add(t, f.url("ws/secret.git"), f.accessToken(t, "secret", "ws/secret"), "--kind", "repository")
	m = f.mark()
	_, r = f.clone(t, f.url("ws/secret.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/secret", "secret", userAccess)
	f.wantState(t, secretID, "active")
	f.wantState(t, wsID, "active")
}

// TestRemembersCredentialGitApproved: a credential git approves (through
// `git credential approve`, or typed at git's askpass prompt) is stored by
// the helper and served for the next clone of that repository.
func TestRemembersCredentialGitApproved(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/typed", "ws/prompted"}, trace: true})
	host := strings.TrimPrefix(f.srv.URL, "https://")

	cases := []struct {
		name string
		repo string
		// give hands the token to git and returns its server name.
		give func(t *testing.T, repo string) string
	}{
		{"git credential approve", "ws/typed", func(t *testing.T, repo string) string {
			sec := f.accessToken(t, "typed", repo)
			r := f.run(t, "", "protocol=https\nhost="+host+"\npath="+repo+".git\nusername="+userAccess+"\npassword="+sec+"\n\n",
				nil, "git", "credential", "approve")
			wantCode(t, r, 0)
			return "typed"
		}},
		{"typed at git's askpass prompt", "ws/prompted", func(t *testing.T, repo string) string {
			sec := f.accessToken(t, "prompted", repo)
			askpass := writeAskpass(t, userAccess, sec)
			m := f.mark()
			_, r := f.clone(t, f.url(repo+".git"), "GIT_ASKPASS="+askpass)
			wantCode(t, r, 0)
			wantServed(t, f.since(m), repo, "prompted", userAccess)
			return "prompted"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := c.give(t, c.repo)
			var stored *listed
			for _, e := range f.list(t) {
				if e.URL == f.url(c.repo) {
					stored = &e
				}
			}
			if stored == nil {
				t.Fatalf("list --json has no entry for %s: %+v", f.url(c.repo), f.list(t))
			}
			if stored.Kind != "stored" || stored.State != "active" || stored.Username != userAccess {
				t.Errorf("remembered entry %+v: want kind stored, state active, username %s", *stored, userAccess)
			}
			index := stateOf(t, f.indexPath())
			m := f.mark()
			_, r := f.clone(t, f.url(c.repo+".git"))
			wantCode(t, r, 0)
			wantServed(t, f.since(m), c.repo, name, userAccess)
			wantUnchanged(t, f.indexPath(), index)

			// Once the server refuses it, git's erase deletes it.
			f.srv.Revoke(name)
			_, r = f.clone(t, f.url(c.repo+".git"))
			if r.code == 0 {
				t.Fatalf("clone with a revoked remembered token succeeded: %s", r)
			}
			for _, e := range f.list(t) {
				if e.ID == stored.ID {
					t.Errorf("the remembered token survived a 401: %+v", e)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, _, err := f.keyring.Get(ctx, stored.ID, "", nil); !errors.Is(err, secrets.ErrNotFound) {
				t.Errorf("the erased token's keyring item %s is still there (err %v)", stored.ID, err)
			}
		})
	}
	if tr := f.readTrace(t); !strings.Contains(tr, "answer with") {
		t.Errorf("trace never mentions an answer:\n%s", tr)
	}
}

// writeAskpass writes, outside HOME, a GIT_ASKPASS program that answers
// git's username and password prompts.
func writeAskpass(t *testing.T, user, secret string) string {
	t.Helper()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "askpass")
	body := "#!/bin/sh\ncase \"$1\" in\nUsername*) echo '" + user + "' ;;\n*) cat '" + secretFile + "' ;;\nesac\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return script
}

// TestPushWithReadOnlyToken: a token without write access gets 403 on a
// push; git does not call erase for a 403, so the token stays active and
// keeps serving clones.
func TestPushWithReadOnlyToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}, trace: true})
	sec := newSecret(t, "ATCTT3")
	f.serverToken(fakebb.Token{Name: "ro", Secret: sec, Usernames: []string{userAccess}, Prefixes: []string{"ws/repo"}})
	id := f.add(t, f.url("ws/repo.git"), sec, "--kind", "repository")

	dir, r := f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)
	if err := os.WriteFile(filepath.Join(dir, "denied.txt"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantCode(t, f.git(t, dir, "add", "denied.txt"), 0)
	wantCode(t, f.git(t, dir, "commit", "--quiet", "-m", "denied"), 0)
	m := f.mark()
	r = f.git(t, dir, "push", "--quiet", "origin", "HEAD:main")
	if r.code == 0 {
		t.Fatalf("push with a read-only token succeeded: %s", r)
	}
	reqs := f.since(m)
	forbidden := false
	for _, q := range reqs {
		switch {
		case q.Auth == "none" && q.Status == 401:
		case q.Token == "ro" && q.Status == 403:
			forbidden = true
		default:
			t.Errorf("unexpected request during the push:%s", dump(reqs))
		}
	}
	if !forbidden {
		t.Errorf("the push was never refused with 403:%s", dump(reqs))
	}
	if tr := f.readTrace(t); strings.Contains(tr, "erase: protocol") {
		t.Errorf("git called erase after a 403:\n%s", tr)
	}
	f.wantState(t, id, "active")

	m = f.mark()
	_, r = f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/repo", "ro", userAccess)
}

// TestConcurrentGitProcesses: git processes running side by side (as with
// `git fetch --jobs` or submodules) share the index. Concurrent successful
// clones write nothing; concurrent 401s each record their rejection, none
// lost to another process's write.
func TestConcurrentGitProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process suite: not in the quick tier")
	}
	t.Parallel()
	const n = 4
	var repos []string
	for i := range n {
		repos = append(repos, "ws/r"+strconv.Itoa(i))
	}
	f := newFixture(t, fixtureOptions{repos: repos})
	ids := make([]string, n)
	for i, repo := range repos {
		ids[i] = f.add(t, f.url(repo+".git"), f.accessToken(t, "tok"+strconv.Itoa(i), repo), "--kind", "repository")
	}

	cloneAll := func() []result {
		dirs := make([]string, n)
		for i := range dirs {
			dirs[i] = f.cloneDir(t)
		}
		results := make([]result, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				results[i], errs[i] = f.exec(filepath.Dir(dirs[i]), "", nil, "git", "clone", "--quiet", f.url(repos[i]+".git"), dirs[i])
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		return results
	}

	index := stateOf(t, f.indexPath())
	m := f.mark()
	for _, r := range cloneAll() {
		wantCode(t, r, 0)
	}
	reqs := f.since(m)
	for i, repo := range repos {
		var mine []fakebb.Request
		for _, q := range reqs {
			if strings.HasPrefix(q.Path, "/"+repo+".git/") {
				mine = append(mine, q)
			}
		}
		wantServed(t, mine, repo, "tok"+strconv.Itoa(i), userAccess)
	}
	wantUnchanged(t, f.indexPath(), index)

	for i := range n {
		f.srv.Revoke("tok" + strconv.Itoa(i))
	}
	for _, r := range cloneAll() {
		if r.code == 0 {
			t.Errorf("clone with a revoked token succeeded: %s", r)
		}
	}
	for _, id := range ids {
		f.wantState(t, id, "rejected")
	}
}

// TestKeyringUnavailableFailsFast: on a machine without a reachable Secret
// Service (headless Linux), git fails at once with the helper's advice,
// presents no credentials, and nothing is marked rejected.
func TestKeyringUnavailableFailsFast(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}})
	id := f.add(t, f.url("ws/repo.git"), f.accessToken(t, "repo", "ws/repo"), "--kind", "repository")

	index := stateOf(t, f.indexPath())
	m := f.mark()
	dir := f.cloneDir(t)
	r := f.run(t, filepath.Dir(dir), "", []string{"DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(t.TempDir(), "no-bus")},
		"git", "clone", "--quiet", f.url("ws/repo.git"), dir)
	if r.code == 0 {
		t.Fatalf("clone without a keyring succeeded: %s", r)
	}
	if !strings.Contains(r.stderr, "git-credential-bbtoken: get: keyring unavailable") {
		t.Errorf("git's stderr lacks the helper's keyring message: %s", r)
	}
	wantNoCredentials(t, f.since(m))
	wantUnchanged(t, f.indexPath(), index)
	f.wantState(t, id, "active")
}
