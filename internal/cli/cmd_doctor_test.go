package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/doctor"
	"github.com/bbtoken/git-credential-bbtoken/internal/doctor/doctortest"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets"
	"github.com/bbtoken/git-credential-bbtoken/internal/secrets/memory"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// These tests build broken set-ups in a temporary HOME with the real git
// (isolateGit: not parallel) and a stand-in helper program, run doctor in
// process, and check each finding and what --fix does about it.

// doctorFixture is a fixture whose HOME is the isolated git HOME and whose
// helper executable is a stand-in that answers nothing.
type doctorFixture struct {
	*fixture
	home string
	exe  string
}

func newDoctorFixture(t *testing.T) *doctorFixture {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the stand-in helper is a shell script")
	}
	home := isolateGit(t)
	f := newFixture(t)
	f.getenv["HOME"] = home
	f.getenv["XDG_CONFIG_HOME"] = filepath.Join(home, ".config")
	require.NoError(t, os.Chmod(f.dir, 0o700)) // as the store creates it
	exe := doctortest.StandIn(t, "bin", doctor.ProbeEnv)
	return &doctorFixture{fixture: f, home: home, exe: exe}
}

func (f *doctorFixture) cmd(stdin string, args ...string) result {
	f.t.Helper()
	return f.runWith(func(e *Env) { e.Executable = f.exe }, stdin, args...)
}

// doctor runs doctor and returns the result with its finding lines.
func (f *doctorFixture) doctor(args ...string) (result, []string) {
	f.t.Helper()
	r := f.cmd("", append([]string{"doctor"}, args...)...)
	assertNoSecret(f.t, "doctor's stdout", r.stdout)
	assertNoSecret(f.t, "doctor's stderr", r.stderr)
	return r, strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
}

// finding returns the one line at level whose text matches re.
func finding(t *testing.T, lines []string, level doctor.Level, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var found []string
	for _, l := range lines {
		if strings.HasPrefix(l, string(level)+" ") && rx.MatchString(l) {
			found = append(found, l)
		}
	}
	require.Len(t, found, 1, "want one %s line matching %q in:\n%s", level, re, strings.Join(lines, "\n"))
	return found[0]
}

func noFinding(t *testing.T, lines []string, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	for _, l := range lines {
		assert.False(t, rx.MatchString(l), "unexpected line %q", l)
	}
}

func (f *doctorFixture) writeGitconfig(content string) {
	f.t.Helper()
	require.NoError(f.t, os.WriteFile(filepath.Join(f.home, ".gitconfig"), []byte(content), 0o600))
}

// initRepo makes the working directory a git repository with remotes.
func (f *doctorFixture) initRepo(remotes ...[2]string) {
	f.t.Helper()
	mustGit(f.t, os.Environ(), f.wd, "init", "-q")
	for _, r := range remotes {
		mustGit(f.t, os.Environ(), f.wd, "remote", "add", r[0], r[1])
	}
}

func TestDoctorHealthySetup(t *testing.T) {
	f := newDoctorFixture(t)
	require.Equal(t, ExitOK, f.cmd("", "setup").code)
	f.add(repoTok, "https://bitbucket.org/ws/repo")
	f.initRepo([2]string{"origin", "https://bitbucket.org/ws/repo.git"})

	r, lines := f.doctor()
	require.Equal(t, ExitOK, r.code, "%s\n%s", r.stdout, r.stderr)
	assert.Empty(t, r.stderr)
	finding(t, lines, doctor.OK, `^ok +git \d+\.\d+`)
	finding(t, lines, doctor.OK, `https://bitbucket.org: git asks this helper first$`)
	finding(t, lines, doctor.OK, `https://bitbucket.org: credential.useHttpPath is true \(global config `)
	finding(t, lines, doctor.OK, `keyring: write, read and delete round trip`)
	finding(t, lines, doctor.OK, `secrets: index and keyring agree \(1 entries`)
	finding(t, lines, doctor.OK, `tokens: 1 token\(s\): none expired, rejected or expiring within 14 days`)
	finding(t, lines, doctor.OK, `remote origin: https://bitbucket.org/ws/repo.git is served by token [0-9a-f]{8} \(repository https://bitbucket.org/ws/repo\)`)
	finding(t, lines, doctor.OK, `tokens.json: mode 0600 in a 0700 directory; entries: 1, hosts set up: 1`)
	assert.Regexp(t, `\d+ ok, 0 warning\(s\), 0 needing action$`, lines[len(lines)-1])
	for _, l := range lines[:len(lines)-1] {
		assert.Regexp(t, `^(ok|warn|action) +\S`, l)
	}

	// --fix has nothing to do and says so.
	r, lines = f.doctor("--fix")
	require.Equal(t, ExitOK, r.code, r.stdout)
	assert.Contains(t, lines[0], "fixed   nothing")
}

