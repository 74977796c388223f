package cli

// Tests of the hardening issue: each one failed on the code before it
// (hangs, leaks, checks of passwords, '..;' paths, lost tokens), and each
// tries the neighbours of the reported case, not only the case.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/doctor"
	"github.com/bbtoken/git-credential-bbtoken/internal/store"
)

// hangLimit is how long a command may take before the test calls it hung.
// Every case here answers at once; the limit only turns a hang (which the
// code before the fix did) into a failure instead of a stuck test.
const hangLimit = 30 * time.Second

// runBounded runs a command in process and fails the test if it does not
// return within hangLimit.
func (f *fixture) runBounded(stdin string, args ...string) result {
	f.t.Helper()
	done := make(chan result, 1)
	go func() { done <- f.run(stdin, args...) }()
	select {
	case r := <-done:
		return r
	case <-time.After(hangLimit):
		f.t.Fatalf("%v did not return within %s: it hangs", args, hangLimit)
		return result{}
	}
}

// TestSymlinkedIndexIsFollowed: an index that a dotfile manager replaced
// with a symbolic link is read through the link and written to where it
// leads, and the link stays a link; the file it leads to must be as
// private as the index itself.
func TestSymlinkedIndexIsFollowed(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges there")
	}
	f := newFixture(t)
	require.NoError(t, os.Chmod(f.dir, 0o700))
	dotfiles := filepath.Join(t.TempDir(), "dotfiles")
	require.NoError(t, os.Mkdir(dotfiles, 0o700))
	real := filepath.Join(dotfiles, "tokens.json")
	link := filepath.Join(f.dir, store.IndexFile)
	id := f.add(repoTok, "https://bitbucket.org/ws/repo")
	require.NoError(t, os.Rename(link, real))
	require.NoError(t, os.Symlink(real, link))

	r := f.run("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n", "get")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Contains(t, r.stdout, "password="+repoTok)

	wsID := f.add(wsTok, "https://bitbucket.org/ws", "--kind", "workspace")
	r = f.run("", "remove", id)
	require.Equal(t, ExitOK, r.code, r.stderr)
	st, err := os.Lstat(link)
	require.NoError(t, err)
	assert.True(t, st.Mode()&os.ModeSymlink != 0, "the link was replaced by a file")
	data, err := os.ReadFile(real)
	require.NoError(t, err)
	assert.Contains(t, string(data), wsID, "the write went where the link leads")
	assert.NotContains(t, string(data), id)
	st, err = os.Stat(real)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	leftovers, _ := filepath.Glob(filepath.Join(dotfiles, ".tokens-*"))
	assert.Empty(t, leftovers)

	// The directory of the file it leads to counts like the config
	// directory: one others may write is refused.
	require.NoError(t, os.Chmod(dotfiles, 0o777))
	before := f.state()
	r = f.run("", "list")
	assert.Equal(t, ExitError, r.code)
	assertOneLine(t, r.stderr)
	assert.Contains(t, r.stderr, "chmod 700 "+dotfiles)
	assertUnchanged(t, before, f.state())
	require.NoError(t, os.Chmod(dotfiles, 0o700))

	// A link that leads nowhere is reported, not taken for an empty index.
	require.NoError(t, os.Rename(real, real+".moved"))
	r = f.run("", "list")
	assert.Equal(t, ExitError, r.code)
	assertOneLine(t, r.stderr)
	assert.Contains(t, r.stderr, "symbolic link that does not resolve")
	r = f.run(apiTok+"\n", "add", "https://bitbucket.org", "--kind", "api")
	assert.Equal(t, ExitError, r.code)
	_, err = os.Stat(real)
	assert.ErrorIs(t, err, os.ErrNotExist, "a write through a broken link must not create an index")
}

// redactionPasswords are passwords a URL argument may carry, chosen to
// survive each way a message may render them: quoted (%q), JSON, percent
// encoded or decoded, lower-cased with the host.
var redactionPasswords = []string{
	"hunter2-Pw",
	`q"uo\te-Pw`,
	"pct%41ed-Pw",
	"sl/ash@at?q#h-Pw",
	"ümlaut-Pw",
	"ATATT3xFfGF0pastedAsPassword0123456789",
}

