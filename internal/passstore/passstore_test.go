package passstore_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/passstore"
	"github.com/bbtoken/git-credential-bbtoken/internal/passstore/passtest"
)

const secret = "BBTOKEN-SECRET-c0ffee-42"

type fixture struct {
	home, fpr, dir string
	s              *passstore.Store
}

// newStore is a pass store initialised for a new key, a git repository
// when withGit.
func newStore(t *testing.T, withGit bool) fixture {
	t.Helper()
	home, fpr := passtest.GPGHome(t, "Alice")
	dir := filepath.Join(t.TempDir(), "store")
	passtest.Init(t, dir, home, withGit, fpr)
	return fixture{home, fpr, dir, storeFor(dir, home)}
}

func storeFor(dir, home string) *passstore.Store {
	return &passstore.Store{Dir: dir, Env: passtest.Env(home, dir)}
}

func (f fixture) git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", f.dir}, args...)...)
	cmd.Env = passtest.Env(f.home, f.dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "git %v: %s", args, out)
	return strings.TrimSpace(string(out))
}

func (f fixture) commits(t *testing.T) int {
	var n int
	fmt.Sscan(f.git(t, "rev-list", "--count", "HEAD"), &n)
	return n
}

// checkErr: err is one line and does not give the secret away.
func checkErr(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.NotContains(t, err.Error(), secret)
	require.NotContains(t, err.Error(), "\n")
}

func body(t *testing.T, fields ...string) string {
	b := passstore.Body{Secret: secret}
	for i := 0; i < len(fields); i += 2 {
		b.Fields = append(b.Fields, passstore.Field{Key: fields[i], Value: fields[i+1]})
	}
	text, err := passstore.FormatBody(b)
	require.NoError(t, err)
	return text
}

// Write, then the real pass shows the same entry.
func TestWriteThenPassShow(t *testing.T) {
	t.Parallel()
	f := newStore(t, false)
	ctx := context.Background()
	text := body(t, "username", "alice", "expires", "2030-01-01")
	stamp, err := f.s.Write(ctx, "bitbucket.org/ws/repo", text, "")
	require.NoError(t, err)

	out := passtest.Pass(t, passtest.Env(f.home, f.dir), "", "show", passstore.Folder+"/bitbucket.org/ws/repo")
	require.Equal(t, secret+"\nusername: alice\nexpires: 2030-01-01\n", out)

	got, stamp2, err := f.s.Read(ctx, "bitbucket.org/ws/repo")
	require.NoError(t, err)
	require.Equal(t, text, got)
	require.Equal(t, stamp, stamp2)
	stamp3, err := f.s.Stamp("bitbucket.org/ws/repo")
	require.NoError(t, err)
	require.Equal(t, stamp, stamp3)

	stamp4, err := f.s.Write(ctx, "bitbucket.org/ws/repo", text, "")
	require.NoError(t, err)
	require.NotEqual(t, stamp, stamp4, "a new ciphertext has a new stamp")
}

// What `pass insert -m` stored, Read returns.
func TestPassInsertThenRead(t *testing.T) {
	t.Parallel()
	f := newStore(t, false)
	passtest.Pass(t, passtest.Env(f.home, f.dir), secret+"\r\nUserName : alice \nnote without colon\n",
		"insert", "-m", passstore.Folder+"/alice@bb.example.com/PROJ")
	text, stamp, err := f.s.Read(context.Background(), "alice@bb.example.com/PROJ")
	require.NoError(t, err)
	b := passstore.ParseBody(text)
	require.Equal(t, secret, b.Secret)
	user, ok := b.Get("Username")
	require.True(t, ok)
	require.Equal(t, "alice", user)
	require.Equal(t, []passstore.Field{{Key: "username", Value: "alice"}, {Value: "note without colon"}}, b.Fields)
	s2, err := f.s.Stamp("alice@bb.example.com/PROJ")
	require.NoError(t, err)
	require.Equal(t, stamp, s2)
}