func TestDoctorOtherHelperFirst(t *testing.T) {
	f := newDoctorFixture(t)
	// Our helper configured by hand, without the reset setup writes: git's
	// store helper from [credential] runs first.
	f.writeGitconfig("[credential]\n\thelper = store\n[credential \"https://bitbucket.org\"]\n\thelper = " + f.exe + "\n\tuseHttpPath = true\n")
	f.add(repoTok, "https://bitbucket.org/ws/repo")

	r, lines := f.doctor()
	require.Equal(t, ExitError, r.code, r.stdout)
	l := finding(t, lines, doctor.Action, `https://bitbucket.org: git asks "store" \(global config .*\.gitconfig\) before this helper`)
	assert.Contains(t, l, "fix: git-credential-bbtoken setup --host https://bitbucket.org (doctor --fix runs it)")
	assert.Contains(t, r.stderr, "1 finding(s) need action (see above); doctor --fix repairs 1 of them")

	// A helper before ours that answers every request: ours is never asked.
	// (git's store helper would not answer here: with useHttpPath on, the
	// request has a path its host-wide line lacks.)
	answers := `!f() { test $1 = get && echo username=alice && echo password=hunter2-typed; }; f`
	f.writeGitconfig("[credential]\n\thelper = \"" + answers + "\"\n[credential \"https://bitbucket.org\"]\n\thelper = " + f.exe + "\n\tuseHttpPath = true\n")
	r, lines = f.doctor()
	require.Equal(t, ExitError, r.code)
	finding(t, lines, doctor.Action, `git asks "!f\(\) \{ test .*" \(global config .*\) first and it answers, so this helper is never asked`)
	assert.NotContains(t, r.stdout, "hunter2")
	f.writeGitconfig("[credential]\n\thelper = store\n[credential \"https://bitbucket.org\"]\n\thelper = " + f.exe + "\n\tuseHttpPath = true\n")

	r, lines = f.doctor("--fix")
	require.Equal(t, ExitOK, r.code, "%s\n%s", r.stdout, r.stderr)
	assert.Equal(t, "fixed   https://bitbucket.org: re-ran setup --host https://bitbucket.org", lines[0])
	assert.Contains(t, r.stdout, "fixed     ran: git config --global --add credential.https://bitbucket.org.helper ''\n")
	finding(t, lines, doctor.OK, `https://bitbucket.org: git asks this helper first$`)
	assert.Equal(t, []string{"", f.exe}, globalAll(t, "credential.https://bitbucket.org.helper"))
	assert.Equal(t, []string{"store"}, globalAll(t, "credential.helper"), "fix changes nothing else")
}

func TestDoctorHelperAfterOurs(t *testing.T) {
	f := newDoctorFixture(t)
	require.Equal(t, ExitOK, f.cmd("", "setup").code)
	f.add(repoTok, "https://bitbucket.org/ws/repo")
	// Added after setup, the store helper lands after our section.
	mustGit(t, os.Environ(), f.home, "config", "--global", "--add", "credential.helper", "store")

	r, lines := f.doctor()
	require.Equal(t, ExitError, r.code)
	finding(t, lines, doctor.OK, `https://bitbucket.org: git asks this helper first$`)
	l := finding(t, lines, doctor.Action, `git also hands every token this helper serves to "store" .* writes them in plaintext to ~/.git-credentials`)
	assert.Contains(t, l, "fix: remove `credential.helper = store` from "+filepath.Join(f.home, ".gitconfig"))

	// --fix cannot reorder the user's file: it says so by leaving the finding.
	r, lines = f.doctor("--fix")
	require.Equal(t, ExitError, r.code)
	assert.Contains(t, lines[0], "fixed   nothing")
	finding(t, lines, doctor.Action, `writes them in plaintext`)
}