// redactionURLs turn a password into URLs that each command refuses, and
// say what must never show: the password, and its decoded form.
func redactionURLs(pw string) []string {
	return []string{
		"https://alice:" + pw + "@bitbucket.org/ws/../x",         // dot segment
		"https://alice:" + pw + "@bitbucket.org/ws/..;/x",        // Tomcat's dot segment
		"https://alice:" + pw + "@bit%bucket.org/ws",             // bad escape in the host
		"https://alice:" + pw + "@bitbucket.org:99999/ws/..",     // bad port
		"alice:" + pw + "@bitbucket.org/ws/../x",                 // no scheme
		"ftp://alice:" + pw + "@bitbucket.org/ws",                // not https
		"http://alice:" + pw + "@bitbucket.org/ws",               // plain http
		"ssh://alice:" + pw + "@bitbucket.org/ws/repo.git",       // ssh
		"https://alice:" + pw + "@",                              // no host
		"https://alice:" + pw + "@bitbucket.org/ws/repo.git.git", // ambiguous repository
	}
}

// leakForms are the renderings of a password that must never show.
func leakForms(pw string) []string {
	forms := []string{pw, strings.ToLower(pw), strings.Trim(fmt.Sprintf("%q", pw), `"`)}
	if d := strings.ReplaceAll(pw, "%41", "A"); d != pw {
		forms = append(forms, d)
	}
	return forms
}

// TestNoPasswordInAnyMessage: a URL argument with a password, malformed in
// each way a command refuses, never shows the password in stdout, stderr
// or the trace, for every command that takes a URL.
func TestNoPasswordInAnyMessage(t *testing.T) {
	t.Parallel()
	commands := []func(u string) (stdin string, args []string){
		func(u string) (string, []string) { return repoTok + "\n", []string{"add", u} },
		func(u string) (string, []string) { return "", []string{"remove", u} },
		func(u string) (string, []string) { return "", []string{"verify", u} },
		func(u string) (string, []string) { return "", []string{"verify", u, "--json"} },
		func(u string) (string, []string) { return "", []string{"setup", "--host", u, "--dry-run"} },
		func(u string) (string, []string) { return "", []string{"setup", "--host=" + u, "--dry-run"} },
		func(u string) (string, []string) {
			return "", []string{"setup", "--host", "https://bb.example.com", "--api-url", u, "--dry-run"}
		},
		func(u string) (string, []string) { return "", []string{"setup", "--detect", "--host", u} },
		func(u string) (string, []string) { return "", []string{"list", u} },
		func(u string) (string, []string) { return "", []string{"doctor", u} },
		func(u string) (string, []string) { return "", []string{"import", "--from", u, "--dry-run"} },
		func(u string) (string, []string) { return "", []string{u} },
	}
	for _, pw := range redactionPasswords {
		t.Run(pw, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.add(repoTok, "https://bitbucket.org/ws/repo")
			trace := filepath.Join(t.TempDir(), "trace")
			for _, mode := range []string{"1", trace} {
				f.getenv["GIT_CREDENTIAL_BBTOKEN_TRACE"] = mode
				for _, u := range redactionURLs(pw) {
					for _, c := range commands {
						stdin, args := c(u)
						r := f.runBounded(stdin, args...)
						assert.NotEqual(t, ExitOK, r.code, "%v: %s", args, r.stderr)
						traced, _ := os.ReadFile(trace)
						for _, leak := range leakForms(pw) {
							for what, s := range map[string]string{"stdout": r.stdout, "stderr": r.stderr, "trace": string(traced)} {
								if strings.Contains(s, leak) {
									t.Errorf("%v: %s shows the password (%q): %q", args, what, leak, s)
								}
							}
						}
					}
				}
			}
		})
	}
}

