package e2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/passstore"
	"github.com/bbtoken/git-credential-bbtoken/internal/passstore/passtest"
)

// Headless machines: no D-Bus session at all. Tokens come from the
// environment (CI) or a password store (pass, gpg), through the real git
// client against the HTTPS test server.

// withPass gives a fixture a password store at HOME/.password-store,
// encrypted to a fresh gpg key (or to the keys of fprs, when given), and
// returns the gpg home.
func (f *fixture) withPass(t *testing.T, gpgHome string, withGit bool, fprs ...string) string {
	t.Helper()
	dir := filepath.Join(f.home, ".password-store")
	passtest.Init(t, dir, gpgHome, withGit, fprs...)
	f.env = append(f.env, "GNUPGHOME="+gpgHome, "PASSWORD_STORE_DIR="+dir)
	return dir
}

// passShow runs the real `pass show` outside the fixture's output log (its
// stdout is the token, which the hygiene check would rightly call a leak).
func (f *fixture) passShow(t *testing.T, name string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "pass", "show", name)
	cmd.Env = f.env
	cmd.Dir = f.home
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v: %s", err, errb.String())
	}
	return out.String(), nil
}

func TestEnvTokensWithoutDBus(t *testing.T) {
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo", "ws/other"}, noKeyring: true, trace: true})
	tok := f.accessToken(t, "repo", "ws/repo")

	// Adding to the keyring fails in one line that names the choices.
	r := f.helper(t, tok+"\n", "add", f.url("ws/repo"))
	wantCode(t, r, 1)
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 ||
		!strings.Contains(r.stderr, "--store pass") || !strings.Contains(r.stderr, "--from-env") {
		t.Errorf("want one line naming --store pass and --from-env: %s", r)
	}
	if r.stdout != "" {
		t.Errorf("stdout: %q", r.stdout)
	}

	id := f.add(t, f.url("ws/repo"), "", "--kind", "repository", "--from-env", "BB_REPO_TOKEN")
	e := f.entry(t, id)
	if e.Store != "env" || e.Env != "BB_REPO_TOKEN" || e.Kind != "repository" {
		t.Fatalf("list: %+v, want an env entry reading BB_REPO_TOKEN", e)
	}
	index, err := os.ReadFile(f.indexPath())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(index, []byte(`"check"`)) {
		t.Errorf("an env entry keeps a check of a token it never saw: %s", index)
	}

	// Served from the variable, by clone and push, with no D-Bus at all.
	m := f.mark()
	dir, r := f.clone(t, f.url("ws/repo.git"), "BB_REPO_TOKEN="+tok)
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/repo", "repo", userAccess)
	f.run(t, dir, "", nil, "git", "commit", "--allow-empty", "-qm", "ci")
	m = f.mark()
	r = f.run(t, dir, "", []string{"BB_REPO_TOKEN=" + tok}, "git", "push", "-q", "origin", "HEAD")
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/repo", "repo", userAccess)

	// Unset or empty: skipped (the trace says so), nothing else is tried.
	for _, env := range [][]string{nil, {"BB_REPO_TOKEN="}} {
		m = f.mark()
		_, r = f.clone(t, f.url("ws/repo.git"), env...)
		if r.code == 0 {
			t.Fatalf("clone without the variable succeeded: %s", r)
		}
		wantNoCredentials(t, f.since(m))
	}
	if tr := f.readTrace(t); !strings.Contains(tr, "$BB_REPO_TOKEN") || !strings.Contains(tr, "unset or empty") {
		t.Errorf("the trace does not say the variable was unset:\n%s", tr)
	}

	// A 401 (a rotated variable holding a revoked token) changes nothing.
	before := stateOf(t, f.indexPath())
	f.srv.Revoke("repo")
	_, r = f.clone(t, f.url("ws/repo.git"), "BB_REPO_TOKEN="+tok)
	if r.code == 0 {
		t.Fatalf("clone with a revoked token succeeded: %s", r)
	}
	wantUnchanged(t, f.indexPath(), before)
	if st := f.entry(t, id).State; st != "active" {
		t.Errorf("after a 401 the env entry is %q, want active", st)
	}
	if !strings.Contains(f.readTrace(t), "is left as it is") {
		t.Errorf("erase did not say it left the env entry alone:\n%s", f.readTrace(t))
	}
}