// Two teammates: whatever way .gpg-id names both keys, either can read
// what either wrote.
func TestTwoRecipients(t *testing.T) {
	t.Parallel()
	homeA, fprA := passtest.GPGHome(t, "Alice")
	homeB, fprB := passtest.GPGHome(t, "Bob")
	passtest.ShareKey(t, homeA, homeB, fprA)
	passtest.ShareKey(t, homeB, homeA, fprB)
	for _, home := range []string{homeA, homeB} { // a gpg group, as .gpg-id may name one
		require.NoError(t, os.WriteFile(filepath.Join(home, "gpg.conf"), []byte("group team = "+fprA+" "+fprB+"\n"), 0o600))
	}
	for _, tc := range []struct{ name, gpgID string }{
		{"fingerprints", fprA + "\n" + fprB + "\n"},
		{"comments and blank lines", "# the team\n\n" + fprA + " # alice\n  " + fprB + "\n# end"},
		{"gpg group", "team\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			passtest.Init(t, dir, homeA, false, fprA, fprB)
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".gpg-id"), []byte(tc.gpgID), 0o600))
			a, b := storeFor(dir, homeA), storeFor(dir, homeB)
			ctx := context.Background()
			_, err := a.Write(ctx, "from-a", secret+"a\n", "")
			require.NoError(t, err)
			_, err = b.Write(ctx, "from-b", secret+"b\n", "")
			require.NoError(t, err)
			for _, s := range []*passstore.Store{a, b} {
				for _, name := range []string{"from-a", "from-b"} {
					got, _, err := s.Read(ctx, name)
					require.NoError(t, err)
					require.Equal(t, secret+name[len(name)-1:]+"\n", got)
				}
			}
		})
	}
}

// A .gpg-id in a subdirectory of Folder decides for the entries below it.
func TestNearestGPGID(t *testing.T) {
	t.Parallel()
	homeA, fprA := passtest.GPGHome(t, "Alice")
	homeB, fprB := passtest.GPGHome(t, "Bob")
	passtest.ShareKey(t, homeB, homeA, fprB)
	dir := filepath.Join(t.TempDir(), "store")
	passtest.Init(t, dir, homeA, false, fprA)
	passtest.Pass(t, passtest.Env(homeA, dir), "", "init", "-p", passstore.Folder+"/team", fprB)
	a, b := storeFor(dir, homeA), storeFor(dir, homeB)
	ctx := context.Background()
	for _, name := range []string{"solo", "team/x", "team/sub/y"} {
		_, err := a.Write(ctx, name, secret+"\n", "")
		require.NoError(t, err)
	}
	for _, tc := range []struct {
		s      *passstore.Store
		name   string
		reader bool
	}{
		{a, "solo", true}, {b, "solo", false},
		{a, "team/x", false}, {b, "team/x", true},
		{a, "team/sub/y", false}, {b, "team/sub/y", true},
	} {
		got, _, err := tc.s.Read(ctx, tc.name)
		if tc.reader {
			require.NoError(t, err, tc.name)
			require.Equal(t, secret+"\n", got)
		} else {
			require.ErrorIs(t, err, passstore.ErrNotRecipient, tc.name)
			checkErr(t, err)
		}
	}
}

// Write and Remove each make one commit in pass's words and leave the
// work tree clean; pass.signcommits signs them.
func TestGitCommits(t *testing.T) {
	t.Parallel()
	f := newStore(t, true)
	ctx := context.Background()
	steps := []struct {
		do  func() error
		msg string
	}{
		{func() error { _, err := f.s.Write(ctx, "bitbucket.org/ws/repo", secret, ""); return err },
			"Add given password for git-credential-bbtoken/bitbucket.org/ws/repo to store."},
		{func() error { _, err := f.s.Write(ctx, "bitbucket.org/ws/repo", secret, "Update it."); return err },
			"Update it."},
		{func() error { _, err := f.s.Write(ctx, "bitbucket.org/other", secret, ""); return err },
			"Add given password for git-credential-bbtoken/bitbucket.org/other to store."},
		{func() error { return f.s.Remove(ctx, "bitbucket.org/ws/repo", "") },
			"Remove git-credential-bbtoken/bitbucket.org/ws/repo from store."},
	}
	for _, step := range steps {
		before := f.commits(t)
		require.NoError(t, step.do())
		require.Equal(t, before+1, f.commits(t), step.msg)
		require.Equal(t, step.msg, f.git(t, "log", "-1", "--format=%s"))
		require.Empty(t, f.git(t, "status", "--porcelain"))
	}
	require.NoDirExists(t, filepath.Join(f.dir, passstore.Folder, "bitbucket.org", "ws"))
	require.DirExists(t, filepath.Join(f.dir, passstore.Folder, "bitbucket.org"))

	f.git(t, "config", "pass.signcommits", "true")
	f.git(t, "config", "user.signingkey", f.fpr)
	_, err := f.s.Write(ctx, "signed", secret, "")
	require.NoError(t, err)
	require.Contains(t, f.git(t, "cat-file", "commit", "HEAD"), "-----BEGIN PGP SIGNATURE-----")

	// Not a git store: nothing to commit, no error.
	g := newStore(t, false)
	_, err = g.s.Write(ctx, "x", secret, "")
	require.NoError(t, err)
	require.NoError(t, g.s.Remove(ctx, "x", ""))
}