// TestTokenWithSlashIsNoURL: a base64 token holds '/' and '+'; pasted
// where a URL goes it is refused as a token, not read as a host and a
// path (which would print it, store it as a scope, and write it into git's
// config).
func TestTokenWithSlashIsNoURL(t *testing.T) {
	const tok = "NDM2MjA5NzQ5OTQ4Ok1+YmZ4K3hZ/4Ttq9n6uOHr0pQ9Qp"
	f := newFixture(t)
	before := f.state()
	for _, args := range [][]string{
		{"remove", tok}, {"verify", tok}, {"add", tok, "--kind", "personal", "--username", "alice"},
		{"setup", "--host", tok, "--flavor", "datacenter", "--dry-run"},
		{"remove", "BBDC-Zq8vR2mK9tW4/xN7pL3sJ6hF1dG5bC0yT"},
	} {
		r := f.run(dcTok+"\n", args...)
		assert.Equal(t, ExitUsage, r.code, "%v: %s", args, r.stderr)
		assert.Contains(t, r.stderr, "looks like a token", "%v", args)
		assert.Empty(t, r.stdout)
		assert.NotContains(t, r.stderr, "4Ttq9n6uOHr0pQ9Qp")
	}
	assertUnchanged(t, before, f.state())
	// Characters no host name has are not a host, whatever the path.
	for _, u := range []string{"https://a+b.example.com/scm/P", "https://a=b/x", "https://h~x.example.com"} {
		r := f.run(dcTok+"\n", "add", u, "--kind", "project")
		assert.Equal(t, ExitError, r.code, u)
		assert.Contains(t, r.stderr, "invalid host", u)
	}
}

// TestTokenAsUsernameMasked: a token where a URL's user name goes (the
// copy button of some tools, or a mistake) is masked like a password in
// doctor's text and JSON reports and in import's, however it is encoded.
func TestTokenAsUsernameMasked(t *testing.T) {
	const (
		access = "ATCTT3xFfGF0TokenAsUserName0123456789AbCd"
		api    = "ATATT3xFfGF0ApiTokenAfterName987654321XyZw"
		random = "Zk3vQ9pL2mX7rT4wB8nY6cH1dF5gJ0sA" // no prefix: long and random
	)
	remotes := [][2]string{
		{"access", "https://" + access + "@bitbucket.org/ws/repo.git"},
		{"pair", "https://eve%3A" + api + "@bitbucket.org/ws/repo.git"},
		{"random", "https://" + random + "@bitbucket.org/ws/repo.git"},
		{"both", "https://" + access + ":" + api + "@bitbucket.org/ws/repo.git"},
	}
	leaks := []string{access, api, random, strings.ToLower(access), strings.ToLower(api), strings.ToLower(random)}
	f := newDoctorFixture(t)
	require.Equal(t, ExitOK, f.cmd("", "setup").code)
	f.add(repoTok, "https://bitbucket.org/ws/repo")
	f.initRepo(remotes...)
	for _, args := range [][]string{{"doctor"}, {"doctor", "--json"}} {
		r := f.cmd("", args...)
		for _, leak := range leaks {
			assert.NotContains(t, r.stdout+r.stderr, leak, "%v", args)
		}
		assert.Contains(t, r.stdout, "https://****@bitbucket.org/ws/repo.git", "%v", args)
	}

	// import: the same user names on credential-store lines.
	var lines []string
	for _, rem := range remotes {
		lines = append(lines, strings.Replace(rem[1], "@", ":"+repoTok+"@", 1))
	}
	lines = append(lines, "https://"+access+"@bitbucket.org/ws/other.git")
	file := filepath.Join(t.TempDir(), "credentials")
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	for _, args := range [][]string{{"import", "--from", file, "--dry-run"}, {"import", "--from", file}} {
		r := f.cmd("", args...)
		require.NotEmpty(t, r.stdout)
		for _, leak := range append(leaks, repoTok) {
			assert.NotContains(t, r.stdout+r.stderr, leak, "%v", args)
		}
	}
	// git's store: a token as the user name never goes into the index.
	before := f.state()
	r := f.run("protocol=https\nhost=bitbucket.org\npath=ws/x.git\nusername="+access+"\npassword=pw-typed\n", "store")
	require.Equal(t, ExitOK, r.code)
	after := f.state()
	assert.NotContains(t, string(after.index), access)
	assertUnchanged(t, before, after)
}

