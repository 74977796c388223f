package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bbtoken/git-credential-bbtoken/internal/fakebb"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// doctor runs `git-credential-bbtoken doctor ARGS` in dir (HOME when empty)
// and returns the result with its lines.
func (f *fixture) doctor(t *testing.T, dir string, args ...string) (result, []string) {
	t.Helper()
	r := f.run(t, dir, "", nil, helperBin, append([]string{"doctor"}, args...)...)
	return r, strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
}

// wantFinding fails unless exactly one line is at level and matches re.
func wantFinding(t *testing.T, r result, lines []string, level, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var found []string
	for _, l := range lines {
		if strings.HasPrefix(l, level+" ") && rx.MatchString(l) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s line matching %q, got %d in %s", level, re, len(found), r)
	}
	return found[0]
}

func noFindingLine(t *testing.T, lines []string, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	for _, l := range lines {
		if rx.MatchString(l) {
			t.Errorf("unexpected line %q", l)
		}
	}
}

func randomID(t *testing.T) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// TestDoctorHelperOrderAndUseHTTPPath: a hand-written configuration where
// git's store helper runs before this one and useHttpPath is missing.
// doctor names both, --fix re-runs setup, and then git uses only this
// helper: the clone is served by the token and the store helper never
// writes it to ~/.git-credentials.
func TestDoctorHelperOrderAndUseHTTPPath(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}})
	f.add(t, f.url("ws/repo.git"), f.accessToken(t, "repo", "ws/repo"), "--kind", "repository")
	host := f.srv.URL
	broken := "[credential]\n\thelper = store\n[credential \"" + host + "\"]\n\thelper = " + helperBin + "\n"
	if err := os.WriteFile(f.gitconfigPath(), []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}

	r, lines := f.doctor(t, "")
	wantCode(t, r, 1)
	l := wantFinding(t, r, lines, "action", regexp.QuoteMeta(host)+`: git asks "store" \(global config `+regexp.QuoteMeta(f.gitconfigPath())+`\) before this helper`)
	if !strings.Contains(l, "fix: git-credential-bbtoken setup --host "+host) {
		t.Errorf("the finding does not name setup: %q", l)
	}
	wantFinding(t, r, lines, "action", regexp.QuoteMeta(host)+`: credential.useHttpPath is not set`)
	wantFinding(t, r, lines, "ok", `keyring: write, read and delete round trip`)
	if !strings.Contains(r.stderr, "2 finding(s) need action (see above); doctor --fix repairs 2 of them") {
		t.Errorf("stderr: %s", r)
	}

	r, lines = f.doctor(t, "", "--fix")
	wantCode(t, r, 0)
	if lines[0] != "fixed   "+host+": re-ran setup --host "+host {
		t.Errorf("--fix does not say what it did: %s", r)
	}
	wantFinding(t, r, lines, "ok", regexp.QuoteMeta(host)+`: git asks this helper first$`)
	wantFinding(t, r, lines, "ok", regexp.QuoteMeta(host)+`: credential.useHttpPath is true`)
	got := f.git(t, "", "config", "--global", "--get-all", "credential."+host+".helper")
	if want := "\n" + helperBin + "\n"; got.stdout != want {
		t.Errorf("after --fix the helper list is %q, want %q", got.stdout, want)
	}

	m := f.mark()
	_, r = f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/repo", "repo", userAccess)
	if _, err := os.Stat(filepath.Join(f.home, ".git-credentials")); !os.IsNotExist(err) {
		t.Errorf("git's store helper still ran for the host (~/.git-credentials: %v)", err)
	}
}