// Writes from 8 goroutines all land, each in a commit of its own.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	f := newStore(t, true)
	ctx := context.Background()
	before := f.commits(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.s.Write(ctx, fmt.Sprintf("host/ws/repo%d", i), fmt.Sprintf("%s%d\n", secret, i), "")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err)
		got, _, err := f.s.Read(ctx, fmt.Sprintf("host/ws/repo%d", i))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("%s%d\n", secret, i), got)
	}
	require.Equal(t, before+8, f.commits(t))
	require.Empty(t, f.git(t, "status", "--porcelain"))
}

// Another process's git holding index.lock for a moment is waited for.
func TestIndexLockRetried(t *testing.T) {
	t.Parallel()
	f := newStore(t, true)
	lock := filepath.Join(f.dir, ".git", "index.lock")
	require.NoError(t, os.WriteFile(lock, nil, 0o600))
	time.AfterFunc(300*time.Millisecond, func() { os.Remove(lock) })
	before := f.commits(t)
	_, err := f.s.Write(context.Background(), "x", secret, "")
	require.NoError(t, err)
	require.Equal(t, before+1, f.commits(t))
}

// A failed commit still stores the entry: the stamp comes back with ErrCommit.
func TestCommitFails(t *testing.T) {
	t.Parallel()
	f := newStore(t, true)
	hook := filepath.Join(f.dir, ".git", "hooks", "pre-commit")
	require.NoError(t, os.MkdirAll(filepath.Dir(hook), 0o700))
	require.NoError(t, os.WriteFile(hook, []byte("#!/bin/sh\necho 'hook says no' >&2\nexit 1\n"), 0o700))
	ctx := context.Background()
	stamp, err := f.s.Write(ctx, "x", secret, "")
	require.ErrorIs(t, err, passstore.ErrCommit)
	require.Contains(t, err.Error(), "hook says no")
	checkErr(t, err)
	require.NotEmpty(t, stamp)
	got, stamp2, err := f.s.Read(ctx, "x")
	require.NoError(t, err)
	require.Equal(t, secret, got)
	require.Equal(t, stamp, stamp2)
}

// A key whose passphrase no agent holds: ErrNeedPassphrase, not a hang.
func TestLockedKey(t *testing.T) {
	t.Parallel()
	home, fpr := passtest.GPGHomeLocked(t, "Locked")
	dir := filepath.Join(t.TempDir(), "store")
	passtest.Init(t, dir, home, false, fpr)
	s := storeFor(dir, home)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := s.Write(ctx, "x", secret, "") // encrypting needs no passphrase
	require.NoError(t, err)
	_, _, err = s.Read(ctx, "x")
	require.ErrorIs(t, err, passstore.ErrNeedPassphrase)
	require.Contains(t, err.Error(), fpr)
	checkErr(t, err)
	require.NoError(t, s.Usable(ctx), "writing needs no passphrase")
}