func TestDoctorNotInHelperList(t *testing.T) {
	f := newDoctorFixture(t)
	require.Equal(t, ExitOK, f.cmd("", "setup").code)
	f.add(repoTok, "https://bitbucket.org/ws/repo")
	// The repository's config resets the list and names another helper.
	f.initRepo()
	mustGit(t, os.Environ(), f.wd, "config", "--local", "--add", "credential.helper", "")
	mustGit(t, os.Environ(), f.wd, "config", "--local", "--add", "credential.helper", "cache --timeout=1")

	r, lines := f.doctor()
	require.Equal(t, ExitError, r.code)
	l := finding(t, lines, doctor.Action, `this helper is not in git's helper list for https://bitbucket.org; git runs only "cache --timeout=1" \(local config .*\.git/config\); an empty helper value in local config`)
	assert.Contains(t, l, "fix: remove the empty `credential.helper =` line from "+filepath.Join(f.wd, ".git", "config"))

	// Not something setup can repair: --fix leaves it.
	r, lines = f.doctor("--fix")
	require.Equal(t, ExitError, r.code)
	finding(t, lines, doctor.Action, `not in git's helper list`)
}

func TestDoctorMissingUseHTTPPath(t *testing.T) {
	f := newDoctorFixture(t)
	require.Equal(t, ExitOK, f.cmd("", "setup").code)
	f.add(repoTok, "https://bitbucket.org/ws/repo")
	mustGit(t, os.Environ(), f.home, "config", "--global", "--unset", "credential.https://bitbucket.org.useHttpPath")

	r, lines := f.doctor()
	require.Equal(t, ExitError, r.code)
	l := finding(t, lines, doctor.Action, `https://bitbucket.org: credential.useHttpPath is not set: git drops the repository path`)
	assert.Contains(t, l, "fix: git-credential-bbtoken setup --host https://bitbucket.org")

	r, lines = f.doctor("--fix")
	require.Equal(t, ExitOK, r.code, r.stdout)
	assert.Contains(t, r.stdout, "fixed     ran: git config --global credential.https://bitbucket.org.useHttpPath true\n")
	finding(t, lines, doctor.OK, `credential.useHttpPath is true`)
	assert.Equal(t, []string{"true"}, globalAll(t, "credential.https://bitbucket.org.useHttpPath"))

	// false in the repository's config wins over the global true, and only
	// the user can change that file.
	f.initRepo()
	mustGit(t, os.Environ(), f.wd, "config", "--local", "credential.useHttpPath", "false")
	r, lines = f.doctor("--fix")
	require.Equal(t, ExitError, r.code)
	l = finding(t, lines, doctor.Action, `credential.useHttpPath is false \(local config .*, credential.usehttppath\)`)
	assert.Contains(t, l, "fix: remove `credential.usehttppath` from "+filepath.Join(f.wd, ".git", "config"))
}

func TestDoctorMissingHelperProgram(t *testing.T) {
	f := newDoctorFixture(t)
	require.Equal(t, ExitOK, f.cmd("", "setup").code)
	f.add(repoTok, "https://bitbucket.org/ws/repo")
	moved := f.exe
	f.exe = filepath.Join(filepath.Dir(moved), "new", "git-credential-bbtoken")
	require.NoError(t, os.MkdirAll(filepath.Dir(f.exe), 0o700))
	require.NoError(t, os.Rename(moved, f.exe))

	r, lines := f.doctor()
	require.Equal(t, ExitError, r.code)
	finding(t, lines, doctor.Action, `the helper program git runs, `+regexp.QuoteMeta(moved)+` \(global config .*\), does not exist`)
	noFinding(t, lines, `git asks this helper first`)

	r, lines = f.doctor("--fix")
	require.Equal(t, ExitOK, r.code, r.stdout)
	noFinding(t, lines, `does not exist`)
	helpers := globalAll(t, "credential.https://bitbucket.org.helper")
	assert.Equal(t, []string{"", f.exe}, helpers[len(helpers)-2:])
}

func TestDoctorNoHostSetUp(t *testing.T) {
	f := newDoctorFixture(t)
	r, lines := f.doctor()
	require.Equal(t, ExitError, r.code)
	finding(t, lines, doctor.Action, `setup: no Bitbucket host is set up, so git never asks this helper; fix: git-credential-bbtoken setup`)
	finding(t, lines, doctor.Warn, `tokens: no tokens stored`)
	finding(t, lines, doctor.OK, `no index yet`)
}

