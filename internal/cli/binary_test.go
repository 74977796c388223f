package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bbtoken/git-credential-bbtoken/internal/store"
	"github.com/bbtoken/git-credential-bbtoken/internal/testkeyring"
)

// binPath is the helper built once for the tests that need a real process:
// git running it, or a keyring that is not there.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "bbtoken-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "git-credential-bbtoken")
	cmd := exec.Command("go", "build", "-o", binPath, "github.com/bbtoken/git-credential-bbtoken/cmd/git-credential-bbtoken")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building the helper: %v\n", err)
		return 1
	}
	return m.Run()
}

// noKeyring is a session bus address where nothing listens.
const noKeyring = "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent"

// binEnv is a clean environment for the binary and for git: a temp HOME,
// its config dir, no system git config, no prompts.
func binEnv(home string, extra ...string) []string {
	return gitEnv(home, extra...)
}

func configDir(home string) string {
	return filepath.Join(home, ".config", "git-credential-bbtoken")
}

type procResult struct {
	result
	timedOut bool
	elapsed  time.Duration
}

// runBin runs the built helper (or exe) with a 20 s bound.
func runBin(t *testing.T, exe string, env []string, stdin string, args ...string) procResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	res := procResult{result: result{stdout: out.String(), stderr: errb.String()}, elapsed: time.Since(start)}
	res.timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("running %s: %v", exe, err)
	}
	return res
}

// addInProcess writes an index entry into home's config dir with a memory
// keyring, for runs of the binary that have no keyring.
func addInProcess(t *testing.T, home, url, token string, args ...string) string {
	t.Helper()
	f := &fixture{t: t, dir: configDir(home), secrets: newSecrets(), now: time.Now(), getenv: map[string]string{}, wd: t.TempDir()}
	return f.add(token, append([]string{url}, args...)...)
}

func TestBinaryWithoutKeyring(t *testing.T) {
	t.Parallel()

	t.Run("add", func(t *testing.T) {
		t.Parallel()
		home := t.TempDir()
		r := runBin(t, binPath, binEnv(home, noKeyring), repoTok+"\n", "add", "https://bitbucket.org/ws/repo")
		require.False(t, r.timedOut)
		assert.Equal(t, ExitError, r.code)
		assert.Empty(t, r.stdout)
		assertOneLine(t, r.stderr)
		assert.Contains(t, r.stderr, "keyring unavailable")
		assert.Contains(t, r.stderr, "fix: ")
		assert.NotContains(t, r.stderr, repoTok)
		_, err := os.Stat(filepath.Join(configDir(home), store.IndexFile))
		assert.ErrorIs(t, err, os.ErrNotExist, "no index entry is written")
	})

	t.Run("add next to an index", func(t *testing.T) {
		t.Parallel()
		home := t.TempDir()
		addInProcess(t, home, "https://bitbucket.org/ws", wsTok, "--kind", "workspace")
		index := filepath.Join(configDir(home), store.IndexFile)
		before, err := os.ReadFile(index)
		require.NoError(t, err)
		r := runBin(t, binPath, binEnv(home, noKeyring), repoTok+"\n", "add", "https://bitbucket.org/ws/repo")
		require.False(t, r.timedOut)
		assert.Equal(t, ExitError, r.code)
		assert.Empty(t, r.stdout)
		assertOneLine(t, r.stderr)
		after, err := os.ReadFile(index)
		require.NoError(t, err)
		assert.Equal(t, string(before), string(after))
	})

	t.Run("list", func(t *testing.T) {
		t.Parallel()
		home := t.TempDir()
		id := addInProcess(t, home, "https://bitbucket.org/ws/repo", repoTok)
		r := runBin(t, binPath, binEnv(home, noKeyring), "", "list")
		require.False(t, r.timedOut)
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Empty(t, r.stderr)
		assert.Regexp(t, `(?m)^`+id+`\s+repository\s+active\s+-\s+x-token-auth\s+keyring\s+https://bitbucket.org/ws/repo\s+-$`, r.stdout)

		r = runBin(t, binPath, binEnv(home, noKeyring), "", "list", "--json")
		require.Equal(t, ExitOK, r.code, r.stderr)
		assert.Contains(t, r.stdout, `"id": "`+id+`"`)
	})

	t.Run("get", func(t *testing.T) {
		t.Parallel()
		home := t.TempDir()
		addInProcess(t, home, "https://bitbucket.org/ws/repo", repoTok)
		r := runBin(t, binPath, binEnv(home, noKeyring), "protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n\n", "get")
		require.False(t, r.timedOut, "get must not hang without a keyring")
		assert.Less(t, r.elapsed, 10*time.Second)
		assert.Equal(t, ExitError, r.code)
		assert.Empty(t, r.stdout)
		assertOneLine(t, r.stderr)
		assert.Contains(t, r.stderr, "git-credential-bbtoken: get: ")
		assert.Contains(t, r.stderr, "keyring unavailable")
	})

	t.Run("get without a match needs no keyring", func(t *testing.T) {
		t.Parallel()
		home := t.TempDir()
		addInProcess(t, home, "https://bitbucket.org/ws/repo", repoTok)
		r := runBin(t, binPath, binEnv(home, noKeyring), "protocol=https\nhost=bitbucket.org\npath=ws/other.git\n\n", "get")
		require.False(t, r.timedOut)
		assert.Equal(t, ExitOK, r.code)
		assert.Empty(t, r.stdout)
		assert.Empty(t, r.stderr)
	})

	t.Run("remove", func(t *testing.T) {
		t.Parallel()
		home := t.TempDir()
		id := addInProcess(t, home, "https://bitbucket.org/ws/repo", repoTok)
		r := runBin(t, binPath, binEnv(home, noKeyring), "", "remove", id)
		require.False(t, r.timedOut)
		// Without a keyring nothing changes: the entry stays, so its
		// secret never becomes unreachable.
		assert.Equal(t, ExitError, r.code)
		assert.Empty(t, r.stdout)
		assertOneLine(t, r.stderr)
		assert.Contains(t, r.stderr, "nothing removed: deleting the secret of "+id+" from the keyring: keyring unavailable")
		ix, err := (&store.Store{Dir: configDir(home)}).Load()
		require.NoError(t, err)
		require.Len(t, ix.Entries, 1)
		assert.Equal(t, id, ix.Entries[0].ID)
	})
}