// TestChecksOnlyForTokens: a salted check lets anyone who reads the index
// test guesses offline, so only values that are tokens get one, whatever
// stored them (add, import, git's store).
func TestChecksOnlyForTokens(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, os.Chmod(f.dir, 0o700))
	dcPassword := "hunter2"
	file := filepath.Join(t.TempDir(), "credentials")
	require.NoError(t, os.WriteFile(file, []byte(
		"https://alice:"+dcPassword+"@bb.example.com\n"+
			"https://carol:Tr0ub4dor%263-long-but-chosen-by-a-person@bb.example.com/scm/P/r.git\n"+
			"https://dave:"+dcTok+"@bb.example.com/scm/Q\n"), 0o600))
	f.add(dcTok, "https://bb.example.com/scm/PROJ", "--kind", "project")
	r := f.run("", "import", "--from", file)
	require.Equal(t, ExitOK, r.code, "%s%s", r.stdout, r.stderr)
	// A personal token that is a password a person typed at add.
	r = f.run("correct-horse-battery-staple-correct-horse\n", "add", "https://bb.example.com", "--kind", "personal", "--username", "erin")
	require.Equal(t, ExitOK, r.code, r.stderr)
	f.run("protocol=https\nhost=bb.example.com\npath=scm/Z/r.git\nusername=frank\npassword="+typedPw+"\n", "store")

	checked := map[string]bool{}
	for _, e := range f.index().Entries {
		secret, _, err := f.secrets.Get(t.Context(), e.ID, "", nil)
		require.NoError(t, err)
		checked[e.Username+" "+secret] = e.Check != ""
	}
	assert.Equal(t, map[string]bool{
		" " + dcTok:     true, // the project token added
		"alice hunter2": false,
		"carol Tr0ub4dor&3-long-but-chosen-by-a-person": false,
		"dave " + dcTok: true,
		"erin correct-horse-battery-staple-correct-horse": false,
		"frank " + typedPw: false,
	}, checked)
}

// TestReadableIndexWithChecks: an index others can read is refused, like
// one they can write, as long as it holds checks (an older version gave
// passwords some); doctor reports it and --fix makes it private.
func TestReadableIndexWithChecks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes")
	}
	f := newDoctorFixture(t)
	f.add(repoTok, "https://bitbucket.org/ws/repo")
	path := filepath.Join(f.dir, store.IndexFile)
	require.NoError(t, os.Chmod(path, 0o644))
	before := f.state()
	for _, c := range []struct{ stdin, cmd string }{
		{"protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n", "get"},
		{"", "list"},
	} {
		r := f.run(c.stdin, c.cmd)
		assert.Equal(t, ExitError, r.code, c.cmd)
		assert.Empty(t, r.stdout, c.cmd)
		assertOneLine(t, r.stderr)
		assert.Contains(t, r.stderr, "chmod 600 "+path, c.cmd)
	}
	assertUnchanged(t, before, f.state())

	r, lines := f.doctor()
	assert.Equal(t, ExitError, r.code)
	finding(t, lines, doctor.Action, `readable by other users while it holds token checks`)
	r, lines = f.doctor("--fix")
	finding(t, lines, doctor.OK, `tokens.json: mode 0600`)
	assert.Contains(t, r.stdout, "made "+path+" private")
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	// Keys spelt otherwise (JSON keys match without case) are checks too,
	// on get's fast path as on the full read.
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(string(data), `"check":`, `"Check":`)), 0o600))
	require.NoError(t, os.Chmod(path, 0o644))
	r = f.run("protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n", "get")
	assert.Equal(t, ExitError, r.code)
	assert.Contains(t, r.stderr, "chmod 600 "+path)
	require.NoError(t, os.Chmod(path, 0o600))

	// Without checks, other users see which tokens exist: a warning.
	f2 := newFixture(t)
	require.Equal(t, ExitOK, f2.run("", "config", "expiry-warnings", "off").code)
	require.NoError(t, os.Chmod(filepath.Join(f2.dir, store.IndexFile), 0o644))
	assert.Equal(t, ExitOK, f2.run("", "list").code)
}