func TestDoctorOrphanedSecrets(t *testing.T) {
	f := newDoctorFixture(t)
	mem := memory.New() // lists its items, like the Secret Service
	run := func(args ...string) (result, []string) {
		r := f.runWith(func(e *Env) { e.Executable, e.Secrets = f.exe, mem }, "", append([]string{"doctor"}, args...)...)
		return r, strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	}
	r := f.runWith(func(e *Env) { e.Executable, e.Secrets = f.exe, mem }, "", "setup")
	require.Equal(t, ExitOK, r.code, r.stderr)
	r = f.runWith(func(e *Env) { e.Secrets = mem }, repoTok+"\n", "add", "https://bitbucket.org/ws/repo")
	require.Equal(t, ExitOK, r.code, r.stderr)
	id := strings.TrimSpace(r.stdout)
	r = f.runWith(func(e *Env) { e.Secrets = mem }, wsTok+"\n", "add", "https://bitbucket.org/ws", "--kind", "workspace")
	require.Equal(t, ExitOK, r.code, r.stderr)
	gone := strings.TrimSpace(r.stdout)

	ctx := context.Background()
	// An interrupted write: a secret the journal lists and no entry names.
	_, err := mem.Set(ctx, "0a1b2c3d", "ATCTT3-interrupted-write-XXXX")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, store.JournalFile), []byte(`["0a1b2c3d"]`+"\n"), 0o600))
	// A stray item nobody here knows, and an entry whose secret is gone.
	_, err = mem.Set(ctx, "5772a4e1", "someone else's")
	require.NoError(t, err)
	require.NoError(t, mem.Delete(ctx, gone))

	r, lines := run()
	require.Equal(t, ExitError, r.code, r.stdout)
	finding(t, lines, doctor.Action, `secrets: 1 orphaned secret\(s\) left in the keyring by an interrupted write: 0a1b2c3d; fix: git-credential-bbtoken doctor --fix`)
	finding(t, lines, doctor.Warn, `secrets: 1 keyring item\(s\) under service git-credential-bbtoken that no entry here names: 5772a4e1 .*; fix: git-credential-bbtoken repair --delete-unknown`)
	l := finding(t, lines, doctor.Action, `token `+gone+` \(workspace https://bitbucket.org/ws\): its secret is not in the keyring`)
	assert.Contains(t, l, "git-credential-bbtoken add https://bitbucket.org/ws --kind workspace")
	assert.Contains(t, l, "git-credential-bbtoken remove "+gone)
	assert.Contains(t, r.stderr, "doctor --fix repairs 1 of them")

	r, lines = run("--fix")
	require.Equal(t, ExitError, r.code, r.stdout)
	assert.Equal(t, "fixed   deleted orphaned secret 0a1b2c3d (left by an interrupted write)", lines[0])
	noFinding(t, lines, `^(ok|warn|action) .*orphaned`)
	_, _, err = mem.Get(ctx, "0a1b2c3d", "", nil)
	assert.ErrorIs(t, err, secrets.ErrNotFound)
	_, err = os.Stat(filepath.Join(f.dir, store.JournalFile))
	assert.True(t, os.IsNotExist(err))
	// Nothing else destructive: the stray item, the entry without a secret
	// and the good token all stay.
	_, _, err = mem.Get(ctx, "5772a4e1", "", nil)
	assert.NoError(t, err)
	finding(t, lines, doctor.Warn, `5772a4e1`)
	finding(t, lines, doctor.Action, `token `+gone+` .*its secret is not in the keyring`)
	v, _, err := mem.Get(ctx, id, "", nil)
	require.NoError(t, err)
	assert.Equal(t, repoTok, v)
	assert.Len(t, f.index().Entries, 2)
}

func TestDoctorKeyringUnavailable(t *testing.T) {
	f := newDoctorFixture(t)
	require.Equal(t, ExitOK, f.cmd("", "setup").code)
	f.secrets.Fail = secrets.ErrUnavailable
	r, lines := f.doctor()
	require.Equal(t, ExitError, r.code)
	finding(t, lines, doctor.Action, `keyring: writing a test item failed: keyring unavailable`)
	noFinding(t, lines, `^\S+ +secrets:`)
}