// TestGitUsesHelper runs the real git against the real helper and keyring:
// setup in a temp HOME, a token added with the binary, `git credential fill`.
func TestGitUsesHelper(t *testing.T) {
	t.Parallel()
	requireGit(t)
	testkeyring.Require(t)
	bus := "DBUS_SESSION_BUS_ADDRESS=" + os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	home := t.TempDir()
	env := binEnv(home, bus)

	// A credential the store helper would give, to show the reset.
	require.NoError(t, os.WriteFile(filepath.Join(home, ".git-credentials"), []byte("https://bob:stored-pw@bitbucket.org\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".gitconfig"), []byte("[user]\n\tname = T\n[credential]\n\thelper = store\n"), 0o644))

	r := runBin(t, binPath, env, repoTok+"\n", "add", "https://bitbucket.org/ws/repo")
	require.Equal(t, ExitOK, r.code, r.stderr)
	id := strings.TrimSpace(r.stdout)
	require.Regexp(t, `^[0-9a-f]{8}$`, id)
	t.Cleanup(func() {
		r := runBin(t, binPath, env, "", "remove", id)
		assert.Equal(t, ExitOK, r.code, r.stderr)
	})

	fill := "protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n\n"
	out, err := runGit(t, env, home, fill, "credential", "fill")
	require.NoError(t, err)
	assert.Contains(t, out, "password=stored-pw", "before setup git asks the store helper")

	r = runBin(t, binPath, env, "", "setup")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Equal(t, []string{"", binPath}, strings.Split(strings.TrimSuffix(
		mustGit(t, env, home, "config", "--global", "--get-all", "credential.https://bitbucket.org.helper"), "\n"), "\n"))

	out, err = runGit(t, env, home, fill, "credential", "fill")
	require.NoError(t, err)
	assert.Equal(t, "protocol=https\nhost=bitbucket.org\npath=ws/repo.git\nusername=x-token-auth\npassword="+repoTok+"\n", out)

	// Another repository: our helper has nothing, and the store helper is
	// no longer asked, so git (which may not prompt) fails.
	out, err = runGit(t, env, home, "protocol=https\nhost=bitbucket.org\npath=ws/other.git\n\n", "credential", "fill")
	assert.Error(t, err)
	assert.NotContains(t, out, "stored-pw")

	// git approve after a successful fetch changes nothing.
	index := filepath.Join(configDir(home), store.IndexFile)
	before, err := os.ReadFile(index)
	require.NoError(t, err)
	_, err = runGit(t, env, home, "protocol=https\nhost=bitbucket.org\npath=ws/repo.git\nusername=x-token-auth\npassword="+repoTok+"\n\n", "credential", "approve")
	require.NoError(t, err)
	after, err := os.ReadFile(index)
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after))

	r = runBin(t, binPath, env, "", "setup", "--remove")
	require.Equal(t, ExitOK, r.code, r.stderr)
	gitconfig, err := os.ReadFile(filepath.Join(home, ".gitconfig"))
	require.NoError(t, err)
	assert.Equal(t, "[user]\n\tname = T\n[credential]\n\thelper = store\n", string(gitconfig))
}

// TestGitRunsHelperFromPathWithSpace installs the binary under a directory
// whose name has a space and checks that git really runs it (the trace
// file proves it; no keyring is needed for a host with no tokens).
func TestGitRunsHelperFromPathWithSpace(t *testing.T) {
	t.Parallel()
	requireGit(t)
	home := t.TempDir()
	exe := filepath.Join(home, "My Tools", "git-credential-bbtoken")
	require.NoError(t, os.MkdirAll(filepath.Dir(exe), 0o755))
	// A hard link, not a copy: a file just written can still be open for
	// writing in a child forked by a parallel test, and exec then fails
	// with "text file busy".
	require.NoError(t, os.Link(binPath, exe))

	tracePath := filepath.Join(home, "trace.log")
	env := binEnv(home, noKeyring, "GIT_CREDENTIAL_BBTOKEN_TRACE="+tracePath)
	r := runBin(t, exe, env, "", "setup")
	require.Equal(t, ExitOK, r.code, r.stderr)
	assert.Equal(t, "!'"+exe+"'\n", mustGit(t, env, home, "config", "--global", "--get-all", "credential.https://bitbucket.org.helper")[1:])

	_, err := runGit(t, env, home, "protocol=https\nhost=bitbucket.org\npath=ws/repo.git\n\n", "credential", "fill")
	require.Error(t, err, "no token, no prompt: git gives up")
	trace, err := os.ReadFile(tracePath)
	require.NoError(t, err, "git ran the helper")
	assert.Contains(t, string(trace), `get: protocol="https" host="bitbucket.org" path="ws/repo.git"`)

	r = runBin(t, exe, env, "", "setup", "--remove")
	require.Equal(t, ExitOK, r.code, r.stderr)
}