func TestPassStoreWithoutDBus(t *testing.T) {
	passtest.Require(t)
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo", "ws/hand"}, noKeyring: true, trace: true})
	gpgHome, fpr := passtest.GPGHome(t, "Headless")
	store := f.withPass(t, gpgHome, true, fpr)
	tok := f.accessToken(t, "repo", "ws/repo")

	id := f.add(t, f.url("ws/repo"), tok, "--store", "pass", "--label", "deploy")
	e := f.entry(t, id)
	if e.Store != "pass" || e.Name == "" {
		t.Fatalf("list: %+v, want a pass entry", e)
	}
	// pass reads what we wrote: the token first, the fields after.
	out, err := f.passShow(t, passstore.Folder+"/"+e.Name)
	if err != nil {
		t.Fatalf("pass show: %v", err)
	}
	lines := strings.Split(out, "\n")
	if lines[0] != tok || !slices.Contains(lines, "kind: repository") || !slices.Contains(lines, "label: deploy") {
		t.Errorf("pass show prints %d lines, want the token first, then kind and label", len(lines))
	}
	// Committed, as pass commits.
	if r := f.run(t, store, "", nil, "git", "status", "--porcelain"); r.stdout != "" {
		t.Errorf("the password store has uncommitted changes: %s", r.stdout)
	}
	if r := f.run(t, store, "", nil, "git", "log", "--format=%s"); !strings.Contains(r.stdout, "Add given password for "+passstore.Folder+"/"+e.Name) {
		t.Errorf("no commit for the entry: %s", r.stdout)
	}

	m := f.mark()
	dir, r := f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/repo", "repo", userAccess)
	f.run(t, dir, "", nil, "git", "commit", "--allow-empty", "-qm", "ci")
	m = f.mark()
	wantCode(t, f.run(t, dir, "", nil, "git", "push", "-q", "origin", "HEAD"), 0)
	wantServed(t, f.since(m), "ws/repo", "repo", userAccess)

	// An entry written by hand with pass insert is served.
	hand := f.accessToken(t, "hand", "ws/hand")
	host := strings.TrimPrefix(f.srv.URL, "https://")
	insert := exec.Command("pass", "insert", "-m", passstore.Folder+"/"+host+"/ws/hand")
	insert.Env = f.env
	insert.Stdin = strings.NewReader(hand + "\nkind: repository\nlabel: by hand\n")
	if out, err := insert.CombinedOutput(); err != nil {
		t.Fatalf("pass insert: %v: %s", err, out)
	}
	m = f.mark()
	_, r = f.clone(t, f.url("ws/hand.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/hand", "hand", userAccess)

	// Removed: gone from the store, no longer served. A commit that fails
	// (a hook refusing it) is said in one line: teammates keep the token
	// until it is committed.
	hook := filepath.Join(store, ".git", "hooks", "pre-commit")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\necho refused by hook >&2\nexit 1\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	r = f.helper(t, "", "remove", f.url("ws/hand"))
	wantCode(t, r, 0)
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 || !strings.Contains(r.stderr, "commit") {
		t.Errorf("remove with a failing commit: want one line saying the commit failed: %s", r)
	}
	if err := os.Remove(hook); err != nil {
		t.Fatal(err)
	}
	if st := f.run(t, store, "", nil, "git", "status", "--porcelain"); !strings.Contains(st.stdout, "hand.gpg") {
		t.Errorf("the removal is not pending in the store's git: %q", st.stdout)
	}
	if _, err := os.Stat(filepath.Join(store, passstore.Folder, host, "ws", "hand.gpg")); !os.IsNotExist(err) {
		t.Errorf("remove left the entry in the store: %v", err)
	}
	m = f.mark()
	_, r = f.clone(t, f.url("ws/hand.git"))
	if r.code == 0 {
		t.Errorf("a removed entry still served: %s", r)
	}
	wantNoCredentials(t, f.since(m))
}

// TestPassTwoMachines: a store encrypted to two people's keys, shared
// through a bare git remote. A token A adds is served on B after a pull;
// B's remove withdraws it on A after A pulls.
func TestPassTwoMachines(t *testing.T) {
	passtest.Require(t)
	a := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}, noKeyring: true, trace: true})
	b := newFixture(t, fixtureOptions{srv: a.srv, noKeyring: true, trace: true})
	gpgA, fprA := passtest.GPGHome(t, "Alice")
	gpgB, fprB := passtest.GPGHome(t, "Bob")
	// Each knows the other's public key, as a team's keyring does.
	passtest.ShareKey(t, gpgA, gpgB, fprA)
	passtest.ShareKey(t, gpgB, gpgA, fprB)
	remote := filepath.Join(t.TempDir(), "secrets.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", remote).CombinedOutput(); err != nil {
		t.Fatalf("git init --bare: %v: %s", err, out)
	}
	storeA := a.withPass(t, gpgA, true, fprA, fprB)
	a.run(t, storeA, "", nil, "git", "remote", "add", "origin", remote)
	tok := a.accessToken(t, "repo", "ws/repo")
	a.add(t, a.url("ws/repo"), tok, "--store", "pass")
	wantCode(t, a.run(t, storeA, "", nil, "git", "push", "-q", "origin", "HEAD:main"), 0)

	// B: clone the store, nothing else.
	storeB := filepath.Join(b.home, ".password-store")
	wantCode(t, b.run(t, "", "", nil, "git", "clone", "-q", "-b", "main", remote, storeB), 0)
	b.env = append(b.env, "GNUPGHOME="+gpgB, "PASSWORD_STORE_DIR="+storeB)
	b.secrets = append(b.secrets, tok)
	m := b.mark()
	_, r := b.clone(t, b.url("ws/repo.git"))
	wantCode(t, r, 0)
	wantServed(t, b.since(m), "ws/repo", "repo", userAccess)

	// B removes it and pushes; A pulls and is no longer served.
	wantCode(t, b.helper(t, "", "remove", b.url("ws/repo")), 0)
	wantCode(t, b.run(t, storeB, "", nil, "git", "push", "-q", "origin", "HEAD:main"), 0)
	m = a.mark()
	_, r = a.clone(t, a.url("ws/repo.git"))
	wantCode(t, r, 0) // before the pull A still has it
	wantServed(t, a.since(m), "ws/repo", "repo", userAccess)
	wantCode(t, a.run(t, storeA, "", nil, "git", "pull", "-q", "--no-rebase", "origin", "main"), 0)
	m = a.mark()
	_, r = a.clone(t, a.url("ws/repo.git"))
	if r.code == 0 {
		t.Errorf("A is still served a token B removed: %s", r)
	}
	wantNoCredentials(t, a.since(m))
	if rows := a.list(t); len(rows) != 0 {
		t.Errorf("A lists %+v after the pull, want nothing", rows)
	}
}