// Names lists regular .gpg files only, never follows a link, and says what it skipped.
func TestNames(t *testing.T) {
	t.Parallel()
	f := newStore(t, false)
	s := f.s
	names, err := s.Names(nil)
	require.NoError(t, err)
	require.Empty(t, names, "no Folder yet")

	ctx := context.Background()
	for _, name := range []string{"b.org/ws/r2", "a.org/r1", "bb.example.com/PROJ"} {
		_, err := s.Write(ctx, name, secret, "")
		require.NoError(t, err)
	}
	folder := filepath.Join(f.dir, passstore.Folder)
	outside := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(outside, "z.gpg"), nil, 0o600))
	mk := func(rel string) string {
		p := filepath.Join(folder, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		return p
	}
	require.NoError(t, exec.Command("mkfifo", mk("fifo.gpg")).Run())
	require.NoError(t, os.Symlink(filepath.Join(folder, "a.org", "r1.gpg"), mk("link.gpg")))
	require.NoError(t, os.Symlink(outside, mk("linkdir")))
	require.NoError(t, os.WriteFile(mk("notes.txt"), nil, 0o600))
	require.NoError(t, os.WriteFile(mk(".git/x.gpg"), nil, 0o600))
	require.NoError(t, os.WriteFile(mk("bad\x01name.gpg"), nil, 0o600))
	require.NoError(t, os.WriteFile(mk("a.org/.r1.123.tmp"), []byte("half"), 0o600))
	require.NoError(t, os.WriteFile(mk(".gpg-id"), []byte(f.fpr+"\n"), 0o600))

	skipped := map[string]string{}
	names, err = s.Names(func(p, why string) {
		rel, _ := filepath.Rel(folder, p)
		skipped[rel] = why
	})
	require.NoError(t, err)
	require.Equal(t, []string{"a.org/r1", "b.org/ws/r2", "bb.example.com/PROJ"}, names)
	require.Contains(t, skipped["bad\x01name.gpg"], "control character")
	require.Equal(t, map[string]string{
		"fifo.gpg":  "not a regular file",
		"link.gpg":  "symbolic link (not followed)",
		"linkdir":   "symbolic link (not followed)",
		"notes.txt": "not a .gpg file",
		".git":      "hidden directory",
	}, without(skipped, "bad\x01name.gpg"))

	// The FIFO is refused, not waited on.
	done := make(chan error, 2)
	go func() { _, err := s.Stamp("fifo"); done <- err }()
	go func() { _, _, err := s.Read(ctx, "fifo"); done <- err }()
	for range 2 {
		select {
		case err := <-done:
			require.ErrorContains(t, err, "not a regular file")
			require.NotErrorIs(t, err, passstore.ErrNotFound)
		case <-time.After(5 * time.Second):
			t.Fatal("reading a FIFO blocked")
		}
	}
	_, err = s.Stamp("link")
	require.ErrorContains(t, err, "not a regular file")
}

func without(m map[string]string, key string) map[string]string {
	delete(m, key)
	return m
}

func TestBadNames(t *testing.T) {
	t.Parallel()
	f := newStore(t, false)
	ctx := context.Background()
	for _, name := range []string{"", "/x", "a/../b", "a//b", "a/./b", "x\n", "..", ".", "a/", "x\x00y", "\x00",
		"a\\..\\b", ".hidden", "a/.git/x", "tab\there", "bad\xffutf8", "x\x7f"} {
		_, err := f.s.Write(ctx, name, secret, "")
		require.ErrorIs(t, err, passstore.ErrBadName, "%q", name)
		checkErr(t, err)
		_, _, err = f.s.Read(ctx, name)
		require.ErrorIs(t, err, passstore.ErrBadName, "%q", name)
		_, err = f.s.Stamp(name)
		require.ErrorIs(t, err, passstore.ErrBadName, "%q", name)
		require.ErrorIs(t, f.s.Remove(ctx, name, ""), passstore.ErrBadName, "%q", name)
	}
	entries, err := os.ReadDir(f.dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only .gpg-id: nothing was written")
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	f := newStore(t, false)
	ctx := context.Background()
	_, err := f.s.Write(ctx, "file", secret, "")
	require.NoError(t, err)
	for _, name := range []string{"missing", "a/b/c", "file/below"} {
		_, _, err := f.s.Read(ctx, name)
		require.ErrorIs(t, err, passstore.ErrNotFound, name)
		_, err = f.s.Stamp(name)
		require.ErrorIs(t, err, passstore.ErrNotFound, name)
		require.ErrorIs(t, f.s.Remove(ctx, name, ""), passstore.ErrNotFound, name)
	}
}

// PASSWORD_STORE_SIGNING_KEY: only a .gpg-id signed by one of those keys is encrypted to.
func TestSigningKey(t *testing.T) {
	t.Parallel()
	home, fpr := passtest.GPGHome(t, "Alice")
	otherHome, other := passtest.GPGHome(t, "Mallory")
	passtest.ShareKey(t, otherHome, home, other)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		ok    bool
	}{
		{"signed by pass init", func(t *testing.T, dir string) {}, true},
		{"no signature", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, ".gpg-id.sig")))
		}, false},
		{"garbage signature", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".gpg-id.sig"), []byte("junk"), 0o600))
		}, false},
		{".gpg-id changed after signing", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, ".gpg-id"), []byte(fpr+"\n"+other+"\n"), 0o600))
		}, false},
		{"signed by another key", func(t *testing.T, dir string) {
			id := filepath.Join(dir, ".gpg-id")
			out, err := exec.Command("gpg", "--homedir", otherHome, "--batch", "--yes", "--detach-sign", "-o", id+".sig", id).CombinedOutput()
			require.NoError(t, err, "%s", out)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			env := append(passtest.Env(home, dir), "PASSWORD_STORE_SIGNING_KEY="+fpr)
			passtest.Pass(t, env, "", "init", fpr)
			tc.setup(t, dir)
			s := storeFor(dir, home)
			s.SigningKeys = []string{"not-a-fingerprint", fpr}
			_, err := s.Write(ctx, "x", secret, "")
			if tc.ok {
				require.NoError(t, err)
				require.NoError(t, s.Usable(ctx))
				require.Equal(t, secret, passtest.Pass(t, env, "", "show", passstore.Folder+"/x"))
				return
			}
			require.ErrorIs(t, err, passstore.ErrUntrustedRecipients)
			checkErr(t, err)
			require.ErrorIs(t, s.Usable(ctx), passstore.ErrUntrustedRecipients)
			require.NoFileExists(t, filepath.Join(dir, passstore.Folder, "x.gpg"))
		})
	}
}