func TestDoctorTokens(t *testing.T) {
	f := newDoctorFixture(t)
	require.Equal(t, ExitOK, f.cmd("", "setup").code)
	require.Equal(t, ExitOK, f.cmd("", "setup", "--host", "https://git.example.com").code)
	soon := f.add(repoTok, "https://bitbucket.org/ws/repo", "--expires", "2026-09-10")
	later := f.add(apiTok, "https://bitbucket.org", "--kind", "api", "--username", "alice", "--expires", "2026-09-20")
	rejected := f.add(wsTok, "https://bitbucket.org/ws", "--kind", "workspace")
	bearer := f.add(dcTok, "https://git.example.com/scm/PRJ/repo")
	// A dead app password git stored from its prompt before store began
	// refusing them (store now skips them; doctor still finds old ones).
	r := f.cmd("protocol=https\nhost=bitbucket.org\npath=old/repo.git\nusername=alice\npassword="+appPw+"\n", "store")
	require.Equal(t, ExitOK, r.code, r.stderr)
	for _, e := range f.index().Entries {
		require.NotEqual(t, store.KindStored, e.Kind, "store must not keep an app password")
	}
	stored := "0a1b2c3d"
	require.NoError(t, (&store.Store{Dir: f.dir, Secrets: f.secrets}).Update(context.Background(), func(tx *store.Tx) error {
		if _, err := tx.SetSecret(stored, appPw); err != nil {
			return err
		}
		tx.Index.Entries = append(tx.Index.Entries, store.Entry{ID: stored, URL: "https://bitbucket.org/old/repo", Kind: store.KindStored,
			Username: "alice", UsernameSet: true, State: store.StateActive})
		tx.Changed()
		return nil
	}))
	require.NoError(t, (&store.Store{Dir: f.dir, Secrets: f.secrets}).Update(context.Background(), func(tx *store.Tx) error {
		e, _ := tx.Index.Find(rejected)
		e.State = store.StateRejected
		e2, _ := tx.Index.Find(later)
		e2.RejectedFor = []string{"other/repo"}
		tx.Changed()
		return nil
	}))

	r, lines := f.doctor()
	require.Equal(t, ExitError, r.code)
	l := finding(t, lines, doctor.Warn, `token `+soon+` \(repository https://bitbucket.org/ws/repo\): expires on 2026-09-10 \(in 8 day\(s\)\)`)
	assert.Contains(t, l, "fix: create a new token, then: git-credential-bbtoken add https://bitbucket.org/ws/repo --kind repository --expires YYYY-MM-DD")
	noFinding(t, lines, `token `+later+` .*expires`) // 19 days away
	finding(t, lines, doctor.Warn, `token `+later+` .*withdrawn after a 401 from 1 repositor\(ies\): other/repo`)
	l = finding(t, lines, doctor.Action, `token `+rejected+` \(workspace https://bitbucket.org/ws\): rejected: Bitbucket answered 401`)
	assert.Contains(t, l, "add https://bitbucket.org/ws --kind workspace")
	// Each host's useHttpPath is named from its own section.
	for _, host := range []string{"https://bitbucket.org", "https://git.example.com"} {
		finding(t, lines, doctor.OK, regexp.QuoteMeta(host+": credential.useHttpPath is true (global config ")+`.*`+regexp.QuoteMeta(", credential."+host+".usehttppath)"))
	}
	l = finding(t, lines, doctor.Action, `token `+stored+` \(stored https://bitbucket.org/old/repo\): holds an app password`)
	assert.Contains(t, l, "git-credential-bbtoken remove "+stored)
	assert.Contains(t, l, "id.atlassian.com/manage-profile/security/api-tokens")
	if gitAtLeast246(t) {
		noFinding(t, lines, `needs git 2.46`)
	} else {
		finding(t, lines, doctor.Action, `token `+bearer+` \(repository https://git.example.com/scm/PRJ/repo\): is sent as Authorization: Bearer, which needs git 2.46`)
		finding(t, lines, doctor.Warn, `^warn +git \d.*fix: upgrade git to 2.46 or newer to use Data Center project and repository tokens`)
	}

	// A token the helper created: the fix is rotate; a rotation left
	// unfinished is a finding of its own, fixed by repair.
	require.NoError(t, (&store.Store{Dir: f.dir, Secrets: f.secrets}).Update(context.Background(), func(tx *store.Tx) error {
		e, _ := tx.Index.Find(bearer)
		e.Expires = "2026-09-05"
		e.RejectedFor = []string{"PRJ/other"}
		e.Server = &store.ServerToken{ID: "1001", Name: "ci", API: "https://git.example.com", Owner: "projects/PRJ/repos/repo", By: "alice", Pending: "ci (rotated x)"}
		tx.Index.Creating = []store.PendingCreate{{URL: "https://git.example.com/scm/PRJ", API: "https://git.example.com", Owner: "projects/PRJ", Name: "nightly", By: "bob", Started: fixedNow}}
		tx.Changed()
		return nil
	}))
	_, lines = f.doctor()
	l = finding(t, lines, doctor.Warn, `token `+bearer+` \(repository https://git.example.com/scm/PRJ/repo\): expires on 2026-09-05`)
	assert.Contains(t, l, "fix: git-credential-bbtoken rotate "+bearer+" (the password of alice on stdin or at the prompt)")
	l = finding(t, lines, doctor.Warn, `token `+bearer+` .*: withdrawn after a 401 from 1 repositor\(ies\): PRJ/other`)
	assert.Contains(t, l, "fix: git-credential-bbtoken verify "+bearer+" (if Bitbucket refuses it everywhere, git-credential-bbtoken rotate "+bearer)
	l = finding(t, lines, doctor.Action, `token `+bearer+` .*: a rotation of it was interrupted`)
	assert.Contains(t, l, "fix: git-credential-bbtoken repair (the password of alice on stdin or at the prompt)")
	l = finding(t, lines, doctor.Action, `create of "nightly" \(https://git.example.com/scm/PRJ\): a create was interrupted`)
	assert.Contains(t, l, "fix: git-credential-bbtoken repair (the password of bob on stdin or at the prompt)")
	require.NoError(t, (&store.Store{Dir: f.dir, Secrets: f.secrets}).Update(context.Background(), func(tx *store.Tx) error {
		tx.Index.Creating = nil
		tx.Changed()
		return nil
	}))

	// Later: one expired, the other now within 14 days.
	f.now = time.Date(2026, 9, 12, 0, 0, 0, 0, time.UTC)
	r, lines = f.doctor()
	require.Equal(t, ExitError, r.code)
	finding(t, lines, doctor.Action, `token `+soon+` .*: expired on 2026-09-10, so it is no longer served`)
	finding(t, lines, doctor.Warn, `token `+later+` .*: expires on 2026-09-20 \(in 8 day\(s\)\)`)

	// --fix never touches tokens.
	before := f.state()
	r, _ = f.doctor("--fix")
	require.Equal(t, ExitError, r.code)
	assertUnchanged(t, before, f.state())
}