// TestPassLockedKey: a key whose passphrase no agent holds makes get fail
// fast with one line naming the fix; git goes on (and fails here, as there
// is no other helper), nothing hangs on a prompt.
func TestPassLockedKey(t *testing.T) {
	passtest.Require(t)
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}, noKeyring: true})
	gpgHome, fpr := passtest.GPGHomeLocked(t, "Locked")
	f.withPass(t, gpgHome, false, fpr)
	tok := f.accessToken(t, "repo", "ws/repo")
	f.add(t, f.url("ws/repo"), tok, "--store", "pass") // encrypting needs no passphrase

	query := "protocol=https\nhost=" + strings.TrimPrefix(f.srv.URL, "https://") + "\npath=ws/repo.git\n\n"
	start := time.Now()
	r := f.helper(t, query, "get")
	if r.code == 0 || r.stdout != "" {
		t.Fatalf("get with a locked key: want a failure and nothing on stdout: %s", r)
	}
	if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 || !strings.Contains(r.stderr, "passphrase") || !strings.Contains(r.stderr, "pass show") {
		t.Errorf("want one line naming the passphrase and the fix: %s", r)
	}
	t.Logf("get failed in %s", time.Since(start).Round(time.Millisecond))
	m := f.mark()
	_, r = f.clone(t, f.url("ws/repo.git"))
	if r.code == 0 {
		t.Errorf("clone with a locked key succeeded: %s", r)
	}
	wantNoCredentials(t, f.since(m))
}

