// Package passtest sets up real gpg homes and pass stores for tests.
//
// gpg-agent puts its socket in the gpg home unless /run/user/UID exists,
// and a unix socket path must stay under 108 bytes: homes are made with
// os.MkdirTemp("", "gh"), not t.TempDir, whose paths are too long.
package passtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Require skips the test when gpg, gpgconf, pass or git is missing, or
// fails it when BBTOKEN_REQUIRE_PASS=1 (as in CI, where they must be).
func Require(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"gpg", "gpgconf", "pass", "git"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("BBTOKEN_REQUIRE_PASS") == "1" {
				t.Fatalf("%s is required (BBTOKEN_REQUIRE_PASS=1): %v", bin, err)
			}
			t.Skipf("%s not installed: %v", bin, err)
		}
	}
}

// GPGHome creates a gpg home with one key without a passphrase for
// "NAME <name@example.com>" and returns the home and the key's
// fingerprint. Cleanup ends its agent and removes it.
func GPGHome(t testing.TB, name string) (home, fpr string) {
	return newHome(t, name, "")
}

// GPGHomeLocked is GPGHome with a key protected by a passphrase that no
// agent holds: decrypting needs a pinentry.
func GPGHomeLocked(t testing.TB, name string) (home, fpr string) {
	home, fpr = newHome(t, name, "passtest-passphrase")
	run(t, nil, "", "gpgconf", "--homedir", home, "--kill", "gpg-agent") // forget the passphrase
	return home, fpr
}

func newHome(t testing.TB, name, passphrase string) (home, fpr string) {
	t.Helper()
	Require(t)
	home, err := os.MkdirTemp("", "gh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	// The agent otherwise calibrates passphrase hashing to take ~4 s here.
	if err := os.WriteFile(filepath.Join(home, "gpg-agent.conf"), []byte("s2k-count 65536\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uid := name + " <" + strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.com>"
	out := run(t, nil, "", "gpg", "--homedir", home, "--batch", "--status-fd", "1",
		"--pinentry-mode", "loopback", "--passphrase", passphrase,
		"--quick-gen-key", uid, "future-default", "default", "never")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[1] == "KEY_CREATED" {
			return home, f[3]
		}
	}
	t.Fatalf("gpg created no key for %q: %s", uid, out)
	return "", ""
}

// ShareKey imports key fpr from home from into home to and trusts it
// fully there, so that to can encrypt to it in batch mode.
func ShareKey(t testing.TB, from, to, fpr string) {
	t.Helper()
	pub := run(t, nil, "", "gpg", "--homedir", from, "--batch", "--export", fpr)
	run(t, nil, pub, "gpg", "--homedir", to, "--batch", "--import")
	run(t, nil, fpr+":6:\n", "gpg", "--homedir", to, "--batch", "--import-ownertrust")
}

// Env is this process's environment set up to run gpg, pass, git or the
// helper against gpg home home and password store dir: their variables
// replaced, and git's global and system configuration hidden (append
// GIT_CONFIG_GLOBAL=... to use one: the last value of a variable wins).
func Env(home, dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "GNUPGHOME" || k == "GPG_AGENT_INFO" || strings.HasPrefix(k, "PASSWORD_STORE_") ||
			strings.HasPrefix(k, "GIT_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GNUPGHOME="+home, "PASSWORD_STORE_DIR="+dir,
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
}

// Init runs `pass init fprs...` for a store at dir with gpg home home and,
// when withGit, `pass git init` with a committer configured in the
// repository.
func Init(t testing.TB, dir, home string, withGit bool, fprs ...string) {
	t.Helper()
	Require(t)
	env := Env(home, dir)
	Pass(t, env, "", append([]string{"init"}, fprs...)...)
	if withGit {
		id := []string{"GIT_AUTHOR_NAME=passtest", "GIT_AUTHOR_EMAIL=passtest@example.com",
			"GIT_COMMITTER_NAME=passtest", "GIT_COMMITTER_EMAIL=passtest@example.com"}
		Pass(t, append(env, id...), "", "git", "init")
		Pass(t, env, "", "git", "config", "user.name", "passtest")
		Pass(t, env, "", "git", "config", "user.email", "passtest@example.com")
	}
}

// Pass runs the real pass with env and stdin and returns its stdout; it
// fails the test if pass fails.
func Pass(t testing.TB, env []string, stdin string, args ...string) string {
	t.Helper()
	return run(t, env, stdin, "pass", args...)
}

func run(t testing.TB, env []string, stdin, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", bin, strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}