// The secret never shows in an error, whatever fails.
func TestNoSecretInErrors(t *testing.T) {
	t.Parallel()
	f := newStore(t, false)
	ctx := context.Background()
	_, err := f.s.Write(ctx, "x", secret, "")
	require.NoError(t, err)

	otherHome, _ := passtest.GPGHome(t, "Bob")
	untrustedHome, untrusted := passtest.GPGHome(t, "Eve")
	pub, err := exec.Command("gpg", "--homedir", untrustedHome, "--export", untrusted).Output()
	require.NoError(t, err)
	imp := exec.Command("gpg", "--homedir", f.home, "--batch", "--import")
	imp.Stdin = strings.NewReader(string(pub))
	require.NoError(t, imp.Run())

	sub := filepath.Join(f.dir, passstore.Folder)
	setID := func(dir, content string) {
		require.NoError(t, os.MkdirAll(filepath.Join(sub, dir), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(sub, dir, ".gpg-id"), []byte(content), 0o600))
	}
	setID("missing", "0123456789ABCDEF0123456789ABCDEF01234567\n")
	setID("untrusted", untrusted+"\n")
	setID("empty", "# nobody\n")

	script := filepath.Join(t.TempDir(), "slowgpg")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nsleep 30\n"), 0o700))
	slow := storeFor(f.dir, f.home)
	slow.GPG, slow.Timeout = script, 300*time.Millisecond

	cases := []struct {
		name string
		err  func() error
		is   error
		says string
	}{
		{"not a recipient", func() error { _, _, err := storeFor(f.dir, otherHome).Read(ctx, "x"); return err }, passstore.ErrNotRecipient, "none of which"},
		{"key not in keyring", func() error { _, err := f.s.Write(ctx, "missing/y", secret, ""); return err }, nil, "not in this machine's gpg keyring"},
		{"key not trusted", func() error { _, err := f.s.Write(ctx, "untrusted/y", secret, ""); return err }, nil, "not trusted"},
		{"no keys", func() error { _, err := f.s.Write(ctx, "empty/y", secret, ""); return err }, passstore.ErrNoStore, "names no gpg key"},
		{"gpg times out", func() error { _, err := slow.Write(ctx, "x", secret, ""); return err }, context.DeadlineExceeded, "did not finish within"},
		{"gpg missing", func() error {
			s := storeFor(f.dir, f.home)
			s.GPG = filepath.Join(t.TempDir(), "nogpg")
			_, err := s.Write(ctx, "x", secret, "")
			return err
		}, passstore.ErrNoGPG, "gpg cannot be run"},
		{"corrupt entry", func() error {
			require.NoError(t, os.WriteFile(filepath.Join(sub, "corrupt.gpg"), []byte(secret), 0o600))
			_, _, err := f.s.Read(ctx, "corrupt")
			return err
		}, nil, "not gpg-encrypted data"},
	}
	for _, tc := range cases {
		start := time.Now()
		err := tc.err()
		checkErr(t, err)
		require.ErrorContains(t, err, tc.says, tc.name)
		if tc.is != nil {
			require.ErrorIs(t, err, tc.is, tc.name)
		}
		require.Less(t, time.Since(start), 5*time.Second, tc.name)
	}
}

func TestPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix permissions")
	}
	t.Parallel()
	f := newStore(t, false)
	_, err := f.s.Write(context.Background(), "new/dir/x", secret, "")
	require.NoError(t, err)
	folder := filepath.Join(f.dir, passstore.Folder)
	for _, p := range []string{folder, filepath.Join(folder, "new"), filepath.Join(folder, "new", "dir")} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), p)
	}
	fi, err := os.Stat(filepath.Join(folder, "new", "dir", "x.gpg"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

// A crash between encrypting and renaming leaves only a hidden temporary
// file: no entry, and the next Write there removes it once it is stale.
func TestCrashLeavesNoEntry(t *testing.T) {
	t.Parallel()
	f := newStore(t, false)
	ctx := context.Background()
	dir := filepath.Join(f.dir, passstore.Folder, "host")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	stale, fresh := filepath.Join(dir, ".x.111.tmp"), filepath.Join(dir, ".x.222.tmp")
	require.NoError(t, os.WriteFile(stale, []byte("half an entry"), 0o600))
	require.NoError(t, os.WriteFile(fresh, []byte("half an entry"), 0o600))
	old := time.Now().Add(-2 * time.Minute)
	require.NoError(t, os.Chtimes(stale, old, old))

	var skipped []string
	names, err := f.s.Names(func(p, why string) { skipped = append(skipped, p) })
	require.NoError(t, err)
	require.Empty(t, names)
	require.Empty(t, skipped, "its own temporary files are not worth a warning")
	_, _, err = f.s.Read(ctx, "host/x")
	require.ErrorIs(t, err, passstore.ErrNotFound)

	_, err = f.s.Write(ctx, "host/y", secret, "")
	require.NoError(t, err)
	require.NoFileExists(t, stale)
	require.FileExists(t, fresh, "may belong to a Write under way")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "y.gpg and the fresh temporary file, no other")
}

func TestUsable(t *testing.T) {
	t.Parallel()
	f := newStore(t, false)
	ctx := context.Background()
	empty := t.TempDir()
	missing := storeFor(filepath.Join(t.TempDir(), "store"), f.home)
	nogpg := storeFor(f.dir, f.home)
	nogpg.GPG = filepath.Join(t.TempDir(), "gpg")
	for _, tc := range []struct {
		name string
		s    *passstore.Store
		is   error
	}{
		{"store", f.s, nil},
		{"no Dir", &passstore.Store{}, passstore.ErrNoStore},
		{"missing Dir", missing, passstore.ErrNoStore},
		{"no .gpg-id", storeFor(empty, f.home), passstore.ErrNoStore},
		{"no gpg", nogpg, passstore.ErrNoGPG},
	} {
		err := tc.s.Usable(ctx)
		if tc.is == nil {
			require.NoError(t, err, tc.name)
			continue
		}
		require.ErrorIs(t, err, tc.is, tc.name)
		checkErr(t, err)
	}
	require.ErrorContains(t, passstore.ErrNoStore, "run `pass init YOUR-GPG-KEY-ID`")

	// PASSWORD_STORE_KEY wins over .gpg-id, as in pass.
	withKey := storeFor(empty, f.home)
	withKey.Keys = []string{f.fpr}
	require.NoError(t, withKey.Usable(ctx))
}

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want passstore.Store
		is   error
	}{
		{"PASSWORD_STORE_DIR", map[string]string{"PASSWORD_STORE_DIR": "/s/store/", "HOME": "/home/a"},
			passstore.Store{Dir: filepath.FromSlash("/s/store")}, nil},
		{"HOME", map[string]string{"HOME": "/home/a"},
			passstore.Store{Dir: filepath.FromSlash("/home/a/.password-store")}, nil},
		{"options", map[string]string{"HOME": "/h", "PASSWORD_STORE_GPG_OPTS": " --armor  --trust-model always",
			"PASSWORD_STORE_SIGNING_KEY": "AAAA BBBB", "PASSWORD_STORE_KEY": "k1 k2"},
			passstore.Store{Dir: filepath.FromSlash("/h/.password-store"), Opts: []string{"--armor", "--trust-model", "always"},
				SigningKeys: []string{"AAAA", "BBBB"}, Keys: []string{"k1", "k2"}}, nil},
		{"nothing", map[string]string{}, passstore.Store{}, passstore.ErrNoStore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := passstore.FromEnv(func(k string) string { return tc.env[k] })
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
				return
			}
			require.NoError(t, err)
			if runtime.GOOS == "windows" {
				return // no such absolute paths
			}
			require.Equal(t, tc.want.Dir, s.Dir)
			for _, v := range [][2][]string{{tc.want.Opts, s.Opts}, {tc.want.SigningKeys, s.SigningKeys}, {tc.want.Keys, s.Keys}} {
				require.Equal(t, len(v[0]), len(v[1]))
				if len(v[0]) > 0 {
					require.Equal(t, v[0], v[1])
				}
			}
		})
	}
}