// TestRepairDropsChecksOfPasswords: an index an older version wrote with
// a check of a password (import of https://alice:hunter2@host) loses that
// check at repair; a token's check stays.
func TestRepairDropsChecksOfPasswords(t *testing.T) {
	f := newFixture(t)
	tokID := f.add(dcTok, "https://bb.example.com/scm/PROJ", "--kind", "project")
	pwID := f.add("hunter2", "https://bb.example.com", "--kind", "personal", "--username", "alice")
	check, err := checkOfAnything("hunter2")
	require.NoError(t, err)
	st := &store.Store{Dir: f.dir, Secrets: f.secrets}
	require.NoError(t, st.Update(t.Context(), func(tx *store.Tx) error {
		e, _ := tx.Index.Find(pwID)
		e.Check = check
		tx.Changed()
		return nil
	}))
	r := f.run("", "repair", "--dry-run")
	assert.Equal(t, ExitError, r.code)
	assert.Contains(t, r.stdout, "would drop the check an older version kept of 1 value(s) that are not tokens ("+pwID+")")
	assert.NotEmpty(t, f.entry(pwID).Check, "a dry run changes nothing")
	r = f.run("", "repair")
	require.Equal(t, ExitOK, r.code, r.stdout)
	assert.Empty(t, f.entry(pwID).Check)
	assert.NotEmpty(t, f.entry(tokID).Check)
	r = f.run("", "repair")
	require.Equal(t, ExitOK, r.code, r.stdout)
	assert.NotContains(t, r.stdout, "check")
}

// TestDotSegmentsGetNoScopedToken: Tomcat reads "..;x" as ".." (and ".;"
// as "."), so a request with such a segment is served no scoped token:
// only a host-wide one may answer.
func TestDotSegmentsGetNoScopedToken(t *testing.T) {
	f := newFixture(t)
	f.add(repoTok, "https://bitbucket.org/ws/repo")
	f.add(wsTok, "https://bitbucket.org/ws", "--kind", "workspace")
	f.add(dcTok, "https://bb.example.com/scm/PROJ", "--kind", "project")
	paths := []struct{ host, path string }{
		{"bitbucket.org", "ws/repo.git/..;/..;/ws2/x.git"},
		{"bitbucket.org", "ws/repo.git/..;jsessionid=1/..;/ws2/x.git"},
		{"bitbucket.org", "ws/repo/.;/x.git"},
		{"bitbucket.org", "ws/;x/repo.git"},
		{"bitbucket.org", "ws/..;x=y/ws/repo.git"},
		{"bitbucket.org", "ws/repo/..;;/x"},
		{"bb.example.com", "scm/PROJ/..;/OTHER/repo.git"},
		{"bb.example.com", "scm/PROJ/..;param/OTHER/repo.git"},
		{"bb.example.com", "scm/PROJ/.;/repo.git"},
	}
	for _, p := range paths {
		r := f.run("capability[]=authtype\nprotocol=https\nhost="+p.host+"\npath="+p.path+"\n", "get")
		assert.Equal(t, result{ExitOK, "", ""}, r, "%s/%s", p.host, p.path)
	}
	// add refuses such a URL rather than store an ambiguous scope.
	for _, u := range []string{"https://bitbucket.org/ws/..;/x", "https://bitbucket.org/ws/.;x/repo", "https://bb.example.com/scm/..;/P"} {
		r := f.run(repoTok+"\n", "add", u, "--kind", "repository")
		assert.Equal(t, ExitError, r.code, u)
	}
	// A ';' that is not a dot segment keeps the scope narrower, never wider.
	r := f.run("capability[]=authtype\nprotocol=https\nhost=bb.example.com\npath=scm/PROJ/repo.git;x\n", "get")
	assert.Contains(t, r.stdout, "credential="+dcTok)
}

// TestDuplicateIDsAreDamage: two entries sharing an id would serve one
// scope's token for the other and lose a secret on remove; the index is
// reported damaged (with its path) and never rewritten, by every command.
func TestDuplicateIDsAreDamage(t *testing.T) {
	f := newFixture(t)
	id := f.add(repoTok, "https://bitbucket.org/ws/repo")
	f.add(wsTok, "https://bitbucket.org/other", "--kind", "workspace")
	path := filepath.Join(f.dir, store.IndexFile)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		if strings.Contains(l, `"url":"https://bitbucket.org/other"`) {
			lines[i] = `{"id":"` + id + l[strings.Index(l, `","url"`):]
		}
	}
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600))
	before := f.state()
	for _, c := range []struct{ stdin, args string }{
		{"protocol=https\nhost=bitbucket.org\npath=other/x.git\n", "get"},
		{"protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n", "get"},
		{"", "list"},
		{"", "remove " + id},
		{"", "remove https://bitbucket.org/other"},
		{"protocol=https\nhost=bitbucket.org\npath=ws/new.git\nusername=u\npassword=" + typedPw + "\n", "store"},
		{"", "repair"},
	} {
		r := f.run(c.stdin, strings.Fields(c.args)...)
		assert.Equal(t, ExitError, r.code, c.args)
		assert.Empty(t, r.stdout, c.args)
		assertOneLine(t, r.stderr)
		assert.Contains(t, r.stderr, path, c.args)
		assert.Contains(t, r.stderr, "share the id "+id, c.args)
	}
	assertUnchanged(t, before, f.state())
}