// TestPassParallelProcesses: git processes at once on a headless machine
// whose store setting is pass: adds of new tokens, gets and git's stores of
// tokens already there, removes. Every add that reported success is in the
// password store and committed, nothing else is; every get answers its
// repository's own token or nothing; the store's work tree ends clean.
func TestPassParallelProcesses(t *testing.T) {
	passtest.Require(t)
	f := newFixture(t, fixtureOptions{noKeyring: true})
	gpgHome, fpr := passtest.GPGHome(t, "Parallel")
	storeDir := f.withPass(t, gpgHome, true, fpr)
	wantCode(t, f.helper(t, "", "config", "store", "pass"), 0)
	const existing, fresh = 8, 16
	tokens := map[string]string{}
	for i := range existing {
		repo := fmt.Sprintf("ws/old%02d", i)
		tokens[repo] = newSecret(t, "ATCTT3")
		f.secrets = append(f.secrets, tokens[repo])
		f.add(t, f.url(repo), tokens[repo])
	}
	var ops []op
	for i := range fresh {
		repo := fmt.Sprintf("ws/new%02d", i)
		tokens[repo] = newSecret(t, "ATCTT3")
		f.secrets = append(f.secrets, tokens[repo])
		ops = append(ops, f.addOp(repo, tokens[repo]))
	}
	for i := range existing {
		repo := fmt.Sprintf("ws/old%02d", i)
		// git's store after a success, or a remove: a store that came
		// after the remove would rightly keep what git used.
		if i%2 == 0 {
			ops = append(ops, f.removeOp(repo, ""))
		} else {
			ops = append(ops, f.getOp(repo), f.storeOp(repo, userAccess, tokens[repo]))
		}
	}
	rand.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	results, _ := f.runParallel(ops, 8, []string{"GIT_CREDENTIAL_BBTOKEN_LOCK_TIMEOUT=" + loadLockWait.String()})

	added := map[string]bool{}
	removed := map[string]bool{}
	for _, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		switch r.name {
		case "add":
			if r.code == 0 {
				added[r.scope] = true
			} else if !lockTimedOut(r) {
				t.Errorf("add failed: %s", r.result)
			}
		case "remove":
			if r.code == 0 {
				removed[r.scope] = true
			} else if !lockTimedOut(r) {
				t.Errorf("remove failed: %s", r.result)
			}
		case "get":
			if r.code != 0 {
				t.Errorf("get failed: %s", r.result)
				continue
			}
			// Only repositories nobody removes are asked for: each must
			// get its own token.
			a, err := parseAnswer(r.stdout)
			if err != nil {
				t.Errorf("get %s: %v", r.scope, err)
			} else if a == nil || a.password != tokens[r.scope] {
				t.Errorf("get %s did not answer its own token: %s", r.scope, r.stderr)
			}
		case "store":
			if r.code != 0 && !lockTimedOut(r) {
				t.Errorf("store failed: %s", r.result)
			}
		}
	}
	// The password store holds exactly what succeeded, each committed.
	host := strings.TrimPrefix(f.srv.URL, "https://")
	want := map[string]bool{}
	for repo := range tokens {
		isNew := strings.HasPrefix(repo, "ws/new")
		if isNew && added[repo] || !isNew && !removed[repo] {
			want[host+"/"+repo] = true
		}
	}
	got := map[string]bool{}
	err := filepath.WalkDir(filepath.Join(storeDir, passstore.Folder), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(filepath.Join(storeDir, passstore.Folder), p)
			got[strings.TrimSuffix(filepath.ToSlash(rel), ".gpg")] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(want, got) {
		t.Errorf("the password store holds %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	if r := f.run(t, storeDir, "", nil, "git", "status", "--porcelain"); r.stdout != "" {
		t.Errorf("uncommitted changes in the password store:\n%s", r.stdout)
	}
	for name := range want {
		out, err := f.passShow(t, passstore.Folder+"/"+name)
		repo := strings.TrimPrefix(name, host+"/")
		if err != nil || !strings.HasPrefix(out, tokens[repo]+"\n") {
			t.Errorf("pass show %s: not its token (%v)", name, err)
		}
	}
	// No stored copies: git's stores of tokens we serve write nothing.
	for _, e := range f.list(t) {
		if e.Kind == "stored" {
			t.Errorf("git's store made a copy: %+v", e)
		}
	}
}