// TestDoctorOrphanedSecret: with the real Secret Service, a secret an
// interrupted write left (listed in the journal) is reported and deleted by
// --fix; a stray item nobody here knows is reported and left alone.
func TestDoctorOrphanedSecret(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}})
	f.add(t, f.url("ws/repo.git"), f.accessToken(t, "repo", "ws/repo"), "--kind", "repository")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	orphan, stray := randomID(t), randomID(t)
	orphanSecret, straySecret := newSecret(t, "ATCTT3"), newSecret(t, "ATCTT3")
	f.secrets = append(f.secrets, orphanSecret, straySecret)
	if _, err := f.keyring.Set(ctx, orphan, orphanSecret); err != nil {
		t.Fatal(err)
	}
	if _, err := f.keyring.Set(ctx, stray, straySecret); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = f.keyring.Delete(context.Background(), orphan)
		_ = f.keyring.Delete(context.Background(), stray)
	})
	journal := filepath.Join(filepath.Dir(f.indexPath()), store.JournalFile)
	if err := os.WriteFile(journal, []byte(`["`+orphan+`"]`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	r, lines := f.doctor(t, "")
	wantCode(t, r, 1)
	wantFinding(t, r, lines, "action", `secrets: 1 orphaned secret\(s\) left in the keyring by an interrupted write: `+orphan+`; fix: git-credential-bbtoken doctor --fix`)
	// Other tests share the keyring: their items are unknown here too, so
	// only the warning itself is certain, not which ids it shows.
	wantFinding(t, r, lines, "warn", `secrets: \d+ keyring item\(s\) under service git-credential-bbtoken that no entry here names`)

	r, lines = f.doctor(t, "", "--fix")
	if lines[0] != "fixed   deleted orphaned secret "+orphan+" (left by an interrupted write)" {
		t.Errorf("--fix does not report the deletion: %s", r)
	}
	noFindingLine(t, lines, `^(ok|warn|action) .*orphaned`)
	if _, _, err := f.keyring.Get(ctx, orphan, "", nil); !errors.Is(err, secrets.ErrNotFound) {
		t.Errorf("the orphaned secret is still in the keyring (err %v)", err)
	}
	if v, _, err := f.keyring.Get(ctx, stray, "", nil); err != nil || v != straySecret {
		t.Errorf("--fix touched an item it does not own (err %v)", err)
	}
	if _, err := os.Stat(journal); !os.IsNotExist(err) {
		t.Errorf("the journal is still there: %v", err)
	}
	// The token still serves git.
	m := f.mark()
	_, r = f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/repo", "repo", userAccess)
}

// TestDoctorRemotes: inside a clone, doctor reads the remotes: the HTTPS
// origin is served by the token, an SSH remote cannot be, and a URL with a
// token written into it is a leak, reported without the token.
func TestDoctorRemotes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}})
	f.add(t, f.url("ws/repo.git"), f.accessToken(t, "repo", "ws/repo"), "--kind", "repository")
	dir, r := f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)
	hostPort := strings.TrimPrefix(f.srv.URL, "https://")
	host, _, _ := strings.Cut(hostPort, ":")
	// Not one of f.secrets: it sits in .git/config, which the hygiene check
	// reads; doctor's output is checked for it here instead.
	embedded := "ATCTT3xEmbeddedE2E" + randomID(t) + randomID(t)
	f.git(t, dir, "remote", "add", "ssh", "git@"+host+":ws/repo.git")
	f.git(t, dir, "remote", "add", "leak", "https://x-token-auth:"+embedded+"@"+hostPort+"/ws/repo.git")

	r, lines := f.doctor(t, dir)
	wantCode(t, r, 1)
	if strings.Contains(r.stdout+r.stderr, embedded) {
		t.Fatalf("doctor printed the embedded token: %s", r)
	}
	wantFinding(t, r, lines, "ok", `remote origin: `+regexp.QuoteMeta(f.url("ws/repo.git"))+` is served by token [0-9a-f]{8} \(repository `)
	l := wantFinding(t, r, lines, "warn", `remote ssh: git@`+regexp.QuoteMeta(host)+`:ws/repo.git is an SSH remote`)
	if !strings.Contains(l, "fix: to use a token instead: git remote set-url ssh "+f.url("ws/repo.git")) {
		t.Errorf("the SSH finding does not name the https URL: %q", l)
	}
	l = wantFinding(t, r, lines, "action", `remote leak: https://x-token-auth:\*\*\*\*@`+regexp.QuoteMeta(hostPort)+`/ws/repo.git has a password written into the URL`)
	if !strings.Contains(l, "fix: git remote set-url leak "+f.url("ws/repo.git")+", then revoke") {
		t.Errorf("the leak finding does not say how to remove it: %q", l)
	}

	// Removing it as told clears the finding.
	f.git(t, dir, "remote", "set-url", "leak", f.url("ws/repo.git"))
	r, lines = f.doctor(t, dir)
	wantCode(t, r, 0)
	wantFinding(t, r, lines, "ok", `remote leak: `+regexp.QuoteMeta(f.url("ws/repo.git"))+` is served by token`)
}

// TestDoctorRejectedToken: a token Bitbucket refused (revoked on the
// server, then a 401 through git) is reported for action.
func TestDoctorRejectedToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}})
	id := f.add(t, f.url("ws/repo.git"), f.accessToken(t, "repo", "ws/repo"), "--kind", "repository")
	f.srv.Revoke("repo")
	_, r := f.clone(t, f.url("ws/repo.git"))
	if r.code == 0 {
		t.Fatalf("clone with a revoked token succeeded: %s", r)
	}
	f.wantState(t, id, "rejected")
	r, lines := f.doctor(t, "", "--json")
	wantCode(t, r, 1)
	var rep struct {
		Findings []struct{ Level, Check, Subject, Message, Fix string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, lines)
	}
	found := false
	for _, fd := range rep.Findings {
		if fd.Check == "token" && strings.Contains(fd.Subject, id) {
			found = true
			if fd.Level != "action" || !strings.Contains(fd.Message, "rejected") || !strings.Contains(fd.Fix, "add "+f.url("ws/repo")) {
				t.Errorf("finding for the rejected token: %+v", fd)
			}
		}
	}
	if !found {
		t.Errorf("no finding for the rejected token:\n%s", r.stdout)
	}
}