// TestExpiryBeyondTheIndex: git passes any unix time as
// password_expiry_utc; one past year 9999 (which RFC 3339 cannot write)
// is recorded as the latest the index can, so the credential still works
// and replaces the old one as git meant.
func TestExpiryBeyondTheIndex(t *testing.T) {
	for _, expiry := range []string{"253402300800", "9999999999999", "9223372036854775807"} {
		t.Run(expiry, func(t *testing.T) {
			f := newFixture(t)
			base := "protocol=https\nhost=bitbucket.org\npath=ws/sso.git\nusername=bob\n"
			require.Equal(t, ExitOK, f.run(base+"password=first-"+typedPw+"\n", "store").code)
			r := f.run(base+"password="+typedPw+"\npassword_expiry_utc="+expiry+"\n", "store")
			require.Equal(t, ExitOK, r.code, r.stderr)
			r = f.run(base, "get")
			require.Equal(t, ExitOK, r.code, r.stderr)
			assert.Contains(t, r.stdout, "password="+typedPw+"\n")
			assert.Contains(t, r.stdout, fmt.Sprintf("password_expiry_utc=%d\n", store.MaxExpiry.Unix()))
			// The same again is no change.
			before := f.state()
			require.Equal(t, ExitOK, f.run(base+"password="+typedPw+"\npassword_expiry_utc="+expiry+"\n", "store").code)
			assertUnchanged(t, before, f.state())
			assert.Equal(t, "active", listState(t, f))
		})
	}
}