func gitAtLeast246(t *testing.T) bool {
	out, err := exec.Command("git", "version").Output()
	require.NoError(t, err)
	var major, minor int
	_, err = fmt.Sscanf(strings.TrimPrefix(strings.TrimSpace(string(out)), "git version "), "%d.%d", &major, &minor)
	require.NoError(t, err)
	return major > 2 || (major == 2 && minor >= 46)
}

func TestDoctorRemotes(t *testing.T) {
	f := newDoctorFixture(t)
	require.Equal(t, ExitOK, f.cmd("", "setup").code)
	f.add(repoTok, "https://bitbucket.org/ws/repo")
	const embedded = "ATCTT3xEmbeddedInTheURLZZZZ9999"
	f.initRepo(
		[2]string{"origin", "git@bitbucket.org:ws/repo.git"},
		[2]string{"leak", "https://x-token-auth:" + embedded + "@bitbucket.org/ws/repo.git"},
		[2]string{"https", "https://alice@bitbucket.org/ws/repo.git"},
		[2]string{"nocover", "https://bitbucket.org/ws/other.git"},
		[2]string{"plain", "http://bitbucket.org/ws/repo.git"},
		[2]string{"corp", "https://git.corp.example/scm/PRJ/repo.git"},
		[2]string{"github", "https://github.com/a/b.git"},
		[2]string{"gh-ssh", "git@github.com:a/b.git"},
	)
	mustGit(t, os.Environ(), f.wd, "remote", "set-url", "--add", "--push", "https", "https://bob:pushpw-secret@bitbucket.org/ws/repo.git")

	r, lines := f.doctor()
	require.Equal(t, ExitError, r.code)
	assert.NotContains(t, r.stdout+r.stderr, embedded)
	assert.NotContains(t, r.stdout+r.stderr, "pushpw-secret")

	l := finding(t, lines, doctor.Warn, `remote origin: git@bitbucket.org:ws/repo.git is an SSH remote`)
	assert.Contains(t, l, "fix: to use a token instead: git remote set-url origin https://bitbucket.org/ws/repo.git")
	l = finding(t, lines, doctor.Action, `remote leak: https://x-token-auth:\*\*\*\*@bitbucket.org/ws/repo.git has a password written into the URL`)
	assert.Contains(t, l, "fix: git remote set-url leak https://bitbucket.org/ws/repo.git, then revoke that password or token")
	l = finding(t, lines, doctor.Action, `remote https \(push URL\): https://bob:\*\*\*\*@bitbucket.org/ws/repo.git has a password`)
	assert.Contains(t, l, "fix: git remote set-url --push https https://bitbucket.org/ws/repo.git")
	finding(t, lines, doctor.OK, `remote https: https://alice@bitbucket.org/ws/repo.git is served by token`)
	l = finding(t, lines, doctor.Warn, `remote nocover: https://bitbucket.org/ws/other.git: no usable token covers it`)
	assert.Contains(t, l, "fix: git-credential-bbtoken add https://bitbucket.org/ws/other.git")
	l = finding(t, lines, doctor.Warn, `remote plain: http://bitbucket.org/ws/repo.git uses plain http`)
	assert.Contains(t, l, "fix: git remote set-url plain https://bitbucket.org/ws/repo.git")
	l = finding(t, lines, doctor.Action, `remote corp: https://git.corp.example/scm/PRJ/repo.git looks like Bitbucket Data Center \(an /scm/ path\), but git.corp.example is not set up`)
	assert.Contains(t, l, "fix: git-credential-bbtoken setup --host https://git.corp.example --detect")
	finding(t, lines, doctor.OK, `remote github: https://github.com/a/b.git: github.com is not a Bitbucket host set up here \(ignored\)`)
	finding(t, lines, doctor.OK, `remote gh-ssh: git@github.com:a/b.git: SSH to github.com`)

	// --fix never rewrites remotes.
	config := readFileString(t, filepath.Join(f.wd, ".git", "config"))
	r, _ = f.doctor("--fix")
	require.Equal(t, ExitError, r.code)
	assert.Equal(t, config, readFileString(t, filepath.Join(f.wd, ".git", "config")))
}