// TestSetupDetect: setup --detect asks the server, recognises Data Center
// by its X-AREQUESTID header (with the context path kept as the base URL),
// and refuses a server that shows no marker, changing nothing.
func TestSetupDetect(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{noSetup: true})
	dc, err := fakebb.Start(t.TempDir(), fakebb.Options{Flavor: fakebb.DataCenter, ContextPath: "bitbucket"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dc.Close)
	hostPort := strings.TrimPrefix(strings.TrimSuffix(dc.URL, "/bitbucket"), "https://")

	// Go reads SSL_CERT_FILE for its trust store (git uses GIT_SSL_CAINFO).
	r := f.run(t, "", "", []string{"SSL_CERT_FILE=" + dc.CAFile}, helperBin, "setup", "--host", dc.URL, "--detect")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, dc.URL+": detected Bitbucket Data Center (X-AREQUESTID header on HEAD") {
		t.Errorf("setup --detect output: %s", r)
	}
	var ix struct {
		Hosts map[string]struct {
			Flavor  string `json:"flavor"`
			BaseURL string `json:"base_url"`
		} `json:"hosts"`
	}
	data, err := os.ReadFile(f.indexPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &ix); err != nil {
		t.Fatal(err)
	}
	if hc := ix.Hosts[hostPort]; hc.Flavor != "datacenter" || hc.BaseURL != dc.URL {
		t.Errorf("recorded host %s: %+v, want datacenter at %s", hostPort, hc, dc.URL)
	}

	// The Cloud fake shows no Data Center marker.
	before := stateOf(t, f.indexPath())
	r = f.run(t, "", "", []string{"SSL_CERT_FILE=" + f.srv.CAFile}, helperBin, "setup", "--host", f.srv.URL, "--detect")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "without a Bitbucket Data Center marker") {
		t.Errorf("setup --detect on a non-Data Center server: %s", r)
	}
	wantUnchanged(t, f.indexPath(), before)
	if got := f.git(t, "", "config", "--global", "--get-all", "credential."+f.srv.URL+".helper"); got.code != 1 {
		t.Errorf("git config changed for a refused host: %s", got)
	}

	// An untrusted certificate is an error, not a verdict.
	r = f.helper(t, "", "setup", "--host", dc.URL, "--detect")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "certificate") {
		t.Errorf("setup --detect without the CA: %s", r)
	}
}

// TestImportFromCredentialStore: tokens in ~/.git-credentials go to the
// real keyring, git is then served from there, and --remove-plaintext
// leaves only the lines that were not imported, byte for byte.
func TestImportFromCredentialStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureOptions{repos: []string{"ws/repo"}})
	tok := f.accessToken(t, "repo", "ws/repo")
	hostPort := strings.TrimPrefix(f.srv.URL, "https://")
	kept := "https://bob:not-a-bitbucket-secret@example.org\r\n" +
		"https://alice:ATBB0deadAppPassword0000@" + hostPort + "\n"
	content := kept[:strings.Index(kept, "\n")+1] +
		"https://x-token-auth:" + tok + "@" + hostPort + "/ws/repo.git\n" +
		kept[strings.Index(kept, "\n")+1:]
	path := filepath.Join(f.home, ".git-credentials")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}

	r := f.helper(t, "", "import", "--remove-plaintext")
	wantCode(t, r, 0)
	if !regexp.MustCompile(`:2: https://x-token-auth@` + regexp.QuoteMeta(hostPort) + `/ws/repo.git: imported as [0-9a-f]{8} \(repository token`).MatchString(r.stdout) {
		t.Errorf("import output: %s", r)
	}
	if !strings.Contains(r.stdout, ":3: https://alice@"+hostPort+": an app password") {
		t.Errorf("the app password is not reported: %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, "ATBB0dead") {
		t.Errorf("import printed the app password: %s", r)
	}
	if got := readFile(t, path); got != kept {
		t.Errorf("~/.git-credentials after import:\n%q\nwant:\n%q", got, kept)
	}
	rows := f.list(t)
	if len(rows) != 1 || rows[0].Kind != "repository" || rows[0].Label != "imported from .git-credentials" {
		t.Fatalf("list after import: %+v", rows)
	}

	m := f.mark()
	_, r = f.clone(t, f.url("ws/repo.git"))
	wantCode(t, r, 0)
	wantServed(t, f.since(m), "ws/repo", "repo", userAccess)
}