func listState(t *testing.T, f *fixture) string {
	t.Helper()
	r := f.run("", "list", "--json")
	require.Equal(t, ExitOK, r.code)
	i := strings.Index(r.stdout, `"state": "`)
	require.GreaterOrEqual(t, i, 0, r.stdout)
	rest := r.stdout[i+len(`"state": "`):]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestAddReplacesOnlyItsOwnSlot: a token's identity is its scope, kind and
// user name; adding bob's personal token leaves alice's alone, and the
// same for API tokens with another --username.
func TestAddReplacesOnlyItsOwnSlot(t *testing.T) {
	f := newFixture(t)
	alice := f.add(dcTok, "https://bb.example.com", "--kind", "personal", "--username", "alice")
	bob := f.add("BBDC-bobsPersonalTokenValue0123456789", "https://bb.example.com", "--kind", "personal", "--username", "bob")
	apiAlice := f.add(apiTok, "https://bitbucket.org", "--kind", "api", "--username", "alice")
	apiStatic := f.add("ATATT3xFfGF0staticUserToken012345678901", "https://bitbucket.org", "--kind", "api")
	apiBuild := f.add("ATATT3xFfGF0buildAccountToken0123456789", "https://bitbucket.org", "--kind", "api", "--username", "build")
	ids := func() []string {
		var out []string
		for _, e := range f.index().Entries {
			out = append(out, e.ID)
		}
		return out
	}
	assert.ElementsMatch(t, []string{alice, bob, apiAlice, apiBuild, apiStatic}, ids())

	// Each user's own add replaces that user's token only (Cloud user
	// names compare without case, Data Center ones exactly).
	alice2 := f.add("BBDC-alicesNewPersonalToken0123456789", "https://bb.example.com", "--kind", "personal", "--username", "alice")
	apiAlice2 := f.add("ATATT3xFfGF0aliceNewApiToken0123456789", "https://bitbucket.org", "--kind", "api", "--username", "Alice")
	assert.ElementsMatch(t, []string{alice2, bob, apiAlice2, apiBuild, apiStatic}, ids())
	r := f.run("protocol=https\nhost=bb.example.com\nusername=bob\n", "get")
	assert.Contains(t, r.stdout, "password=BBDC-bobsPersonalTokenValue0123456789")
	// The token recorded for the user git names goes before the one
	// whose wire user name is fixed, whichever was added last.
	r = f.run("protocol=https\nhost=bitbucket.org\nusername=build\n", "get")
	assert.Contains(t, r.stdout, "password=ATATT3xFfGF0buildAccountToken0123456789")
	f.now = f.now.Add(time.Hour)
	f.add("ATATT3xFfGF0staticUserTokenNewer0123456", "https://bitbucket.org", "--kind", "api")
	r = f.run("protocol=https\nhost=bitbucket.org\nusername=build\n", "get")
	assert.Contains(t, r.stdout, "password=ATATT3xFfGF0buildAccountToken0123456789")
	// Another case on Data Center is another user.
	f.add("BBDC-upperCaseAliceToken0123456789abc", "https://bb.example.com", "--kind", "personal", "--username", "ALICE")
	assert.Len(t, ids(), 6)
}

// TestOrdinaryNamesAreNames: user names that look random to a heuristic
// are still user names: add takes them and git's store keeps them (only
// a name with a Bitbucket token's prefix is refused).
func TestOrdinaryNamesAreNames(t *testing.T) {
	for _, name := range []string{"Christopher.Johnson1990", "svc-Jenkins-Build-Agent01", "JohnSmith_DevOps2024", "CI-Bot-ProjectAlpha-2024"} {
		f := newFixture(t)
		f.add(dcTok, "https://bb.example.com", "--kind", "personal", "--username", name)
		r := f.run("protocol=https\nhost=bb.example.com\npath=scm/P/r.git\nusername="+name+"\npassword="+typedPw+"\n", "store")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Len(t, f.index().Entries, 2, name)
	}
	f := newFixture(t)
	r := f.run(dcTok+"\n", "add", "https://bb.example.com", "--kind", "personal", "--username", "ATCTT3xFfGF0pastedAsTheName01")
	assert.Equal(t, ExitError, r.code)
	assert.Contains(t, r.stderr, "looks like a token")
}

// TestImportSlotsIncludeTheUser: three users' personal tokens for one host
// on three lines of a credential-store file are three imports, not one.
func TestImportSlotsIncludeTheUser(t *testing.T) {
	f := newFixture(t)
	f.add(dcTok, "https://bb.example.com/scm/PROJ", "--kind", "project")
	file := filepath.Join(t.TempDir(), "credentials")
	var lines []string
	for i, u := range []string{"alice", "bob", "carol"} {
		lines = append(lines, fmt.Sprintf("https://%s:BBDC-Zq8vR2mK9tW4xN7pL3sJ6hF1dG5bC0yT%02d@bb.example.com", u, i))
	}
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	r := f.run("", "import", "--from", file)
	require.Equal(t, ExitOK, r.code, "%s%s", r.stdout, r.stderr)
	assert.Len(t, f.index().Entries, 4)
}

// TestImportComparesSchemesInASCII: "httpſ" (U+017F, which Unicode folds
// to 's') is not https, and "HTTPS" is.
func TestImportComparesSchemesInASCII(t *testing.T) {
	f := newFixture(t)
	file := filepath.Join(t.TempDir(), "credentials")
	require.NoError(t, os.WriteFile(file, []byte(
		"httpſ://x-token-auth:"+repoTok+"@bitbucket.org/ws/repo.git\n"+
			"HTTPſ://x-token-auth:"+repoTok+"@bitbucket.org/ws/repo2.git\n"+
			"HTTPS://x-token-auth:"+wsTok+"@bitbucket.org/ws/repo3.git\n"), 0o600))
	r := f.run("", "import", "--from", file)
	require.Equal(t, ExitOK, r.code, "%s%s", r.stdout, r.stderr)
	var urls []string
	for _, e := range f.index().Entries {
		urls = append(urls, e.URL)
	}
	assert.Equal(t, []string{"https://bitbucket.org/ws/repo3"}, urls)
}

// checkOfAnything makes a check the way an older version did, of any
// value (NewCheck now refuses passwords): "v1:SALT:MAC".
func checkOfAnything(raw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(raw))
	b64 := base64.RawStdEncoding
	return "v1:" + b64.EncodeToString(salt) + ":" + b64.EncodeToString(m.Sum(nil)[:16]), nil
}