func TestParseBody(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want passstore.Body
		out  string // FormatBody of it
	}{
		{"", passstore.Body{}, "\n"},
		{"tok", passstore.Body{Secret: "tok"}, "tok\n"},
		{"tok\n", passstore.Body{Secret: "tok"}, "tok\n"},
		{" tok with spaces \r\n", passstore.Body{Secret: " tok with spaces "}, " tok with spaces \n"},
		{"tok\r\nUser: alice\r\nURL : https://x/y \r\n", passstore.Body{Secret: "tok", Fields: []passstore.Field{
			{"user", "alice"}, {"url", "https://x/y"}}}, "tok\nuser: alice\nurl: https://x/y\n"},
		{"tok\nfree text\n\nkey:novalue\nk: v: w\n", passstore.Body{Secret: "tok", Fields: []passstore.Field{
			{"", "free text"}, {"", ""}, {"", "key:novalue"}, {"k", "v: w"}}}, "tok\nfree text\n\nkey:novalue\nk: v: w\n"},
	} {
		b := passstore.ParseBody(tc.in)
		require.Equal(t, tc.want, b, "%q", tc.in)
		out, err := passstore.FormatBody(b)
		require.NoError(t, err)
		require.Equal(t, tc.out, out)
		v, ok := b.Get("URL")
		if tc.want.Secret == "tok" && strings.Contains(tc.in, "URL") {
			require.True(t, ok)
			require.Equal(t, "https://x/y", v)
		}
	}
	_, ok := passstore.ParseBody("tok\nuser: a\n").Get("nope")
	require.False(t, ok)

	for _, b := range []passstore.Body{
		{Secret: secret + "\nmore"},
		{Secret: secret, Fields: []passstore.Field{{"k", secret + "\r"}}},
		{Secret: secret, Fields: []passstore.Field{{"K", secret}}},
		{Secret: secret, Fields: []passstore.Field{{" k", secret}}},
		{Secret: secret, Fields: []passstore.Field{{"k", " " + secret}}},
		{Secret: secret, Fields: []passstore.Field{{"", "a: " + secret}}},
	} {
		_, err := passstore.FormatBody(b)
		require.Error(t, err)
		require.NotContains(t, err.Error(), secret)
	}
	b := passstore.Body{Secret: secret, Fields: []passstore.Field{{"user", "alice"}}}
	for _, verb := range []string{"%v", "%+v", "%s", "%#v"} {
		require.NotContains(t, fmt.Sprintf(verb, b), secret, verb)
	}
}

func FuzzParseBody(f *testing.F) {
	for _, seed := range []string{"", "tok", "tok\n", "tok\r\nuser: a\r\n", "t\n: x\n a : b \nno colon\n\n", "t\nA:: b\n\xff: x\n"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		b := passstore.ParseBody(in)
		out, err := passstore.FormatBody(b)
		if err != nil {
			return
		}
		b2 := passstore.ParseBody(out)
		if b.Secret != b2.Secret || len(b.Fields) != len(b2.Fields) {
			t.Fatalf("%q: %q read back as %#v", in, out, b2.Fields)
		}
		for i := range b.Fields {
			if b.Fields[i] != b2.Fields[i] {
				t.Fatalf("%q: field %d %q read back as %q", in, i, b.Fields[i], b2.Fields[i])
			}
		}
		out2, err := passstore.FormatBody(b2)
		if err != nil || out2 != out {
			t.Fatalf("%q: not stable: %q, %v", in, out2, err)
		}
	})
}