// TestDoctorRemoteURLSection: a URL-specific section for one repository
// overrides what the host check saw.
func TestDoctorRemoteURLSection(t *testing.T) {
	f := newDoctorFixture(t)
	require.Equal(t, ExitOK, f.cmd("", "setup").code)
	f.add(repoTok, "https://bitbucket.org/ws/repo")
	f.initRepo([2]string{"origin", "https://bitbucket.org/ws/repo.git"})
	mustGit(t, os.Environ(), f.wd, "config", "--local", "--add", "credential.https://bitbucket.org/ws/repo.git.helper", "")
	mustGit(t, os.Environ(), f.wd, "config", "--local", "--add", "credential.https://bitbucket.org/ws/repo.git.helper", "cache")
	r, lines := f.doctor()
	require.Equal(t, ExitError, r.code)
	finding(t, lines, doctor.OK, `https://bitbucket.org: git asks this helper first$`)
	finding(t, lines, doctor.Action, `remote origin: https://bitbucket.org/ws/repo.git: for this URL git asks "cache" \(local config .*\) first, not this helper`)
}

func TestDoctorPlaintextCredentials(t *testing.T) {
	f := newDoctorFixture(t)
	require.Equal(t, ExitOK, f.cmd("", "setup").code)
	f.add(repoTok, "https://bitbucket.org/ws/repo")
	file := filepath.Join(f.home, ".git-credentials")
	require.NoError(t, os.WriteFile(file, []byte("https://alice:"+appPw+"@bitbucket.org\nhttps://bob:x@github.com\n"), 0o600))
	r, lines := f.doctor()
	require.Equal(t, ExitOK, r.code, r.stdout)
	finding(t, lines, doctor.Warn, regexp.QuoteMeta(file)+`: 1 Bitbucket credential\(s\) in plaintext \(1 app password\(s\), dead since 28 July 2026\); fix: git-credential-bbtoken import --from `+regexp.QuoteMeta(file)+` --remove-plaintext`)

	require.NoError(t, os.WriteFile(file, []byte("https://x-token-auth:"+wsTok+"@bitbucket.org/ws/other\n"), 0o600))
	r, lines = f.doctor()
	require.Equal(t, ExitError, r.code)
	finding(t, lines, doctor.Action, regexp.QuoteMeta(file)+`: 1 Bitbucket credential\(s\) in plaintext; fix: `)
}

func TestDoctorJSON(t *testing.T) {
	f := newDoctorFixture(t)
	require.Equal(t, ExitOK, f.cmd("", "setup").code)
	mustGit(t, os.Environ(), f.home, "config", "--global", "--unset", "credential.https://bitbucket.org.useHttpPath")
	r, _ := f.doctor("--json")
	require.Equal(t, ExitError, r.code)
	var rep struct {
		Findings []struct {
			Level, Check, Subject, Message, Fix string
		}
		Fixed       []string
		NeedsAction bool `json:"needs_action"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), r.stdout)
	assert.True(t, rep.NeedsAction)
	assert.Equal(t, []string{}, rep.Fixed)
	var found bool
	for _, fd := range rep.Findings {
		if fd.Check == "usehttppath" {
			found = true
			assert.Equal(t, "action", fd.Level)
			assert.Equal(t, "https://bitbucket.org", fd.Subject)
			assert.Contains(t, fd.Fix, "setup --host https://bitbucket.org")
		}
	}
	assert.True(t, found, r.stdout)

	r, _ = f.doctor("--json", "--fix")
	require.Equal(t, ExitOK, r.code, r.stdout)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	assert.False(t, rep.NeedsAction)
	assert.Contains(t, rep.Fixed, "https://bitbucket.org: re-ran setup --host https://bitbucket.org")
}

func TestDoctorUsage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.run("", "doctor", "extra")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.stderr, "usage: git-credential-bbtoken doctor [--fix] [--json]")
	r = f.run("", "doctor", "--bogus")
	assert.Equal(t, ExitUsage, r.code)
}

func readFileString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

// TestGetUnderDoctorsProbe: with doctor's probe variable naming a record
// file doctor made, get records who it is and whether git sent the path,
// answers nothing (so git goes on to the next helper) with one line on
// stderr, and neither reads nor changes what is stored. The variable left
// set to anything else is ignored.
func TestGetUnderDoctorsProbe(t *testing.T) {
	f := newFixture(t)
	f.add(repoTok, "https://bitbucket.org/ws/repo")
	dir, err := os.MkdirTemp(t.TempDir(), "bbtoken-doctor-")
	require.NoError(t, err)
	record := filepath.Join(dir, "probe")
	require.NoError(t, os.WriteFile(record, nil, 0o600))
	f.getenv[doctor.ProbeEnv] = record
	before := f.state()
	f.secrets.Fail = errors.New("the probe must not reach the keyring")

	for _, tt := range []struct {
		query    string
		wantPath string
	}{
		{"protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n\n", `"Path":true`},
		{"protocol=https\nhost=bitbucket.org\n\n", `"Path":false`},
	} {
		require.NoError(t, os.Truncate(record, 0))
		r := f.run(tt.query, "get")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Empty(t, r.stdout, "an answer would stop git at this helper")
		assert.Equal(t, "git-credential-bbtoken: get: answering nothing: doctor's probe ("+doctor.ProbeEnv+")\n", r.stderr)
		data, err := os.ReadFile(record)
		require.NoError(t, err)
		assert.Regexp(t, `^\{"PID":\d+,"PPID":\d+,`+tt.wantPath+`\}\n$`, string(data))
	}
	f.secrets.Fail = nil
	assert.Equal(t, before, f.state())

	// doctor's record file gone: get fails in one line, answering nothing,
	// and creates nothing.
	require.NoError(t, os.Remove(record))
	r := f.run("protocol=https\nhost=bitbucket.org\n\n", "get")
	assert.NotEqual(t, ExitOK, r.code)
	assert.Empty(t, r.stdout)
	assert.NoFileExists(t, record)

	// Not a file doctor makes: get serves as always.
	for _, stray := range []string{filepath.Join(t.TempDir(), "probe"), "probe", "1"} {
		f.getenv[doctor.ProbeEnv] = stray
		r = f.run("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n\n", "get")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, "password="+repoTok, "%s=%s", doctor.ProbeEnv, stray)
	}
}
